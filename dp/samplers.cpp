#include "dp/samplers.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>

namespace custodian::dp {

namespace {

// __extension__: -Wpedantic refuses __int128 otherwise (GCC and Clang both provide it on 64-bit targets).
__extension__ typedef unsigned __int128 u128;

// Unsigned integer of six 64-bit limbs, least significant first: room for the discrete Gaussian's
// acceptance exponent (numerator below 2^318, denominator below 2^193 for every supported σ²).
// Only what the samplers need; arithmetic that would leave the range throws.
class Wide {
public:
    static constexpr std::size_t kLimbs = 6;

    Wide() = default;
    explicit Wide(u128 v) : limbs_{{static_cast<uint64_t>(v), static_cast<uint64_t>(v >> 64)}} {}

    friend Wide operator*(const Wide& a, const Wide& b) {
        std::array<uint64_t, 2 * kLimbs> r{};
        for (std::size_t i = 0; i < kLimbs; ++i) {
            uint64_t carry = 0;
            for (std::size_t j = 0; j < kLimbs; ++j) {
                const u128 cur = static_cast<u128>(a.limbs_[i]) * b.limbs_[j] + r[i + j] + carry;
                r[i + j] = static_cast<uint64_t>(cur);
                carry = static_cast<uint64_t>(cur >> 64);
            }
            r[i + kLimbs] = carry;
        }
        Wide out;
        for (std::size_t i = 0; i < 2 * kLimbs; ++i) {
            if (i < kLimbs) out.limbs_[i] = r[i];
            else if (r[i] != 0) throw std::overflow_error("dp: intermediate product beyond 384 bits");
        }
        return out;
    }

    // Requires *this >= b.
    Wide& operator-=(const Wide& b) {
        uint64_t borrow = 0;
        for (std::size_t i = 0; i < kLimbs; ++i) {
            const uint64_t x = limbs_[i];
            const uint64_t d = x - b.limbs_[i] - borrow;
            borrow = (x < b.limbs_[i] || (x == b.limbs_[i] && borrow != 0)) ? 1 : 0;
            limbs_[i] = d;
        }
        return *this;
    }

    friend std::strong_ordering operator<=>(const Wide& a, const Wide& b) {
        for (std::size_t i = kLimbs; i-- > 0;)
            if (a.limbs_[i] != b.limbs_[i]) return a.limbs_[i] <=> b.limbs_[i];
        return std::strong_ordering::equal;
    }
    friend bool operator==(const Wide& a, const Wide& b) = default;

    // Uniform on [0, n) for n >= 1: the bit width of n - 1 drawn limb by limb, values >= n rejected.
    static Wide uniformBelow(const Wide& n, RandomSource& random) {
        Wide top = n;
        top -= Wide(1);
        const unsigned width = top.bitWidth();
        for (;;) {
            Wide v;
            for (std::size_t i = 0; i < kLimbs && i * 64 < width; ++i)
                v.limbs_[i] = random.bits(std::min(64U, width - static_cast<unsigned>(i * 64)));
            if (v < n) return v;
        }
    }

private:
    unsigned bitWidth() const {
        for (std::size_t i = kLimbs; i-- > 0;)
            if (limbs_[i] != 0) return static_cast<unsigned>(i * 64 + std::bit_width(limbs_[i]));
        return 0;
    }

