#include "json/canonical.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <vector>

namespace custodian::json {

bool JsonValue::fitsUint64() const { return std::holds_alternative<uint64_t>(v_); }
bool JsonValue::fitsInt64() const {
    if (std::holds_alternative<int64_t>(v_)) return true;
    return std::holds_alternative<uint64_t>(v_) &&
           std::get<uint64_t>(v_) <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}
uint64_t JsonValue::asUint64() const { return std::get<uint64_t>(v_); }
int64_t JsonValue::asInt64() const {
    if (std::holds_alternative<int64_t>(v_)) return std::get<int64_t>(v_);
    return static_cast<int64_t>(std::get<uint64_t>(v_));
}

const JsonValue* JsonValue::find(const std::string& name) const {
    if (!isObject()) return nullptr;
    const auto& o = asObject();
    auto it = o.find(name);
    return it == o.end() ? nullptr : &it->second;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF).
size_t utf8SequenceLength(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;  // no overlongs
        if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;  // no overlongs
        if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (size_t k = 2; k < n; ++k) {
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    }
    return n;
}

}  // namespace

bool isValidUtf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8SequenceLength(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string sanitizeUtf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8SequenceLength(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

bool appendCanonicalString(std::string_view s, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    size_t run = 0;  // start of the current run of bytes copied verbatim
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0x80) {
            const size_t n = utf8SequenceLength(s, i);
            if (n == 0) return false;
            i += n;
            continue;
        }
        out.append(s.data() + run, i - run);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        default:
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
        run = ++i;
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
    return true;
}

void appendCanonical(const JsonValue& value, std::string& out, Status& status) {
    if (!status) return;
    const auto& v = value.v_;
    if (std::holds_alternative<std::nullptr_t>(v)) {
        out += "null";
    } else if (std::holds_alternative<bool>(v)) {
        out += std::get<bool>(v) ? "true" : "false";
    } else if (std::holds_alternative<int64_t>(v) || std::holds_alternative<uint64_t>(v)) {
        char buf[24];
        const auto r = std::holds_alternative<int64_t>(v) ? std::to_chars(buf, buf + sizeof buf, std::get<int64_t>(v))
                                                          : std::to_chars(buf, buf + sizeof buf, std::get<uint64_t>(v));
        out.append(buf, r.ptr);
    } else if (std::holds_alternative<std::string>(v)) {
        if (!appendCanonicalString(std::get<std::string>(v), out)) {
            status = invalidArgument("a string is not valid UTF-8");
        }
    } else if (std::holds_alternative<JsonValue::Array>(v)) {
        out.push_back('[');
        bool first = true;
        for (const auto& item : std::get<JsonValue::Array>(v)) {
            if (!first) out.push_back(',');
            first = false;
            appendCanonical(item, out, status);
        }
        out.push_back(']');
    } else {
        out.push_back('{');
        bool first = true;
        for (const auto& [name, item] : std::get<JsonValue::Object>(v)) {
            if (!first) out.push_back(',');
            first = false;
            if (!appendCanonicalString(name, out)) {
                status = invalidArgument("a member name is not valid UTF-8");
                return;
            }
            out.push_back(':');
            appendCanonical(item, out, status);
        }
        out.push_back('}');
    }
}

Result<std::string> canonicalJson(const JsonValue& value) {
    std::string out;
    Status status;
    appendCanonical(value, out, status);
    if (!status) return status;
    return out;
}

namespace {

constexpr int kMaxDepth = 64;

// A number by the rule of `numbers`: integers in plain decimal; a non-integer only under
// Numbers::Decimal, written as RapidJSON's Writer writes it (the shortest text that reads back as
// the same double, "1.0" for a fractional 1).
bool appendNumber(const rapidjson::Value& v, Numbers numbers, std::string& out, std::string& error) {
    char buf[24];
    if (v.IsUint64()) {
        out.append(buf, std::to_chars(buf, buf + sizeof buf, v.GetUint64()).ptr);
        return true;
    }
    if (v.IsInt64()) {
        out.append(buf, std::to_chars(buf, buf + sizeof buf, v.GetInt64()).ptr);
        return true;
    }
    if (numbers == Numbers::IntegersOnly) {
        error = "only integers are allowed (fractions travel as decimal strings)";
        return false;
    }
    rapidjson::StringBuffer text;
    rapidjson::Writer<rapidjson::StringBuffer> writer(text);
    if (!writer.Double(v.GetDouble())) {
        error = "a number is not finite";
        return false;
    }
    out.append(text.GetString(), text.GetSize());
    return true;
}

bool appendCanonicalDom(const rapidjson::Value& v, Numbers numbers, std::string& out, std::string& error, int depth) {
    if (depth > kMaxDepth) {
        error = "nested deeper than 64 levels";
        return false;
    }
    switch (v.GetType()) {
    case rapidjson::kNullType: out += "null"; return true;
    case rapidjson::kFalseType: out += "false"; return true;
    case rapidjson::kTrueType: out += "true"; return true;
    case rapidjson::kNumberType: return appendNumber(v, numbers, out, error);
    case rapidjson::kStringType:
        if (!appendCanonicalString({v.GetString(), v.GetStringLength()}, out)) {
            error = "a string is not valid UTF-8";
            return false;
        }
        return true;
    case rapidjson::kArrayType: {
        out.push_back('[');
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            if (i > 0) out.push_back(',');
            if (!appendCanonicalDom(v[i], numbers, out, error, depth + 1)) return false;
        }
        out.push_back(']');
        return true;
    }
    case rapidjson::kObjectType: {
        const auto name = [](const rapidjson::Value::Member& m) {
            return std::string_view(m.name.GetString(), m.name.GetStringLength());
        };
        // Objects written by the gateway are already canonical: members sorted, so no copy is
        // needed. Anything else is sorted through a pointer array.
        const bool sorted = std::is_sorted(v.MemberBegin(), v.MemberEnd(),
                                           [&](const auto& a, const auto& b) { return name(a) < name(b); });
        std::vector<const rapidjson::Value::Member*> members;
        if (!sorted) {
            members.reserve(v.MemberCount());
            for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) members.push_back(&*it);
            std::sort(members.begin(), members.end(), [&](auto* a, auto* b) { return name(*a) < name(*b); });
        }
        const size_t count = v.MemberCount();
        const auto member = [&](size_t i) -> const rapidjson::Value::Member& {
            return sorted ? *(v.MemberBegin() + static_cast<std::ptrdiff_t>(i)) : *members[i];
        };
        out.push_back('{');
        for (size_t i = 0; i < count; ++i) {
            if (i > 0) {
                if (name(member(i)) == name(member(i - 1))) {
                    error = "duplicate member name \"" + std::string(name(member(i))) + "\"";
                    return false;
                }
                out.push_back(',');
            }
            if (!appendCanonicalString(name(member(i)), out)) {
                error = "a member name is not valid UTF-8";
                return false;
            }
            out.push_back(':');
            if (!appendCanonicalDom(member(i).value, numbers, out, error, depth + 1)) return false;
        }
        out.push_back('}');
        return true;
    }
    }
    error = "unknown JSON type";
    return false;
}

}  // namespace

