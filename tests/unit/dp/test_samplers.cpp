// The exact samplers against their distributions: mean, variance and tail frequencies over many
// draws from the seeded stream (deterministic), one smaller run on libsodium's randomness, and the
// parameters they refuse.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "dp/samplers.hpp"
#include "unit/dp/distribution.hpp"

using namespace custodian::dp;
using namespace custodian::dp::testing;

namespace {

constexpr std::size_t kDraws = 200'000;
constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

std::vector<uint64_t> tailPointsFor(double scale) {
    return {1, 2, static_cast<uint64_t>(std::ceil(scale)), static_cast<uint64_t>(std::ceil(2 * scale)),
            static_cast<uint64_t>(std::ceil(3 * scale))};
}

// P(|X| >= k) for X ~ Lap_Z(t), from the geometric sum of the pmf (1-q)/(1+q)·q^|x|, q = exp(-1/t):
// 2·q^ceil(k)/(1+q), for scales too large to sum term by term.
long double laplaceTail(long double t, long double k) {
    return 2 * std::exp(-std::ceil(k) / t) / (1 + std::exp(-1 / t));
}

}  // namespace

TEST_CASE("Bernoulli(p) succeeds with probability p, exactly never at 0 and always at 1") {
    auto random = seededRandom(1);
    for (const Rational p : {Rational{1, 3}, Rational{5, 8}, Rational{kMax64 - 2, kMax64}}) {
        const auto draws = draw(kDraws, [&] { return sampleBernoulli(p, random) ? 1 : 0; });
        checkFrequency(
            std::to_string(p.num) + "/" + std::to_string(p.den), draws, [](int64_t x) { return x == 1; },
            static_cast<long double>(p.num) / p.den);
    }
    for (int i = 0; i < 1000; ++i) {
        REQUIRE_FALSE(sampleBernoulli({0, 7}, random));
        REQUIRE(sampleBernoulli({7, 7}, random));
    }
}

TEST_CASE("Bernoulli(exp(-gamma)) succeeds with probability exp(-gamma)") {
    auto random = seededRandom(2);
    const std::vector<Rational> gammas = {{1, 3}, {1, 1}, {5, 2}, {7, 1}, {kMax64, kMax64 / 2}, {12345, 10000}};
    for (const Rational gamma : gammas) {
        const auto draws = draw(kDraws, [&] { return sampleBernoulliExpNeg(gamma, random) ? 1 : 0; });
        checkFrequency(
            "gamma " + std::to_string(gamma.num) + "/" + std::to_string(gamma.den), draws,
            [](int64_t x) { return x == 1; }, std::exp(-static_cast<long double>(gamma.num) / gamma.den));
    }
    for (int i = 0; i < 1000; ++i) REQUIRE(sampleBernoulliExpNeg({0, 1}, random));
    // exp(-10^6) is 0 to any precision; a huge gamma must also cost only a few draws.
    for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(sampleBernoulliExpNeg({1'000'000, 1}, random));
}

TEST_CASE("discrete Laplace matches its distribution at small and large scales") {
    auto random = seededRandom(3);
    for (const Rational scale : {Rational{1, 2}, Rational{1, 1}, Rational{7, 3}, Rational{100, 1}}) {
        const long double t = static_cast<long double>(scale.num) / scale.den;
        INFO("scale " << scale.num << "/" << scale.den);
        const auto draws = draw(kDraws, [&] { return sampleDiscreteLaplace(scale, random); });
        const auto theory = discreteLaplaceTheory(t);
        checkAgainst(theory, draws, tailPointsFor(static_cast<double>(t)));
        const uint64_t w = discreteLaplaceHalfWidth95(scale);
        checkFrequency(
            "inside the stated 95 % interval", draws,
            [w](int64_t x) { return static_cast<uint64_t>(x < 0 ? -x : x) <= w; }, theory.central(w));
    }
}

