#pragma once
// Hierarchy builders: produce the rows of a hierarchy (leaf, level 1, ..., top) for the distinct
// values actually present in a column (its domain), then validate them with Hierarchy::fromRows.
// Label formats are documented in docs/formats/csv-and-hierarchies.md.
//
// Leaf order (which ordered distances and Mondrian use) is the natural order of each builder:
// numeric for intervals, chronological for dates, (length, bytes) for masking, and grouped by
// ancestor path for explicit groupings, so that the leaves under every node are contiguous.

#include <map>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "anonymizer/hierarchy.hpp"
#include "anonymizer/hierarchy_io.hpp"
#include "anonymizer/status.hpp"
#include "anonymizer/table.hpp"

namespace custodian::anon {

// Numeric intervals. Level i (1-based) puts value v into [lo-hi[ with
//   lo = origin + floor((v - origin) / widths[i-1]) * widths[i-1],  hi = lo + widths[i-1].
// Each width must be a positive integer multiple of the previous one (5, 10, 20 but not 5, 12), which
// makes every level a coarsening of the one below. `topLevel` appends "*".
struct IntervalHierarchySpec {
    std::vector<double> widths;
    double origin = 0;
    bool topLevel = true;
};

enum class DateGranularity { Day, Month, Quarter, Year, Decade };
const char* dateGranularityName(DateGranularity g) noexcept;

// Dates (YYYY-MM-DD) or timestamps (as value.hpp parses them): day "2021-03-14", month "2021-03",
// quarter "2021-Q1", year "2021", decade "2020s", then "*". Levels must be strictly coarser in order.
struct DateHierarchySpec {
    std::vector<DateGranularity> levels = {DateGranularity::Month, DateGranularity::Quarter, DateGranularity::Year,
                                           DateGranularity::Decade};
    bool topLevel = true;
};

// Right-to-left masking, one more character (code point) per level: "12345" → "1234*" → "123**" →
// "12***" → "1****" → "*". The number of levels above the leaves is the longest value's length; a
// shorter value stays fully masked ("12" → "1*" → "**" → ... → "*"). The top level is always the
// single mask character.
// Values may have at most kMaxMaskingLength characters: the hierarchy has one level per character,
// so its size grows with the square of the length.
inline constexpr size_t kMaxMaskingLength = 64;
struct MaskingHierarchySpec {
    std::string maskChar = "*";  // one code point
};

// Explicit groupings: levels[0] maps each value to its level-1 group, levels[i] maps each level-i
// label to its level-(i+1) group. Every value (and every group) must have an entry; entries for
// values not in the domain are ignored. `topLevel` appends "*".
struct GroupingHierarchySpec {
    std::vector<std::map<std::string, std::string, std::less<>>> levels;
    bool topLevel = true;
};

// Row builders (duplicates in `domain` are ignored). Errors name the offending value:
//   "interval hierarchy: value 'abc' is not a number"
Result<HierarchyRows> intervalHierarchyRows(std::span<const std::string> domain, const IntervalHierarchySpec& spec);
Result<HierarchyRows> dateHierarchyRows(std::span<const std::string> domain, const DateHierarchySpec& spec);
Result<HierarchyRows> maskingHierarchyRows(std::span<const std::string> domain, const MaskingHierarchySpec& spec);
Result<HierarchyRows> groupingHierarchyRows(std::span<const std::string> domain, const GroupingHierarchySpec& spec);

// Build and validate.
Result<Hierarchy> buildIntervalHierarchy(std::string name, std::span<const std::string> domain,
                                         const IntervalHierarchySpec& spec);
Result<Hierarchy> buildDateHierarchy(std::string name, std::span<const std::string> domain,
                                     const DateHierarchySpec& spec);
Result<Hierarchy> buildMaskingHierarchy(std::string name, std::span<const std::string> domain,
                                        const MaskingHierarchySpec& spec);
Result<Hierarchy> buildGroupingHierarchy(std::string name, std::span<const std::string> domain,
                                         const GroupingHierarchySpec& spec);

// Collects the distinct non-null values (canonical text) of one column over batches, in order of
// first appearance — the domain the builders take. Memory is proportional to the distinct values.
class DomainCollector {
public:
    void add(const Batch& batch, size_t column);
    const std::vector<std::string>& values() const noexcept { return values_; }
    bool sawNull() const noexcept { return sawNull_; }

private:
    std::unordered_set<std::string> seen_;
    std::vector<std::string> values_;
    bool sawNull_ = false;
};

}  // namespace custodian::anon
