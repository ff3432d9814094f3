#pragma once
// Information-loss metrics of a generalized (and partly suppressed) release.
//
//  - Discernibility (ARX): sum over kept classes of |class|^2, plus |D| for every suppressed record.
//  - Average equivalence class size: |D| / (kept classes + 1 if any record is suppressed), the
//    suppressed records forming one fully generalized class.
//  - Non-uniform entropy (Gionis & Tassa, as ARX): sum over records and quasi-identifiers of
//    -log2(freq(original value) / freq(released value)), frequencies over the whole input; a
//    suppressed record counts as generalized to the root (freq = |D|).
//  - Loss / generalized information loss (NCP): per cell (leaves under the released node - 1) /
//    (leaves - 1) for categorical values, (max - min under the node) / (max - min of the domain) for
//    numeric ones, 1 for suppressed cells, 0 for a domain of one value; averaged over all cells.
//  - Height: sum of the chosen levels.
//
// Monotonicity along the lattice: without suppression every metric is monotone (a generalization
// never has lower loss); with suppression only height is, because generalizing can bring suppressed
// records back. Non-uniform entropy, loss and height are separable without suppression: a node's loss
// is a sum of per-quasi-identifier terms that depend only on its level, so it is known without
// counting classes.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "anonymizer/hierarchy.hpp"

namespace custodian::anon {

enum class Metric { NonUniformEntropy, Discernibility, AverageClassSize, Loss, Height };

const char* metricName(Metric m) noexcept;
std::optional<Metric> parseMetric(std::string_view name) noexcept;
inline bool metricSeparable(Metric m) noexcept {
    return m == Metric::NonUniformEntropy || m == Metric::Loss || m == Metric::Height;
}

struct MetricValues {
    double discernibility = 0;
    double averageClassSize = 0;
    double nonUniformEntropy = 0;
    double loss = 0;
    double height = 0;
    double get(Metric m) const noexcept;
};

// Per-cell costs derived from the hierarchies and the input's leaf frequencies. Immutable.
class CellCosts {
public:
    // leafFrequencies[d][leaf] = records with that leaf value in quasi-identifier d; numeric[d] selects
    // range-based loss for d (requires numeric leaves, else the leaf-count ratio is used).
    static CellCosts build(const std::vector<std::shared_ptr<const Hierarchy>>& hierarchies,
                           const std::vector<bool>& numeric, const std::vector<std::vector<uint64_t>>& leafFrequencies);

    uint64_t records() const noexcept { return records_; }
    size_t dimensions() const noexcept { return lossCell_.size(); }
    // Generalized information loss of one cell released as node `code` at `level`, in [0, 1].
    double lossCell(size_t d, int level, uint32_t code) const { return lossCell_[d][static_cast<size_t>(level)][code]; }
    // log2(|D|) - log2(freq(node)): the entropy cost a suppressed record adds over keeping this node.
    double entropySuppressionDelta(size_t d, int level, uint32_t code) const {
        return log2Records_ - log2Freq_[d][static_cast<size_t>(level)][code];
    }
    // Sum over all records of the non-uniform entropy / loss of quasi-identifier d at `level`.
    double entropyAtLevel(size_t d, int level) const { return entropyLevel_[d][static_cast<size_t>(level)]; }
    double lossAtLevel(size_t d, int level) const { return lossLevel_[d][static_cast<size_t>(level)]; }

private:
    uint64_t records_ = 0;
    double log2Records_ = 0;
    std::vector<std::vector<std::vector<double>>> lossCell_, log2Freq_;  // [d][level][node]
    std::vector<std::vector<double>> entropyLevel_, lossLevel_;          // [d][level]
};

// Normalized certainty penalty (NCP / GCP, Ghinita, Karras, Kalnis & Mamoulis 2007) of one
// quasi-identifier, relative to the values present in the input (not to the hierarchy's domain):
//  - numeric: (largest - smallest value the released range covers) / (largest - smallest value in
//    the input), 0 when the input holds one value;
//  - categorical: (input values the released cell covers - 1) / (distinct input values - 1), so a
//    cell covering one value costs 0 and one covering every value present costs 1; 0 when the input
//    holds one value. A hierarchy node covers the input values under it, a value set its members.
// The NCP of a release is the mean of the cell penalties over records, per attribute; the overall
// figure is the mean over attributes. Immutable.
class CertaintyPenaltyDomain {
public:
    // leafFrequency[leaf] = records with that leaf value; numeric needs numeric leaves.
    static CertaintyPenaltyDomain build(const Hierarchy& hierarchy, bool numeric,
                                        std::span<const uint64_t> leafFrequency);

    bool numeric() const noexcept { return numeric_; }
    uint32_t valuesPresent() const noexcept { return present_; }
    double inputMin() const noexcept { return min_; }
    double inputMax() const noexcept { return max_; }
    // Penalty of a numeric cell covering [lo, hi].
    double range(double lo, double hi) const noexcept { return max_ > min_ ? (hi - lo) / (max_ - min_) : 0; }
    // Penalty of a categorical cell covering `covered` of the input's values.
    double covering(uint64_t covered) const noexcept {
        return present_ > 1 && covered > 0 ? static_cast<double>(covered - 1) / static_cast<double>(present_ - 1) : 0;
    }
    // Input values under a hierarchy node.
    uint32_t presentUnder(int level, uint32_t node) const { return presentUnder_[static_cast<size_t>(level)][node]; }

private:
    bool numeric_ = false;
    uint32_t present_ = 0;
    double min_ = 0, max_ = 0;
    std::vector<std::vector<uint32_t>> presentUnder_;  // [level][node]
};

struct CertaintyPenalty {
    std::vector<double> perAttribute;  // mean over records, in [0, 1], one per quasi-identifier
    double overall = 0;                // mean of perAttribute
};

}  // namespace custodian::anon
