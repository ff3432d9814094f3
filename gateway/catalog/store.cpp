#include "gateway/catalog/store.hpp"

#include <pqxx/pqxx>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <utility>

#include "gateway/auth/groups.hpp"
#include "gateway/catalog/conninfo.hpp"
#include "gateway/catalog/source_access.hpp"
#include "gateway/db/guarded.hpp"
#include "policies/policy.hpp"
#include "policies/sql_identifier.hpp"

namespace custodian::catalog {

using db::guarded;

namespace {

// Removes every occurrence of the conninfo's password from a server or libpq message. libpq does
// not echo passwords, but a message about a malformed string could quote any part of it.
std::string scrubPassword(std::string message, const std::string& conninfo) {
    auto pairs = parseConninfo(conninfo);
    std::string password = pairs ? conninfoValue(*pairs, "password") : std::string();
    if (!pairs) return "the connection string could not be parsed";
    if (password.size() >= 3) {
        for (size_t at = message.find(password); at != std::string::npos; at = message.find(password, at)) {
            message.replace(at, password.size(), "***");
            at += 3;
        }
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

bool isRetryable(const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    return state == "40001" || state == "40P01" || state == "23505";
}

const char* const kIso = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

std::string isoOf(const std::string& column) { return "to_char(" + column + " AT TIME ZONE 'UTC', " + kIso + ")"; }

std::string definitionJson(const Dataset& d) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    if (!d.descriptionText.empty()) {
        w.Key("description");
        w.String(d.descriptionText.c_str(), static_cast<rapidjson::SizeType>(d.descriptionText.size()));
    }
    w.Key("schema");
    w.String(d.schema.c_str(), static_cast<rapidjson::SizeType>(d.schema.size()));
    w.Key("table");
    w.String(d.table.c_str(), static_cast<rapidjson::SizeType>(d.table.size()));
    w.Key("columns");
    w.StartArray();
    for (const auto& c : d.columns) {
        w.StartObject();
        w.Key("name");
        w.String(c.name.c_str(), static_cast<rapidjson::SizeType>(c.name.size()));
        w.Key("type");
        w.String(anon::columnTypeName(c.type));
        w.Key("role");
        w.String(policies::columnRoleName(c.role));
        w.EndObject();
    }
    w.EndArray();
    w.Key("hierarchies");
    w.RawValue(d.hierarchiesJson.c_str(), d.hierarchiesJson.size(), rapidjson::kObjectType);
    w.EndObject();
    return buffer.GetString();
}

}  // namespace

Status checkAgencyScope(const auth::Principal& principal, const std::string& agency) {
    if (principal.role == auth::Role::Admin) return Status::ok();
    if (principal.role != auth::Role::Publisher)
        return permissionDenied("only admins and publishers manage the catalog");
    if (principal.agency.empty()) return permissionDenied("publisher " + principal.name + " belongs to no agency");
    if (principal.agency != agency) {
        return permissionDenied("publisher " + principal.name + " of agency \"" + principal.agency +
                                "\" cannot manage objects of agency \"" + agency + "\"");
    }
    return Status::ok();
}

// ---- agency databases ---------------------------------------------------------------------------

Status testConnection(const std::string& conninfo, const SourceAccess& access) {
    auto conn = connectSource(conninfo, access);
    if (!conn) return conn.status();
    try {
        pqxx::nontransaction tx(**conn);
        tx.exec("SELECT 1");
        return Status::ok();
    } catch (const std::exception& e) {
        return failedPrecondition("the source database refused a query: " + scrubPassword(e.what(), conninfo));
    }
}

Result<std::vector<SourceColumnInfo>> inspectTable(const std::string& conninfo, const SourceAccess& access,
                                                   const std::string& schema, const std::string& table) {
    auto conn = connectSource(conninfo, access);
    if (!conn) return conn.status();
    try {
        pqxx::read_transaction tx(**conn);
        // Names only ever travel as parameters here; quote_ident builds the regclass text inside
        // the server for the privilege check.
        pqxx::result t = tx.exec_params(
            "SELECT table_type FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2", schema,
            table);
        if (t.empty()) {
            return notFound("the source has no table or view " + schema + "." + table + " visible to its user");
        }
        pqxx::result priv = tx.exec_params(
            "SELECT has_table_privilege(quote_ident($1) || '.' || quote_ident($2), 'SELECT')", schema, table);
        if (priv.empty() || !priv[0][0].as<bool>()) {
            return permissionDenied("the source user may not SELECT from " + schema + "." + table);
        }
        pqxx::result c =
            tx.exec_params("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND "
                           "table_name = $2 ORDER BY ordinal_position",
                           schema, table);
        std::vector<SourceColumnInfo> out;
        for (const auto& row : c) out.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
        tx.commit();
        return out;
    } catch (const std::exception& e) {
        return failedPrecondition("inspecting the source table failed: " + scrubPassword(e.what(), conninfo));
    }
}

Result<std::vector<std::string>> valuesOutside(const std::string& conninfo, const SourceAccess& access,
                                               const std::string& schema, const std::string& table,
                                               const std::string& column, const std::vector<std::string>& leaves,
                                               size_t limit) {
    for (const std::string* name : {&schema, &table, &column})
        if (Status s = policies::validateSqlIdentifier(*name); !s) return s;
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartArray();
    for (const auto& leaf : leaves) w.String(leaf.c_str(), static_cast<rapidjson::SizeType>(leaf.size()));
    w.EndArray();
    auto conn = connectSource(conninfo, access);
    if (!conn) return conn.status();
    try {
        pqxx::read_transaction tx(**conn);
        const std::string c = policies::quoteSqlIdentifier(column);
        pqxx::result r =
            tx.exec_params("SELECT DISTINCT " + c + "::text FROM " + policies::quoteSqlIdentifier(schema) + "." +
                               policies::quoteSqlIdentifier(table) + " WHERE " + c + " IS NOT NULL AND " + c +
                               "::text NOT IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY 1 LIMIT $2",
                           std::string(buffer.GetString(), buffer.GetSize()), static_cast<int64_t>(limit));
        tx.commit();
        std::vector<std::string> out;
        for (const auto& row : r) out.push_back(row[0].as<std::string>());
        return out;
    } catch (const std::exception& e) {
        return failedPrecondition("reading the values of " + column + " failed: " + scrubPassword(e.what(), conninfo));
    }
}

bool typeCompatible(anon::ColumnType declared, const std::string& t) {
    auto oneOf = [&](std::initializer_list<const char*> names) {
        for (const char* n : names)
            if (t == n) return true;
        return false;
    };
    switch (declared) {
    case anon::ColumnType::Integer: return oneOf({"smallint", "integer", "bigint"});
    case anon::ColumnType::Decimal:
        return oneOf({"smallint", "integer", "bigint", "numeric", "real", "double precision"});
    case anon::ColumnType::Date: return oneOf({"date"});
    case anon::ColumnType::Timestamp: return oneOf({"date", "timestamp without time zone", "timestamp with time zone"});
    case anon::ColumnType::Text:
        // Every scalar has a text form; binary, structured and array values do not release as text.
        return !oneOf({"bytea", "ARRAY", "json", "jsonb", "xml", "tsvector", "tsquery"});
    }
    return false;
}

// ---- sources ------------------------------------------------------------------------------------

Result<std::optional<std::string>> sourceAgency(pqxx::connection& conn, const std::string& name) {
    return guarded<std::optional<std::string>>("reading source", [&]() -> Result<std::optional<std::string>> {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec_params("SELECT agency FROM sources WHERE name = $1", name);
        tx.commit();
        if (r.empty()) return std::optional<std::string>();
        return std::optional<std::string>(r[0][0].as<std::string>());
    });
}

Result<SourcePutResult> putSource(pqxx::connection& conn, const SourceSecretKey& key, const auth::Principal& principal,
                                  const std::string& name, const std::string& agency, const std::string& conninfo,
                                  const BeforeCommit& beforeCommit) {
    if (Status s = checkAgencyScope(principal, agency); !s) return s;
    auto sealed = key.seal(conninfo);
    if (!sealed) return sealed.status();
    return guarded<SourcePutResult>("storing source", [&]() -> Result<SourcePutResult> {
        pqxx::work tx(conn);
        pqxx::result existing = tx.exec_params("SELECT agency FROM sources WHERE name = $1 FOR UPDATE", name);
        SourcePutResult out;
        out.created = existing.empty();
        ChangeFacts facts;
        facts.action = "source.put";
        facts.source = name;
        facts.details["agency"] = agency;
        facts.details["created"] = out.created;
        if (!out.created) {
            std::string previous = existing[0][0].as<std::string>();
            if (Status s = checkAgencyScope(principal, previous); !s) return s;
            if (previous != agency) {
                pqxx::result used = tx.exec_params("SELECT count(*) FROM datasets WHERE source = $1", name);
                if (used[0][0].as<int64_t>() > 0) {
                    return failedPrecondition("source " + name + " is used by datasets of agency \"" + previous +
                                              "\"; it cannot move to agency \"" + agency + "\"");
                }
                facts.details["previous_agency"] = previous;
            }
        }
        pqxx::binarystring nonce(sealed->nonce.data(), sealed->nonce.size());
        pqxx::binarystring ciphertext(sealed->ciphertext.data(), sealed->ciphertext.size());
        tx.exec_params(
            "INSERT INTO sources (name, agency, conninfo_nonce, conninfo_sealed, created_by) VALUES ($1, $2, $3, $4, "
            "$5) "
            "ON CONFLICT (name) DO UPDATE SET agency = EXCLUDED.agency, conninfo_nonce = EXCLUDED.conninfo_nonce, "
            "conninfo_sealed = EXCLUDED.conninfo_sealed, updated_at = now()",
            name, agency, nonce, ciphertext, principal.name);
        if (Status s = beforeCommit(facts); !s) return s;  // rolls back
        tx.commit();
        return out;
    });
}

Result<std::vector<SourceSummary>> listSources(pqxx::connection& conn, const std::optional<std::string>& agency) {
    return guarded<std::vector<SourceSummary>>("listing sources", [&]() -> Result<std::vector<SourceSummary>> {
        pqxx::read_transaction tx(conn);
        std::string sql =
            "SELECT name, agency, created_by, " + isoOf("created_at") + ", " + isoOf("updated_at") + " FROM sources";
        pqxx::result r = agency ? tx.exec_params(sql + " WHERE agency = $1 ORDER BY name", *agency)
                                : tx.exec(sql + " ORDER BY name");
        tx.commit();
        std::vector<SourceSummary> out;
        for (const auto& row : r) {
            out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                           row[3].as<std::string>(), row[4].as<std::string>()});
        }
        return out;
    });
}

