#pragma once
// SHA-256, one-shot and streaming. Used for extract digests (over every plaintext and ciphertext
// byte of an extract) and RFC 6962 Merkle hashing. Computed with OpenSSL, whose SHA-256 uses the
// CPU's SHA extensions where present (several times faster than libsodium's portable code, which
// showed in extract throughput), falling back to libsodium (crypto_hash_sha256) if OpenSSL's
// provider cannot be loaded. Both compute the same standard SHA-256.

#include <array>
#include <cstdint>
#include <memory>

#include <sodium.h>

#include "gateway/crypto/keys.hpp"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace custodian::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(ByteView bytes);

// Incremental SHA-256. Not thread-safe; finish() may be called once. A copy carries the state on
// (the digest of a prefix, then more updates).
class Sha256 {
public:
    Sha256();
    Sha256(const Sha256& other);
    Sha256& operator=(const Sha256& other);
    Sha256(Sha256&&) noexcept = default;
    Sha256& operator=(Sha256&&) noexcept = default;
    ~Sha256() = default;

    void update(ByteView bytes);
    Sha256Digest finish();

private:
    struct ContextDeleter {
        void operator()(evp_md_ctx_st* context) const noexcept;
    };
    std::unique_ptr<evp_md_ctx_st, ContextDeleter> context_;  // null: libsodium computes
    crypto_hash_sha256_state fallback_{};
};

}  // namespace custodian::crypto
