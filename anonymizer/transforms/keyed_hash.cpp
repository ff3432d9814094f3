#include "anonymizer/transforms/keyed_hash.hpp"

#include <sodium.h>

#include <cassert>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace custodian::anon {

namespace {

void appendLe64(crypto_generichash_state& state, uint64_t value) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    crypto_generichash_update(&state, bytes, sizeof bytes);
}

uint64_t loadLe64(const uint8_t* bytes) {
    uint64_t value = 0;
    std::memcpy(&value, bytes, sizeof value);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64(value);
#endif
    return value;
}

void appendField(crypto_generichash_state& state, std::string_view field) {
    appendLe64(state, field.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(field.data()), field.size());
}

// One-block keyed BLAKE2b (RFC 7693), for messages of 1 to 128 bytes: identifiers and most text
// values. Keyed BLAKE2b compresses the key, padded to a block, before the message; that first
// compression depends only on the key and the digest length, so KeyedHasher does it once per
// digest length and each message costs one compression instead of two (libsodium's
// crypto_generichash has no way to keep a state past the key block). The digests are
// crypto_generichash's, bit for bit (tests/unit/anonymizer/test_keyed_hash.cpp).
namespace blake2b {

constexpr uint64_t kIv[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                             0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                             0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};
// Message word schedule per round (rounds 10 and 11 repeat 0 and 1).
constexpr uint8_t kSigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

constexpr size_t kBlockBytes = 128;

inline uint64_t rotr(uint64_t x, unsigned n) noexcept { return (x >> n) | (x << (64 - n)); }

inline void mix(uint64_t& a, uint64_t& b, uint64_t& c, uint64_t& d, uint64_t x, uint64_t y) noexcept {
    a = a + b + x;
    d = rotr(d ^ a, 32);
    c = c + d;
    b = rotr(b ^ c, 24);
    a = a + b + y;
    d = rotr(d ^ a, 16);
    c = c + d;
    b = rotr(b ^ c, 63);
}

// Compresses one block into h; `bytes` counts every byte hashed so far, this block's included. The
// working vector, which with h's new value would give its old one, is wiped.
void compress(uint64_t h[8], const uint8_t block[kBlockBytes], uint64_t bytes, bool last) noexcept {
    uint64_t m[16], v[16];
    for (size_t i = 0; i < 16; ++i) m[i] = loadLe64(block + 8 * i);
    for (size_t i = 0; i < 8; ++i) {
        v[i] = h[i];
        v[i + 8] = kIv[i];
    }
    v[12] ^= bytes;  // the counter's high word (v[13]) stays 0: one-block messages only
    if (last) v[14] = ~v[14];
#pragma GCC unroll 12
    for (const auto& s : kSigma) {
        mix(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        mix(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        mix(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        mix(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        mix(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        mix(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        mix(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        mix(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (size_t i = 0; i < 8; ++i) h[i] ^= v[i] ^ v[i + 8];
    sodium_memzero(v, sizeof v);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CUSTODIAN_BLAKE2B_LANES 1
// Four one-block messages compressed side by side, one per 64-bit lane of AVX2 registers: the same
// rounds as compress(), each operation applied to the four states at once. `h` is the chaining value
// all four start from (one key, one digest length); `blocks[i]` holds message i zero-padded to a
// block and `bytes[i]` its count (the key block's included); out[i] receives message i's chaining
// value. Called only when the CPU has AVX2 (hasAvx2()).
typedef uint64_t Lanes __attribute__((vector_size(32)));

// One G step on four states. Rotations by whole bytes are byte shuffles within each lane (one
// instruction instead of two shifts and an or); by 63, a shift, an add and an exclusive or.
__attribute__((target("avx2"), always_inline)) inline void mix4(Lanes& a, Lanes& b, Lanes& c, Lanes& d, const Lanes& x,
                                                                const Lanes& y, const __m256i& rotate24,
                                                                const __m256i& rotate16) noexcept {
    a = a + b + x;
    d = (Lanes)_mm256_shuffle_epi32((__m256i)(d ^ a), 0xB1);  // rotate right by 32
    c = c + d;
    b = (Lanes)_mm256_shuffle_epi8((__m256i)(b ^ c), rotate24);
    a = a + b + y;
    d = (Lanes)_mm256_shuffle_epi8((__m256i)(d ^ a), rotate16);
    c = c + d;
    b ^= c;
    b = (b >> 63) ^ (b + b);
}

__attribute__((target("avx2"))) void compress4(const uint64_t h[8], const uint8_t* const blocks[4],
                                               const uint64_t bytes[4], uint64_t out[4][8]) noexcept {
    const __m256i rotate24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1,
                                              2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m256i rotate16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0,
                                              1, 10, 11, 12, 13, 14, 15, 8, 9);
    Lanes m[16], v[16];
    for (size_t w = 0; w < 16; ++w) {
        m[w] = Lanes{loadLe64(blocks[0] + 8 * w), loadLe64(blocks[1] + 8 * w), loadLe64(blocks[2] + 8 * w),
                     loadLe64(blocks[3] + 8 * w)};
    }
    for (size_t i = 0; i < 8; ++i) {
        v[i] = Lanes{h[i], h[i], h[i], h[i]};
        v[i + 8] = Lanes{kIv[i], kIv[i], kIv[i], kIv[i]};
    }
    v[12] ^= Lanes{bytes[0], bytes[1], bytes[2], bytes[3]};
    v[14] = ~v[14];  // every message is one last block
#pragma GCC unroll 12
    for (const auto& s : kSigma) {
        mix4(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]], rotate24, rotate16);
        mix4(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]], rotate24, rotate16);
        mix4(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]], rotate24, rotate16);
        mix4(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]], rotate24, rotate16);
        mix4(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]], rotate24, rotate16);
        mix4(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]], rotate24, rotate16);
        mix4(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]], rotate24, rotate16);
        mix4(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]], rotate24, rotate16);
    }
    for (size_t i = 0; i < 8; ++i) {
        const Lanes r = Lanes{h[i], h[i], h[i], h[i]} ^ v[i] ^ v[i + 8];
        for (size_t lane = 0; lane < 4; ++lane) out[lane][i] = r[lane];
    }
    sodium_memzero(v, sizeof v);
    sodium_memzero(m, sizeof m);
}