// ---- datasets -----------------------------------------------------------------------------------

Result<DatasetPutResult> putDataset(pqxx::connection& conn, const auth::Principal& principal, const Dataset& dataset,
                                    const BeforeCommit& beforeCommit,
                                    std::vector<std::pair<std::string, policies::ValidationErrors>>* policyErrors) {
    if (Status s = checkAgencyScope(principal, dataset.agency); !s) return s;
    return guarded<DatasetPutResult>("storing dataset", [&]() -> Result<DatasetPutResult> {
        pqxx::work tx(conn);
        // Lock the source too: its agency must not change under us.
        pqxx::result src = tx.exec_params("SELECT agency FROM sources WHERE name = $1 FOR SHARE", dataset.source);
        if (src.empty()) return notFound("no source named \"" + dataset.source + "\"");
        if (src[0][0].as<std::string>() != dataset.agency) {
            return Status(StatusCode::Aborted, "source " + dataset.source + " changed agency; retry");
        }
        pqxx::result existing = tx.exec_params("SELECT agency FROM datasets WHERE name = $1 FOR UPDATE", dataset.name);
        DatasetPutResult out;
        out.created = existing.empty();
        if (!out.created) {
            if (Status s = checkAgencyScope(principal, existing[0][0].as<std::string>()); !s) return s;
            // Every policy still in force must keep loading against the new definition.
            policies::DatasetDescription description = dataset.description();
            pqxx::result active = tx.exec_params(
                "SELECT p.name, v.document FROM policies p JOIN policy_versions v ON v.dataset = p.dataset AND "
                "v.name = p.name AND v.version = p.current_version WHERE p.dataset = $1 AND p.retired_at IS NULL "
                "ORDER BY p.name",
                dataset.name);
            std::vector<std::pair<std::string, policies::ValidationErrors>> broken;
            for (const auto& row : active) {
                policies::PolicyLoadOptions options;
                options.dataset = &description;
                auto loaded = policies::loadPolicy(row[1].as<std::string>(), options);
                if (!loaded.ok()) broken.emplace_back(row[0].as<std::string>(), std::move(loaded.errors));
            }
            if (!broken.empty()) {
                std::string names;
                for (const auto& [p, errors] : broken) names += (names.empty() ? "" : ", ") + p;
                if (policyErrors) *policyErrors = std::move(broken);
                return failedPrecondition("the new definition breaks policies in force (" + names +
                                          "); retire or update them first");
            }
        }
        tx.exec_params(
            "INSERT INTO datasets (name, agency, source, definition, created_by) VALUES ($1, $2, $3, $4::jsonb, $5) "
            "ON CONFLICT (name) DO UPDATE SET agency = EXCLUDED.agency, source = EXCLUDED.source, "
            "definition = EXCLUDED.definition, updated_at = now()",
            dataset.name, dataset.agency, dataset.source, definitionJson(dataset), principal.name);
        ChangeFacts facts;
        facts.action = "dataset.put";
        facts.source = dataset.source;
        facts.dataset = dataset.name;
        facts.details["agency"] = dataset.agency;
        facts.details["table"] = dataset.schema + "." + dataset.table;
        facts.details["columns"] = static_cast<uint64_t>(dataset.columns.size());
        facts.details["created"] = out.created;
        if (Status s = beforeCommit(facts); !s) return s;
        tx.commit();
        return out;
    });
}

