#pragma once
// Optimal full-domain generalization (global recoding) from a FrequencyTable alone.
//
// Returns the lattice node with minimum loss under the chosen metric among the nodes that satisfy the
// privacy models within the suppression limit; ties are broken by lower height, then lower node index.
// The result equals an exhaustive search over all nodes (tests/unit/anonymizer/test_search_adult.cpp).
//
// How exactness is kept while pruning:
//  1. Classification (Flash-style): a node failing the monotone part M of the models (k-anonymity +
//     distinct l-diversity within the suppression limit; all models when they are monotone, see
//     privacy_model.hpp) tags all its specializations as failing; a node satisfying M tags all its
//     generalizations as satisfying M. M is necessary for the full predicate, so no node tagged failing
//     can be a solution.
//  2. Without suppression (limit * |D| < 1), or with the height, discernibility or average class size
//     metric:
//     nodes are visited bottom-up; from each unclassified node a path of unclassified successors is
//     binary-searched until every node is classified. When the metric is monotone and the full
//     predicate equals M, the optimum is among the minimal satisfying nodes, and with a separable
//     metric (entropy, loss, height) their loss is known without counting; otherwise every node
//     satisfying M is a candidate, visited in increasing order of a lower bound that holds for the node
//     and all its generalizations (separable metrics: the loss without suppression; discernibility:
//     sum of all class sizes squared; average class size: |D| / (classes + 1)).
//  3. With suppression and entropy or loss (issue 16): best first. Every node gets a
//     lower bound of its metric that accounts for suppression: the records failing M at a checked node
//     fail it at all its specializations, and each of their cells costs at least as much there (see
//     SuppressionBounds in the .cpp). The two-QI projections (all other QIs at their top level; small
//     tables) are checked first — Incognito's subset property: they tag and bound whole regions. Each
//     pair's lowest node is counted into a dense array, all pairs in one pass over the frequency
//     table; the pair's other nodes roll up from it. Then
//     the node with the lowest bound is taken; if it is unclassified, a path of generalizations within
//     the nodes whose bound does not exceed the best loss is classified, top first (most such nodes
//     fail, and a failing top tags the most); satisfying nodes are evaluated at once. The search stops
//     when the lowest bound exceeds the best loss, so nodes that cannot beat it are never classified.
//
// Class counts of a node are rolled up from the cached class table (a flat array of packed node-code
// keys and counts) of the evaluated specialization with the fewest classes — never recounted from
// rows; the frequency table is read only when no specialization is cached, and then only the columns
// whose level has more than one node.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "anonymizer/frequency_table.hpp"
#include "anonymizer/hierarchy.hpp"
#include "anonymizer/lattice.hpp"
#include "anonymizer/metrics.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

struct OptimalSearchConfig {
    // One hierarchy per quasi-identifier, in the column order of the frequency table. A hierarchy's
    // leafCount() must equal the table's code cardinality of that column.
    std::vector<std::shared_ptr<const Hierarchy>> hierarchies;
    std::vector<bool> numeric;   // per QI: range-based loss (optional, default categorical)
    std::vector<int> minLevels;  // per QI, optional (default 0)
    std::vector<int> maxLevels;  // per QI, optional (default top level)
    PrivacyModels models;
    // Per sensitive attribute of the table; empty = Equal for all.
    std::vector<TClosenessDistance> sensitiveDistances;
    Metric metric = Metric::NonUniformEntropy;
    size_t cacheBytes = size_t{64} << 20;  // class tables kept for roll-up
    // Nodes without a cached specialization are counted from the frequency table on two threads when
    // it has at least this many combinations (no sensitive attribute needed).
    size_t twoThreadsFrom = size_t{1} << 19;
    // Told the bytes of the search's working set (class tables, their hash index, the roll-up
    // cache, the chosen node's statistics) whenever it grows, at least every million combinations
    // read; an error it returns stops the search with that status. Optional.
    std::function<Status(uint64_t bytes)> memory;
};