bool hasAvx2() noexcept {
    static const bool avx2 = __builtin_cpu_supports("avx2");
    return avx2;
}
#endif

// The chaining value after the key block, for a 32-byte key and `digestBytes` of output.
void afterKeyBlock(const uint8_t* key, size_t digestBytes, uint64_t h[8]) noexcept {
    for (size_t i = 0; i < 8; ++i) h[i] = kIv[i];
    h[0] ^= 0x01010000ULL ^ (uint64_t{crypto_generichash_KEYBYTES} << 8) ^ digestBytes;  // fanout 1, depth 1
    uint8_t block[kBlockBytes] = {};
    std::memcpy(block, key, crypto_generichash_KEYBYTES);
    compress(h, block, kBlockBytes, /*last=*/false);
    sodium_memzero(block, sizeof block);
}

}  // namespace blake2b

}  // namespace

bool ensureSodium() noexcept {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

std::string missingKeyScope(const KeyScope& scope) {
    if (scope.derivation == KeyDerivation::DatasetRecipient)
        return scope.dataset.empty() || scope.recipient.empty() ? "the dataset and recipient" : "";
    return scope.dataset.empty() || scope.policy.empty() || scope.recipient.empty()
               ? "the dataset, policy and recipient"
               : "";
}

uint64_t releaseSubkeyId(const KeyScope& scope) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, 16);
    appendField(state, scope.dataset);
    if (scope.derivation != KeyDerivation::DatasetRecipient) appendField(state, scope.policy);
    appendField(state, scope.recipient);
    uint8_t digest[16];
    crypto_generichash_final(&state, digest, sizeof digest);
    return loadLe64(digest);
}