// ---- policies -----------------------------------------------------------------------------------

namespace {

// Locks the dataset row (so the dataset cannot change or move while a version is written) and
// checks the scope. NotFound / PermissionDenied.
Status lockDatasetForPolicy(pqxx::transaction_base& tx, const auth::Principal& principal, const std::string& dataset) {
    pqxx::result d = tx.exec_params("SELECT agency FROM datasets WHERE name = $1 FOR SHARE", dataset);
    if (d.empty()) return notFound("no dataset named \"" + dataset + "\"");
    return checkAgencyScope(principal, d[0][0].as<std::string>());
}

}  // namespace

Result<PolicyPutResult> putPolicyVersion(pqxx::connection& conn, const auth::Principal& principal,
                                         const std::string& dataset, const std::string& policy,
                                         const std::string& document, const std::string& contentHash,
                                         const BeforeCommit& beforeCommit) {
    constexpr int kAttempts = 8;
    for (int attempt = 1;; ++attempt) {
        try {
            pqxx::work tx(conn);
            if (Status s = lockDatasetForPolicy(tx, principal, dataset); !s) return s;
            // The policies row is the per-policy lock: create it (version 0 = none yet) if absent,
            // then lock it. Concurrent creators wait on the unique index and find the row.
            tx.exec_params(
                "INSERT INTO policies (dataset, name, current_version) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
                dataset, policy);
            pqxx::result head = tx.exec_params(
                "SELECT current_version, retired_at IS NOT NULL FROM policies WHERE dataset = $1 AND name = $2 "
                "FOR UPDATE",
                dataset, policy);
            if (head.empty()) return internalError("policy row vanished while locked");
            int32_t current = head[0][0].as<int32_t>();
            if (head[0][1].as<bool>()) {
                return Status(StatusCode::Aborted,
                              "policy " + dataset + "/" + policy + " is retired; publish under a new policy name");
            }
            PolicyPutResult out;
            if (current > 0) {
                out.previous = current;
                pqxx::result cur = tx.exec_params(
                    "SELECT content_hash FROM policy_versions WHERE dataset = $1 AND name = $2 AND version = $3",
                    dataset, policy, current);
                if (!cur.empty() && cur[0][0].as<std::string>() == contentHash) {
                    out.version = current;
                    out.contentHash = contentHash;
                    out.created = false;
                    tx.commit();
                    return out;
                }
            }
            out.version = current + 1;
            out.contentHash = contentHash;
            out.created = true;
            tx.exec_params(
                "INSERT INTO policy_versions (dataset, name, version, content_hash, document, created_by) VALUES "
                "($1, $2, $3, $4, $5, $6)",
                dataset, policy, out.version, contentHash, document, principal.name);
            tx.exec_params("UPDATE policies SET current_version = $3 WHERE dataset = $1 AND name = $2", dataset, policy,
                           out.version);
            ChangeFacts facts;
            facts.action = "policy.put";
            facts.dataset = dataset;
            facts.policy = policy;
            facts.policyVersion = out.version;
            facts.details["content_hash"] = contentHash;
            facts.details["version"] = static_cast<int64_t>(out.version);
            if (out.previous) facts.details["previous_version"] = static_cast<int64_t>(*out.previous);
            if (Status s = beforeCommit(facts); !s) return s;
            tx.commit();
            return out;
        } catch (const pqxx::sql_error& e) {
            if (attempt < kAttempts && isRetryable(e)) continue;
            return db::statusFromException(std::current_exception(), "storing policy version");
        } catch (...) { return db::statusFromException(std::current_exception(), "storing policy version"); }
    }
}