    std::array<uint64_t, kLimbs> limbs_{};
};

void requireDenominator(Rational r, const char* what) {
    if (r.den == 0) throw std::invalid_argument(std::string(what) + ": denominator 0");
}

// Bernoulli(exp(-1)): Algorithm 1 with γ = 1, where Bernoulli(γ/k) is Bernoulli(1/k).
bool bernoulliExpMinusOne(RandomSource& random) {
    uint64_t k = 1;
    while (random.uniformBelow(k) == 0) ++k;
    return k % 2 == 1;
}

// Bernoulli(exp(-num/den)) for num <= den: Algorithm 1's first branch.
bool bernoulliExpNegAtMostOne(const Wide& num, const Wide& den, RandomSource& random) {
    uint64_t k = 1;
    while (random.uniformBelow(k) == 0 && Wide::uniformBelow(den, random) < num) ++k;
    return k % 2 == 1;
}

// Bernoulli(exp(-num/den)) for den >= 1: exp(-γ) = exp(-1)^floor(γ) · exp(-(γ - floor(γ))), each
// factor an independent Bernoulli; stops at the first failure, so a huge γ costs little.
bool bernoulliExpNeg(Wide num, const Wide& den, RandomSource& random) {
    while (num >= den) {
        if (!bernoulliExpMinusOne(random)) return false;
        num -= den;
    }
    return bernoulliExpNegAtMostOne(num, den, random);
}

// Lap_Z(a/b), a, b >= 1: Algorithm 2.
int64_t discreteLaplace(uint64_t a, uint64_t b, RandomSource& random) {
    for (;;) {
        const uint64_t u = random.uniformBelow(a);
        if (!bernoulliExpNeg(Wide(u), Wide(a), random)) continue;
        uint64_t v = 0;
        while (bernoulliExpMinusOne(random)) ++v;
        // u + a·v < 2^64 + (2^64 - 1)·v < 2^128 for every 64-bit v.
        const u128 magnitude = (u + static_cast<u128>(a) * v) / b;
        const bool negative = random.bits(1) == 1;
        if (negative && magnitude == 0) continue;
        if (magnitude > static_cast<u128>(std::numeric_limits<int64_t>::max()))
            throw std::overflow_error("dp: discrete Laplace sample beyond 64 bits");
        const auto y = static_cast<int64_t>(magnitude);
        return negative ? -y : y;
    }
}

// floor(sqrt(x)) by bisection on integers.
uint64_t floorSqrt(uint64_t x) {
    uint64_t lo = 0;
    uint64_t hi = uint64_t{1} << 32;  // (2^32)^2 > x for every 64-bit x
    while (hi - lo > 1) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (static_cast<u128>(mid) * mid <= x) lo = mid;
        else hi = mid;
    }
    return lo;
}

void requireLaplaceScale(Rational scale) {
    requireDenominator(scale, "discrete Laplace scale");
    if (scale.num == 0) throw std::invalid_argument("discrete Laplace scale must be positive");
    if (scale.num > static_cast<u128>(kMaxLaplaceScale) * scale.den)
        throw std::invalid_argument("discrete Laplace scale above 2^48");
}

void requireSigmaSquared(Rational sigmaSquared) {
    requireDenominator(sigmaSquared, "discrete Gaussian sigma^2");
    if (sigmaSquared.num == 0) throw std::invalid_argument("discrete Gaussian sigma^2 must be positive");
}

double gaussianWeight(double x, double sigmaSquared) { return std::exp(-x * x / (2 * sigmaSquared)); }

// The x beyond which the Gaussian weights are below 10^-36 of the mode.
uint64_t gaussianSumBound(double sigmaSquared) {
    return static_cast<uint64_t>(std::ceil(13 * std::sqrt(sigmaSquared))) + 1;
}

// P(|X| <= w) for X ~ N_Z(0, σ²) with large σ: the Euler-Maclaurin midpoint form.
double gaussianCentralMass(double w, double sigmaSquared) {
    const double sigma = std::sqrt(sigmaSquared);
    const double edge = w + 0.5;
    const double correction =
        edge * gaussianWeight(edge, sigmaSquared) / (12 * sigmaSquared * sigma * std::sqrt(2 * std::numbers::pi));
    return std::erf(edge / (sigma * std::numbers::sqrt2)) + correction;
}

constexpr double kCoverage = 0.95;

}  // namespace

std::strong_ordering operator<=>(Rational a, Rational b) noexcept {
    return static_cast<u128>(a.num) * b.den <=> static_cast<u128>(b.num) * a.den;
}

bool operator==(Rational a, Rational b) noexcept { return (a <=> b) == std::strong_ordering::equal; }

