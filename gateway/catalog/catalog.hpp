#pragma once
// The catalog: agency sources (database connections), datasets (a table or view of a source with
// classified columns) and versioned release policies, as stored in migrations/0003_catalog.sql.
//
// Source secrets. The libpq conninfo of a source (it carries the agency's password) is sealed with
// crypto_secretbox_easy (XSalsa20-Poly1305, random 24-byte nonce per write) under a 32-byte key
// derived from the gateway master key (the key file TokenHasher loads) with
// crypto_kdf_derive_from_key(subkey id kSourceSecretSubkeyId, context kSourceSecretContext).
// Changing the master key therefore makes every stored source unreadable (loadSource → Internal
// "cannot be decrypted"); re-PUT the sources after a key rotation. The conninfo is never returned
// by the API and never logged; describeSourceConninfo() gives a password-free form for messages.
//
// Policy versions. Every accepted change of a policy is a new immutable row of policy_versions
// (1, 2, 3, ...) with the policy's content hash (policies::Policy::contentHash()). The parsed
// Policy of a version is built once per (dataset, policy, version) and shared by every later load
// (Catalog keeps a bounded cache), so releases never re-parse documents.
//
// Thread-safety: Catalog is safe to share between threads (the cache is guarded). The functions
// taking a pqxx::connection& open and commit their own transaction on it (so the connection must
// not have a transaction open); the ones taking pqxx::transaction_base& run inside the caller's.
// Errors: NotFound for an absent source/dataset/policy, Unavailable for a lost database,
// Internal for corrupt rows; libpqxx exceptions never escape.

#include <pqxx/connection>
#include <pqxx/transaction_base>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "anonymizer/status.hpp"
#include "anonymizer/value.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/crypto/keys.hpp"
#include "policies/dataset.hpp"
#include "policies/policy.hpp"
#include "policies/policy_model.hpp"

namespace custodian::catalog {

// crypto_kdf parameters of the source-secret key (documented in docs/configuration.md).
inline constexpr char kSourceSecretContext[] = "srcsecrt";  // exactly crypto_kdf_CONTEXTBYTES (8)
inline constexpr uint64_t kSourceSecretSubkeyId = 1;

// The secretbox key for source conninfo strings. Move-only; key bytes in sodium memory.
class SourceSecretKey {
public:
    // Derives the key from the gateway master key held by `master` (TokenHasher::deriveSubkey).
    static Result<SourceSecretKey> derive(const auth::TokenHasher& master);
    // A key given directly (32 bytes); for tests and tools.
    static Result<SourceSecretKey> fromKey(crypto::ByteView key);

    struct Sealed {
        std::vector<uint8_t> nonce;       // crypto_secretbox_NONCEBYTES
        std::vector<uint8_t> ciphertext;  // plaintext size + crypto_secretbox_MACBYTES
    };
    Result<Sealed> seal(std::string_view plaintext) const;
    // Internal if the ciphertext was not sealed under this key or was altered.
    Result<std::string> open(crypto::ByteView nonce, crypto::ByteView ciphertext) const;

private:
    explicit SourceSecretKey(crypto::SecureBytes key) : key_(std::move(key)) {}
    crypto::SecureBytes key_;
};

// A conninfo string with password (and any other secret-looking keyword) values replaced by "***",
// safe for messages and logs (keyword=value form; see conninfo.hpp).
std::string describeSourceConninfo(std::string_view conninfo);

// ---- sources --------------------------------------------------------------------------------

struct Source {
    std::string name;
    std::string agency;
    std::string conninfo;  // decrypted; a secret — never log or return it
    std::string createdBy;
    std::string createdAt;  // ISO 8601 UTC
    std::string updatedAt;
};

// Public view of a source (no secret).
struct SourceSummary {
    std::string name;
    std::string agency;
    std::string createdBy;
    std::string createdAt;
    std::string updatedAt;
};

// ---- datasets -------------------------------------------------------------------------------

struct DatasetColumn {
    std::string name;
    anon::ColumnType type = anon::ColumnType::Text;
    policies::ColumnRole role = policies::ColumnRole::Insensitive;
};

struct Dataset {
    std::string name;
    std::string agency;
    std::string source;
    std::string schema;  // unquoted, validated with policies::validateSqlIdentifier
    std::string table;   // unquoted, validated
    std::vector<DatasetColumn> columns;
    // Default hierarchy declarations per column in the policy language's "hierarchy" form
    // (docs/policies.md), as canonical JSON of an object {column: declaration}; "{}" when none.
    std::string hierarchiesJson = "{}";
    // What the dataset holds, in the publisher's words (shown in the transparency register and the
    // console, always as text); "" when none was given.
    std::string descriptionText;
    std::string createdBy;
    std::string createdAt;
    std::string updatedAt;