Result<PolicyRetireResult> retirePolicy(pqxx::connection& conn, const auth::Principal& principal,
                                        const std::string& dataset, const std::string& policy,
                                        const BeforeCommit& beforeCommit) {
    return guarded<PolicyRetireResult>("retiring policy", [&]() -> Result<PolicyRetireResult> {
        pqxx::work tx(conn);
        if (Status s = lockDatasetForPolicy(tx, principal, dataset); !s) return s;
        pqxx::result head = tx.exec_params(
            "SELECT p.current_version, v.content_hash, p.retired_at IS NOT NULL, " + isoOf("p.retired_at") +
                " FROM policies p JOIN policy_versions v ON v.dataset = p.dataset AND v.name = p.name AND "
                "v.version = p.current_version WHERE p.dataset = $1 AND p.name = $2 FOR UPDATE OF p",
            dataset, policy);
        if (head.empty()) return notFound("dataset \"" + dataset + "\" has no policy named \"" + policy + "\"");
        PolicyRetireResult out;
        out.version = head[0][0].as<int32_t>();
        out.contentHash = head[0][1].as<std::string>();
        out.alreadyRetired = head[0][2].as<bool>();
        if (out.alreadyRetired) {
            out.retiredAt = head[0][3].as<std::string>();
            tx.commit();
            return out;
        }
        pqxx::result r = tx.exec_params("UPDATE policies SET retired_at = now() WHERE dataset = $1 AND name = $2 "
                                        "RETURNING " +
                                            isoOf("retired_at"),
                                        dataset, policy);
        out.retiredAt = r[0][0].as<std::string>();
        ChangeFacts facts;
        facts.action = "policy.retire";
        facts.dataset = dataset;
        facts.policy = policy;
        facts.policyVersion = out.version;
        facts.details["content_hash"] = out.contentHash;
        facts.details["version"] = static_cast<int64_t>(out.version);
        if (Status s = beforeCommit(facts); !s) return s;
        tx.commit();
        return out;
    });
}

