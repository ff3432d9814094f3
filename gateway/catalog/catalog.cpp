#include "gateway/catalog/catalog.hpp"

#include <pqxx/pqxx>
#include <rapidjson/document.h>
#include <sodium.h>

#include <cstring>

#include "gateway/catalog/conninfo.hpp"
#include "gateway/catalog/store.hpp"
#include "gateway/db/guarded.hpp"
#include "json/canonical.hpp"
#include "policies/json_text.hpp"
#include "policies/sql_identifier.hpp"

namespace custodian::catalog {

using db::guarded;

namespace {

constexpr size_t kSecretKeyBytes = crypto_secretbox_KEYBYTES;
static_assert(sizeof(kSourceSecretContext) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context is 8 bytes");

// Cached parsed policies beyond this count are dropped all at once (they are re-parsed on demand);
// the catalog holds few policies, so this only bounds memory against pathological churn.
constexpr size_t kMaxCachedPolicies = 4096;

}  // namespace

// ---- SourceSecretKey --------------------------------------------------------------------------

Result<SourceSecretKey> SourceSecretKey::derive(const auth::TokenHasher& master) {
    auto subkey =
        master.deriveSubkey(kSourceSecretSubkeyId, std::string_view(kSourceSecretContext, crypto_kdf_CONTEXTBYTES));
    if (!subkey) return subkey.status();
    if (subkey->size() != kSecretKeyBytes) return internalError("derived source key has the wrong size");
    return SourceSecretKey(std::move(subkey).value());
}

Result<SourceSecretKey> SourceSecretKey::fromKey(crypto::ByteView key) {
    if (Status s = crypto::ensureSodium(); !s) return s;
    if (key.size() != kSecretKeyBytes) return invalidArgument("a source secret key must be 32 bytes");
    auto secret = crypto::SecureBytes::allocate(kSecretKeyBytes);
    if (!secret) return secret.status();
    std::memcpy(secret->data(), key.data(), key.size());
    return SourceSecretKey(std::move(secret).value());
}

Result<SourceSecretKey::Sealed> SourceSecretKey::seal(std::string_view plaintext) const {
    if (Status s = crypto::ensureSodium(); !s) return s;
    Sealed out;
    out.nonce.resize(crypto_secretbox_NONCEBYTES);
    randombytes_buf(out.nonce.data(), out.nonce.size());
    out.ciphertext.resize(plaintext.size() + crypto_secretbox_MACBYTES);
    if (crypto_secretbox_easy(out.ciphertext.data(), reinterpret_cast<const unsigned char*>(plaintext.data()),
                              plaintext.size(), out.nonce.data(), key_.data()) != 0) {
        return internalError("sealing the source secret failed");
    }
    return out;
}

Result<std::string> SourceSecretKey::open(crypto::ByteView nonce, crypto::ByteView ciphertext) const {
    if (Status s = crypto::ensureSodium(); !s) return s;
    if (nonce.size() != crypto_secretbox_NONCEBYTES || ciphertext.size() < crypto_secretbox_MACBYTES) {
        return internalError("the stored source secret is malformed");
    }
    std::string plain(ciphertext.size() - crypto_secretbox_MACBYTES, '\0');
    if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), ciphertext.data(), ciphertext.size(),
                                   nonce.data(), key_.data()) != 0) {
        sodium_memzero(plain.data(), plain.size());
        return internalError(
            "the stored source secret cannot be decrypted (was the master key changed? re-register the source)");
    }
    return plain;
}

// ---- names --------------------------------------------------------------------------------------

Status validateCatalogName(std::string_view kind, std::string_view name) {
    auto bad = [&](const char* why) { return invalidArgument(std::string(kind) + " name " + why); };
    if (name.empty()) return bad("must not be empty");
    if (name.size() > 128) return bad("must be at most 128 characters");
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
    if (!alnum(name.front())) return bad("must start with a letter or a digit");
    for (char c : name) {
        if (!alnum(c) && c != '.' && c != '_' && c != '-') {
            return bad("may contain only letters, digits, '.', '_' and '-'");
        }
    }
    return Status::ok();
}

