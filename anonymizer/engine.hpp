#pragma once
// The anonymization engine API used by `custodian anonymize` and the gateway's release pipeline.
// Free of CSV, JSON and IO: callers encode quasi-identifiers to hierarchy leaf codes and sensitive
// values to dictionary codes.
//
// Global recoding (optimal search) is a blocking step in three phases:
//   1. Sink:     every record (or GROUP BY row) goes into a FrequencyTableBuilder (newFrequencyTable).
//   2. Finalize: anonymizeGlobal() searches the lattice from the FrequencyTable alone and returns a
//                ReleasePlan.
//   3. Source:   rows are streamed again; ReleasePlan::release() drops suppressed rows and gives the
//                released labels; every released row also goes through a FinalCheck
//                (makeFinalCheck), and the release is refused unless FinalCheck::finish() is ok.
// Mondrian (local recoding) needs the encoded columns in memory: anonymizeMondrian().

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "anonymizer/final_check.hpp"
#include "anonymizer/frequency_table.hpp"
#include "anonymizer/hierarchy.hpp"
#include "anonymizer/metrics.hpp"
#include "anonymizer/mondrian.hpp"
#include "anonymizer/optimal_search.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/risk.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

struct QuasiIdentifier {
    std::string name;
    std::shared_ptr<const Hierarchy> hierarchy;
    bool numeric = false; // numeric loss / Mondrian ranges (requires numeric leaves)
    int minLevel = 0;     // optimal search only: allowed levels
    int maxLevel = -1;    // -1 = the hierarchy's top level
};

struct SensitiveAttribute {
    std::string name;
    std::shared_ptr<const SensitiveDictionary> dictionary; // code -> value
    TClosenessDistance distance = TClosenessDistance::Equal;
};

enum class Algorithm { Optimal, Mondrian };

struct AnonymizationConfig {
    std::vector<QuasiIdentifier> quasiIdentifiers;
    std::vector<SensitiveAttribute> sensitive;
    PrivacyModels models;
    Algorithm algorithm = Algorithm::Optimal;
    Metric metric = Metric::NonUniformEntropy;
    MondrianMode mondrianMode = MondrianMode::Strict;
    bool mondrianValueSets = false;       // MondrianConfig::valueSets
    uint64_t riskThreshold = 0;           // classes smaller than this count as at risk; 0 = models.k
    size_t cacheBytes = size_t{64} << 20; // optimal search roll-up cache

    Status validate() const;
};

// Maps rows (leaf codes) of a global-recoding release to their released labels. Immutable; safe to
// share across threads.
class ReleasePlan {
public:
    ReleasePlan(std::vector<std::shared_ptr<const Hierarchy>> hierarchies, std::vector<int> levels,
                const GeneralizationStats& stats);
    const std::vector<int>& levels() const noexcept { return levels_; }
    // Whether the row falls in a suppressed class (it must then not be released).
    bool isSuppressed(std::span<const uint32_t> leafCodes) const;
    const std::string& label(size_t qi, uint32_t leafCode) const {
        return hierarchies_[qi]->label(levels_[qi], hierarchies_[qi]->generalize(leafCode, levels_[qi]));
    }
    // Fills `labels` with the released labels and returns true, or returns false for a suppressed row.
    bool release(std::span<const uint32_t> leafCodes, std::vector<std::string_view>& labels) const;

private:
    static uint64_t hashTuple(const uint32_t* codes, size_t q) noexcept;
    std::vector<std::shared_ptr<const Hierarchy>> hierarchies_;
    std::vector<int> levels_;
    std::unordered_set<uint64_t> suppressedHashes_;
    std::vector<std::vector<uint32_t>> suppressedTuples_; // sorted node-code tuples
};

struct GlobalRecodingResult {
    OptimalSolution solution;
    RiskSummary riskBefore, riskAfter;
    std::shared_ptr<const ReleasePlan> plan;
};

struct LocalRecodingResult {
    MondrianResult mondrian;
    RiskSummary riskBefore, riskAfter;
};

// A builder whose code domains match the config (one column per QI, then per sensitive attribute).
Result<FrequencyTableBuilder> newFrequencyTable(const AnonymizationConfig& config);

Result<GlobalRecodingResult> anonymizeGlobal(const AnonymizationConfig& config, const FrequencyTable& table);

Result<LocalRecodingResult> anonymizeMondrian(const AnonymizationConfig& config, const EncodedColumns& columns);

// The final check for a release of this config; `table` supplies the input's sensitive distributions
// for t-closeness (nullptr = use the released rows').
FinalCheck makeFinalCheck(const AnonymizationConfig& config, uint64_t inputRecords, const FrequencyTable* table);
// Same, with input distributions taken from encoded sensitive columns (Mondrian).
FinalCheck makeFinalCheck(const AnonymizationConfig& config, uint64_t inputRecords, const EncodedColumns& columns);

} // namespace custodian::anon
