#pragma once
// Mondrian multidimensional partitioning (LeFevre, DeWitt & Ramakrishnan 2006), local recoding on
// dictionary-encoded columns. A partition is split at the median of the quasi-identifier with the
// widest normalized range (numeric: value range over the domain range; categorical: leaf-order range
// over the number of leaves), falling back to the next widest when the cut is not allowed, until no
// allowed cut remains.
//  - Strict: records with the median value all go left; a cut is allowed when both sides satisfy the
//    models (size >= k, and l-diversity / t-closeness when declared).
//  - Relaxed: records with the median value are split between both sides to balance them.
// Numeric quasi-identifiers are released as "[lo-hi]" (the smallest and largest value present; a single
// value as itself), categorical ones as the lowest common hierarchy node of the values present.
// Deterministic: the same input gives the same partitions. Mondrian never suppresses: when the whole
// input does not satisfy the models the call fails.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anonymizer/hierarchy.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

enum class MondrianMode { Strict, Relaxed };

struct MondrianConfig {
    std::vector<std::shared_ptr<const Hierarchy>> hierarchies; // per QI: leaf codes, labels, LCA
    std::vector<bool> numeric;  // per QI: order by numeric leaf value and release ranges (needs numeric leaves)
    PrivacyModels models;       // suppressionLimit is ignored
    std::vector<TClosenessDistance> sensitiveDistances; // per sensitive column, empty = Equal
    std::vector<uint32_t> sensitiveCardinalities;       // per sensitive column, code domain sizes
    MondrianMode mode = MondrianMode::Strict;
};

// Columns of leaf codes, one span per QI (and per sensitive attribute), all of the same length.
struct EncodedColumns {
    std::vector<std::span<const uint32_t>> qi;
    std::vector<std::span<const uint32_t>> sensitive;
};

struct MondrianResult {
    std::vector<uint32_t> partitionOfRow;           // per input row
    std::vector<uint64_t> partitionSizes;
    std::vector<std::vector<std::string>> labels;   // [partition][qi] released labels
    double ncp = 0;             // generalized information loss, averaged over cells, in [0, 1]
    double discernibility = 0;  // sum of partition sizes squared
    // Non-uniform entropy in bits: sum over released cells of log2(records released with the
    // cell's label in its column / those of them with the cell's original value).
    double nonUniformEntropy = 0;
    double averageClassSize = 0;
    uint64_t achievedK = 0;
    std::optional<double> distinctL, entropyL, achievedT;
    double seconds = 0;
};

Result<MondrianResult> mondrianPartition(const MondrianConfig& config, const EncodedColumns& columns);

} // namespace custodian::anon
