#pragma once
// Keys for keyed transforms (pseudonymize, date_shift), derived per dataset and per recipient from a
// master key with libsodium's crypto_kdf (BLAKE2b), so that one partner always sees the same
// pseudonyms while two partners' pseudonyms cannot be linked without the master key.
//
// Derivation (documented in docs/formats/csv-and-hierarchies.md, "Keyed transforms"):
//   subkey_id = first 8 bytes, little-endian, of BLAKE2b-128 (unkeyed) over
//               LE64(len(dataset)) || dataset || LE64(len(recipient)) || recipient
//   subkey    = crypto_kdf_derive_from_key(32 bytes, subkey_id, context, master_key)
//   context   = "CUSTPSEU" for pseudonyms, "CUSTDSHF" for date-shift offsets
// The length prefixes make ("ab","c") and ("a","bc") different inputs.

#include <cstdint>
#include <span>
#include <string_view>

#include "anonymizer/status.hpp"
#include "anonymizer/transform.hpp"

namespace custodian::anon {

inline constexpr char kPseudonymKdfContext[] = "CUSTPSEU";
inline constexpr char kDateShiftKdfContext[] = "CUSTDSHF";

// Calls sodium_init() once per process (it is idempotent and thread-safe); false if libsodium could
// not initialize.
bool ensureSodium() noexcept;

uint64_t releaseSubkeyId(std::string_view dataset, std::string_view recipient);

// A derived 32-byte key in sodium_malloc memory, wiped on destruction. Immutable; hash() may be called
// concurrently.
class KeyedHasher {
public:
    static Result<KeyedHasher> derive(const MasterKey& master, const char (&context)[9], std::string_view dataset,
                                      std::string_view recipient);

    KeyedHasher(KeyedHasher&& other) noexcept : key_(std::exchange(other.key_, nullptr)) {}
    KeyedHasher& operator=(KeyedHasher&&) = delete;
    KeyedHasher(const KeyedHasher&) = delete;
    KeyedHasher& operator=(const KeyedHasher&) = delete;
    ~KeyedHasher();

    // Keyed BLAKE2b (crypto_generichash) of `message`; out.size() in [16, 64].
    void hash(std::string_view message, std::span<uint8_t> out) const;
    // First 8 bytes, little-endian, of the 16-byte keyed hash.
    uint64_t hash64(std::string_view message) const;

private:
    explicit KeyedHasher(uint8_t* key) : key_(key) {}
    uint8_t* key_;
};

} // namespace custodian::anon
