#include "gateway/crypto/digest.hpp"

namespace custodian::crypto {

Sha256Digest sha256(ByteView bytes) {
    Sha256Digest out{};
    crypto_hash_sha256(out.data(), bytes.data(), bytes.size());
    return out;
}

Sha256::Sha256() {
    (void)ensureSodium();
    crypto_hash_sha256_init(&state_);
}

void Sha256::update(ByteView bytes) { crypto_hash_sha256_update(&state_, bytes.data(), bytes.size()); }

Sha256Digest Sha256::finish() {
    Sha256Digest out{};
    crypto_hash_sha256_final(&state_, out.data());
    return out;
}

} // namespace custodian::crypto
