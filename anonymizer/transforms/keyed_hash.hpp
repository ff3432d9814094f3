#pragma once
// Keys for keyed transforms (pseudonymize, date_shift), derived per release scope from a master key
// with libsodium's crypto_kdf (BLAKE2b), so that one partner always sees the same pseudonyms under
// one policy while pseudonyms of two partners, or of two policies of one dataset, cannot be linked
// without the master key.
//
// Derivation (documented in docs/formats/csv-and-hierarchies.md, "Keyed transforms"):
//   scope     = version 2: LE64(len(dataset)) || dataset || LE64(len(policy)) || policy ||
//                          LE64(len(recipient)) || recipient
//               version 1: LE64(len(dataset)) || dataset || LE64(len(recipient)) || recipient
//   subkey_id = first 8 bytes, little-endian, of BLAKE2b-128 (unkeyed) over scope
//   subkey    = crypto_kdf_derive_from_key(32 bytes, subkey_id, context, master_key)
//   context   = "CUSTPSEU" for pseudonyms, "CUSTDSHF" for date-shift offsets
// The length prefixes make ("ab","c") and ("a","bc") different inputs, and a version-2 scope
// never encodes like a version-1 scope (equal dataset prefixes force the recipient of version 1
// to be the policy of version 2, and then version 2 is longer).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "anonymizer/status.hpp"
#include "anonymizer/transform.hpp"

namespace custodian::anon {

inline constexpr char kPseudonymKdfContext[] = "CUSTPSEU";
inline constexpr char kDateShiftKdfContext[] = "CUSTDSHF";

// Calls sodium_init() once per process (it is idempotent and thread-safe); false if libsodium could
// not initialize.
bool ensureSodium() noexcept;

// Empty if `scope` names everything its derivation uses, else what a keyed transform is missing
// ("the dataset, policy and recipient").
std::string missingKeyScope(const KeyScope& scope);

uint64_t releaseSubkeyId(const KeyScope& scope);

// A derived 32-byte key in sodium_malloc memory, wiped on destruction. Immutable; hash() may be called
// concurrently.
class KeyedHasher {
public:
    // FailedPrecondition if the scope is incomplete (missingKeyScope).
    static Result<KeyedHasher> derive(const MasterKey& master, const char (&context)[9], const KeyScope& scope);

    KeyedHasher(KeyedHasher&& other) noexcept : key_(std::exchange(other.key_, nullptr)) {}
    KeyedHasher& operator=(KeyedHasher&&) = delete;
    KeyedHasher(const KeyedHasher&) = delete;
    KeyedHasher& operator=(const KeyedHasher&) = delete;
    ~KeyedHasher();

    // Keyed BLAKE2b (crypto_generichash) of `message`; out.size() in [16, 64].
    void hash(std::string_view message, std::span<uint8_t> out) const;
    // hash() of every message, `digestBytes` (16..64) each, written one after the other to `out`
    // (messages.size() x digestBytes bytes). On CPUs with AVX2, four one-block messages (1 to 128
    // bytes) are compressed at once, one per 64-bit lane; the digests are hash()'s.
    void hashMany(std::span<const std::string_view> messages, size_t digestBytes, uint8_t* out) const;
    // First 8 bytes, little-endian, of the 16-byte keyed hash.
    uint64_t hash64(std::string_view message) const;

private:
    // In the sodium_malloc block: the key, then per digest length 16..64 the 64-byte BLAKE2b chaining
    // value after the key block (hash() of a 1..128-byte message compresses one block from there).
    static constexpr size_t kKeyBytes = 32, kChainingBytes = 64, kDigestsMin = 16, kDigestsMax = 64;
    static constexpr size_t chainingOffset(size_t digestBytes) noexcept {
        return kKeyBytes + (digestBytes - kDigestsMin) * kChainingBytes;
    }
    static constexpr size_t kSecretBytes = kKeyBytes + (kDigestsMax - kDigestsMin + 1) * kChainingBytes;

    explicit KeyedHasher(uint8_t* key) : key_(key) {}
    uint8_t* key_;
};

}  // namespace custodian::anon