Result<std::vector<PolicyVersionInfo>> policyHistory(pqxx::connection& conn, const std::string& dataset,
                                                     const std::string& policy) {
    return guarded<std::vector<PolicyVersionInfo>>(
        "reading policy history", [&]() -> Result<std::vector<PolicyVersionInfo>> {
            pqxx::read_transaction tx(conn);
            pqxx::result r =
                tx.exec_params("SELECT version, content_hash, created_by, " + isoOf("created_at") +
                                   " FROM policy_versions WHERE dataset = $1 AND name = $2 ORDER BY version",
                               dataset, policy);
            tx.commit();
            std::vector<PolicyVersionInfo> out;
            for (const auto& row : r) {
                out.push_back({row[0].as<int32_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                               row[3].as<std::string>()});
            }
            return out;
        });
}

Result<std::vector<DatasetPolicies>> listDatasetPolicies(pqxx::connection& conn,
                                                         const std::optional<std::string>& agency) {
    return guarded<std::vector<DatasetPolicies>>("listing datasets", [&]() -> Result<std::vector<DatasetPolicies>> {
        pqxx::read_transaction tx(conn);
        const std::string sql = "SELECT d.name, p.name FROM datasets d LEFT JOIN policies p ON p.dataset = d.name";
        const std::string order = " ORDER BY d.name, p.name";
        pqxx::result r = agency ? tx.exec_params(sql + " WHERE d.agency = $1" + order, *agency) : tx.exec(sql + order);
        tx.commit();
        std::vector<DatasetPolicies> out;
        for (const auto& row : r) {
            const auto dataset = row[0].as<std::string>();
            if (out.empty() || out.back().dataset != dataset) out.push_back({dataset, {}});
            if (!row[1].is_null()) out.back().policies.push_back(row[1].as<std::string>());
        }
        return out;
    });
}