TEST_CASE("discrete Laplace handles scales at the ends of the supported range") {
    auto random = seededRandom(4);
    // The largest scale, 2^48: P(|X| >= k) = 2q^k/(1+q) with q = exp(-1/t) (the geometric tail).
    const Rational largest{kMaxLaplaceScale * 3, 3};
    const auto draws = draw(20'000, [&] { return sampleDiscreteLaplace(largest, random); });
    const long double t = 0x1p48L;
    for (const long double k : {t / 4, t, 3 * t}) {
        checkFrequency(
            "P(|X| >= " + std::to_string(static_cast<double>(k / t)) + " t)", draws,
            [k](int64_t x) { return static_cast<long double>(x < 0 ? -x : x) >= k; }, laplaceTail(t, k));
    }
    // A scale of 2^-64: P(X != 0) = 2q/(1+q) with q = exp(-2^64), so every draw is 0.
    for (int i = 0; i < 1000; ++i) REQUIRE(sampleDiscreteLaplace({1, kMax64}, random) == 0);
    // A scale of 2^-20 · (2^63 + 1) (a numerator above 2^32 and a non-trivial denominator).
    const Rational odd{(uint64_t{1} << 63) + 1, uint64_t{1} << 20};
    const auto oddDraws = draw(20'000, [&] { return sampleDiscreteLaplace(odd, random); });
    const long double oddT = static_cast<long double>(odd.num) / odd.den;
    checkFrequency(
        "P(|X| >= t)", oddDraws, [oddT](int64_t x) { return static_cast<long double>(x < 0 ? -x : x) >= oddT; },
        laplaceTail(oddT, oddT));
}

TEST_CASE("discrete Gaussian matches its distribution at small and large scales") {
    auto random = seededRandom(5);
    for (const Rational sigmaSquared :
         {Rational{1, 4}, Rational{1, 1}, Rational{10, 1}, Rational{7, 3}, Rational{10'000, 1}}) {
        const long double s2 = static_cast<long double>(sigmaSquared.num) / sigmaSquared.den;
        INFO("sigma^2 " << sigmaSquared.num << "/" << sigmaSquared.den);
        const auto draws = draw(kDraws, [&] { return sampleDiscreteGaussian(sigmaSquared, random); });
        const auto theory = discreteGaussianTheory(s2);
        checkAgainst(theory, draws, tailPointsFor(std::sqrt(static_cast<double>(s2))));
        const uint64_t w = discreteGaussianHalfWidth95(sigmaSquared);
        checkFrequency(
            "inside the stated 95 % interval", draws,
            [w](int64_t x) { return static_cast<uint64_t>(x < 0 ? -x : x) <= w; }, theory.central(w));
    }
}

TEST_CASE("discrete Gaussian handles 64-bit numerators and denominators") {
    auto random = seededRandom(6);
    // sigma^2 = 2^62/3 and (2^64 - 1)/1: proposals near 2^31 and 2^32, acceptance exponents past
    // 2^256. Tails and variance against the normal law with the same sigma (the discrete and the
    // continuous variance and tails differ by far less than a standard error here).
    for (const Rational sigmaSquared : {Rational{uint64_t{1} << 62, 3}, Rational{kMax64, 1}}) {
        const long double s2 = static_cast<long double>(sigmaSquared.num) / sigmaSquared.den;
        const long double sigma = std::sqrt(s2);
        INFO("sigma^2 " << sigmaSquared.num << "/" << sigmaSquared.den);
        const auto draws = draw(20'000, [&] { return sampleDiscreteGaussian(sigmaSquared, random); });
        long double squares = 0;
        for (const int64_t x : draws) squares += static_cast<long double>(x) * x;
        const auto n = static_cast<double>(draws.size());
        checkClose("variance / sigma^2", static_cast<double>(squares / n / s2), 1, std::sqrt(2 / n));
        for (const long double k : {sigma, 2 * sigma}) {
            checkFrequency(
                "P(|X| >= " + std::to_string(static_cast<double>(k / sigma)) + " sigma)", draws,
                [k](int64_t x) { return static_cast<long double>(x < 0 ? -x : x) >= k; },
                std::erfc(k / sigma / std::sqrt(2.0L)));
        }
    }
    // sigma^2 = (2^64 - 1)/(2^64 - 3), just above 1, with a denominator near 2^64.
    const auto draws = draw(kDraws, [&] { return sampleDiscreteGaussian({kMax64, kMax64 - 2}, random); });
    checkAgainst(discreteGaussianTheory(1), draws, tailPointsFor(1));
}

TEST_CASE("the seeded stream makes samples reproducible and seed-dependent") {
    auto first = seededRandom(7);
    auto again = seededRandom(7);
    auto other = seededRandom(8);
    const auto a = draw(2000, [&] {
        return sampleDiscreteGaussian({10, 1}, first) + sampleDiscreteLaplace({7, 3}, first);
    });
    const auto b = draw(2000, [&] {
        return sampleDiscreteGaussian({10, 1}, again) + sampleDiscreteLaplace({7, 3}, again);
    });
    const auto c = draw(2000, [&] {
        return sampleDiscreteGaussian({10, 1}, other) + sampleDiscreteLaplace({7, 3}, other);
    });
    CHECK(a == b);
    std::size_t differing = 0;
    for (std::size_t i = 0; i < a.size(); ++i) differing += a[i] != c[i] ? 1 : 0;
    // Two independent draws of this sum (variance about 21) are equal with probability about 0.06.
    CHECK(differing > a.size() / 2);
}

TEST_CASE("samplers on libsodium randomness match their distributions within wide tolerances") {
    // Not reproducible by design: 6 standard errors make a false failure about one run in 10^8.
    constexpr double kWide = 6;
    SystemRandom random;
    const auto laplace = draw(20'000, [&] { return sampleDiscreteLaplace({3, 1}, random); });
    checkAgainst(discreteLaplaceTheory(3), laplace, tailPointsFor(3), kWide);
    const auto gaussian = draw(20'000, [&] { return sampleDiscreteGaussian({5, 1}, random); });
    checkAgainst(discreteGaussianTheory(5), gaussian, tailPointsFor(std::sqrt(5.0)), kWide);
    const auto coin = draw(20'000, [&] { return sampleBernoulliExpNeg({1, 2}, random) ? 1 : 0; });
    checkFrequency(
        "Bernoulli(exp(-1/2))", coin, [](int64_t x) { return x == 1; }, std::exp(-0.5L), kWide);
}

TEST_CASE("samplers refuse parameters outside their ranges") {
    auto random = seededRandom(9);
    CHECK_THROWS_AS(sampleBernoulli({2, 1}, random), std::invalid_argument);
    CHECK_THROWS_AS(sampleBernoulli({1, 0}, random), std::invalid_argument);
    CHECK_THROWS_AS(sampleBernoulliExpNeg({1, 0}, random), std::invalid_argument);
    CHECK_THROWS_AS(sampleDiscreteLaplace({0, 1}, random), std::invalid_argument);
    CHECK_THROWS_AS(sampleDiscreteLaplace({1, 0}, random), std::invalid_argument);
    CHECK_THROWS_AS(sampleDiscreteLaplace({kMaxLaplaceScale + 1, 1}, random), std::invalid_argument);
    CHECK_NOTHROW(sampleDiscreteLaplace({2 * kMaxLaplaceScale, 2}, random));
    CHECK_THROWS_AS(sampleDiscreteGaussian({0, 3}, random), std::invalid_argument);
    CHECK_THROWS_AS(sampleDiscreteGaussian({3, 0}, random), std::invalid_argument);
    CHECK_THROWS_AS(makeRational(1, 0), std::invalid_argument);
}

TEST_CASE("rationals compare by value and reduce") {
    CHECK(Rational{1, 2} == Rational{2, 4});
    CHECK(Rational{1, 3} < Rational{1, 2});
    CHECK(Rational{kMax64, kMax64 - 1} > Rational{1, 1});
    const Rational r = makeRational(600, 1'000'000);
    CHECK(r.num == 3);
    CHECK(r.den == 5000);
}
