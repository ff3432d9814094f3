#include "anonymizer/value.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace custodian::anon {

const char* columnTypeName(ColumnType type) noexcept {
    switch (type) {
    case ColumnType::Integer: return "integer";
    case ColumnType::Decimal: return "decimal";
    case ColumnType::Text: return "text";
    case ColumnType::Date: return "date";
    case ColumnType::Timestamp: return "timestamp";
    }
    return "unknown";
}

std::optional<ColumnType> columnTypeFromName(std::string_view name) noexcept {
    if (name == "integer") return ColumnType::Integer;
    if (name == "decimal") return ColumnType::Decimal;
    if (name == "text") return ColumnType::Text;
    if (name == "date") return ColumnType::Date;
    if (name == "timestamp") return ColumnType::Timestamp;
    return std::nullopt;
}

std::optional<int64_t> parseInteger(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    int64_t value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    return value;
}

std::optional<double> parseDecimal(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    // from_chars accepts "inf"/"nan" spellings; a released decimal must be a finite number.
    const char first = text[0] == '-' && text.size() > 1 ? text[1] : text[0];
    if (!(first >= '0' && first <= '9') && first != '.') return std::nullopt;
    double value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
    if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
    return value;
}

int32_t daysFromCivil(int32_t year, unsigned month, unsigned day) noexcept {
    // Howard Hinnant's days_from_civil: eras of 400 years, March-based years so that the leap day
    // is the last day of the year.
    int64_t y = static_cast<int64_t>(year) - (month <= 2 ? 1 : 0);
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t mp = month > 2 ? month - 3 : month + 9;
    const int64_t doy = (153 * mp + 2) / 5 + day - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return static_cast<int32_t>(era * 146097 + doe - 719468);
}

CivilDate civilFromDays(int32_t daysSinceEpoch) noexcept {
    const int64_t z = static_cast<int64_t>(daysSinceEpoch) + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const auto day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
    const auto month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
    const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    return {static_cast<int32_t>(year), month, day};
}