    // "schema"."table", every part quoted (safe to put in SQL text).
    std::string quotedTable() const;
    const DatasetColumn* column(std::string_view columnName) const;
    // What policies of this dataset are validated against.
    policies::DatasetDescription description() const;
};

// ---- policies -------------------------------------------------------------------------------

struct PolicyVersionInfo {
    int32_t version = 0;
    std::string contentHash;
    std::string createdBy;
    std::string createdAt;
};

struct LoadedPolicy {
    std::string dataset;
    std::string name;
    int32_t version = 0;  // the version loaded (the current one for loadCurrentPolicy)
    int32_t currentVersion = 0;
    std::string contentHash;  // of `version`
    bool retired = false;     // a retired policy must not be used for any extract
    std::optional<std::string> retiredAt;
    std::string document;                            // the JSON as submitted
    std::shared_ptr<const policies::Policy> policy;  // parsed once per version, shared
};

// What the partner catalog (GET /v1/catalog) lists, as of one catalog generation (the counter that
// migrations/0008_catalog_generation.sql bumps with every change of datasets, policies and their
// versions): each dataset that has an active policy, with the current version of every active
// (not retired) policy that still loads, in (dataset, policy) order. What depends on the caller or
// on the time (recipients, validity, daily counts) is decided per request from this.
struct CatalogListing {
    struct Entry {
        Dataset dataset;
        std::vector<LoadedPolicy> policies;
    };
    int64_t generation = 0;
    std::vector<Entry> datasets;
};

class Catalog {
public:
    explicit Catalog(SourceSecretKey key);

    const SourceSecretKey& secretKey() const { return key_; }

    // Source with decrypted conninfo.
    Result<Source> loadSource(pqxx::connection& conn, std::string_view name) const;
    Result<Source> loadSource(pqxx::transaction_base& tx, std::string_view name) const;

    Result<Dataset> loadDataset(pqxx::connection& conn, std::string_view name) const;
    Result<Dataset> loadDataset(pqxx::transaction_base& tx, std::string_view name) const;

    // The current version (retired policies are returned with retired = true; the caller refuses
    // them). FailedPrecondition if the stored document no longer loads (e.g. the dataset changed
    // incompatibly since the version was accepted).
    Result<LoadedPolicy> loadCurrentPolicy(pqxx::connection& conn, std::string_view dataset,
                                           std::string_view policy) const;
    Result<LoadedPolicy> loadCurrentPolicy(pqxx::transaction_base& tx, std::string_view dataset,
                                           std::string_view policy) const;
    // A specific version (e.g. to re-verify an old extract; 0 = the current one). NotFound if absent.
    Result<LoadedPolicy> loadPolicyVersion(pqxx::transaction_base& tx, std::string_view dataset,
                                           std::string_view policy, int32_t version) const;

    // The parsed policy of (dataset, policy, version) from the cache, parsing `document` against
    // `datasetDescription` on a miss. Exposed for the routes; releases use loadCurrentPolicy.
    Result<std::shared_ptr<const policies::Policy>>
    parsedPolicy(const std::string& dataset, const std::string& policy, int32_t version, std::string_view document,
                 const policies::DatasetDescription& datasetDescription) const;

    // The listing as of `generation` (read by the caller from catalog_generation): the one kept in
    // memory when it was built at that generation, otherwise a new one read in one read-only
    // REPEATABLE READ transaction on `conn` (which must have none open) and kept for the next
    // requests. One rebuild at a time; requests that arrive meanwhile wait for it and share it.
    Result<std::shared_ptr<const CatalogListing>> listing(pqxx::connection& conn, int64_t generation) const;

private:
    Result<std::shared_ptr<const CatalogListing>> readListing(pqxx::connection& conn) const;

    using CacheKey = std::tuple<std::string, std::string, int32_t>;
    SourceSecretKey key_;
    mutable std::mutex cacheMutex_;
    mutable std::map<CacheKey, std::shared_ptr<const policies::Policy>> cache_;
    mutable std::mutex listingMutex_;     // held while a listing is rebuilt
    mutable std::mutex listingPtrMutex_;  // guards listing_ (held only to copy or swap the pointer)
    mutable std::shared_ptr<const CatalogListing> listing_;
};

// ---- name rules -------------------------------------------------------------------------------

// Source, dataset and policy names: 1-128 characters of [A-Za-z0-9._-], starting with a letter or
// digit. InvalidArgument otherwise.
Status validateCatalogName(std::string_view kind, std::string_view name);

}  // namespace custodian::catalog
