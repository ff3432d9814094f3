// Uniform bits and integers: the seeded stream is ChaCha20's keystream, integers carry no modulo
// bias, and the system source draws fresh bytes.
#include <catch2/catch.hpp>

#include <array>
#include <limits>
#include <stdexcept>

#include "dp/random.hpp"
#include "unit/dp/distribution.hpp"

using namespace custodian::dp;
using namespace custodian::dp::testing;

TEST_CASE("the seeded stream is the ChaCha20 keystream of its seed") {
    // ChaCha20 with an all-zero key and nonce, block 0 (the first test vector of Bernstein's
    // ChaCha20, also in draft-agl-tls-chacha20poly1305).
    const std::array<unsigned char, 16> expected = {0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90,
                                                    0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86, 0xbd, 0x28};
    auto random = seededRandom(0);
    // A range of one value consumes nothing.
    REQUIRE(random.uniformBelow(1) == 0);
    for (const unsigned char byte : expected) CHECK(random.bits(8) == byte);
    // Bytes are read most significant first, and a partial byte is the low bits of the next byte.
    auto again = seededRandom(0);
    CHECK(again.bits(16) == 0x76b8);
    CHECK(again.bits(3) == (0xe0 & 0x7));
}

TEST_CASE("the seeded stream continues across refills and depends on the seed") {
    auto a = seededRandom(11);
    auto b = seededRandom(11);
    auto c = seededRandom(12);
    std::size_t differing = 0;
    for (int i = 0; i < 4096; ++i) {  // 32 KiB: many buffer refills
        const uint64_t x = a.bits(64);
        REQUIRE(x == b.bits(64));
        differing += x != c.bits(64) ? 1 : 0;
    }
    CHECK(differing == 4096);
}

TEST_CASE("uniformBelow is uniform without modulo bias") {
    auto random = seededRandom(13);
    constexpr std::size_t kDraws = 300'000;
    // n = 6: the 3-bit draws 6 and 7 must be rejected, not folded onto 0 and 1.
    std::array<uint64_t, 6> counts{};
    for (std::size_t i = 0; i < kDraws; ++i) ++counts.at(random.uniformBelow(6));
    for (std::size_t v = 0; v < counts.size(); ++v) {
        INFO("value " << v);
        checkClose("share", static_cast<double>(counts[v]) / kDraws, 1.0 / 6, std::sqrt(5.0 / 36 / kDraws));
    }
    // n = 3·2^62: modulo reduction of 64 bits would make [0, 2^62) twice as likely as each other
    // quarter; values must also stay below n.
    const uint64_t n = uint64_t{3} << 62;
    uint64_t lowQuarter = 0;
    for (std::size_t i = 0; i < kDraws; ++i) {
        const uint64_t v = random.uniformBelow(n);
        REQUIRE(v < n);
        lowQuarter += v < (uint64_t{1} << 62) ? 1 : 0;
    }
    checkClose("share below 2^62", static_cast<double>(lowQuarter) / kDraws, 1.0 / 3, std::sqrt(2.0 / 9 / kDraws));
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    for (int i = 0; i < 1000; ++i) REQUIRE(random.uniformBelow(max) < max);
}

TEST_CASE("random sources refuse an empty range and more than 64 bits") {
    auto random = seededRandom(14);
    CHECK_THROWS_AS(random.uniformBelow(0), std::invalid_argument);
    CHECK_THROWS_AS(random.bits(65), std::invalid_argument);
    CHECK(random.bits(0) == 0);
}

TEST_CASE("the system source gives fresh bytes") {
    SystemRandom a;
    SystemRandom b;
    // Two sources, or one source twice, agreeing on 256 bits would mean no randomness at all.
    const std::array<uint64_t, 4> fromA = {a.bits(64), a.bits(64), a.bits(64), a.bits(64)};
    const std::array<uint64_t, 4> moreFromA = {a.bits(64), a.bits(64), a.bits(64), a.bits(64)};
    const std::array<uint64_t, 4> fromB = {b.bits(64), b.bits(64), b.bits(64), b.bits(64)};
    CHECK(fromA != fromB);
    CHECK(fromA != moreFromA);
}
