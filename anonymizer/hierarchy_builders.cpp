#include "anonymizer/hierarchy_builders.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "anonymizer/value.hpp"

namespace custodian::anon {

namespace {

std::string quoted(std::string_view value) {
    constexpr size_t kMax = 60;
    if (value.size() <= kMax) return "'" + std::string(value) + "'";
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
    return "'" + std::string(value.substr(0, cut)) + "...'";
}

std::vector<std::string> distinct(std::span<const std::string> domain) {
    std::unordered_set<std::string_view> seen;
    std::vector<std::string> out;
    for (const auto& v : domain)
        if (seen.insert(v).second) out.push_back(v);
    return out;
}

// Interval bounds with 15 significant digits: exact for integers below 10^15, and it hides binary
// noise such as 0.30000000000000004 that an exact shortest representation would print.
std::string formatBound(double value) {
    if (value == 0) value = 0;  // no "-0"
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.15g", value);
    return buf;
}

bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t codePoints(std::string_view s) {
    size_t n = 0;
    for (const char c : s) n += isContinuationByte(c) ? 0 : 1;
    return n;
}

// Byte offset of the first `count` code points of `s`.
size_t prefixBytes(std::string_view s, size_t count) {
    size_t i = 0;
    for (size_t seen = 0; i < s.size(); ++i) {
        if (!isContinuationByte(s[i])) {
            if (seen == count) break;
            ++seen;
        }
    }
    return i;
}

std::string pad(int64_t value, int width) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(value));
    return buf;
}

}  // namespace

const char* dateGranularityName(DateGranularity g) noexcept {
    switch (g) {
    case DateGranularity::Day: return "day";
    case DateGranularity::Month: return "month";
    case DateGranularity::Quarter: return "quarter";
    case DateGranularity::Year: return "year";
    case DateGranularity::Decade: return "decade";
    }
    return "unknown";
}

Result<HierarchyRows> intervalHierarchyRows(std::span<const std::string> domain, const IntervalHierarchySpec& spec) {
    if (!std::isfinite(spec.origin)) return invalidArgument("interval hierarchy: origin must be a finite number");
    for (size_t i = 0; i < spec.widths.size(); ++i) {
        const double w = spec.widths[i];
        if (!(w > 0) || !std::isfinite(w))
            return invalidArgument("interval hierarchy: width of level " + std::to_string(i + 1) + " must be > 0");
        if (i > 0) {
            const double ratio = w / spec.widths[i - 1];
            const double whole = std::round(ratio);
            if (whole < 1 || std::fabs(ratio - whole) > 1e-9 * whole)
                return invalidArgument("interval hierarchy: width of level " + std::to_string(i + 1) + " (" +
                                       formatBound(w) + ") is not a multiple of the width of level " +
                                       std::to_string(i) + " (" + formatBound(spec.widths[i - 1]) + ")");
        }
    }
    std::vector<std::pair<double, std::string>> values;
    for (auto& v : distinct(domain)) {
        const auto number = parseDecimal(v);
        if (!number) return invalidArgument("interval hierarchy: value " + quoted(v) + " is not a number");
        values.emplace_back(*number, std::move(v));
    }
    std::sort(values.begin(), values.end());
    HierarchyRows rows;
    rows.reserve(values.size());
    for (auto& [number, text] : values) {
        std::vector<std::string> row;
        row.reserve(spec.widths.size() + 2);
        row.push_back(std::move(text));
        for (const double w : spec.widths) {
            const double lo = spec.origin + std::floor((number - spec.origin) / w) * w;
            row.push_back("[" + formatBound(lo) + "-" + formatBound(lo + w) + "[");
        }
        if (spec.topLevel) row.emplace_back("*");
        rows.push_back(std::move(row));
    }
    return rows;
}

Result<HierarchyRows> dateHierarchyRows(std::span<const std::string> domain, const DateHierarchySpec& spec) {
    for (size_t i = 1; i < spec.levels.size(); ++i)
        if (spec.levels[i] <= spec.levels[i - 1])
            return invalidArgument(std::string("date hierarchy: level ") + std::to_string(i + 1) + " (" +
                                   dateGranularityName(spec.levels[i]) + ") is not coarser than level " +
                                   std::to_string(i) + " (" + dateGranularityName(spec.levels[i - 1]) + ")");
    struct Dated {
        int64_t micros;
        std::string text;
    };
    std::vector<Dated> values;
    for (auto& v : distinct(domain)) {
        if (auto days = parseDate(v)) {
            values.push_back({*days * kMicrosPerDay, std::move(v)});
        } else if (auto micros = parseTimestamp(v)) {
            values.push_back({*micros, std::move(v)});
        } else {
            return invalidArgument("date hierarchy: value " + quoted(v) + " is not a date (YYYY-MM-DD) or a timestamp");
        }
    }
    std::sort(values.begin(), values.end(), [](const Dated& a, const Dated& b) {
        return a.micros != b.micros ? a.micros < b.micros : a.text < b.text;
    });
    HierarchyRows rows;
    rows.reserve(values.size());
    for (auto& value : values) {
        int64_t days = value.micros / kMicrosPerDay;
        if (value.micros % kMicrosPerDay < 0) --days;
        const CivilDate c = civilFromDays(static_cast<int32_t>(days));
        std::vector<std::string> row;
        row.push_back(std::move(value.text));
        for (const auto g : spec.levels) {
            const std::string year = pad(c.year, 4);
            switch (g) {
            case DateGranularity::Day: row.push_back(year + "-" + pad(c.month, 2) + "-" + pad(c.day, 2)); break;
            case DateGranularity::Month: row.push_back(year + "-" + pad(c.month, 2)); break;
            case DateGranularity::Quarter: row.push_back(year + "-Q" + std::to_string((c.month - 1) / 3 + 1)); break;
            case DateGranularity::Year: row.push_back(year); break;
            case DateGranularity::Decade: {
                const int64_t decade = c.year - (((c.year % 10) + 10) % 10);
                row.push_back(pad(decade, 4) + "s");
                break;
            }
            }
        }
        if (spec.topLevel) row.emplace_back("*");
        rows.push_back(std::move(row));
    }
    return rows;
}

