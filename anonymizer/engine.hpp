#pragma once
// The anonymization engine: one entry point per algorithm, which the gateway's releases
// (gateway/release/plan.hpp, also run by `custodian anonymize`), the tests and the benchmarks all
// call. Free of CSV, JSON and IO: callers encode quasi-identifiers to hierarchy leaf codes and
// sensitive values to dictionary codes.
//
// Global recoding (optimal search) is a blocking step in three phases:
//   1. Sink:     every record (or GROUP BY row) goes into a FrequencyTableBuilder (newFrequencyTable).
//   2. Finalize: anonymizeGlobal() searches the lattice from the FrequencyTable alone and returns the
//                GlobalRecoding, or says why the models cannot be met (UnmetModels).
//   3. Source:   rows are streamed again; each row's leaf codes, generalized to the chosen levels, give
//                its class: suppressed (GlobalRecoding::suppressed) or released with its labels.
//                Every released row also goes through a FinalCheck, and the release is refused unless
//                FinalCheck::finish() is ok.
// Mondrian (local recoding) needs the encoded columns in memory: anonymizeMondrian().

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "anonymizer/final_check.hpp"
#include "anonymizer/flat_hash.hpp"
#include "anonymizer/frequency_table.hpp"
#include "anonymizer/hierarchy.hpp"
#include "anonymizer/metrics.hpp"
#include "anonymizer/mondrian.hpp"
#include "anonymizer/optimal_search.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/risk.hpp"
#include "anonymizer/status.hpp"
#include "anonymizer/unmet_models.hpp"

namespace custodian::anon {

struct QuasiIdentifier {
    std::string name;
    std::shared_ptr<const Hierarchy> hierarchy;
    bool numeric = false;  // numeric loss / Mondrian ranges (requires numeric leaves)
    int minLevel = 0;      // optimal search only: allowed levels
    int maxLevel = -1;     // -1 = the hierarchy's top level
};

struct SensitiveAttribute {
    std::string name;
    std::shared_ptr<const SensitiveDictionary> dictionary;  // code -> value
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
    bool mondrianValueSets = false;                      // MondrianConfig::valueSets
    uint64_t riskThreshold = 0;                          // classes smaller than this count as at risk; 0 = models.k
    size_t cacheBytes = size_t{64} << 20;                // optimal search roll-up cache
    std::function<Status(uint64_t bytes)> searchMemory;  // OptimalSearchConfig::memory

    Status validate() const;
};

// The optimal search's view of a config (hierarchies, level bounds, models, metric, distances), for
// evaluating other nodes of the lattice anonymizeGlobal() searched (previews, reports, tests).
OptimalSearchConfig optimalSearchConfig(const AnonymizationConfig& config);

// The classes a global recoding suppresses, as node-code tuples at its levels, indexed for lookup.
// Immutable once built; safe to share across threads.
class SuppressedClasses {
public:
    SuppressedClasses() = default;
    // The suppressed classes of `stats` (a node's statistics with their per-class tables);
    // `hierarchies` are the node's quasi-identifiers'.
    SuppressedClasses(const GeneralizationStats& stats,
                      const std::vector<std::shared_ptr<const Hierarchy>>& hierarchies);

    size_t size() const noexcept { return width_ == 0 ? 0 : codes_.size() / width_; }
    bool empty() const noexcept { return codes_.empty(); }
    // Whether the class with these node codes (one per quasi-identifier, at the levels) is suppressed.
    bool contains(const uint32_t* nodeCodes) const;
    // Bytes held: the tuples and their index (hash nodes as glibc's malloc sizes them).
    uint64_t memoryBytes() const;

private:
    std::string wideKey(const uint32_t* nodeCodes) const;
    size_t width_ = 0;
    std::vector<uint32_t> codes_;    // suppressed classes × quasi-identifiers, row-major
    std::vector<unsigned> keyBits_;  // bits per quasi-identifier when a class's key fits 64 bits
    bool packed_ = true;
    detail::DenseIndexer<uint64_t> packedKeys_;  // flat: looked up once per released row
    std::unordered_set<std::string> wideKeys_;
};

// Global recoding's decision: the chosen level of each quasi-identifier and the classes suppressed
// there. Immutable once made; safe to share across threads.
struct GlobalRecoding {
    std::vector<std::shared_ptr<const Hierarchy>> hierarchies;  // per quasi-identifier
    // The chosen node (solution.best: levels, achieved k/l/t, metrics) and the search's figures. Its
    // per-class tables are left empty: from here on only the suppressed classes matter.
    OptimalSolution solution;
    SuppressedClasses suppressed;

    const std::vector<int>& levels() const noexcept { return solution.best.levels; }
    // A row's released labels (one per quasi-identifier, from its leaf codes) into `labels`; false,
    // and nothing filled, when the row's class is suppressed.
    bool release(std::span<const uint32_t> leafCodes, std::vector<std::string_view>& labels) const;
};

struct LocalRecodingResult {
    MondrianResult mondrian;
    RiskSummary riskBefore, riskAfter;
};

// A builder whose code domains match the config (one column per QI, then per sensitive attribute).
Result<FrequencyTableBuilder> newFrequencyTable(const AnonymizationConfig& config);

// The optimal full-domain generalization of `table` under the config's models. FailedPrecondition
// exactly when the models cannot be met within the suppression limit: its message is
// UnmetModels::message, and `unmet` (when given) receives the whole explanation. InvalidArgument for
// a config that does not fit the table, or a table without records.
Result<GlobalRecoding> anonymizeGlobal(const AnonymizationConfig& config, const FrequencyTable& table,
                                       UnmetModels* unmet = nullptr);

// Mondrian's partitioning of the encoded rows. FailedPrecondition exactly when the models cannot be
// met (Mondrian never suppresses: the whole input as one class misses them), as anonymizeGlobal().
Result<LocalRecodingResult> anonymizeMondrian(const AnonymizationConfig& config, const EncodedColumns& columns,
                                              UnmetModels* unmet = nullptr);

// The sizes of the classes of identical rows (combinations of leaf codes; code < cards[qi]), in
// no particular order: the risk before anonymization. Sorts one 4- or 8-byte key per row when the
// combinations fit in 64 bits, else counts them in a frequency table.
Result<std::vector<uint64_t>> combinationSizes(const EncodedColumns& columns, const std::vector<uint32_t>& cards);

// Prosecutor risk (risk.hpp) of the classes a generalization releases: suppressed classes are not.
// `stats` needs its per-class tables (evaluateGeneralization() gives them).
RiskSummary releasedRisk(const GeneralizationStats& stats, uint64_t threshold);

// The final check for a release of this config; `table` supplies the input's sensitive distributions
// for t-closeness (nullptr = use the released rows').
FinalCheck makeFinalCheck(const AnonymizationConfig& config, uint64_t inputRecords, const FrequencyTable* table);
// Same, with input distributions taken from encoded sensitive columns (Mondrian).
FinalCheck makeFinalCheck(const AnonymizationConfig& config, uint64_t inputRecords, const EncodedColumns& columns);

}  // namespace custodian::anon