Result<KeyedHasher> KeyedHasher::derive(const MasterKey& master, const char (&context)[9], const KeyScope& scope) {
    if (std::string missing = missingKeyScope(scope); !missing.empty())
        return failedPrecondition("keyed transforms need " + missing + " of the release");
    if (!ensureSodium()) return internalError("libsodium failed to initialize");
    static_assert(crypto_kdf_CONTEXTBYTES == 8 && crypto_kdf_KEYBYTES == MasterKey::kBytes);
    static_assert(crypto_generichash_KEYBYTES == kKeyBytes && crypto_generichash_BYTES_MIN == kDigestsMin &&
                  crypto_generichash_BYTES_MAX == kDigestsMax);
    // The key, then the chaining value after its block for each digest length (secret as the key).
    auto* key = static_cast<uint8_t*>(sodium_malloc(kSecretBytes));
    if (key == nullptr) return Status(StatusCode::ResourceExhausted, "cannot allocate secure memory for a key");
    if (crypto_kdf_derive_from_key(key, crypto_generichash_KEYBYTES, releaseSubkeyId(scope), context, master.data()) !=
        0) {
        sodium_free(key);
        return internalError("crypto_kdf_derive_from_key failed");
    }
    for (size_t bytes = crypto_generichash_BYTES_MIN; bytes <= crypto_generichash_BYTES_MAX; ++bytes) {
        uint64_t h[8];
        blake2b::afterKeyBlock(key, bytes, h);
        std::memcpy(key + chainingOffset(bytes), h, sizeof h);
        sodium_memzero(h, sizeof h);
    }
    sodium_mprotect_readonly(key);
    return KeyedHasher(key);
}

KeyedHasher::~KeyedHasher() {
    if (key_ != nullptr) sodium_free(key_);  // sodium_free wipes the memory first
}

void KeyedHasher::hash(std::string_view message, std::span<uint8_t> out) const {
    assert(out.size() >= crypto_generichash_BYTES_MIN && out.size() <= crypto_generichash_BYTES_MAX);
    if (message.empty() || message.size() > blake2b::kBlockBytes) {
        // The key block is the last block of an empty message; longer messages take several blocks.
        crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(message.data()),
                           message.size(), key_, crypto_generichash_KEYBYTES);
        return;
    }
    uint64_t h[8];
    std::memcpy(h, key_ + chainingOffset(out.size()), sizeof h);
    uint8_t block[blake2b::kBlockBytes] = {};
    std::memcpy(block, message.data(), message.size());
    blake2b::compress(h, block, blake2b::kBlockBytes + message.size(), /*last=*/true);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(h[i / 8] >> (8 * (i % 8)));
    sodium_memzero(h, sizeof h);
}

void KeyedHasher::hashMany(std::span<const std::string_view> messages, size_t digestBytes, uint8_t* out) const {
    assert(digestBytes >= crypto_generichash_BYTES_MIN && digestBytes <= crypto_generichash_BYTES_MAX);
    size_t next = 0;
#ifdef CUSTODIAN_BLAKE2B_LANES
    if (blake2b::hasAvx2()) {
        // Four one-block messages at a time; any other message (empty, or longer than a block)
        // takes hash(), as does the tail of fewer than four.
        uint64_t h[8];
        std::memcpy(h, key_ + chainingOffset(digestBytes), sizeof h);
        uint8_t blocks[4][blake2b::kBlockBytes];
        const uint8_t* blockOf[4] = {blocks[0], blocks[1], blocks[2], blocks[3]};
        uint64_t bytes[4], chained[4][8];
        size_t which[4];
        size_t lanes = 0;
        for (; next < messages.size(); ++next) {
            const std::string_view message = messages[next];
            if (message.empty() || message.size() > blake2b::kBlockBytes) {
                hash(message, std::span<uint8_t>(out + next * digestBytes, digestBytes));
                continue;
            }
            std::memset(blocks[lanes], 0, blake2b::kBlockBytes);
            std::memcpy(blocks[lanes], message.data(), message.size());
            bytes[lanes] = blake2b::kBlockBytes + message.size();
            which[lanes] = next;
            if (++lanes < 4) continue;
            blake2b::compress4(h, blockOf, bytes, chained);
            for (size_t lane = 0; lane < 4; ++lane)
                std::memcpy(out + which[lane] * digestBytes, chained[lane], digestBytes);  // x86: little-endian
            lanes = 0;
        }
        for (size_t lane = 0; lane < lanes; ++lane)
            hash(messages[which[lane]], std::span<uint8_t>(out + which[lane] * digestBytes, digestBytes));
        sodium_memzero(h, sizeof h);
        sodium_memzero(blocks, sizeof blocks);
        sodium_memzero(chained, sizeof chained);
        return;
    }
#endif
    for (; next < messages.size(); ++next)
        hash(messages[next], std::span<uint8_t>(out + next * digestBytes, digestBytes));
}

uint64_t KeyedHasher::hash64(std::string_view message) const {
    uint8_t digest[16];
    hash(message, digest);
    return loadLe64(digest);
}

}  // namespace custodian::anon