Rational makeRational(uint64_t num, uint64_t den) {
    if (den == 0) throw std::invalid_argument("rational with denominator 0");
    const uint64_t g = std::gcd(num, den);
    return {num / g, den / g};
}

double toDouble(Rational r) {
    requireDenominator(r, "rational");
    return static_cast<double>(r.num) / static_cast<double>(r.den);
}

bool sampleBernoulli(Rational p, RandomSource& random) {
    requireDenominator(p, "Bernoulli probability");
    if (p.num > p.den) throw std::invalid_argument("Bernoulli probability above 1");
    return random.uniformBelow(p.den) < p.num;
}

bool sampleBernoulliExpNeg(Rational gamma, RandomSource& random) {
    requireDenominator(gamma, "Bernoulli(exp(-gamma))");
    return bernoulliExpNeg(Wide(gamma.num), Wide(gamma.den), random);
}

int64_t sampleDiscreteLaplace(Rational scale, RandomSource& random) {
    requireLaplaceScale(scale);
    return discreteLaplace(scale.num, scale.den, random);
}

int64_t sampleDiscreteGaussian(Rational sigmaSquared, RandomSource& random) {
    requireSigmaSquared(sigmaSquared);
    const uint64_t n = sigmaSquared.num;
    const uint64_t d = sigmaSquared.den;
    // floor(sqrt(n/d)) = floor(sqrt(floor(n/d))), so t <= 2^32 and the proposals stay in range.
    const uint64_t t = floorSqrt(n / d) + 1;
    // Acceptance exponent (|Y| - σ²/t)²/(2σ²) = (|Y|·t·d - n)² / (2·n·d·t²).
    const Wide wt(t);
    const Wide denominator = Wide(2 * static_cast<u128>(n)) * Wide(d) * wt * wt;
    const Wide center(n);
    for (;;) {
        const int64_t y = discreteLaplace(t, 1, random);
        const auto magnitude = static_cast<uint64_t>(y < 0 ? -y : y);
        Wide gap = Wide(magnitude) * wt * Wide(d);
        if (gap >= center) {
            gap -= center;
        } else {
            Wide below = center;
            below -= gap;
            gap = below;
        }
        if (bernoulliExpNeg(gap * gap, denominator, random)) return y;
    }
}

uint64_t decimalUnitsDown(double value, uint64_t scale) {
    const auto s = static_cast<double>(scale);
    if (!(value >= 0) || !(value * s < 9.2e18)) throw std::invalid_argument("value out of range for its units");
    // The exact product value·scale is p + e (fma gives the rounding error exactly). p rounds to
    // nearest, so it cannot jump over an integer: floor(p + e) is floor(p), one less when p is an
    // integer and e < 0.
    const double p = value * s;
    const double e = std::fma(value, s, -p);
    auto down = static_cast<uint64_t>(std::floor(p));
    if (static_cast<double>(down) == p && e < 0 && down > 0) --down;
    // The decimal written, when value is the double nearest to it (IEEE division rounds to
    // nearest, so the comparison is exact).
    if (static_cast<double>(down + 1) / s == value) ++down;
    return down;
}

Rational epsilonFromDouble(double epsilon) {
    if (!(epsilon >= kMinEpsilon && epsilon <= kMaxEpsilon))
        throw std::invalid_argument("epsilon must be between 1e-6 and 1e6");
    constexpr uint64_t kScale = 1'000'000;
    const uint64_t down = decimalUnitsDown(epsilon, kScale);
    if (down == 0) throw std::invalid_argument("epsilon must be between 1e-6 and 1e6");
    return makeRational(down, kScale);
}

Rational laplaceScaleFor(uint64_t sensitivity, Rational epsilon) {
    requireDenominator(epsilon, "epsilon");
    if (sensitivity == 0) throw std::invalid_argument("sensitivity must be at least 1");
    if (epsilon.num == 0) throw std::invalid_argument("epsilon must be positive");
    const u128 num = static_cast<u128>(sensitivity) * epsilon.den;
    if (num > std::numeric_limits<uint64_t>::max())
        throw std::overflow_error("Laplace scale sensitivity/epsilon does not fit 64 bits");
    const Rational scale = makeRational(static_cast<uint64_t>(num), epsilon.num);
    requireLaplaceScale(scale);
    return scale;
}

