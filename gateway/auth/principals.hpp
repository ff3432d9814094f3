#pragma once
// Principals (caller identities), their roles and API tokens.
//
// A token is 256 random bits, shown to the operator once ("cus_" + 43 base64url characters).
// The database keeps only BLAKE2b-256(token) keyed with the gateway's master key
// (crypto_generichash), so a database dump alone does not let anyone forge or test tokens.
// Authentication looks the hash up and confirms it with a constant-time comparison
// (sodium_memcmp). Missing, malformed, unknown and disabled tokens all yield Unauthenticated with
// the same message, so a caller learns nothing about which case applied.

#include <pqxx/connection>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::auth {

enum class Role : uint8_t { Admin = 0, Publisher = 1, Partner = 2, Auditor = 3 };

const char* roleName(Role role) noexcept;
Result<Role> parseRole(std::string_view name);

// A set of roles, as declared by each route.
class RoleSet {
public:
    constexpr RoleSet() = default;
    constexpr RoleSet(std::initializer_list<Role> roles) {
        for (Role r : roles) bits_ |= bit(r);
    }
    constexpr bool contains(Role r) const { return (bits_ & bit(r)) != 0; }
    constexpr bool empty() const { return bits_ == 0; }
    std::string describe() const;  // "admin, publisher"

private:
    static constexpr uint8_t bit(Role r) { return static_cast<uint8_t>(1u << static_cast<unsigned>(r)); }
    uint8_t bits_ = 0;
};

inline constexpr size_t kTokenHashBytes = 32;
using TokenHash = std::array<uint8_t, kTokenHashBytes>;

// Hashes tokens with the master key. The key lives in sodium memory; move-only.
class TokenHasher {
public:
    // Loads the master key file (one line "custodian-master-key:<base64 of 32 bytes>"), creating
    // it with a random key and mode 0600 if it does not exist. Refuses a file that group or others
    // can read or write.
    static Result<TokenHasher> loadOrCreate(const std::string& path);
    static Result<TokenHasher> fromKey(crypto::ByteView key);  // exactly 32 bytes

    TokenHash hash(std::string_view token) const;

    // A 32-byte key for another purpose derived from the master key with crypto_kdf_derive_from_key
    // (`context` is exactly 8 bytes, crypto_kdf_CONTEXTBYTES), so the master key itself never
    // leaves this object. InvalidArgument for a context of another length.
    Result<crypto::SecureBytes> deriveSubkey(uint64_t subkeyId, std::string_view context) const;

private:
    explicit TokenHasher(crypto::SecureBytes key) : key_(std::move(key)) {}
    crypto::SecureBytes key_;
};

// A fresh random token: "cus_" + base64url (no padding) of 32 random bytes.
std::string generateToken();

// True if `token` has the shape generateToken() produces (cheap pre-check before hashing).
bool wellFormedToken(std::string_view token);

// Extracts the token from an Authorization header value ("Bearer <token>", scheme
// case-insensitive). Unauthenticated if missing or malformed.
Result<std::string> bearerToken(std::string_view authorizationHeader);

struct Principal {
    int64_t id = 0;
    std::string name;
    Role role = Role::Partner;
    std::string agency;                             // empty when none
    std::optional<crypto::BoxPublicKey> publicKey;  // partners: X25519 key extracts are sealed to
    std::string createdAt;                          // ISO 8601
    bool disabled = false;
};

struct NewPrincipal {
    std::string name;
    Role role = Role::Partner;
    std::string agency;
    std::optional<crypto::BoxPublicKey> publicKey;
};

// Principal names: 1–128 characters of [A-Za-z0-9._@-], starting with a letter or digit.
Status validatePrincipalName(std::string_view name);

// Parses a partner public key file's text: "custodian-x25519-public:<base64>" (custodian keygen),
// or bare base64 or hex of 32 bytes.
Result<crypto::BoxPublicKey> parsePartnerPublicKey(std::string_view text);

// Database operations; each runs its own transaction on `conn` and turns exceptions into Status.
// Creates the principal and returns its token (the only time it exists in clear). Aborted if the
// name is taken.
Result<std::string> addPrincipal(pqxx::connection& conn, const TokenHasher& hasher, const NewPrincipal& p);
Status disablePrincipal(pqxx::connection& conn, std::string_view name);  // NotFound if absent
Result<std::vector<Principal>> listPrincipals(pqxx::connection& conn);
Result<Principal> findPrincipal(pqxx::connection& conn, std::string_view name);
// The enabled principal owning `token`, or Unauthenticated.
Result<Principal> authenticate(pqxx::connection& conn, const TokenHasher& hasher, std::string_view token);

}  // namespace custodian::auth
