#pragma once
// Privacy model specifications and the per-equivalence-class tests the search uses.
// (The final check, anonymizer/final_check.*, re-implements these tests independently on the
// released rows.)
//
// Monotonicity (if a lattice node satisfies the models, so does every generalization of it):
//  - k-anonymity and distinct l-diversity are monotone with any suppression limit: a class that
//    passes still passes after merging with any other class, so the set of kept records only grows.
//  - entropy and recursive-(c,l) l-diversity and t-closeness are monotone without suppression
//    (entropy is concave, EMD is convex, recursive (c,l): Machanavajjhala et al. 2007), but not with
//    suppression: merging a passing class with a failing one can make both fail. The search then
//    prunes only with the monotone part (see optimal_search.hpp).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anonymizer/frequency_table.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

enum class LDiversityVariant { Distinct, Entropy, Recursive };
enum class TClosenessDistance { Equal, Ordered };

struct LDiversity {
    LDiversityVariant variant = LDiversityVariant::Distinct;
    double l = 2;  // distinct and recursive use floor(l); entropy compares the entropy with log(l)
    double c = 1;  // recursive-(c,l) only: r1 < c * (r_l + ... + r_m)
};

struct TCloseness {
    double t = 0.2;  // maximum Earth Mover's Distance between a class and the whole input
};

// The models of one release. l-diversity and t-closeness apply to every sensitive attribute.
struct PrivacyModels {
    uint64_t k = 1;
    std::optional<LDiversity> lDiversity;
    std::optional<TCloseness> tCloseness;
    double suppressionLimit = 0;  // share of input records that may be suppressed, 0..1

    Status validate(size_t sensitiveAttributes) const;
    // Records that may be suppressed out of n.
    uint64_t maxSuppressed(uint64_t n) const;
    // True when the whole predicate is monotone (so a satisfying node's successors all satisfy).
    bool monotone() const;
    std::string describe() const;
};

// A sensitive attribute's global distribution (over the whole input) and the distance used for
// t-closeness (Ordered: codes are in value order, EMD with ordered distance over the m values that
// occur in the input, as Li et al.; Equal: equal distance).
struct SensitiveDomain {
    std::vector<double> globalShare;  // per value code, sums to 1
    std::vector<uint32_t> rankOf;     // per value code: position among the values present (Ordered)
    std::vector<double> rankedShare;  // globalShare of the present values, in value order
    TClosenessDistance distance = TClosenessDistance::Equal;

    // frequency[code] = records with that value in the whole input.
    static SensitiveDomain fromFrequencies(const std::vector<uint64_t>& frequency, TClosenessDistance distance);
};

namespace model {
// Distinct values with a non-zero count.
size_t distinctValues(std::span<const SensitiveCount> hist);
// Shannon entropy (natural log) of the distribution.
double entropy(std::span<const SensitiveCount> hist, uint64_t classSize);
// Whether recursive-(c,l) diversity holds: r1 < c * (r_l + ... + r_m) over counts sorted descending.
bool recursiveHolds(std::span<const SensitiveCount> hist, uint64_t classSize, double c, size_t l,
                    std::vector<uint64_t>& scratch);
// EMD between the class distribution (entries sorted by value) and the global distribution.
double earthMoversDistance(std::span<const SensitiveCount> hist, uint64_t classSize, const SensitiveDomain& domain);
// Whether one class passes l-diversity.
bool lDiverse(const LDiversity& l, std::span<const SensitiveCount> hist, uint64_t classSize,
              std::vector<uint64_t>& scratch);
}  // namespace model

}  // namespace custodian::anon
