#include "anonymizer/transforms/keyed_hash.hpp"

#include <sodium.h>

#include <cassert>
#include <cstring>

namespace custodian::anon {

namespace {

void appendLe64(crypto_generichash_state& state, uint64_t value) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    crypto_generichash_update(&state, bytes, sizeof bytes);
}

uint64_t loadLe64(const uint8_t* bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
    return value;
}

void appendField(crypto_generichash_state& state, std::string_view field) {
    appendLe64(state, field.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(field.data()), field.size());
}

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
    auto* key = static_cast<uint8_t*>(sodium_malloc(crypto_generichash_KEYBYTES));
    if (key == nullptr) return Status(StatusCode::ResourceExhausted, "cannot allocate secure memory for a key");
    if (crypto_kdf_derive_from_key(key, crypto_generichash_KEYBYTES, releaseSubkeyId(scope), context, master.data()) !=
        0) {
        sodium_free(key);
        return internalError("crypto_kdf_derive_from_key failed");
    }
    sodium_mprotect_readonly(key);
    return KeyedHasher(key);
}

KeyedHasher::~KeyedHasher() {
    if (key_ != nullptr) sodium_free(key_);  // sodium_free wipes the memory first
}

void KeyedHasher::hash(std::string_view message, std::span<uint8_t> out) const {
    assert(out.size() >= crypto_generichash_BYTES_MIN && out.size() <= crypto_generichash_BYTES_MAX);
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       key_, crypto_generichash_KEYBYTES);
}

uint64_t KeyedHasher::hash64(std::string_view message) const {
    uint8_t digest[16];
    hash(message, digest);
    return loadLe64(digest);
}

}  // namespace custodian::anon
