#include "anonymizer/privacy_model.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace custodian::anon {

Status PrivacyModels::validate(size_t sensitiveAttributes) const {
    if (k < 1) return invalidArgument("k must be at least 1");
    if (!(suppressionLimit >= 0 && suppressionLimit <= 1)) {
        return invalidArgument("suppression limit must be between 0 and 1, got " + std::to_string(suppressionLimit));
    }
    if (lDiversity) {
        if (sensitiveAttributes == 0) return invalidArgument("l-diversity needs a sensitive attribute");
        if (!(lDiversity->l >= 1) || !std::isfinite(lDiversity->l)) {
            return invalidArgument("l must be at least 1, got " + std::to_string(lDiversity->l));
        }
        if (lDiversity->variant == LDiversityVariant::Recursive &&
            !(lDiversity->c > 0 && std::isfinite(lDiversity->c))) {
            return invalidArgument("recursive-(c,l) diversity needs c > 0");
        }
    }
    if (tCloseness) {
        if (sensitiveAttributes == 0) return invalidArgument("t-closeness needs a sensitive attribute");
        if (!(tCloseness->t >= 0 && tCloseness->t <= 1)) {
            return invalidArgument("t must be between 0 and 1, got " + std::to_string(tCloseness->t));
        }
    }
    return Status::ok();
}

uint64_t PrivacyModels::maxSuppressed(uint64_t n) const {
    // floor(limit * n), guarded against 0.3 * 10 = 2.9999999.
    const long double v = static_cast<long double>(suppressionLimit) * static_cast<long double>(n);
    auto m = static_cast<uint64_t>(std::floor(v + 1e-9L));
    return std::min(m, n);
}

bool PrivacyModels::monotone() const {
    if (suppressionLimit == 0) return true;
    if (tCloseness) return false;
    return !lDiversity || lDiversity->variant == LDiversityVariant::Distinct;
}

std::string PrivacyModels::describe() const {
    std::string s = std::to_string(k) + "-anonymity";
    if (lDiversity) {
        const char* v = lDiversity->variant == LDiversityVariant::Distinct  ? "distinct"
                        : lDiversity->variant == LDiversityVariant::Entropy ? "entropy"
                                                                            : "recursive";
        s += ", " + std::string(v) + " l-diversity l=" + std::to_string(lDiversity->l);
    }
    if (tCloseness) s += ", t-closeness t=" + std::to_string(tCloseness->t);
    return s;
}

SensitiveDomain SensitiveDomain::fromFrequencies(const std::vector<uint64_t>& frequency, TClosenessDistance distance) {
    SensitiveDomain d;
    d.distance = distance;
    uint64_t total = 0;
    for (uint64_t f : frequency) total += f;
    d.globalShare.resize(frequency.size(), 0);
    d.rankOf.assign(frequency.size(), UINT32_MAX);
    for (size_t v = 0; v < frequency.size(); ++v) {
        d.globalShare[v] = total ? static_cast<double>(frequency[v]) / static_cast<double>(total) : 0;
        if (frequency[v] == 0) continue;
        d.rankOf[v] = static_cast<uint32_t>(d.rankedShare.size());
        d.rankedShare.push_back(d.globalShare[v]);
    }
    return d;
}

namespace model {

size_t distinctValues(std::span<const SensitiveCount> hist) {
    size_t d = 0;
    for (const auto& e : hist) d += e.count > 0;
    return d;
}

double entropy(std::span<const SensitiveCount> hist, uint64_t classSize) {
    double h = 0;
    const double n = static_cast<double>(classSize);
    for (const auto& e : hist) {
        if (e.count == 0) continue;
        const double p = static_cast<double>(e.count) / n;
        h -= p * std::log(p);
    }
    return h;
}

bool recursiveHolds(std::span<const SensitiveCount> hist, uint64_t, double c, size_t l,
                    std::vector<uint64_t>& scratch) {
    scratch.clear();
    for (const auto& e : hist) {
        if (e.count > 0) scratch.push_back(e.count);
    }
    if (l == 0) return true;
    if (scratch.size() < l) return false;
    std::sort(scratch.begin(), scratch.end(), std::greater<>());
    uint64_t tail = 0;
    for (size_t i = l - 1; i < scratch.size(); ++i) tail += scratch[i];
    return static_cast<double>(scratch[0]) < c * static_cast<double>(tail);
}

double earthMoversDistance(std::span<const SensitiveCount> hist, uint64_t classSize, const SensitiveDomain& domain) {
    const size_t m = domain.globalShare.size();
    const double n = static_cast<double>(classSize);
    if (domain.distance == TClosenessDistance::Equal) {
        // 1/2 sum |p - q|, where values absent from the class contribute q.
        double sum = 1.0;
        for (const auto& e : hist) {
            const double q = domain.globalShare[e.value];
            const double p = static_cast<double>(e.count) / n;
            sum += std::fabs(p - q) - q;
        }
        return std::max(0.0, sum / 2);
    }
    // Ordered distance over the m values present in the input: 1/(m-1) sum_i |sum_{j<=i} (p_j - q_j)|.
    // Class values are sorted by code, hence by rank.
    (void)m;
    const size_t present = domain.rankedShare.size();
    if (present <= 1) return 0;
    double cumulative = 0, total = 0;
    size_t next = 0;
    for (size_t r = 0; r + 1 < present; ++r) {
        double p = 0;
        if (next < hist.size() && domain.rankOf[hist[next].value] == r) p = static_cast<double>(hist[next++].count) / n;
        cumulative += p - domain.rankedShare[r];
        total += std::fabs(cumulative);
    }
    return total / static_cast<double>(present - 1);
}

bool lDiverse(const LDiversity& l, std::span<const SensitiveCount> hist, uint64_t classSize,
              std::vector<uint64_t>& scratch) {
    switch (l.variant) {
    case LDiversityVariant::Distinct: return static_cast<double>(distinctValues(hist)) >= std::floor(l.l);
    case LDiversityVariant::Entropy:
        // Tolerance so that a class with exactly l equally frequent values passes.
        return entropy(hist, classSize) >= std::log(l.l) - 1e-12;
    case LDiversityVariant::Recursive:
        return recursiveHolds(hist, classSize, l.c, static_cast<size_t>(std::floor(l.l)), scratch);
    }
    return false;
}

}  // namespace model
}  // namespace custodian::anon
