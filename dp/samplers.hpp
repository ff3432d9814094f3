#pragma once
// Exact samplers for differential privacy, their calibration from (sensitivity, ε[, δ]) and the
// noise figures an answer reports.
//
// Sampling (no floating point anywhere on this path): Canonne, Kamath and Steinke, "The Discrete
// Gaussian for Differential Privacy", NeurIPS 2020, arXiv:2004.00010 (CKS), the sampling section:
//   Algorithm 1  Bernoulli(exp(-γ)) for rational γ >= 0: for γ <= 1, draw Bernoulli(γ/k) for
//                k = 1, 2, ... until the first failure at K and return "K is odd"; for γ > 1, draw
//                floor(γ) Bernoulli(exp(-1)) and a Bernoulli(exp(-(γ - floor(γ)))), all must succeed.
//                Bernoulli(γ/k) is drawn as Bernoulli(γ) AND Bernoulli(1/k) (independent, same law),
//                so no product γ·k has to be formed.
//   Algorithm 2  discrete Laplace Lap_Z(a/b), P(x) ∝ exp(-|x|·b/a): a geometric X with parameter
//                exp(-1/a) from a uniform U < a accepted with Bernoulli(exp(-U/a)) plus a·V for V
//                geometric with parameter exp(-1); then Y = floor(X/b) and a fair sign, rejecting
//                "-0" so that 0 is not counted twice.
//   Algorithm 3  discrete Gaussian N_Z(0, σ²), P(x) ∝ exp(-x²/(2σ²)): propose Y from Lap_Z(t) with
//                t = floor(σ) + 1 and accept with Bernoulli(exp(-(|Y| - σ²/t)²/(2σ²))).
// All parameters are exact rationals and all arithmetic is on integers (64-bit, 128-bit, and a
// fixed 384-bit type for the Gaussian's acceptance exponent), so the output distribution is exactly
// the stated one given uniform random bits. Floating-point samplers are not: Mironov, "On
// Significance of the Least Significant Bits for Differential Privacy", CCS 2012, recovers the
// secret from the gaps of a textbook floating-point Laplace.
//
// Calibration:
//   Laplace   integer query with L1 sensitivity Δ plus Lap_Z(Δ/ε) is ε-DP (the ratio of
//             neighbouring probabilities is at most exp(Δ·ε/Δ)); the scale is exact.
//   Gaussian  the zCDP route. Adding N_Z(0, σ²) to an integer query with L2 sensitivity Δ is
//             ρ-zCDP with ρ = Δ²/(2σ²) (CKS, as for the continuous Gaussian), and ρ-zCDP implies
//             (ρ + 2·sqrt(ρ·ln(1/δ)), δ)-DP for every δ > 0 (Bun and Steinke, "Concentrated
//             Differential Privacy: Simplifications, Extensions, and Lower Bounds", TCC 2016,
//             Proposition 1.3). Solving ρ + 2·sqrt(ρ·L) = ε with L = ln(1/δ) gives
//             sqrt(ρ) = ε / (sqrt(L + ε) + sqrt(L)), so σ² = Δ²·(sqrt(L + ε) + sqrt(L))² / (2ε²).
//             Valid for every ε > 0 (unlike the classic Δ·sqrt(2·ln(1.25/δ))/ε, which needs ε < 1);
//             CKS's exact (ε, δ) curve of the discrete Gaussian would allow slightly less noise.
//
// Errors: parameters outside the ranges below throw std::invalid_argument; results that do not fit
// the types throw std::overflow_error. Policy validation can check ranges up front by calling the
// calibration functions, which throw exactly when the sampler would.
//
// Thread-safety: all functions are pure apart from the RandomSource they draw from.

#include "dp/random.hpp"

#include <compare>
#include <cstdint>

namespace custodian::dp {

// A non-negative rational num/den. Any 64-bit numerator and denominator >= 1 (den == 0 is refused
// by every function below); not necessarily reduced, equality and ordering are by value.
struct Rational {
    uint64_t num = 0;
    uint64_t den = 1;