Rational gaussianSigmaSquaredFor(uint64_t sensitivity, Rational epsilon, double delta) {
    requireDenominator(epsilon, "epsilon");
    if (sensitivity == 0) throw std::invalid_argument("sensitivity must be at least 1");
    if (epsilon.num == 0) throw std::invalid_argument("epsilon must be positive");
    if (!(delta > 0 && delta < 1)) throw std::invalid_argument("delta must be in (0, 1)");
    const double eps = toDouble(epsilon);
    const double logInverseDelta = -std::log(delta);
    // σ = Δ·(sqrt(L + ε) + sqrt(L))/ε: no cancellation, a few ulps of error in all.
    const double sigma =
        static_cast<double>(sensitivity) * (std::sqrt(logInverseDelta + eps) + std::sqrt(logInverseDelta)) / eps;
    const double sigmaSquared = sigma * sigma / 2 * (1 + 1e-9);
    constexpr double kTwo63 = 9223372036854775808.0;
    if (!(sigmaSquared <= kTwo63)) throw std::overflow_error("Gaussian sigma^2 above 2^63");
    int shift = 32;
    while (shift > 0 && std::ldexp(sigmaSquared, shift) >= kTwo63) --shift;
    const double num = std::ceil(std::ldexp(sigmaSquared, shift));
    return makeRational(static_cast<uint64_t>(num), uint64_t{1} << shift);
}

double discreteLaplaceStandardDeviation(Rational scale) {
    requireLaplaceScale(scale);
    const double inverse = 1 / toDouble(scale);
    return std::sqrt(2 * std::exp(-inverse)) / -std::expm1(-inverse);
}

uint64_t discreteLaplaceHalfWidth95(Rational scale) {
    requireLaplaceScale(scale);
    const double t = toDouble(scale);
    const double q = std::exp(-1 / t);
    const double w = std::ceil(t * std::log(2 / (1 - kCoverage) / (1 + q))) - 1;
    return w <= 0 ? 0 : static_cast<uint64_t>(w);
}

double discreteGaussianStandardDeviation(Rational sigmaSquared) {
    requireSigmaSquared(sigmaSquared);
    const double s2 = toDouble(sigmaSquared);
    if (s2 >= 0x1p20) return std::sqrt(s2);
    double total = 1;
    double second = 0;
    const uint64_t bound = gaussianSumBound(s2);
    for (uint64_t i = 1; i <= bound; ++i) {
        const auto x = static_cast<double>(i);
        const double w = gaussianWeight(x, s2);
        total += 2 * w;
        second += 2 * x * x * w;
    }
    return std::sqrt(second / total);
}

uint64_t discreteGaussianHalfWidth95(Rational sigmaSquared) {
    requireSigmaSquared(sigmaSquared);
    const double s2 = toDouble(sigmaSquared);
    if (s2 < 0x1p24) {
        double total = 1;
        const uint64_t bound = gaussianSumBound(s2);
        for (uint64_t x = 1; x <= bound; ++x) total += 2 * gaussianWeight(static_cast<double>(x), s2);
        double inside = 1;
        uint64_t w = 0;
        while (inside < kCoverage * total) {
            ++w;
            inside += 2 * gaussianWeight(static_cast<double>(w), s2);
        }
        return w;
    }
    // 1.959963984540054 = Φ^-1(0.975): start next to the answer, then step to the smallest w.
    auto w = static_cast<uint64_t>(std::max(0.0, std::floor(1.959963984540054 * std::sqrt(s2)) - 2));
    while (gaussianCentralMass(static_cast<double>(w), s2) < kCoverage) ++w;
    while (w > 0 && gaussianCentralMass(static_cast<double>(w - 1), s2) >= kCoverage) --w;
    return w;
}

}  // namespace custodian::dp
