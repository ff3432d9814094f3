#pragma once
// Random seeds of tests that want fresh randomness on every run (fault injection timings) and must
// still replay a failure: the seed is CUSTODIAN_TEST_SEED when set, else a fresh one; either way it
// is printed to stderr, with the line that replays it (README.md, "Tests"). Tests whose random
// inputs do not need to change between runs use fixed seeds instead.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace custodian::testing {

// CUSTODIAN_TEST_SEED must be a decimal number below 2^32; anything else throws (the test fails
// with the reason) rather than replaying some other seed.
inline uint32_t testSeed(const char* testName) {
    uint32_t seed = 0;
    if (const char* fixed = std::getenv("CUSTODIAN_TEST_SEED"); fixed && *fixed) {
        char* end = nullptr;
        errno = 0;
        const unsigned long long value = std::strtoull(fixed, &end, 10);
        if (*fixed < '0' || *fixed > '9' || *end != '\0' || errno == ERANGE || value > UINT32_MAX)
            throw std::invalid_argument(std::string("CUSTODIAN_TEST_SEED must be a decimal number from 0 to ") +
                                        std::to_string(UINT32_MAX) + ", not '" + fixed + "'");
        seed = static_cast<uint32_t>(value);
    } else {
        seed = std::random_device{}();
    }
    std::fprintf(stderr, "%s: random seed %u (replay with CUSTODIAN_TEST_SEED=%u)\n", testName, seed, seed);
    return seed;
}

}  // namespace custodian::testing