    friend std::strong_ordering operator<=>(Rational a, Rational b) noexcept;
    friend bool operator==(Rational a, Rational b) noexcept;
};

// num/den reduced by their greatest common divisor; std::invalid_argument if den == 0.
Rational makeRational(uint64_t num, uint64_t den);
// The nearest double (for reports and logs, never for sampling).
double toDouble(Rational r);

// Largest discrete Laplace scale accepted: 2^48. Samples then stay far inside int64_t (a draw
// beyond 2^63 - 1 has probability below exp(-2^15); it would throw std::overflow_error).
inline constexpr uint64_t kMaxLaplaceScale = uint64_t{1} << 48;
// ε accepted by epsilonFromDouble: [10^-6, 10^6].
inline constexpr double kMinEpsilon = 1e-6;
inline constexpr double kMaxEpsilon = 1e6;

// ---- Samplers (exact; see the header comment) ----

// true with probability p = num/den; requires p <= 1.
bool sampleBernoulli(Rational p, RandomSource& random);
// true with probability exp(-gamma); any gamma >= 0 (the expected number of draws is bounded by a
// small constant whatever gamma is).
bool sampleBernoulliExpNeg(Rational gamma, RandomSource& random);
// P(x) ∝ exp(-|x|/scale) on the integers; requires 0 < scale <= kMaxLaplaceScale.
int64_t sampleDiscreteLaplace(Rational scale, RandomSource& random);
// P(x) ∝ exp(-x²/(2·sigmaSquared)) on the integers; any sigmaSquared > 0 (up to 2^64 - 1).
int64_t sampleDiscreteGaussian(Rational sigmaSquared, RandomSource& random);

// ---- Calibration ----

// value · scale rounded down to a whole number, except that the double nearest to a multiple of
// 1/scale counts as that multiple (0.3 with scale 10 gives 3, although the double 0.3 is a little
// below 3/10): the decimal a JSON document wrote, when it has at most log10(scale) places.
// Requires 0 <= value · scale < 2^63 (throws std::invalid_argument otherwise).
uint64_t decimalUnitsDown(double value, uint64_t scale);

// ε from a policy's double, as an exact decimal with at most six places. JSON parsing gives the
// double nearest to the decimal written, so a decimal with up to six places (0.1, 0.3, 1.5) is
// recovered exactly; any other value is rounded DOWN to a multiple of 10^-6. The result never
// exceeds the decimal written in the policy, so the noise calibrated from it is never smaller than
// declared. std::invalid_argument outside [kMinEpsilon, kMaxEpsilon] or for NaN.
Rational epsilonFromDouble(double epsilon);

// The discrete Laplace scale Δ/ε (exact, reduced) for an ε-DP answer to an integer query with L1
// sensitivity Δ >= 1. std::overflow_error if Δ·ε.den does not fit 64 bits; std::invalid_argument
// for ε <= 0 or a scale above kMaxLaplaceScale.
Rational laplaceScaleFor(uint64_t sensitivity, Rational epsilon);

// σ² of the discrete Gaussian for an (ε, δ)-DP answer to an integer query with L2 sensitivity
// Δ >= 1, by the zCDP route above. Computed in double and rounded UP: multiplied by 1 + 10^-9 (far
// above the few-ulp error of the closed form) and expressed as num/2^k with the largest k <= 32
// that keeps num below 2^63, so the noise is never smaller than the formula asks.
// std::invalid_argument unless ε > 0 and 0 < δ < 1; std::overflow_error if σ² > 2^63.
Rational gaussianSigmaSquaredFor(uint64_t sensitivity, Rational epsilon, double delta);

// ---- Noise figures for reports (double arithmetic; not used for sampling) ----

// Standard deviation of Lap_Z(scale): sqrt(2q)/(1 - q) with q = exp(-1/scale).
double discreteLaplaceStandardDeviation(Rational scale);
// Smallest integer w >= 0 with P(|X| <= w) >= 0.95 for X ~ Lap_Z(scale), from
// P(|X| > w) = 2·q^(w+1)/(1 + q): w = ceil(scale·ln(40/(1 + q))) - 1.
uint64_t discreteLaplaceHalfWidth95(Rational scale);
// Standard deviation of N_Z(0, σ²): the normalised pmf summed for σ² < 2^20; above, σ itself (by
// Poisson summation the variance differs from σ² by a relative 8π²σ²·exp(-2π²σ²) to first order,
// below 10^-30 once σ² >= 4).
double discreteGaussianStandardDeviation(Rational sigmaSquared);
// Smallest integer w >= 0 with P(|X| <= w) >= 0.95 for X ~ N_Z(0, σ²): the normalised pmf summed
// for σ² < 2^24; above, erf((w + 1/2)/(σ·sqrt 2)) with the first Euler-Maclaurin correction
// (w + 1/2)·exp(-(w + 1/2)²/(2σ²)) / (12·σ³·sqrt(2π)), whose remaining error is O(σ^-4).
uint64_t discreteGaussianHalfWidth95(Rational sigmaSquared);

}  // namespace custodian::dp
