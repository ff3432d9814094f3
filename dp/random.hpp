#pragma once
// Uniform random bits and integers for the differential-privacy samplers (dp/samplers.hpp).
//
// Production code takes a RandomSource& and is handed a SystemRandom (libsodium's randombytes, the
// operating system's CSPRNG). SeededRandomForTests replays a ChaCha20 keystream from a 32-byte seed so
// that statistical tests are reproducible; its name says where it belongs, and no constructor of
// SystemRandom takes a seed, so production code cannot fall into the deterministic path by accident.
//
// Thread-safety: a source is not thread-safe; give each request (or thread) its own. Sources keep a
// small buffer of unused random bytes, wiped on destruction.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace custodian::dp {

class RandomSource {
public:
    RandomSource(const RandomSource&) = delete;
    RandomSource& operator=(const RandomSource&) = delete;
    virtual ~RandomSource();

    // `count` (0..64) uniform random bits in the low bits of the result; consumes ceil(count/8)
    // bytes of the stream.
    uint64_t bits(unsigned count);

    // Uniform on [0, n) for any n >= 1 (up to 2^64 - 1), without modulo bias: draws the bit length
    // of n - 1 and rejects values >= n (fewer than two draws on average). Throws
    // std::invalid_argument for n == 0.
    uint64_t uniformBelow(uint64_t n);

protected:
    RandomSource() = default;
    // Fills `out` with fresh uniform bytes.
    virtual void refill(std::span<unsigned char> out) = 0;

private:
    unsigned char nextByte();

    std::array<unsigned char, 256> buffer_{};
    std::size_t used_ = buffer_.size();
};

// libsodium's randombytes_buf (getrandom / /dev/urandom). Throws std::runtime_error when libsodium
// cannot be initialised.
class SystemRandom final : public RandomSource {
public:
    SystemRandom();

protected:
    void refill(std::span<unsigned char> out) override;
};

// FOR TESTS ONLY: a deterministic stream, the ChaCha20 keystream (libsodium's crypto_stream_chacha20,
// 64-bit nonce of zeros, block counter from 0) keyed by `seed`. The same seed gives the same stream
// on every platform; differential privacy needs unpredictable noise, so never pass this to code
// that answers queries.
class SeededRandomForTests final : public RandomSource {
public:
    using Seed = std::array<unsigned char, 32>;
    explicit SeededRandomForTests(const Seed& seed);
    ~SeededRandomForTests() override;

protected:
    void refill(std::span<unsigned char> out) override;

private:
    Seed key_;
    uint64_t nextBlock_ = 0;
};

}  // namespace custodian::dp
