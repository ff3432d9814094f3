#include "anonymizer/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace custodian::anon {

const char* metricName(Metric m) noexcept {
    switch (m) {
    case Metric::NonUniformEntropy: return "non-uniform-entropy";
    case Metric::Discernibility: return "discernibility";
    case Metric::AverageClassSize: return "average-class-size";
    case Metric::Loss: return "loss";
    case Metric::Height: return "height";
    }
    return "?";
}

std::optional<Metric> parseMetric(std::string_view name) noexcept {
    for (Metric m :
         {Metric::NonUniformEntropy, Metric::Discernibility, Metric::AverageClassSize, Metric::Loss, Metric::Height}) {
        if (name == metricName(m)) return m;
    }
    if (name == "entropy") return Metric::NonUniformEntropy;
    if (name == "aecs") return Metric::AverageClassSize;
    if (name == "ncp" || name == "gil") return Metric::Loss;
    return std::nullopt;
}

double MetricValues::get(Metric m) const noexcept {
    switch (m) {
    case Metric::NonUniformEntropy: return nonUniformEntropy;
    case Metric::Discernibility: return discernibility;
    case Metric::AverageClassSize: return averageClassSize;
    case Metric::Loss: return loss;
    case Metric::Height: return height;
    }
    return 0;
}

CellCosts CellCosts::build(const std::vector<std::shared_ptr<const Hierarchy>>& hierarchies,
                           const std::vector<bool>& numeric,
                           const std::vector<std::vector<uint64_t>>& leafFrequencies) {
    CellCosts c;
    const size_t q = hierarchies.size();
    c.lossCell_.resize(q);
    c.log2Freq_.resize(q);
    c.entropyLevel_.resize(q);
    c.lossLevel_.resize(q);
    if (q > 0) {
        for (uint64_t f : leafFrequencies[0]) c.records_ += f;
    }
    c.log2Records_ = c.records_ > 0 ? std::log2(static_cast<double>(c.records_)) : 0;
    for (size_t d = 0; d < q; ++d) {
        const Hierarchy& h = *hierarchies[d];
        const auto& freq = leafFrequencies[d];
        const size_t leaves = h.leafCount();
        const auto& nums = h.numericLeaves();
        const bool ranged = d < numeric.size() && numeric[d] && nums.has_value();
        double domainMin = 0, domainMax = 0;
        if (ranged) {
            domainMin = *std::min_element(nums->begin(), nums->end());
            domainMax = *std::max_element(nums->begin(), nums->end());
        }
        const auto levels = static_cast<size_t>(h.levels());
        c.lossCell_[d].resize(levels);
        c.log2Freq_[d].resize(levels);
        c.entropyLevel_[d].assign(levels, 0);
        c.lossLevel_[d].assign(levels, 0);
        for (size_t lv = 0; lv < levels; ++lv) {
            const int level = static_cast<int>(lv);
            const size_t nodes = h.nodeCount(level);
            std::vector<uint64_t> nodeFreq(nodes, 0);
            std::vector<double> lo(nodes, std::numeric_limits<double>::infinity());
            std::vector<double> hi(nodes, -std::numeric_limits<double>::infinity());
            for (uint32_t leaf = 0; leaf < leaves; ++leaf) {
                const uint32_t node = h.generalize(leaf, level);
                nodeFreq[node] += freq[leaf];
                if (ranged) {
                    lo[node] = std::min(lo[node], (*nums)[leaf]);
                    hi[node] = std::max(hi[node], (*nums)[leaf]);
                }
            }
            auto& lossCell = c.lossCell_[d][lv];
            auto& log2Freq = c.log2Freq_[d][lv];
            lossCell.resize(nodes);
            log2Freq.resize(nodes);
            for (uint32_t node = 0; node < nodes; ++node) {
                if (ranged) {
                    lossCell[node] = domainMax > domainMin ? (hi[node] - lo[node]) / (domainMax - domainMin) : 0;
                } else {
                    lossCell[node] = leaves > 1 ? static_cast<double>(h.leavesUnder(level, node) - 1) /
                                                      static_cast<double>(leaves - 1)
                                                : 0;
                }
                log2Freq[node] = nodeFreq[node] > 0 ? std::log2(static_cast<double>(nodeFreq[node])) : 0;
            }
            double entropy = 0, loss = 0;
            for (uint32_t leaf = 0; leaf < leaves; ++leaf) {
                if (freq[leaf] == 0) continue;
                const uint32_t node = h.generalize(leaf, level);
                const double f = static_cast<double>(freq[leaf]);
                entropy += f * (log2Freq[node] - std::log2(f));
                loss += f * lossCell[node];
            }
            c.entropyLevel_[d][lv] = entropy;
            c.lossLevel_[d][lv] = loss;
        }
    }
    return c;
}

CertaintyPenaltyDomain CertaintyPenaltyDomain::build(const Hierarchy& hierarchy, bool numeric,
                                                     std::span<const uint64_t> leafFrequency) {
    CertaintyPenaltyDomain d;
    d.numeric_ = numeric && hierarchy.numericLeaves().has_value();
    d.min_ = std::numeric_limits<double>::infinity();
    d.max_ = -std::numeric_limits<double>::infinity();
    d.presentUnder_.resize(static_cast<size_t>(hierarchy.levels()));
    for (int level = 0; level < hierarchy.levels(); ++level)
        d.presentUnder_[static_cast<size_t>(level)].assign(hierarchy.nodeCount(level), 0);
    for (uint32_t leaf = 0; leaf < hierarchy.leafCount() && leaf < leafFrequency.size(); ++leaf) {
        if (leafFrequency[leaf] == 0) continue;
        ++d.present_;
        for (int level = 0; level < hierarchy.levels(); ++level)
            ++d.presentUnder_[static_cast<size_t>(level)][hierarchy.generalize(leaf, level)];
        if (d.numeric_) {
            d.min_ = std::min(d.min_, (*hierarchy.numericLeaves())[leaf]);
            d.max_ = std::max(d.max_, (*hierarchy.numericLeaves())[leaf]);
        }
    }
    if (!d.numeric_ || d.present_ == 0) d.min_ = d.max_ = 0;
    return d;
}

}  // namespace custodian::anon
