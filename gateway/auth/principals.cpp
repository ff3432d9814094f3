#include "gateway/auth/principals.hpp"

#include <fcntl.h>
#include <pqxx/pqxx>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "gateway/crypto/keys.hpp"
#include "gateway/db/guarded.hpp"
#include "gateway/db/pool.hpp"

namespace custodian::auth {
namespace {

constexpr std::string_view kTokenPrefix = "cus_";
constexpr size_t kTokenRandomBytes = 32;
constexpr std::string_view kMasterKeyPrefix = "custodian-master-key:";
constexpr size_t kMasterKeyBytes = crypto_generichash_KEYBYTES;  // 32

size_t tokenTextLength() {
    return kTokenPrefix.size() +
           sodium_base64_ENCODED_LEN(kTokenRandomBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
}

std::string_view trimView(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

Status writeNewMasterKey(const std::string& path) {
    auto key = crypto::SecureBytes::allocate(kMasterKeyBytes);
    if (!key) return key.status();
    randombytes_buf(key->data(), key->size());
    const size_t b64 = sodium_base64_ENCODED_LEN(kMasterKeyBytes, sodium_base64_VARIANT_ORIGINAL);
    auto line = crypto::SecureBytes::allocate(kMasterKeyPrefix.size() + b64 + 1);
    if (!line) return line.status();
    std::memcpy(line->data(), kMasterKeyPrefix.data(), kMasterKeyPrefix.size());
    char* out = reinterpret_cast<char*>(line->data() + kMasterKeyPrefix.size());
    sodium_bin2base64(out, b64, key->data(), key->size(), sodium_base64_VARIANT_ORIGINAL);
    size_t length = kMasterKeyPrefix.size() + std::strlen(out);
    line->data()[length++] = '\n';

    // Write a private temporary file, then link it into place: link() fails if another process
    // created the key first, and nobody ever sees a partial file.
    std::string tmpl = path + ".XXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) return Status(StatusCode::Unavailable, path + ": cannot create: " + std::strerror(errno));
    ::fchmod(fd, 0600);
    bool ok = ::write(fd, line->data(), length) == static_cast<ssize_t>(length) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
        ::unlink(tmpl.c_str());
        return Status(StatusCode::Unavailable, path + ": cannot write the master key");
    }
    int linked = ::link(tmpl.c_str(), path.c_str());
    int linkErrno = errno;
    ::unlink(tmpl.c_str());
    if (linked != 0 && linkErrno != EEXIST)
        return Status(StatusCode::Unavailable, path + ": " + std::strerror(linkErrno));
    return Status::ok();
}

Result<crypto::SecureBytes> readMasterKey(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status(StatusCode::Unavailable, path + ": " + std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0 || (info.st_mode & 077) != 0) {
        ::close(fd);
        return failedPrecondition(path + ": the master key file must not be accessible by group or others "
                                         "(chmod 600)");
    }
    auto text = crypto::SecureBytes::allocate(256);
    if (!text) {
        ::close(fd);
        return text.status();
    }
    ssize_t n = ::read(fd, text->data(), text->size());
    ::close(fd);
    if (n <= 0) return invalidArgument(path + ": empty or unreadable master key file");
    std::string_view line = trimView({reinterpret_cast<const char*>(text->data()), static_cast<size_t>(n)});
    if (line.substr(0, kMasterKeyPrefix.size()) != kMasterKeyPrefix)
        return invalidArgument(path + ": not a master key file (expected \"" + std::string(kMasterKeyPrefix) +
                               "<base64>\")");
    line.remove_prefix(kMasterKeyPrefix.size());
    auto key = crypto::SecureBytes::allocate(kMasterKeyBytes + 3);
    if (!key) return key.status();
    size_t decoded = 0;
    if (sodium_base642bin(key->data(), key->size(), line.data(), line.size(), nullptr, &decoded, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        decoded != kMasterKeyBytes)
        return invalidArgument(path + ": the master key is not base64 of 32 bytes");
    auto exact = crypto::SecureBytes::allocate(kMasterKeyBytes);
    if (!exact) return exact.status();
    std::memcpy(exact->data(), key->data(), kMasterKeyBytes);
    return std::move(exact).value();
}

Principal principalFromRow(const pqxx::row& row) {
    Principal p;
    p.id = row["id"].as<int64_t>();
    p.name = row["name"].as<std::string>();
    auto role = parseRole(row["role"].as<std::string>());
    p.role = role ? *role : Role::Partner;  // the CHECK constraint guarantees a valid role
    p.agency = row["agency"].is_null() ? "" : row["agency"].as<std::string>();
    if (!row["public_key"].is_null()) {
        pqxx::binarystring bytes(row["public_key"]);
        if (bytes.size() == crypto::kX25519KeyBytes) {
            crypto::BoxPublicKey key;
            std::memcpy(key.bytes.data(), bytes.data(), key.bytes.size());
            p.publicKey = key;
        }
    }
    p.createdAt = row["created_at"].as<std::string>();
    p.disabled = !row["disabled_at"].is_null();
    return p;
}

constexpr const char* kPrincipalColumns =
    "id, name, role, agency, public_key, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at, disabled_at";

std::string bytesLiteral(pqxx::transaction_base& txn, const uint8_t* data, size_t size) {
    return txn.quote_raw(data, size);
}

}  // namespace

const char* roleName(Role role) noexcept {
    switch (role) {
    case Role::Admin: return "admin";
    case Role::Publisher: return "publisher";
    case Role::Partner: return "partner";
    case Role::Auditor: return "auditor";
    }
    return "unknown";
}

Result<Role> parseRole(std::string_view name) {
    for (Role r : {Role::Admin, Role::Publisher, Role::Partner, Role::Auditor}) {
        if (name == roleName(r)) return r;
    }
    return invalidArgument("unknown role '" + std::string(name) + "' (expected admin, publisher, partner or auditor)");
}

std::string RoleSet::describe() const {
    std::string out;
    for (Role r : {Role::Admin, Role::Publisher, Role::Partner, Role::Auditor}) {
        if (!contains(r)) continue;
        if (!out.empty()) out += ", ";
        out += roleName(r);
    }
    return out;
}

Result<TokenHasher> TokenHasher::fromKey(crypto::ByteView key) {
    if (Status s = crypto::ensureSodium(); !s) return s;
    if (key.size() != kMasterKeyBytes) return invalidArgument("the master key must be 32 bytes");
    auto secret = crypto::SecureBytes::allocate(kMasterKeyBytes);
    if (!secret) return secret.status();
    std::memcpy(secret->data(), key.data(), key.size());
    return TokenHasher(std::move(secret).value());
}

Result<TokenHasher> TokenHasher::loadOrCreate(const std::string& path) {
    if (Status s = crypto::ensureSodium(); !s) return s;
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        if (errno != ENOENT) return Status(StatusCode::Unavailable, path + ": " + std::strerror(errno));
        std::error_code ec;
        auto parent = std::filesystem::path(path).parent_path();
        if (!parent.empty()) std::filesystem::create_directories(parent, ec);
        if (Status s = writeNewMasterKey(path); !s) return s;
    }
    auto key = readMasterKey(path);
    if (!key) return key.status();
    return TokenHasher(std::move(key).value());
}

TokenHash TokenHasher::hash(std::string_view token) const {
    TokenHash out{};
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                       key_.data(), key_.size());
    return out;
}

Result<crypto::SecureBytes> TokenHasher::deriveSubkey(uint64_t subkeyId, std::string_view context) const {
    if (context.size() != crypto_kdf_CONTEXTBYTES) {
        return invalidArgument("a key derivation context must be exactly 8 bytes");
    }
    static_assert(crypto_kdf_KEYBYTES == kMasterKeyBytes, "the master key is a crypto_kdf key");
    auto subkey = crypto::SecureBytes::allocate(32);
    if (!subkey) return subkey.status();
    char ctx[crypto_kdf_CONTEXTBYTES];
    std::memcpy(ctx, context.data(), sizeof ctx);
    if (crypto_kdf_derive_from_key(subkey->data(), subkey->size(), subkeyId, ctx, key_.data()) != 0) {
        return Status(StatusCode::Internal, "key derivation failed");
    }
    return subkey;
}

std::string generateToken() {
    (void)crypto::ensureSodium();
    unsigned char random[kTokenRandomBytes];
    randombytes_buf(random, sizeof random);
    char encoded[sodium_base64_ENCODED_LEN(kTokenRandomBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(encoded, sizeof encoded, random, sizeof random, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof random);
    std::string token = std::string(kTokenPrefix) + encoded;
    sodium_memzero(encoded, sizeof encoded);
    return token;
}

bool wellFormedToken(std::string_view token) {
    if (token.size() != tokenTextLength() || token.substr(0, kTokenPrefix.size()) != kTokenPrefix) return false;
    for (char c : token.substr(kTokenPrefix.size())) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
    }
    return true;
}

Result<std::string> bearerToken(std::string_view header) {
    header = trimView(header);
    if (header.empty()) return Status(StatusCode::Unauthenticated, "missing Authorization: Bearer token");
    constexpr std::string_view kScheme = "bearer ";
    if (header.size() <= kScheme.size())
        return Status(StatusCode::Unauthenticated, "the Authorization header must be 'Bearer <token>'");
    for (size_t i = 0; i < kScheme.size(); ++i) {
        char c = header[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != kScheme[i])
            return Status(StatusCode::Unauthenticated, "the Authorization header must be 'Bearer <token>'");
    }
    return std::string(trimView(header.substr(kScheme.size())));
}

Status validatePrincipalName(std::string_view name) {
    if (name.empty() || name.size() > 128) return invalidArgument("a principal name has 1 to 128 characters");
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '@' && c != '-')))
            return invalidArgument("principal name '" + std::string(name) +
                                   "': use letters, digits and . _ @ - (starting with a letter or digit)");
    }
    return Status::ok();
}