// Statistics of one generalization (any node): class structure, suppression, metrics, achieved models.
struct GeneralizationStats {
    std::vector<int> levels;
    uint64_t records = 0;
    uint64_t suppressedRecords = 0;
    size_t classes = 0;  // kept classes
    size_t suppressedClasses = 0;
    bool satisfies = false;
    MetricValues metrics;
    // Loss (metrics.hpp) of each quasi-identifier alone, averaged over records, suppressed cells
    // costing 1; metrics.loss is their mean. Filled by evaluateGeneralization() and for the chosen node.
    std::vector<double> lossPerAttribute;
    uint64_t achievedK = 0;           // smallest kept class (0 when nothing is kept)
    std::optional<double> distinctL;  // smallest distinct count over kept classes and attributes
    std::optional<double> entropyL;   // smallest exp(entropy) over kept classes and attributes
    std::optional<double> achievedT;  // largest EMD over kept classes and attributes
    // Every class (kept and suppressed): node codes per QI (classes x QI, row-major), size, flag.
    std::vector<uint32_t> classCodes;
    std::vector<uint64_t> classSizes;
    std::vector<uint8_t> classSuppressed;
};

struct OptimalSolution {
    GeneralizationStats best;
    double objective = 0;  // best.metrics.get(metric)
    size_t latticeSize = 0;
    size_t nodesEvaluated = 0;        // class tables computed during the search
    size_t candidates = 0;            // nodes satisfying the monotone part of the models (selection phase)
    size_t candidatesEvaluated = 0;   // candidates whose classes the selection phase computed
    size_t projections = 0;           // two-QI projections checked before the search (suppression bounds)
    size_t classesRolledUp = 0;       // source classes read by all roll-ups (the search's work)
    size_t evaluationsFromTable = 0;  // evaluations that had to start from the frequency table
    double searchSeconds = 0;
};

// FailedPrecondition when no node satisfies the models within the suppression limit; InvalidArgument
// for inconsistent configuration.
Result<OptimalSolution> findOptimalGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config);

// Evaluates one node (levels per QI) without searching: used by exhaustive baselines and reports.
Result<GeneralizationStats> evaluateGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config,
                                                   const std::vector<int>& levels);

// The class table of `levels` rolled up from that of `fromLevels` (which `levels` must generalize),
// as the search computes it: for tests that roll-ups equal tables counted from the frequency table.
struct RolledUpClasses {
    std::vector<uint32_t> codes;  // classes x QI, node codes at `levels`
    std::vector<uint64_t> sizes;
    size_t fromTable = 0;  // evaluations that read the frequency table (1: only `fromLevels`)
};
Result<RolledUpClasses> rollUpGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config,
                                             const std::vector<int>& fromLevels, const std::vector<int>& levels);

// The lowest node of the two-QI projection onto QIs d and e (both at their lowest levels, every
// other QI at its highest level) as the search with suppression bounds seeds it: every pair's
// lowest node counted into dense arrays in one pass over the table (fromTable == 1). Failed
// precondition when a highest level has several nodes (the search then counts such nodes by
// hashing, as any other). For tests.
Result<RolledUpClasses> projectionClasses(const FrequencyTable& table, const OptimalSearchConfig& config, size_t d,
                                          size_t e);

// The lower bound the search with suppression uses for the metric of `levels` after checking the
// nodes `checked` (no value when the search runs without suppression bounds). For tests.
Result<std::optional<double>> suppressionLowerBound(const FrequencyTable& table, const OptimalSearchConfig& config,
                                                    const std::vector<std::vector<int>>& checked,
                                                    const std::vector<int>& levels);

// Exhaustive reference: evaluates every node with the same evaluator (roll-up from the bottom-up
// predecessor). For benchmarks; the tests use their own independent exhaustive search.
Result<OptimalSolution> exhaustiveGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config);

}  // namespace custodian::anon
