#pragma once
// The final check: verifies the declared privacy models on the rows actually released, from their
// released quasi-identifier labels and sensitive values. It shares no code with the search (its own
// grouping by label strings, its own l-diversity and EMD arithmetic), so a bug in the search cannot
// hide itself; a release must be refused when finish() returns an error.
//
// Feed every released row with addRow(), then call finish(). Memory is proportional to the number of
// released classes and their distinct sensitive values. Not thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "anonymizer/flat_hash.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

struct FinalCheckSensitive {
    std::string name;
    TClosenessDistance distance = TClosenessDistance::Equal;
    // Value -> records in the whole input (t-closeness reference). Empty = the released rows' own
    // distribution. For Ordered distance, values are ordered numerically when all parse as numbers,
    // else byte-wise (the same rule as SensitiveDictionary::build).
    std::map<std::string, uint64_t> inputDistribution;
};

struct FinalCheckReport {
    uint64_t releasedRecords = 0;
    uint64_t suppressedRecords = 0;  // inputRecords - releasedRecords
    size_t classes = 0;
    uint64_t minClassSize = 0;
    std::optional<double> minDistinctL, minEntropyL, maxT;
};

class FinalCheck {
public:
    FinalCheck(PrivacyModels models, std::vector<std::string> qiNames, std::vector<FinalCheckSensitive> sensitive,
               uint64_t inputRecords);

    // qiLabels: one released label per quasi-identifier; sensitiveValues: one per sensitive attribute.
    Status addRow(std::span<const std::string_view> qiLabels, std::span<const std::string_view> sensitiveValues);
    Status addRow(std::span<const std::string> qiLabels, std::span<const std::string> sensitiveValues);
    // The same as `count` calls of addRow with these values, for callers that count equal rows first.
    Status addRows(std::span<const std::string_view> qiLabels, std::span<const std::string_view> sensitiveValues,
                   uint64_t count);

    // Ok with the report when every model holds on every released class and the number of suppressed
    // records is within the limit; FailedPrecondition naming the first violation otherwise.
    Result<FinalCheckReport> finish() const;

private:
    struct TextHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using TextCounts = std::unordered_map<std::string, uint64_t, TextHash, std::equal_to<>>;
    struct ReleasedClass {
        uint64_t size = 0;
        std::vector<TextCounts> values;  // per sensitive attribute
    };
    PrivacyModels models_;
    std::vector<std::string> qiNames_;
    std::vector<FinalCheckSensitive> sensitive_;
    uint64_t inputRecords_;
    uint64_t released_ = 0;
    detail::StringInterner classKeys_;    // class key -> class id, in order of first release
    std::vector<ReleasedClass> classes_;  // by class id
    std::string key_;
};

}  // namespace custodian::anon