bool appendCanonical(const rapidjson::Value& value, Numbers numbers, std::string& out, std::string& error) {
    return appendCanonicalDom(value, numbers, out, error, 0);
}

Result<std::string> canonicalJson(const rapidjson::Value& value, Numbers numbers) {
    std::string out, error;
    if (!appendCanonical(value, numbers, out, error)) return invalidArgument(error);
    return out;
}

namespace {

Result<JsonValue> convert(const rapidjson::Value& v, const std::string& path, int depth) {
    const auto where = [&](const std::string& msg) {
        return invalidArgument((path.empty() ? std::string("(root)") : path) + ": " + msg);
    };
    if (depth > kMaxDepth) return where("nested deeper than 64 levels");
    switch (v.GetType()) {
    case rapidjson::kNullType: return JsonValue();
    case rapidjson::kFalseType: return JsonValue(false);
    case rapidjson::kTrueType: return JsonValue(true);
    case rapidjson::kNumberType:
        if (v.IsUint64()) return JsonValue(v.GetUint64());
        if (v.IsInt64()) return JsonValue(v.GetInt64());
        return where("only integers are allowed (fractions travel as decimal strings)");
    case rapidjson::kStringType: return JsonValue(std::string(v.GetString(), v.GetStringLength()));
    case rapidjson::kArrayType: {
        JsonValue::Array out;
        out.reserve(v.Size());
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            auto item = convert(v[i], path + "[" + std::to_string(i) + "]", depth + 1);
            if (!item) return item.status();
            out.push_back(std::move(item).value());
        }
        return JsonValue(std::move(out));
    }
    case rapidjson::kObjectType: {
        JsonValue::Object out;
        for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
            std::string name(it->name.GetString(), it->name.GetStringLength());
            const std::string childPath = path.empty() ? name : path + "." + name;
            auto item = convert(it->value, childPath, depth + 1);
            if (!item) return item.status();
            if (!out.emplace(std::move(name), std::move(item).value()).second) {
                return invalidArgument(childPath + ": duplicate member name");
            }
        }
        return JsonValue(std::move(out));
    }
    }
    return where("unknown JSON type");
}

}  // namespace

Result<JsonValue> parseJson(std::string_view text) {
    rapidjson::Document doc;
    constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
    doc.Parse<kFlags>(text.data(), text.size());
    if (doc.HasParseError()) {
        return invalidArgument(std::string("invalid JSON at byte ") + std::to_string(doc.GetErrorOffset()) + ": " +
                               rapidjson::GetParseError_En(doc.GetParseError()));
    }
    return convert(doc, "", 0);
}

}  // namespace custodian::json
