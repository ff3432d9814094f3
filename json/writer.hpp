#pragma once
// The project's one JSON writer, on RapidJSON's Writer: every response body of the api (catalog,
// preview, audit, keys, transparency), the error bodies and the access log of http/ are built with
// it, none by concatenating text. Canonical bytes (hashed or signed) come from json/canonical.hpp.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sodium.h>

#include <span>

#include "json/canonical.hpp"

namespace custodian::json {

// A JSON text built member by member; strings are written as valid UTF-8 (invalid sequences
// become U+FFFD).
class JsonOut {
public:
    JsonOut() : w_(buffer_) {}
    rapidjson::Writer<rapidjson::StringBuffer>& w() { return w_; }
    JsonOut& key(std::string_view k) {
        w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
        return *this;
    }
    JsonOut& str(std::string_view v) {
        std::string clean = sanitizeUtf8(v);
        w_.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
        return *this;
    }
    JsonOut& field(std::string_view k, std::string_view v) { return key(k).str(v); }
    // Bytes as lower-case hex (hashes).
    JsonOut& hex(std::span<const unsigned char> bytes) {
        std::string text(bytes.size() * 2 + 1, '\0');
        sodium_bin2hex(text.data(), text.size(), bytes.data(), bytes.size());
        text.pop_back();
        return str(text);
    }
    // Only a real bool may become a JSON boolean: a `const char*` would otherwise convert to bool
    // (a standard conversion beats the user-defined one to string_view) and write `true`.
    template <typename B>
    requires std::same_as<B, bool> JsonOut& field(std::string_view k, B v) {
        key(k);
        w_.Bool(v);
        return *this;
    }
    JsonOut& field(std::string_view k, const char* v) { return field(k, std::string_view(v)); }
    JsonOut& field(std::string_view k, int64_t v) {
        key(k);
        w_.Int64(v);
        return *this;
    }
    JsonOut& optional(std::string_view k, const std::optional<std::string>& v) {
        key(k);
        if (v) str(*v);
        else w_.Null();
        return *this;
    }
    JsonOut& optional(std::string_view k, const std::optional<uint64_t>& v) {
        key(k);
        if (v) w_.Uint64(*v);
        else w_.Null();
        return *this;
    }
    JsonOut& null() {
        w_.Null();
        return *this;
    }
    JsonOut& number(double v) {
        w_.Double(v);
        return *this;
    }
    // A number, or null when it is not finite (JSON has no infinity or NaN).
    JsonOut& finite(double v) {
        if (std::isfinite(v)) w_.Double(v);
        else w_.Null();
        return *this;
    }
    JsonOut& uint(uint64_t v) {
        w_.Uint64(v);
        return *this;
    }
    JsonOut& raw(std::string_view k, const std::string& json) {
        key(k);
        w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
        return *this;
    }
    JsonOut& beginObject() {
        w_.StartObject();
        return *this;
    }
    JsonOut& endObject() {
        w_.EndObject();
        return *this;
    }
    JsonOut& beginArray(std::string_view k) {
        key(k);
        w_.StartArray();
        return *this;
    }
    JsonOut& endArray() {
        w_.EndArray();
        return *this;
    }
    std::string text() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

private:
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> w_;
};

// One string as a JSON string literal (with its quotes), valid UTF-8.
inline std::string quoted(std::string_view s) {
    JsonOut out;
    out.str(s);
    return out.text();
}

}  // namespace custodian::json
