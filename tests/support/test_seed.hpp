#pragma once
// Random seeds of tests that want fresh randomness on every run (fault injection timings) and must
// still replay a failure: the seed is CUSTODIAN_TEST_SEED when set, else a fresh one; either way it
// is printed, with the line that replays it.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace custodian::testing {

inline uint32_t testSeed(const char* testName) {
    uint32_t seed = 0;
    if (const char* fixed = std::getenv("CUSTODIAN_TEST_SEED"); fixed && *fixed) {
        seed = static_cast<uint32_t>(std::strtoul(fixed, nullptr, 10));
    } else {
        seed = std::random_device{}();
    }
    std::fprintf(stderr, "%s: random seed %u (replay with CUSTODIAN_TEST_SEED=%u)\n", testName, seed, seed);
    return seed;
}

}  // namespace custodian::testing
