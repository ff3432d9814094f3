#pragma once
// Theory for the sampler tests, computed here by brute force from the probability mass functions
// (not from the closed forms in dp/samplers.cpp), and the comparison of observed figures with it in
// units of standard errors.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "dp/random.hpp"

namespace custodian::dp::testing {

// Tolerance of every deterministic statistical check: 5 standard errors (a false failure about
// once in 1.7 million checks for a normal statistic; the fixed seeds make each run identical).
inline constexpr double kStandardErrors = 5;

// A distribution on the integers, symmetric about 0, from weights w(|x|) normalised over
// |x| <= bound (the caller picks a bound past which the mass is negligible).
class SymmetricDistribution {
public:
    SymmetricDistribution(const std::function<long double(uint64_t)>& weight, uint64_t bound) {
        weights_.reserve(bound + 1);
        for (uint64_t x = 0; x <= bound; ++x) weights_.push_back(weight(x));
        total_ = weights_[0];
        for (uint64_t x = 1; x <= bound; ++x) total_ += 2 * weights_[x];
    }

    long double probability(int64_t x) const {
        const uint64_t m = x < 0 ? static_cast<uint64_t>(-x) : static_cast<uint64_t>(x);
        return m < weights_.size() ? weights_[m] / total_ : 0;
    }
    // P(|X| <= w).
    long double central(uint64_t w) const {
        long double inside = weights_[0];
        for (uint64_t x = 1; x <= w && x < weights_.size(); ++x) inside += 2 * weights_[x];
        return inside / total_;
    }
    long double tailAtLeast(uint64_t k) const { return k == 0 ? 1 : 1 - central(k - 1); }
    // E[X^power] for even power (the odd moments are 0).
    long double moment(int power) const {
        long double sum = 0;
        for (uint64_t x = 1; x < weights_.size(); ++x)
            sum += 2 * std::pow(static_cast<long double>(x), power) * weights_[x];
        return sum / total_;
    }

private:
    std::vector<long double> weights_;
    long double total_ = 0;
};

inline SymmetricDistribution discreteLaplaceTheory(long double scale) {
    const auto bound = static_cast<uint64_t>(std::ceil(80 * scale)) + 10;
    return SymmetricDistribution([scale](uint64_t x) { return std::exp(-static_cast<long double>(x) / scale); }, bound);
}

inline SymmetricDistribution discreteGaussianTheory(long double sigmaSquared) {
    const auto bound = static_cast<uint64_t>(std::ceil(15 * std::sqrt(sigmaSquared))) + 10;
    return SymmetricDistribution(
        [sigmaSquared](uint64_t x) {
            const auto v = static_cast<long double>(x);
            return std::exp(-v * v / (2 * sigmaSquared));
        },
        bound);
}

inline void checkClose(const std::string& what, double observed, double expected, double standardError,
                       double tolerance = kStandardErrors) {
    INFO(what << ": observed " << observed << ", expected " << expected << ", standard error " << standardError);
    CHECK(std::abs(observed - expected) <= tolerance * standardError);
}

// The share of `draws` for which `event` holds, against probability p.
inline void checkFrequency(const std::string& what, std::span<const int64_t> draws,
                           const std::function<bool(int64_t)>& event, long double p,
                           double tolerance = kStandardErrors) {
    uint64_t hits = 0;
    for (const int64_t x : draws) hits += event(x) ? 1 : 0;
    const auto n = static_cast<double>(draws.size());
    const auto expected = static_cast<double>(p);
    // A floor of one event in n keeps an impossible-in-theory event from passing with a zero error.
    const double se = std::sqrt(std::max(expected * (1 - expected), 1 / n) / n);
    checkClose(what, static_cast<double>(hits) / n, expected, se, tolerance);
}

// Mean, second moment about 0 and tail frequencies P(|X| >= k) of symmetric draws against theory.
inline void checkAgainst(const SymmetricDistribution& theory, std::span<const int64_t> draws,
                         std::span<const uint64_t> tailPoints, double tolerance = kStandardErrors) {
    const auto n = static_cast<double>(draws.size());
    long double sum = 0;
    long double squares = 0;
    for (const int64_t x : draws) {
        sum += x;
        squares += static_cast<long double>(x) * x;
    }
    const auto variance = static_cast<double>(theory.moment(2));
    const auto fourth = static_cast<double>(theory.moment(4));
    checkClose("mean", static_cast<double>(sum / n), 0, std::sqrt(variance / n), tolerance);
    checkClose("variance", static_cast<double>(squares / n), variance, std::sqrt((fourth - variance * variance) / n),
               tolerance);
    checkFrequency(
        "P(X = 0)", draws, [](int64_t x) { return x == 0; }, theory.probability(0), tolerance);
    checkFrequency(
        "P(X > 0)", draws, [](int64_t x) { return x > 0; }, (1 - theory.probability(0)) / 2, tolerance);
    for (const uint64_t k : tailPoints) {
        checkFrequency(
            "P(|X| >= " + std::to_string(k) + ")", draws,
            [k](int64_t x) { return static_cast<uint64_t>(x < 0 ? -x : x) >= k; }, theory.tailAtLeast(k), tolerance);
    }
}

inline SeededRandomForTests seededRandom(unsigned char tag) {
    SeededRandomForTests::Seed seed{};
    seed.fill(tag);
    return SeededRandomForTests(seed);
}

inline std::vector<int64_t> draw(std::size_t count, const std::function<int64_t()>& sample) {
    std::vector<int64_t> out(count);
    for (auto& x : out) x = sample();
    return out;
}

}  // namespace custodian::dp::testing
