#pragma once
// Canonical JSON: the one byte encoding that manifests and audit entries are signed and hashed
// over, and that a policy's content hash is computed over, so that anyone can recompute it from
// the JSON they received. The project's only canonical encoder: the JsonValue model below and
// RapidJSON values (canonicalJson(const rapidjson::Value&, Numbers)) are written by the same rules.
//
// Rules (specified in docs/formats/manifest.md, docs/formats/audit.md and docs/policies.md):
// - values: null, true, false, integers in [-2^63, 2^64), strings, arrays, objects. Manifests and
//   audit entries have no floating point (Numbers::IntegersOnly): fractional quantities travel as
//   decimal strings chosen by the producer. Policies may hold non-integers (Numbers::Decimal), written
//   in the shortest form that reads back as the same double (RapidJSON's Writer: 0.2, 1.0, 1e-7).
// - objects: members sorted by the UTF-8 bytes of their names (byte-wise), no duplicate names.
// - no whitespace anywhere; integers in plain decimal ("-" sign, no leading zeros, no "+").
// - strings: UTF-8 (invalid UTF-8 is an error), escaped only where JSON requires it: `"` → \",
//   `\` → \\, U+0008 → \b, U+0009 → \t, U+000A → \n, U+000C → \f, U+000D → \r, other code points
//   below U+0020 → \u00XX with lowercase hex. Everything else, non-ASCII included, is literal.

#include <cstdint>
#include <concepts>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <rapidjson/document.h>

#include "anonymizer/status.hpp"

namespace custodian::json {

class JsonValue {
public:
    using Array = std::vector<JsonValue>;
    using Object = std::map<std::string, JsonValue>;  // std::string order is byte-wise

    JsonValue() = default;        // null
    JsonValue(std::nullptr_t) {}  // NOLINT implicit
    // Only a real bool: a pointer (or any other type convertible to bool) must not become true.
    template <typename B>
    requires std::same_as<B, bool> JsonValue(B b) : v_(b) {}  // NOLINT
    // Non-negative integers are always held as uint64_t so that equal numbers compare equal.
    JsonValue(int v) : JsonValue(static_cast<int64_t>(v)) {}  // NOLINT
    JsonValue(int64_t v) {                                    // NOLINT
        if (v >= 0) v_ = static_cast<uint64_t>(v);
        else v_ = v;
    }
    JsonValue(uint64_t v) : v_(v) {}                  // NOLINT
    JsonValue(std::string s) : v_(std::move(s)) {}    // NOLINT
    JsonValue(const char* s) : v_(std::string(s)) {}  // NOLINT
    JsonValue(Array a) : v_(std::move(a)) {}          // NOLINT
    JsonValue(Object o) : v_(std::move(o)) {}         // NOLINT

    bool isNull() const { return std::holds_alternative<std::nullptr_t>(v_); }
    bool isBool() const { return std::holds_alternative<bool>(v_); }
    bool isInteger() const { return std::holds_alternative<int64_t>(v_) || std::holds_alternative<uint64_t>(v_); }
    bool isString() const { return std::holds_alternative<std::string>(v_); }
    bool isArray() const { return std::holds_alternative<Array>(v_); }
    bool isObject() const { return std::holds_alternative<Object>(v_); }

    bool asBool() const { return std::get<bool>(v_); }
    const std::string& asString() const { return std::get<std::string>(v_); }
    const Array& asArray() const { return std::get<Array>(v_); }
    const Object& asObject() const { return std::get<Object>(v_); }
    Object& asObject() { return std::get<Object>(v_); }
    // Integer accessors: nullopt-free; the caller checks the range with fitsInt64/fitsUint64.
    bool fitsUint64() const;
    bool fitsInt64() const;
    uint64_t asUint64() const;
    int64_t asInt64() const;

    // Member lookup on an object; nullptr if absent or not an object.
    const JsonValue* find(const std::string& name) const;

    friend bool operator==(const JsonValue&, const JsonValue&) = default;

private:
    friend void appendCanonical(const JsonValue&, std::string&, Status&);
    std::variant<std::nullptr_t, bool, int64_t, uint64_t, std::string, Array, Object> v_;
};

// The canonical bytes of `value`; InvalidArgument if a string is not valid UTF-8.
Result<std::string> canonicalJson(const JsonValue& value);

// Appends the canonical encoding of one string (with quotes); false if not valid UTF-8.
bool appendCanonicalString(std::string_view s, std::string& out);

// Replaces every invalid UTF-8 sequence with U+FFFD, so text from requests can always be recorded.
std::string sanitizeUtf8(std::string_view s);
bool isValidUtf8(std::string_view s);

// Strict parse of one JSON text into the canonical model: rejects non-integer numbers, duplicate
// member names, invalid UTF-8, nesting deeper than 64, and trailing content. Messages name the
// JSON path ("details.k: ...").
Result<JsonValue> parseJson(std::string_view text);

// How a RapidJSON value's non-integer numbers are treated (see the rules above).
enum class Numbers {
    IntegersOnly,  // manifests, audit entries: a non-integer is an error
    Decimal,       // policies: a non-integer is written in its shortest round-trip form
};

// The canonical bytes of a RapidJSON value by the same rules, without building a JsonValue:
// members sorted, a repeated member name, invalid UTF-8, nesting deeper than 64 or (IntegersOnly)
// a non-integer is InvalidArgument.
Result<std::string> canonicalJson(const rapidjson::Value& value, Numbers numbers);
// The same, appended to `out`; on failure returns false with `error` saying why.
bool appendCanonical(const rapidjson::Value& value, Numbers numbers, std::string& out, std::string& error);

}  // namespace custodian::json