// ---- Dataset ------------------------------------------------------------------------------------

std::string Dataset::quotedTable() const {
    return policies::quoteSqlIdentifier(schema) + "." + policies::quoteSqlIdentifier(table);
}

const DatasetColumn* Dataset::column(std::string_view columnName) const {
    for (const auto& c : columns)
        if (c.name == columnName) return &c;
    return nullptr;
}

policies::DatasetDescription Dataset::description() const {
    policies::DatasetDescription d;
    d.name = name;
    for (const auto& c : columns) d.columns.push_back({c.name, c.type, c.role});
    return d;
}

// ---- loading ------------------------------------------------------------------------------------

namespace {

const char* const kIsoTime = R"(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))";

std::string iso(const char* column) {
    char buffer[160];
    std::snprintf(buffer, sizeof buffer, kIsoTime, column);
    return buffer;
}

crypto::ByteView byteView(const pqxx::binarystring& b) { return {b.data(), b.size()}; }

Result<Dataset> parseDefinition(Dataset d, const std::string& definition) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(definition.c_str(), definition.size());
    auto corrupt = [&](const char* what) {
        return internalError("dataset " + d.name + ": stored definition is corrupt (" + what + ")");
    };
    if (doc.HasParseError() || !doc.IsObject()) return corrupt("not an object");
    auto text = [&](const char* key) -> const rapidjson::Value* {
        auto it = doc.FindMember(key);
        return it != doc.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
    };
    const auto* schema = text("schema");
    const auto* table = text("table");
    if (!schema || !table) return corrupt("schema/table");
    d.schema = schema->GetString();
    d.table = table->GetString();
    if (const auto* description = text("description"))
        d.descriptionText.assign(description->GetString(), description->GetStringLength());
    auto cols = doc.FindMember("columns");
    if (cols == doc.MemberEnd() || !cols->value.IsArray()) return corrupt("columns");
    for (const auto& c : cols->value.GetArray()) {
        if (!c.IsObject() || !c.HasMember("name") || !c["name"].IsString() || !c.HasMember("type") ||
            !c["type"].IsString() || !c.HasMember("role") || !c["role"].IsString()) {
            return corrupt("column");
        }
        auto type = anon::columnTypeFromName(c["type"].GetString());
        auto role = policies::columnRoleFromName(c["role"].GetString());
        if (!type || !role) return corrupt("column type/role");
        d.columns.push_back({c["name"].GetString(), *type, *role});
    }
    auto h = doc.FindMember("hierarchies");
    if (h != doc.MemberEnd() && h->value.IsObject()) {
        auto canonical = json::canonicalJson(h->value, json::Numbers::Decimal);
        if (!canonical) return corrupt("hierarchies");
        d.hierarchiesJson = std::move(canonical).value();
    }
    return d;
}

}  // namespace

Catalog::Catalog(SourceSecretKey key) : key_(std::move(key)) {}

Result<Source> Catalog::loadSource(pqxx::transaction_base& tx, std::string_view name) const {
    return guarded<Source>("loading source", [&]() -> Result<Source> {
        pqxx::result r =
            tx.exec_params("SELECT name, agency, conninfo_nonce, conninfo_sealed, created_by, " + iso("created_at") +
                               ", " + iso("updated_at") + " FROM sources WHERE name = $1",
                           std::string(name));
        if (r.empty()) return notFound("no source named \"" + std::string(name) + "\"");
        const auto& row = r[0];
        Source s;
        s.name = row[0].as<std::string>();
        s.agency = row[1].as<std::string>();
        pqxx::binarystring nonce(row[2]);
        pqxx::binarystring sealed(row[3]);
        auto plain = key_.open(byteView(nonce), byteView(sealed));
        if (!plain) return plain.status().withContext("source " + s.name);
        s.conninfo = std::move(plain).value();
        s.createdBy = row[4].as<std::string>();
        s.createdAt = row[5].as<std::string>();
        s.updatedAt = row[6].as<std::string>();
        return s;
    });
}

