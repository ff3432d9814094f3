#include "dp/random.hpp"

#include <sodium.h>

#include <bit>
#include <stdexcept>

namespace custodian::dp {

namespace {
constexpr std::size_t kChaChaBlockBytes = 64;
}  // namespace

RandomSource::~RandomSource() { sodium_memzero(buffer_.data(), buffer_.size()); }

unsigned char RandomSource::nextByte() {
    if (used_ == buffer_.size()) {
        refill(buffer_);
        used_ = 0;
    }
    const unsigned char b = buffer_[used_];
    buffer_[used_++] = 0;
    return b;
}

uint64_t RandomSource::bits(unsigned count) {
    if (count > 64) throw std::invalid_argument("RandomSource::bits: at most 64 bits at a time");
    uint64_t v = 0;
    for (unsigned have = 0; have < count; have += 8) v = (v << 8) | nextByte();
    return count == 64 ? v : v & ((uint64_t{1} << count) - 1);
}

uint64_t RandomSource::uniformBelow(uint64_t n) {
    if (n == 0) throw std::invalid_argument("RandomSource::uniformBelow: empty range [0, 0)");
    const auto width = static_cast<unsigned>(std::bit_width(n - 1));
    for (;;) {
        const uint64_t v = bits(width);
        if (v < n) return v;
    }
}

SystemRandom::SystemRandom() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
}

void SystemRandom::refill(std::span<unsigned char> out) { randombytes_buf(out.data(), out.size()); }

SeededRandomForTests::SeededRandomForTests(const Seed& seed) : key_(seed) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    static_assert(crypto_stream_chacha20_KEYBYTES == std::tuple_size_v<Seed>);
}

SeededRandomForTests::~SeededRandomForTests() { sodium_memzero(key_.data(), key_.size()); }

void SeededRandomForTests::refill(std::span<unsigned char> out) {
    // The keystream is the encryption of zeros; the block counter continues where the last refill
    // stopped, so the stream does not depend on the buffer size as long as it is whole blocks.
    if (out.size() % kChaChaBlockBytes != 0)
        throw std::logic_error("SeededRandomForTests: refill must be whole ChaCha20 blocks");
    const std::array<unsigned char, crypto_stream_chacha20_NONCEBYTES> nonce{};
    sodium_memzero(out.data(), out.size());
    crypto_stream_chacha20_xor_ic(out.data(), out.data(), out.size(), nonce.data(), nextBlock_, key_.data());
    nextBlock_ += out.size() / kChaChaBlockBytes;
}

}  // namespace custodian::dp
