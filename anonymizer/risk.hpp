#pragma once
// Re-identification risk of a release under the prosecutor model, from its equivalence class sizes:
// an attacker who knows a target is in the data picks uniformly inside the target's class.

#include <array>
#include <cstdint>
#include <span>

namespace custodian::anon {

// Classes by size, for a histogram of the class-size distribution: bucket i holds the classes of
// kClassSizeBucketLow[i] <= size < kClassSizeBucketLow[i + 1] (the last bucket is open above).
inline constexpr std::array<uint64_t, 9> kClassSizeBucketLow = {1, 2, 3, 5, 10, 20, 50, 100, 1000};
struct ClassSizeBucket {
    uint64_t classes = 0;
    uint64_t records = 0;
};

struct RiskSummary {
    uint64_t records = 0;
    uint64_t classes = 0;
    double prosecutorMax = 0;        // 1 / smallest class
    double prosecutorAverage = 0;    // mean over records of 1 / class size = classes / records
    uint64_t threshold = 0;          // class size under which a record counts as at risk
    double shareBelowThreshold = 0;  // records in classes smaller than threshold / records
    uint64_t sampleUniques = 0;      // records alone in their class
    double sampleUniqueShare = 0;
    std::array<ClassSizeBucket, kClassSizeBucketLow.size()> classSizes{};
};

// classSizes: one entry per class (zeros ignored). threshold: e.g. the k of the policy.
RiskSummary prosecutorRisk(std::span<const uint64_t> classSizes, uint64_t threshold);

}  // namespace custodian::anon