Result<crypto::BoxPublicKey> parsePartnerPublicKey(std::string_view text) {
    std::string_view line = trimView(text);
    if (line.substr(0, crypto::kBoxPublicKeyPrefix.size()) == crypto::kBoxPublicKeyPrefix ||
        line.substr(0, crypto::kBoxSecretKeyPrefix.size()) == crypto::kBoxSecretKeyPrefix)
        return crypto::parseBoxPublicKey(line);
    if (line.size() == 2 * crypto::kX25519KeyBytes) {
        if (auto bytes = crypto::fromHex(line); bytes && bytes->size() == crypto::kX25519KeyBytes) {
            crypto::BoxPublicKey key;
            std::memcpy(key.bytes.data(), bytes->data(), key.bytes.size());
            return key;
        }
    }
    if (auto bytes = crypto::fromBase64(line); bytes && bytes->size() == crypto::kX25519KeyBytes) {
        crypto::BoxPublicKey key;
        std::memcpy(key.bytes.data(), bytes->data(), key.bytes.size());
        return key;
    }
    return invalidArgument("not a partner public key: expected the .pub file written by custodian keygen, or "
                           "base64 or hex of 32 bytes");
}

Result<std::string> addPrincipal(pqxx::connection& conn, const TokenHasher& hasher, const NewPrincipal& p) {
    if (Status s = validatePrincipalName(p.name); !s) return s;
    std::string token = generateToken();
    TokenHash hash = hasher.hash(token);
    try {
        pqxx::work txn(conn);
        auto existing = txn.exec("SELECT 1 FROM principals WHERE name = " + txn.quote(p.name));
        if (!existing.empty()) return Status(StatusCode::Aborted, "a principal named '" + p.name + "' already exists");
        std::string publicKey =
            p.publicKey ? bytesLiteral(txn, p.publicKey->bytes.data(), p.publicKey->bytes.size()) : "NULL";
        txn.exec("INSERT INTO principals (name, role, agency, token_hash, public_key) VALUES (" + txn.quote(p.name) +
                 ", " + txn.quote(std::string(roleName(p.role))) + ", " +
                 (p.agency.empty() ? std::string("NULL") : txn.quote(p.agency)) + ", " +
                 bytesLiteral(txn, hash.data(), hash.size()) + ", " + publicKey + ")");
        txn.commit();
    } catch (const pqxx::unique_violation&) {
        return Status(StatusCode::Aborted, "a principal named '" + p.name + "' already exists");
    } catch (...) { return db::statusFromException(std::current_exception(), "adding principal " + p.name); }
    return token;
}