namespace {

bool digitsAt(std::string_view s, size_t pos, size_t count, int& out) noexcept {
    if (pos + count > s.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + count; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

bool isLeapYear(int year) noexcept { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned daysInMonth(int year, unsigned month) noexcept {
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && isLeapYear(year) ? 29 : kDays[month - 1];
}

// Parses YYYY-MM-DD at the start of `s`; returns days or nullopt.
std::optional<int32_t> parseDatePrefix(std::string_view s) noexcept {
    int year = 0, month = 0, day = 0;
    if (s.size() < 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
    if (!digitsAt(s, 0, 4, year) || !digitsAt(s, 5, 2, month) || !digitsAt(s, 8, 2, day)) return std::nullopt;
    if (month < 1 || month > 12 || day < 1 ||
        static_cast<unsigned>(day) > daysInMonth(year, static_cast<unsigned>(month)))
        return std::nullopt;
    return daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
}

void appendPadded(std::string& out, int64_t value, int width) {
    char buf[24];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value < 0 ? -value : value);
    (void)ec;
    if (value < 0) out.push_back('-');
    for (auto len = static_cast<int>(ptr - buf); len < width; ++len) out.push_back('0');
    out.append(buf, ptr);
}

}  // namespace

std::optional<int32_t> parseDate(std::string_view text) noexcept {
    if (text.size() != 10) return std::nullopt;
    return parseDatePrefix(text);
}

std::optional<int64_t> parseTimestamp(std::string_view s) noexcept {
    const auto days = parseDatePrefix(s);
    if (!days || s.size() < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':') return std::nullopt;
    int hh = 0, mm = 0, ss = 0;
    if (!digitsAt(s, 11, 2, hh) || !digitsAt(s, 14, 2, mm) || !digitsAt(s, 17, 2, ss)) return std::nullopt;
    if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
    size_t pos = 19;
    int64_t micros = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        int digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (++digits > 6) return std::nullopt;
            micros = micros * 10 + (s[pos] - '0');
            ++pos;
        }
        if (digits == 0) return std::nullopt;
        for (; digits < 6; ++digits) micros *= 10;
    }
    int64_t offsetSeconds = 0;
    if (pos < s.size()) {
        if (s[pos] == 'Z') {
            ++pos;
        } else if (s[pos] == '+' || s[pos] == '-') {
            int oh = 0, om = 0;
            if (pos + 6 != s.size() || s[pos + 3] != ':' || !digitsAt(s, pos + 1, 2, oh) ||
                !digitsAt(s, pos + 4, 2, om) || oh > 23 || om > 59)
                return std::nullopt;
            offsetSeconds = (s[pos] == '+' ? 1 : -1) * (int64_t{oh} * 3600 + int64_t{om} * 60);
            pos += 6;
        }
    }
    if (pos != s.size()) return std::nullopt;
    const int64_t seconds =
        static_cast<int64_t>(*days) * 86400 + int64_t{hh} * 3600 + int64_t{mm} * 60 + ss - offsetSeconds;
    return seconds * 1'000'000 + micros;
}

void appendInteger(std::string& out, int64_t value) {
    char buf[24];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
    (void)ec;
    out.append(buf, ptr);
}

void appendDecimal(std::string& out, double value) {
    if (value == 0) value = 0;  // -0 prints as "0"
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
    (void)ec;
    out.append(buf, ptr);
}

void appendDate(std::string& out, int32_t daysSinceEpoch) {
    const CivilDate c = civilFromDays(daysSinceEpoch);
    if (c.year >= 0 && c.year <= 9999) {  // the usual case, written in one append
        const auto y = static_cast<unsigned>(c.year);
        const char text[10] = {static_cast<char>('0' + y / 1000),
                               static_cast<char>('0' + y / 100 % 10),
                               static_cast<char>('0' + y / 10 % 10),
                               static_cast<char>('0' + y % 10),
                               '-',
                               static_cast<char>('0' + c.month / 10),
                               static_cast<char>('0' + c.month % 10),
                               '-',
                               static_cast<char>('0' + c.day / 10),
                               static_cast<char>('0' + c.day % 10)};
        out.append(text, sizeof text);
        return;
    }
    appendPadded(out, c.year, 4);
    out.push_back('-');
    appendPadded(out, c.month, 2);
    out.push_back('-');
    appendPadded(out, c.day, 2);
}

std::string formatDate(int32_t daysSinceEpoch) {
    std::string s;
    appendDate(s, daysSinceEpoch);
    return s;
}

void appendTimestamp(std::string& out, int64_t micros) {
    // Floor division so that instants before 1970 land on the right day.
    int64_t days = micros / kMicrosPerDay;
    int64_t rest = micros % kMicrosPerDay;
    if (rest < 0) {
        rest += kMicrosPerDay;
        --days;
    }
    appendDate(out, static_cast<int32_t>(days));
    const int64_t secs = rest / 1'000'000;
    const int64_t frac = rest % 1'000'000;
    out.push_back('T');
    appendPadded(out, secs / 3600, 2);
    out.push_back(':');
    appendPadded(out, (secs / 60) % 60, 2);
    out.push_back(':');
    appendPadded(out, secs % 60, 2);
    if (frac != 0) {
        out.push_back('.');
        appendPadded(out, frac, 6);
    }
    out.push_back('Z');
}

bool isValidUtf8(std::string_view bytes, size_t* badOffset) noexcept {
    const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        // ASCII fast path, eight bytes at a time.
        while (i + 8 <= n) {
            uint64_t word;
            std::memcpy(&word, s + i, 8);
            if (word & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len = 0;
        uint32_t cp = 0;
        uint32_t min = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            if (badOffset) *badOffset = i;
            return false;
        }
        if (i + len > n) {
            if (badOffset) *badOffset = i;
            return false;
        }
        for (size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) {
                if (badOffset) *badOffset = i;
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            if (badOffset) *badOffset = i;
            return false;
        }
        i += len;
    }
    return true;
}

bool appendCanonicalText(std::string& out, ColumnType type, std::string_view text) {
    switch (type) {
    case ColumnType::Text: out.append(text); return true;
    case ColumnType::Integer:
        if (auto v = parseInteger(text)) return appendInteger(out, *v), true;
        return false;
    case ColumnType::Decimal:
        if (auto v = parseDecimal(text)) return appendDecimal(out, *v), true;
        return false;
    case ColumnType::Date:
        if (auto v = parseDate(text)) return appendDate(out, *v), true;
        return false;
    case ColumnType::Timestamp:
        if (auto v = parseTimestamp(text)) return appendTimestamp(out, *v), true;
        return false;
    }
    return false;
}

}  // namespace custodian::anon
