#include "anonymizer/risk.hpp"

#include <algorithm>

namespace custodian::anon {

RiskSummary prosecutorRisk(std::span<const uint64_t> classSizes, uint64_t threshold) {
    RiskSummary r;
    r.threshold = threshold;
    uint64_t smallest = 0, below = 0;
    for (uint64_t s : classSizes) {
        if (s == 0) continue;
        r.records += s;
        ++r.classes;
        smallest = smallest == 0 ? s : std::min(smallest, s);
        if (s < threshold) below += s;
        if (s == 1) ++r.sampleUniques;
        const size_t bucket =
            static_cast<size_t>(std::upper_bound(kClassSizeBucketLow.begin(), kClassSizeBucketLow.end(), s) -
                                kClassSizeBucketLow.begin() - 1);
        ++r.classSizes[bucket].classes;
        r.classSizes[bucket].records += s;
    }
    if (r.records == 0) return r;
    const double n = static_cast<double>(r.records);
    r.prosecutorMax = 1.0 / static_cast<double>(smallest);
    r.prosecutorAverage = static_cast<double>(r.classes) / n;
    r.shareBelowThreshold = static_cast<double>(below) / n;
    r.sampleUniqueShare = static_cast<double>(r.sampleUniques) / n;
    return r;
}

}  // namespace custodian::anon