Status disablePrincipal(pqxx::connection& conn, std::string_view name) {
    try {
        pqxx::work txn(conn);
        auto r = txn.exec("UPDATE principals SET disabled_at = coalesce(disabled_at, now()) WHERE name = " +
                          txn.quote(std::string(name)) + " RETURNING id");
        txn.commit();
        if (r.empty()) return notFound("no principal named '" + std::string(name) + "'");
        return Status::ok();
    } catch (...) { return db::statusFromException(std::current_exception(), "disabling principal"); }
}

Result<std::vector<Principal>> listPrincipals(pqxx::connection& conn) {
    try {
        pqxx::read_transaction txn(conn);
        std::vector<Principal> out;
        for (const auto& row : txn.exec(std::string("SELECT ") + kPrincipalColumns + " FROM principals ORDER BY name"))
            out.push_back(principalFromRow(row));
        txn.commit();
        return out;
    } catch (...) { return db::statusFromException(std::current_exception(), "listing principals"); }
}

Result<Principal> findPrincipal(pqxx::connection& conn, std::string_view name) {
    try {
        pqxx::read_transaction txn(conn);
        auto r = txn.exec(std::string("SELECT ") + kPrincipalColumns +
                          " FROM principals WHERE name = " + txn.quote(std::string(name)));
        txn.commit();
        if (r.empty()) return notFound("no principal named '" + std::string(name) + "'");
        return principalFromRow(r[0]);
    } catch (...) { return db::statusFromException(std::current_exception(), "reading principal"); }
}

