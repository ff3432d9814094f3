#pragma once
// SHA-256 (libsodium crypto_hash_sha256), one-shot and streaming. Used for extract digests and
// RFC 6962 Merkle hashing.

#include <array>
#include <cstdint>

#include <sodium.h>

#include "gateway/crypto/keys.hpp"

namespace custodian::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(ByteView bytes);

// Incremental SHA-256. Not thread-safe; finish() may be called once.
class Sha256 {
public:
    Sha256();
    void update(ByteView bytes);
    Sha256Digest finish();

private:
    crypto_hash_sha256_state state_{};
};

} // namespace custodian::crypto