Result<Source> Catalog::loadSource(pqxx::connection& conn, std::string_view name) const {
    return guarded<Source>("loading source", [&]() -> Result<Source> {
        pqxx::read_transaction tx(conn);
        auto s = loadSource(tx, name);
        if (s) tx.commit();
        return s;
    });
}

Result<Dataset> Catalog::loadDataset(pqxx::transaction_base& tx, std::string_view name) const {
    return guarded<Dataset>("loading dataset", [&]() -> Result<Dataset> {
        pqxx::result r =
            tx.exec_params("SELECT name, agency, source, definition::text, created_by, " + iso("created_at") + ", " +
                               iso("updated_at") + " FROM datasets WHERE name = $1",
                           std::string(name));
        if (r.empty()) return notFound("no dataset named \"" + std::string(name) + "\"");
        const auto& row = r[0];
        Dataset d;
        d.name = row[0].as<std::string>();
        d.agency = row[1].as<std::string>();
        d.source = row[2].as<std::string>();
        d.createdBy = row[4].as<std::string>();
        d.createdAt = row[5].as<std::string>();
        d.updatedAt = row[6].as<std::string>();
        return parseDefinition(std::move(d), row[3].as<std::string>());
    });
}

Result<Dataset> Catalog::loadDataset(pqxx::connection& conn, std::string_view name) const {
    return guarded<Dataset>("loading dataset", [&]() -> Result<Dataset> {
        pqxx::read_transaction tx(conn);
        auto d = loadDataset(tx, name);
        if (d) tx.commit();
        return d;
    });
}

Result<std::shared_ptr<const policies::Policy>>
Catalog::parsedPolicy(const std::string& dataset, const std::string& policy, int32_t version, std::string_view document,
                      const policies::DatasetDescription& datasetDescription) const {
    CacheKey key{dataset, policy, version};
    {
        std::lock_guard lock(cacheMutex_);
        if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    }
    // Parse outside the lock: documents can be large, and two threads parsing the same version at
    // once both produce equal objects (the first one stored wins).
    policies::PolicyLoadOptions options;
    options.dataset = &datasetDescription;
    policies::PolicyLoadResult loaded = policies::loadPolicy(document, options);
    if (!loaded.ok()) {
        Status why = policies::validationStatus(loaded.errors);
        return failedPrecondition("policy " + dataset + "/" + policy + " version " + std::to_string(version) +
                                  " no longer loads against its dataset: " + why.message());
    }
    std::lock_guard lock(cacheMutex_);
    if (cache_.size() >= kMaxCachedPolicies) cache_.clear();
    auto [it, inserted] = cache_.emplace(key, loaded.policy);
    (void)inserted;
    return it->second;
}

namespace {

struct VersionRow {
    int32_t version = 0;
    std::string hash;
    std::string document;
};

}  // namespace

Result<LoadedPolicy> Catalog::loadPolicyVersion(pqxx::transaction_base& tx, std::string_view dataset,
                                                std::string_view policy, int32_t version) const {
    return guarded<LoadedPolicy>("loading policy", [&]() -> Result<LoadedPolicy> {
        pqxx::result head = tx.exec_params("SELECT current_version, retired_at IS NOT NULL, " + iso("retired_at") +
                                               " FROM policies WHERE dataset = $1 AND name = $2",
                                           std::string(dataset), std::string(policy));
        if (head.empty()) {
            return notFound("dataset \"" + std::string(dataset) + "\" has no policy named \"" + std::string(policy) +
                            "\"");
        }
        LoadedPolicy out;
        out.dataset = std::string(dataset);
        out.name = std::string(policy);
        out.currentVersion = head[0][0].as<int32_t>();
        out.retired = head[0][1].as<bool>();
        if (out.retired) out.retiredAt = head[0][2].as<std::string>();
        int32_t wanted = version > 0 ? version : out.currentVersion;
        pqxx::result v = tx.exec_params(
            "SELECT version, content_hash, document FROM policy_versions WHERE dataset = $1 AND name = $2 AND "
            "version = $3",
            std::string(dataset), std::string(policy), wanted);
        if (v.empty()) {
            return notFound("policy \"" + std::string(policy) + "\" has no version " + std::to_string(wanted));
        }
        out.version = v[0][0].as<int32_t>();
        out.contentHash = v[0][1].as<std::string>();
        out.document = v[0][2].as<std::string>();
        {
            std::lock_guard lock(cacheMutex_);
            if (auto it = cache_.find(CacheKey{out.dataset, out.name, out.version}); it != cache_.end()) {
                out.policy = it->second;
            }
        }
        if (!out.policy) {  // first use of this version in this process: parse it once
            auto ds = loadDataset(tx, dataset);
            if (!ds) return ds.status();
            auto parsed = parsedPolicy(out.dataset, out.name, out.version, out.document, ds->description());
            if (!parsed) return parsed.status();
            out.policy = std::move(parsed).value();
        }
        // A version stored before policies used the one canonical encoder keeps its hash.
        if (out.policy->contentHash() != out.contentHash && out.policy->legacyContentHash() != out.contentHash) {
            return internalError("policy " + out.dataset + "/" + out.name + " version " + std::to_string(out.version) +
                                 ": stored content hash does not match the document");
        }
        return out;
    });
}

