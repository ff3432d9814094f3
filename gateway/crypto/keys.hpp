#pragma once
// Key types for the gateway and its partners, and the encodings used to move keys around.
//
// - SigningKey: the gateway's Ed25519 key that signs manifests and audit tree heads.
// - BoxPublicKey / BoxSecretKey: a partner's X25519 key pair; extracts are sealed to the public key.
//
// Secret key material lives in sodium_malloc'd memory (guard pages, mlock'd where the OS allows),
// is wiped on destruction, and the owning types are move-only so a secret is never copied by
// accident. Every function that touches libsodium initialises it first (sodium_init is idempotent
// and thread-safe), so callers need no setup. All types are safe to share read-only across threads.
//
// Key file formats (one line of text, newline-terminated, base64 = RFC 4648 standard alphabet with
// padding, i.e. libsodium's sodium_base64_VARIANT_ORIGINAL):
//   gateway signing key   "custodian-ed25519-seed:<base64 of the 32-byte Ed25519 seed>"   mode 0600
//   gateway public key    "<base64 of the 32-byte Ed25519 public key>" (what GET /v1/keys serves);
//                         the prefixed form "custodian-ed25519-public:<base64>" is accepted too
//   partner public key    "custodian-x25519-public:<base64 of 32 bytes>"                  PREFIX.pub
//   partner secret key    "custodian-x25519-secret:<base64 of 32 bytes>"                  PREFIX.key, 0600

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::crypto {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView asBytes(std::string_view text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }

inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SeedBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;
inline constexpr size_t kX25519KeyBytes = 32;

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeyBytes>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureBytes>;
using Ed25519Seed = std::array<uint8_t, kEd25519SeedBytes>;

// Initialises libsodium once per process. Internal error only if the library cannot start
// (e.g. no entropy source).
Status ensureSodium();

// A fixed-size buffer in sodium_malloc memory, zeroed on destruction. Move-only.
class SecureBytes {
public:
    SecureBytes() = default;
    static Result<SecureBytes> allocate(size_t size);
    ~SecureBytes();
    SecureBytes(SecureBytes&& other) noexcept;
    SecureBytes& operator=(SecureBytes&& other) noexcept;
    SecureBytes(const SecureBytes&) = delete;
    SecureBytes& operator=(const SecureBytes&) = delete;

    uint8_t* data() noexcept { return data_; }
    const uint8_t* data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    ByteView view() const noexcept { return {data_, size_}; }

private:
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// --- encodings -----------------------------------------------------------------------------

std::string toHex(ByteView bytes);
Result<Bytes> fromHex(std::string_view hex);
std::string toBase64(ByteView bytes);               // standard alphabet, padded
Result<Bytes> fromBase64(std::string_view base64);  // strict: no whitespace, padding required

// --- Ed25519 (gateway) ---------------------------------------------------------------------

class SigningKey {
public:
    static Result<SigningKey> generate();
    // Deterministic key from a 32-byte seed (crypto_sign_seed_keypair): known-answer tests and
    // the key file format.
    static Result<SigningKey> fromSeed(ByteView seed);
    // Loads the key file at `path`, or creates it (random key, mode 0600, written to a temporary
    // file and linked into place so a concurrent creator never sees a partial file and never
    // overwrites another's key). Refuses a file that group or others can read or write.
    static Result<SigningKey> loadOrCreate(const std::string& path);

    SigningKey(SigningKey&&) noexcept = default;
    SigningKey& operator=(SigningKey&&) noexcept = default;
    SigningKey(const SigningKey&) = delete;
    SigningKey& operator=(const SigningKey&) = delete;

    const Ed25519PublicKey& publicKey() const noexcept { return publicKey_; }
    // Detached Ed25519 signature (crypto_sign_detached) over `message`.
    Ed25519Signature sign(ByteView message) const;

private:
    SigningKey(SecureBytes secret, const Ed25519PublicKey& publicKey)
        : secret_(std::move(secret)), publicKey_(publicKey) {}
    SecureBytes secret_;  // libsodium's 64-byte secret key (seed ‖ public key)
    Ed25519PublicKey publicKey_{};
};

// True only if `signature` is a valid Ed25519 signature of `message` under `publicKey`.
// A signature of the wrong length is simply invalid.
[[nodiscard]] bool verifySignature(const Ed25519PublicKey& publicKey, ByteView message, ByteView signature);

// Parses a gateway public key file's text: bare base64, "custodian-ed25519-public:<base64>", or
// the JSON document of GET /v1/keys holding exactly one Ed25519 key; surrounding whitespace ignored.
Result<Ed25519PublicKey> parseGatewayPublicKey(std::string_view text);
Result<Ed25519PublicKey> readGatewayPublicKeyFile(const std::string& path);
// "custodian-ed25519-public:<base64>\n"
std::string formatGatewayPublicKey(const Ed25519PublicKey& key);

// --- X25519 (partner) ----------------------------------------------------------------------

struct BoxPublicKey {
    std::array<uint8_t, kX25519KeyBytes> bytes{};
    friend bool operator==(const BoxPublicKey&, const BoxPublicKey&) = default;
};

class BoxSecretKey {
public:
    static Result<BoxSecretKey> generate();
    // Deterministic pair from a 32-byte seed (crypto_box_seed_keypair), for known-answer tests.
    static Result<BoxSecretKey> fromSeed(ByteView seed);
    // Takes raw secret key bytes and derives the public key (crypto_scalarmult_base).
    static Result<BoxSecretKey> fromSecretBytes(ByteView secret);

    BoxSecretKey(BoxSecretKey&&) noexcept = default;
    BoxSecretKey& operator=(BoxSecretKey&&) noexcept = default;
    BoxSecretKey(const BoxSecretKey&) = delete;
    BoxSecretKey& operator=(const BoxSecretKey&) = delete;

    const BoxPublicKey& publicKey() const noexcept { return publicKey_; }
    const uint8_t* secretData() const noexcept { return secret_.data(); }

private:
    BoxSecretKey(SecureBytes secret, const BoxPublicKey& publicKey)
        : secret_(std::move(secret)), publicKey_(publicKey) {}
    SecureBytes secret_;
    BoxPublicKey publicKey_;
};

inline constexpr std::string_view kBoxPublicKeyPrefix = "custodian-x25519-public:";
inline constexpr std::string_view kBoxSecretKeyPrefix = "custodian-x25519-secret:";

std::string formatBoxPublicKey(const BoxPublicKey& key);  // prefix + base64 + "\n"
// Parses the text of a .pub file (surrounding whitespace ignored). For the principal CLI.
Result<BoxPublicKey> parseBoxPublicKey(std::string_view text);
Result<BoxPublicKey> readBoxPublicKeyFile(const std::string& path);
// Reads a .key file without copying the secret outside sodium memory; refuses a file readable by
// group or others.
Result<BoxSecretKey> readBoxSecretKeyFile(const std::string& path);
// Writes PREFIX.pub (0644) and PREFIX.key (0600). Refuses to overwrite either file; on failure
// nothing is left behind.
Status writeBoxKeyPair(const BoxSecretKey& key, const std::string& prefix);

}  // namespace custodian::crypto
