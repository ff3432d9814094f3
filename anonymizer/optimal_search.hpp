#pragma once
// Optimal full-domain generalization (global recoding) from a FrequencyTable alone.
//
// Returns the lattice node with minimum loss under the chosen metric among the nodes that satisfy the
// privacy models within the suppression limit; ties are broken by lower height, then lower node index.
// The result equals an exhaustive search over all nodes (tests/unit/anonymizer/test_search_adult.cpp).
//
// How exactness is kept while pruning:
//  1. Classification (Flash-style): nodes are visited bottom-up; from each unclassified node a path of
//     unclassified successors is binary-searched. A node failing the monotone part M of the models
//     (k-anonymity + distinct l-diversity within the suppression limit; all models when they are
//     monotone, see privacy_model.hpp) tags all its specializations as failing; a node satisfying M
//     tags all its generalizations as satisfying M. M is necessary for the full predicate, so no node
//     tagged failing can be a solution.
//  2. Selection. When no record can be suppressed (limit * |D| < 1) or the metric is height, the metric
//     is monotone and the full predicate equals M, so the optimum is among the minimal satisfying
//     nodes; with a separable metric (entropy, loss, height) their loss is known without counting, and
//     the first in (loss, height, index) order wins. Otherwise every node satisfying M is a candidate,
//     visited in increasing order of a lower bound that holds for the node and all its
//     generalizations (separable metrics: the loss without suppression; discernibility: sum of all
//     class sizes squared; average class size: |D| / (classes + 1)); the search stops or prunes once
//     the bound exceeds the best loss found.
//
// Class counts of a node are rolled up from the cached class table of an evaluated specialization
// (fewest classes wins) by re-packing the 64/128-bit class keys, never recounted from rows.

#include <chrono>
#include <cstdint>
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
    std::vector<bool> numeric;         // per QI: range-based loss (optional, default categorical)
    std::vector<int> minLevels;        // per QI, optional (default 0)
    std::vector<int> maxLevels;        // per QI, optional (default top level)
    PrivacyModels models;
    // Per sensitive attribute of the table; empty = Equal for all.
    std::vector<TClosenessDistance> sensitiveDistances;
    Metric metric = Metric::NonUniformEntropy;
    size_t cacheBytes = size_t{64} << 20; // class tables kept for roll-up
};

// Statistics of one generalization (any node): class structure, suppression, metrics, achieved models.
struct GeneralizationStats {
    std::vector<int> levels;
    uint64_t records = 0;
    uint64_t suppressedRecords = 0;
    size_t classes = 0;           // kept classes
    size_t suppressedClasses = 0;
    bool satisfies = false;
    MetricValues metrics;
    // Loss (metrics.hpp) of each quasi-identifier alone, averaged over records, suppressed cells
    // costing 1; metrics.loss is their mean. Filled by evaluateGeneralization() and for the chosen node.
    std::vector<double> lossPerAttribute;
    uint64_t achievedK = 0;               // smallest kept class (0 when nothing is kept)
    std::optional<double> distinctL;      // smallest distinct count over kept classes and attributes
    std::optional<double> entropyL;       // smallest exp(entropy) over kept classes and attributes
    std::optional<double> achievedT;      // largest EMD over kept classes and attributes
    // Every class (kept and suppressed): node codes per QI (classes x QI, row-major), size, flag.
    std::vector<uint32_t> classCodes;
    std::vector<uint64_t> classSizes;
    std::vector<uint8_t> classSuppressed;
};

struct OptimalSolution {
    GeneralizationStats best;
    double objective = 0;          // best.metrics.get(metric)
    size_t latticeSize = 0;
    size_t nodesEvaluated = 0;     // class tables computed during the search
    size_t candidates = 0;         // nodes considered in the selection phase
    size_t classesRolledUp = 0;    // source classes read by all roll-ups (the search's work)
    size_t evaluationsFromTable = 0; // evaluations that had to start from the frequency table
    double searchSeconds = 0;
};

// FailedPrecondition when no node satisfies the models within the suppression limit; InvalidArgument
// for inconsistent configuration.
Result<OptimalSolution> findOptimalGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config);

// Evaluates one node (levels per QI) without searching: used by exhaustive baselines and reports.
Result<GeneralizationStats> evaluateGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config,
                                                   const std::vector<int>& levels);

// Exhaustive reference: evaluates every node with the same evaluator (roll-up from the bottom-up
// predecessor). For benchmarks; the tests use their own independent exhaustive search.
Result<OptimalSolution> exhaustiveGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config);

} // namespace custodian::anon