Result<LoadedPolicy> Catalog::loadCurrentPolicy(pqxx::transaction_base& tx, std::string_view dataset,
                                                std::string_view policy) const {
    return loadPolicyVersion(tx, dataset, policy, 0);
}

Result<LoadedPolicy> Catalog::loadCurrentPolicy(pqxx::connection& conn, std::string_view dataset,
                                                std::string_view policy) const {
    return guarded<LoadedPolicy>("loading policy", [&]() -> Result<LoadedPolicy> {
        pqxx::read_transaction tx(conn);
        auto p = loadCurrentPolicy(tx, dataset, policy);
        if (p) tx.commit();
        return p;
    });
}

// ---- the partner catalog's listing ------------------------------------------------------------

Result<std::shared_ptr<const CatalogListing>> Catalog::readListing(pqxx::connection& conn) const {
    return guarded<std::shared_ptr<const CatalogListing>>(
        "reading the catalog", [&]() -> Result<std::shared_ptr<const CatalogListing>> {
            // One snapshot: the generation read here is the one of exactly these rows.
            pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
            auto out = std::make_shared<CatalogListing>();
            out->generation = tx.exec("SELECT generation FROM catalog_generation")[0][0].as<int64_t>();
            auto refs = activePolicies(tx);
            if (!refs) return refs.status();
            for (const auto& ref : *refs) {
                auto p = loadCurrentPolicy(tx, ref.dataset, ref.policy);
                if (!p) {
                    // A policy that no longer loads is not requestable; the others still are.
                    if (p.status().code() == StatusCode::FailedPrecondition ||
                        p.status().code() == StatusCode::NotFound)
                        continue;
                    return p.status();
                }
                if (p->retired) continue;
                if (out->datasets.empty() || out->datasets.back().dataset.name != ref.dataset) {
                    auto d = loadDataset(tx, ref.dataset);
                    if (!d) return d.status();
                    out->datasets.push_back({std::move(d).value(), {}});
                }
                out->datasets.back().policies.push_back(std::move(p).value());
            }
            tx.commit();
            return std::shared_ptr<const CatalogListing>(std::move(out));
        });
}

Result<std::shared_ptr<const CatalogListing>> Catalog::listing(pqxx::connection& conn, int64_t generation) const {
    auto current = [&] {
        std::lock_guard lock(listingPtrMutex_);
        return listing_;
    };
    // `!=`, not `<`: a database recreated under a running process starts counting again.
    if (auto have = current(); have && have->generation == generation) return have;
    std::lock_guard rebuild(listingMutex_);
    if (auto have = current(); have && have->generation == generation) return have;  // built meanwhile
    auto fresh = readListing(conn);
    if (!fresh) return fresh.status();
    std::lock_guard lock(listingPtrMutex_);
    listing_ = *fresh;
    return fresh;
}

}  // namespace custodian::catalog
