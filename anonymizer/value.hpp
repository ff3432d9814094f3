#pragma once
// Typed scalar values as they appear in CSV text: strict parsing (the whole field must be the value)
// and canonical formatting. The canonical text of a value is what hierarchies match and what keyed
// hashes (pseudonyms, date-shift offsets) are computed over, so it must never change silently.
//
//   integer    [-]digits                      int64
//   decimal    [-]digits[.digits][e[+-]digits] double, finite; formatted shortest round-trip
//   date       YYYY-MM-DD                      days since 1970-01-01 (proleptic Gregorian)
//   timestamp  YYYY-MM-DD(T| )HH:MM:SS[.f{1,6}][Z|(+|-)HH:MM]   microseconds since the epoch, UTC;
//              formatted YYYY-MM-DDTHH:MM:SS[.ffffff]Z (fraction only when non-zero)

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace custodian::anon {

enum class ColumnType { Integer, Decimal, Text, Date, Timestamp };

const char* columnTypeName(ColumnType type) noexcept;
std::optional<ColumnType> columnTypeFromName(std::string_view name) noexcept;

std::optional<int64_t> parseInteger(std::string_view text) noexcept;
std::optional<double> parseDecimal(std::string_view text) noexcept;
std::optional<int32_t> parseDate(std::string_view text) noexcept;
std::optional<int64_t> parseTimestamp(std::string_view text) noexcept;

// Append the canonical text to `out` (no allocation beyond growing `out`).
void appendInteger(std::string& out, int64_t value);
void appendDecimal(std::string& out, double value);
void appendDate(std::string& out, int32_t daysSinceEpoch);
void appendTimestamp(std::string& out, int64_t microsSinceEpoch);

std::string formatDate(int32_t daysSinceEpoch);

// Parses `text` strictly as `type` and appends the value's canonical text to `out`; returns false
// and leaves `out` unchanged if `text` is not a value of that type.
bool appendCanonicalText(std::string& out, ColumnType type, std::string_view text);

// Civil calendar conversions (proleptic Gregorian), exact for every int32 day count.
struct CivilDate {
    int32_t year;
    unsigned month;  // 1..12
    unsigned day;    // 1..31
};
int32_t daysFromCivil(int32_t year, unsigned month, unsigned day) noexcept;
CivilDate civilFromDays(int32_t daysSinceEpoch) noexcept;

inline constexpr int64_t kMicrosPerDay = 86'400'000'000LL;

// Whether `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
// On failure, `badOffset` receives the offset of the first byte of the offending sequence.
bool isValidUtf8(std::string_view bytes, size_t* badOffset = nullptr) noexcept;

}  // namespace custodian::anon