Result<HierarchyRows> maskingHierarchyRows(std::span<const std::string> domain, const MaskingHierarchySpec& spec) {
    if (codePoints(spec.maskChar) != 1 || !isValidUtf8(spec.maskChar))
        return invalidArgument("masking hierarchy: the mask character must be exactly one character");
    std::vector<std::pair<size_t, std::string>> values;
    size_t longest = 0;
    for (auto& v : distinct(domain)) {
        if (!isValidUtf8(v)) return invalidArgument("masking hierarchy: value " + quoted(v) + " is not valid UTF-8");
        const size_t n = codePoints(v);
        if (n > kMaxMaskingLength)
            return invalidArgument("masking hierarchy: value " + quoted(v) + " has " + std::to_string(n) +
                                   " characters, more than the " + std::to_string(kMaxMaskingLength) + " supported");
        longest = std::max(longest, n);
        values.emplace_back(n, std::move(v));
    }
    std::sort(values.begin(), values.end());
    const size_t levels = std::max<size_t>(longest, 1);
    HierarchyRows rows;
    rows.reserve(values.size());
    for (auto& [length, text] : values) {
        std::vector<std::string> row;
        row.reserve(levels + 1);
        row.push_back(text);
        for (size_t k = 1; k < levels; ++k) {
            const size_t kept = length > k ? length - k : 0;
            std::string label = text.substr(0, prefixBytes(text, kept));
            for (size_t m = kept; m < length; ++m) label += spec.maskChar;
            row.push_back(std::move(label));
        }
        row.push_back(spec.maskChar);
        rows.push_back(std::move(row));
    }
    return rows;
}

Result<HierarchyRows> groupingHierarchyRows(std::span<const std::string> domain, const GroupingHierarchySpec& spec) {
    HierarchyRows rows;
    for (auto& v : distinct(domain)) {
        std::vector<std::string> row;
        row.reserve(spec.levels.size() + 2);
        row.push_back(std::move(v));
        for (size_t level = 0; level < spec.levels.size(); ++level) {
            const auto it = spec.levels[level].find(row.back());
            if (it == spec.levels[level].end()) {
                return invalidArgument(
                    level == 0 ? "grouping hierarchy: value " + quoted(row.back()) + " has no group at level 1"
                               : "grouping hierarchy: group " + quoted(row.back()) + " (level " +
                                     std::to_string(level) + ") has no group at level " + std::to_string(level + 1));
            }
            row.push_back(it->second);
        }
        if (spec.topLevel) row.emplace_back("*");
        rows.push_back(std::move(row));
    }
    // Order by ancestor path from the top down, so that the leaves under every node are contiguous.
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return std::lexicographical_compare(a.rbegin(), a.rend(), b.rbegin(), b.rend());
    });
    return rows;
}

namespace {

Result<Hierarchy> build(std::string name, Result<HierarchyRows> rows) {
    if (!rows) return rows.status().withContext("hierarchy '" + name + "'");
    if (rows->empty()) return invalidArgument("hierarchy '" + name + "': the column has no values to build it from");
    return Hierarchy::fromRows(std::move(name), *rows);
}

}  // namespace

Result<Hierarchy> buildIntervalHierarchy(std::string name, std::span<const std::string> domain,
                                         const IntervalHierarchySpec& spec) {
    return build(std::move(name), intervalHierarchyRows(domain, spec));
}
Result<Hierarchy> buildDateHierarchy(std::string name, std::span<const std::string> domain,
                                     const DateHierarchySpec& spec) {
    return build(std::move(name), dateHierarchyRows(domain, spec));
}
Result<Hierarchy> buildMaskingHierarchy(std::string name, std::span<const std::string> domain,
                                        const MaskingHierarchySpec& spec) {
    return build(std::move(name), maskingHierarchyRows(domain, spec));
}
Result<Hierarchy> buildGroupingHierarchy(std::string name, std::span<const std::string> domain,
                                         const GroupingHierarchySpec& spec) {
    return build(std::move(name), groupingHierarchyRows(domain, spec));
}

void DomainCollector::add(const Batch& batch, size_t column) {
    const Column& col = batch.column(column);
    std::string scratch;
    for (size_t r = 0; r < col.size(); ++r) {
        if (col.isNull(r)) {
            sawNull_ = true;
            continue;
        }
        if (col.type() == ColumnType::Text) {
            const std::string_view v = col.text(r);
            // Heterogeneous lookup is C++20 for unordered_set only with a transparent hash; copy once.
            scratch.assign(v);
        } else {
            scratch.clear();
            col.appendCanonical(scratch, r);
        }
        if (seen_.insert(scratch).second) values_.push_back(scratch);
    }
}

}  // namespace custodian::anon
