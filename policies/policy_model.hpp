#pragma once
// The plain data model of a release policy, as parsed from the policy language (see
// docs/policies.md and policies/schema/policy.schema.json). Values here have passed schema and
// semantic validation when they come from loadPolicy(); defaults are filled in.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "anonymizer/metrics.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/transform.hpp"
#include "anonymizer/value.hpp"
#include "policies/row_filter.hpp"

namespace custodian::policies {

enum class ColumnRole { Identifier, QuasiIdentifier, Sensitive, Insensitive };
const char* columnRoleName(ColumnRole role) noexcept;
std::optional<ColumnRole> columnRoleFromName(std::string_view name) noexcept;

// A column transform as written in the policy: a name of the anonymizer's TransformRegistry and
// its parameters (true/false, a whole number, a number, a text or a list of texts).
struct TransformSpec {
    std::string name;
    anon::Params params;
    bool operator==(const TransformSpec&) const = default;
};

enum class DateLevel { Month, Quarter, Year, Decade };
const char* dateLevelName(DateLevel level) noexcept;

struct HierarchySpec {
    enum class Kind { File, Intervals, Dates, Prefix, Groups };
    Kind kind = Kind::File;
    // File: the path as written and resolved against the policy file's folder.
    std::string file;
    std::filesystem::path resolvedFile;
    char delimiter = ';';
    // Intervals: widths per level (each a multiple of the previous) aligned to `origin`.
    std::vector<double> widths;
    double origin = 0;
    // Dates: the levels above the day, ascending.
    std::vector<DateLevel> dateLevels;
    // Prefix: the masking character (one code point, UTF-8).
    std::string maskChar = "*";
    // Groups: per level, (group name, members) in the order written; members of level 0 groups are
    // column values, members of level i > 0 groups are group names of level i-1.
    std::vector<std::vector<std::pair<std::string, std::vector<std::string>>>> groups;
};
const char* hierarchyKindName(HierarchySpec::Kind kind) noexcept;

struct ColumnPolicy {
    std::string name;
    anon::ColumnType type = anon::ColumnType::Text;
    ColumnRole role = ColumnRole::Insensitive;
    std::string description;
    // The transform applied. When the policy names none: identifiers are dropped, quasi-identifiers
    // are generalized by the search, other columns are kept.
    TransformSpec transform;
    bool transformDeclared = false;
    std::optional<HierarchySpec> hierarchy;
};

enum class SearchAlgorithm { Optimal, Mondrian };
enum class MondrianMode { Strict, Relaxed };
// The policy language's metric names: discernibility, aecs, nonuniform_entropy, loss, height.
const char* policyMetricName(anon::Metric metric) noexcept;
std::optional<anon::Metric> policyMetricFromName(std::string_view name) noexcept;

struct PrivacySpec {
    std::optional<uint64_t> k;
    std::optional<anon::LDiversity> lDiversity;
    std::optional<anon::TCloseness> tCloseness;
    // Unset: equal distance for text columns, ordered for numbers, dates and timestamps.
    std::optional<anon::TClosenessDistance> tClosenessDistance;
    double suppressionLimit = 0;
};

enum class OutputFormat { Csv, Ndjson };

struct OutputSpec {
    std::vector<OutputFormat> formats{OutputFormat::Csv, OutputFormat::Ndjson};
    bool encryptionRequired = true;
    std::optional<uint64_t> maxRows;
};

struct ValiditySpec {
    // Microseconds since the Unix epoch, UTC; unset = unbounded on that side.
    std::optional<int64_t> notBefore;
    std::optional<int64_t> expires;
    // Whether `atMicros` is inside [notBefore, expires).
    bool contains(int64_t atMicros) const noexcept {
        return (!notBefore || atMicros >= *notBefore) && (!expires || atMicros < *expires);
    }
};

// Differentially private aggregates (docs/aggregates.md): what POST /v1/queries may answer.
struct AggregateMeasure {
    std::string column;
    double lower = 0;  // every value is clamped to [lower, upper] before it is summed
    double upper = 0;
};

struct AggregateGroupBy {
    std::string column;
    // Group by the column's hierarchy at this level; unset = by the values themselves.
    std::optional<int> level;
    // The public domain: the groups an answer has, as canonical values of the column (no level) or
    // labels of the hierarchy level. Empty only with a level of a file or groups hierarchy: then
    // every node of that level (filled in by the gateway from the policy's hierarchy).
    std::vector<std::string> values;
};

enum class BudgetPeriod { Day, Month, Year, Lifetime };
const char* budgetPeriodName(BudgetPeriod period) noexcept;

struct AggregatesSpec {
    std::string personKey;
    uint32_t maxRowsPerPerson = 1;
    std::vector<AggregateMeasure> measures;
    std::vector<AggregateGroupBy> groupBy;
    double epsilon = 0;           // per recipient and period
    std::optional<double> delta;  // per recipient and period; only Gaussian queries spend it
    BudgetPeriod period = BudgetPeriod::Month;

    const AggregateMeasure* measure(std::string_view column) const;
    const AggregateGroupBy* groupByColumn(std::string_view column) const;
};

struct PolicyModel {
    std::string dataset;
    std::string description;
    std::vector<std::string> recipients;  // principal names and "group:NAME"
    std::vector<std::string> purposes;
    // What the public transparency register shows of this policy's releases (docs/transparency.md).
    enum class Transparency { Public, Summary, Private };
    Transparency transparency = Transparency::Summary;
    // Other policies of the dataset whose releases may be joined with this one's (docs/security.md).
    std::vector<std::string> linkableWith;
    ValiditySpec validity;
    char inputDelimiter = ',';
    std::vector<ColumnPolicy> columns;  // in the order written
    PrivacySpec privacy;
    SearchAlgorithm algorithm = SearchAlgorithm::Optimal;
    MondrianMode mondrianMode = MondrianMode::Strict;
    // Mondrian: categorical cells released as the set of values present ("a|b") instead of the
    // lowest common hierarchy node ("algorithm": {"categorical_release": "value_set"}).
    bool mondrianValueSets = false;
    anon::Metric metric = anon::Metric::Loss;
    OutputSpec output;
    std::optional<uint32_t> extractsPerDayPerRecipient;
    std::optional<RowFilter> rowFilter;
    std::optional<AggregatesSpec> aggregates;

    const ColumnPolicy* column(std::string_view name) const;
    // The recipient entry that admits `principal` (its own name, else the first "group:NAME" among
    // `principalGroups`, the groups it belongs to), or nullopt if none does.
    std::optional<std::string> admittingRecipient(std::string_view principal,
                                                  const std::vector<std::string>& principalGroups) const;
    bool allowsRecipient(std::string_view principal, const std::vector<std::string>& principalGroups) const {
        return admittingRecipient(principal, principalGroups).has_value();
    }
    bool allowsPurpose(std::string_view purpose) const;
    // The t-closeness distance of a sensitive column: the policy's "distance", else ordered for
    // integer, decimal, date and timestamp columns and equal for text (docs/policies.md). One rule
    // for the search, Mondrian and the release's final check.
    anon::TClosenessDistance tClosenessDistance(const ColumnPolicy& column) const;
};

const char* transparencyName(PolicyModel::Transparency t) noexcept;
std::optional<PolicyModel::Transparency> transparencyFromName(std::string_view name) noexcept;

}  // namespace custodian::policies