Result<Principal> authenticate(pqxx::connection& conn, const TokenHasher& hasher, std::string_view token) {
    const Status rejected(StatusCode::Unauthenticated, "invalid or disabled API token");
    if (!wellFormedToken(token)) return rejected;
    TokenHash hash = hasher.hash(token);
    try {
        // One statement on every authenticated request: autocommit (its own snapshot) is one
        // round trip where BEGIN READ ONLY … COMMIT would be three.
        // Prepared: this runs on every authenticated request, and planning it cost more than running it.
        pqxx::nontransaction txn(conn);
        static const std::string sql =
            std::string("SELECT ") + kPrincipalColumns + ", token_hash FROM principals WHERE token_hash = $1::bytea";
        auto r = db::execPrepared(txn, "custodian_authenticate", sql,
                                  "\\x" + crypto::toHex(crypto::ByteView(hash.data(), hash.size())));
        if (r.empty()) return rejected;
        pqxx::binarystring stored(r[0]["token_hash"]);
        if (stored.size() != hash.size() || sodium_memcmp(stored.data(), hash.data(), hash.size()) != 0)
            return rejected;
        Principal p = principalFromRow(r[0]);
        if (p.disabled) return rejected;
        return p;
    } catch (...) {
        Status s = db::statusFromException(std::current_exception(), "authenticating");
        // A connection that broke under the query is the loss of the database, whatever was thrown.
        if (!conn.is_open() && s.reason() != db::kDatabaseUnavailable)
            return db::databaseUnavailable("authenticating: the connection to the database was lost: " + s.message());
        return s;
    }
}

}  // namespace custodian::auth