Result<std::vector<StoredPolicyVersion>> listPolicyVersions(pqxx::connection& conn) {
    return guarded<std::vector<StoredPolicyVersion>>(
        "listing policy versions", [&]() -> Result<std::vector<StoredPolicyVersion>> {
            pqxx::read_transaction tx(conn);
            pqxx::result r =
                tx.exec("SELECT dataset, name, version, document FROM policy_versions ORDER BY dataset, name, version");
            tx.commit();
            std::vector<StoredPolicyVersion> out;
            out.reserve(r.size());
            for (const auto& row : r)
                out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<int32_t>(),
                               row[3].as<std::string>()});
            return out;
        });
}

Result<PolicyVersionDocument> policyVersionDocument(pqxx::connection& conn, const std::string& dataset,
                                                    const std::string& policy, int32_t version) {
    return guarded<PolicyVersionDocument>("reading a policy version", [&]() -> Result<PolicyVersionDocument> {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec_params("SELECT version, content_hash, created_by, " + isoOf("created_at") +
                                            ", document FROM policy_versions WHERE dataset = $1 AND name = $2 "
                                            "AND version = $3",
                                        dataset, policy, version);
        tx.commit();
        if (r.empty())
            return notFound("policy \"" + policy + "\" of dataset \"" + dataset + "\" has no version " +
                            std::to_string(version));
        const auto& row = r[0];
        return PolicyVersionDocument{
            {row[0].as<int32_t>(), row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>()},
            row[4].as<std::string>()};
    });
}

Result<std::set<std::string, std::less<>>> recipientNames(pqxx::connection& conn) {
    return guarded<std::set<std::string, std::less<>>>(
        "listing recipients", [&]() -> Result<std::set<std::string, std::less<>>> {
            pqxx::read_transaction tx(conn);
            pqxx::result r =
                tx.exec_params("SELECT name FROM principals WHERE role = 'partner' AND disabled_at IS NULL "
                               "UNION ALL SELECT $1 || name FROM principal_groups",
                               std::string(auth::kGroupRecipientPrefix));
            tx.commit();
            std::set<std::string, std::less<>> out;
            for (const auto& row : r) out.insert(row[0].as<std::string>());
            return out;
        });
}

Result<std::vector<ActivePolicyRef>> activePolicies(pqxx::transaction_base& tx) {
    return guarded<std::vector<ActivePolicyRef>>("listing policies", [&]() -> Result<std::vector<ActivePolicyRef>> {
        pqxx::result r = tx.exec("SELECT dataset, name FROM policies WHERE retired_at IS NULL AND current_version > 0 "
                                 "ORDER BY dataset, name");
        std::vector<ActivePolicyRef> out;
        for (const auto& row : r) out.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
        return out;
    });
}

uint64_t PartnerCatalogState::countToday(const std::string& dataset, const std::string& policy) const {
    auto it = extractsToday.find(std::pair(dataset, policy));
    return it == extractsToday.end() ? 0 : it->second;
}

Result<PartnerCatalogState> partnerCatalogState(pqxx::connection& conn, const std::string& principal) {
    return guarded<PartnerCatalogState>("reading the partner's catalog state", [&]() -> Result<PartnerCatalogState> {
        // One statement in autocommit: its own snapshot, one round trip; prepared, as it runs on every
        // catalog request.
        static const std::string sql =
            std::string("SELECT 'generation', NULL, NULL, generation FROM catalog_generation "
                        "UNION ALL SELECT 'group', g.group_name, NULL, NULL FROM (") +
            auth::kGroupsOfPrincipalSql +
            ") g "
            "UNION ALL SELECT 'today', dataset, policy, count(*) FROM extracts WHERE recipient = $1 AND " +
            kCountedTodaySql + " GROUP BY dataset, policy";
        pqxx::nontransaction tx(conn);
        pqxx::result r = db::execPrepared(tx, "custodian_partner_catalog_state", sql, principal);
        PartnerCatalogState out;
        bool sawGeneration = false;
        for (const auto& row : r) {
            const std::string_view kind = row[0].c_str();
            if (kind == "generation") {
                out.generation = row[3].as<int64_t>();
                sawGeneration = true;
            } else if (kind == "group") {
                out.groups.push_back(row[1].as<std::string>());
            } else {
                out.extractsToday[{row[1].as<std::string>(), row[2].as<std::string>()}] =
                    static_cast<uint64_t>(row[3].as<int64_t>());
            }
        }
        if (!sawGeneration) return internalError("catalog_generation has no row (migration 0008)");
        std::sort(out.groups.begin(), out.groups.end());
        return out;
    });
}

}  // namespace custodian::catalog
