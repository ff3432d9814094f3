#pragma once
// Changes to the catalog (sources, datasets, policy versions, retirement), each one transaction on
// the gateway database, with publisher scoping checked INSIDE the transaction against the locked
// rows (a concurrent change of a row's agency cannot slip between check and write).
//
// Audit before commit: every change calls `beforeCommit` with the facts of the change after the
// rows are written and before COMMIT. The routes append the audit entry there; if that fails the
// transaction is rolled back, so no change is ever visible without its audit entry.
//
// Scoping: admin may act on any agency; a publisher only on sources and datasets whose agency is
// principal.agency (a publisher without an agency can act on nothing). Violations are
// PermissionDenied with a message naming the agencies involved.
//
// Probing agency databases (testConnection, inspectTable, valuesOutside) opens a separate,
// short-lived libpq connection through connectSource (source_access.hpp: endpoint rules, connect
// timeout, never the gateway's own database); error messages never contain the password.

#include <pqxx/connection>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/catalog/source_access.hpp"
#include "json/canonical.hpp"
#include "policies/validation.hpp"

namespace custodian::catalog {

// What was changed, for the audit entry.
struct ChangeFacts {
    std::string action;  // "source.put", "dataset.put", "policy.put", "policy.retire"
    std::optional<std::string> source, dataset, policy;
    std::optional<int64_t> policyVersion;
    json::JsonValue::Object details;
};
using BeforeCommit = std::function<Status(const ChangeFacts&)>;

// PermissionDenied unless `principal` may manage objects of `agency`.
Status checkAgencyScope(const auth::Principal& principal, const std::string& agency);

// ---- agency databases ---------------------------------------------------------------------------

// Connects and runs SELECT 1. FailedPrecondition "cannot connect to the source database: ..." with
// the server's message (password values removed) when it fails, or a rule's refusal
// (refusedRule() names it).
Status testConnection(const std::string& conninfo, const SourceAccess& access);

struct SourceColumnInfo {
    std::string name;
    std::string dataType;  // information_schema.columns.data_type, e.g. "integer", "character varying"
};

// The columns of schema.table as the source user sees them (information_schema, parameterized).
// NotFound if the table or view does not exist or is not visible; PermissionDenied if the source
// user may not SELECT from it.
Result<std::vector<SourceColumnInfo>> inspectTable(const std::string& conninfo, const SourceAccess& access,
                                                   const std::string& schema, const std::string& table);

// Up to `limit` distinct non-null values of schema.table.column, as PostgreSQL's text form, that
// are not among `leaves` — for the coverage of hierarchies whose leaves are known (explicit
// groups). Reads the whole column once; names are validated and quoted, the leaves travel as one
// parameter.
Result<std::vector<std::string>> valuesOutside(const std::string& conninfo, const SourceAccess& access,
                                               const std::string& schema, const std::string& table,
                                               const std::string& column, const std::vector<std::string>& leaves,
                                               size_t limit);

// Whether a PostgreSQL column of `dataType` can be read as `declared`.
bool typeCompatible(anon::ColumnType declared, const std::string& dataType);

// ---- changes ------------------------------------------------------------------------------------

struct SourcePutResult {
    bool created = false;
};
// Creates or replaces the source (conninfo sealed with `key`). Also refuses (FailedPrecondition)
// to move a source to another agency while datasets use it.
Result<SourcePutResult> putSource(pqxx::connection& conn, const SourceSecretKey& key, const auth::Principal& principal,
                                  const std::string& name, const std::string& agency, const std::string& conninfo,
                                  const BeforeCommit& beforeCommit);

// The agency of an existing source (nullopt if absent), without decrypting anything.
Result<std::optional<std::string>> sourceAgency(pqxx::connection& conn, const std::string& name);

Result<std::vector<SourceSummary>> listSources(pqxx::connection& conn, const std::optional<std::string>& agency);

struct DatasetPutResult {
    bool created = false;
};
// Creates or replaces the dataset. `dataset.agency` must equal the source's agency (set by the
// caller from the source). When it replaces a dataset, every policy that is not retired must still
// load against the new columns; otherwise FailedPrecondition with `policyErrors` filled in.
Result<DatasetPutResult> putDataset(pqxx::connection& conn, const auth::Principal& principal, const Dataset& dataset,
                                    const BeforeCommit& beforeCommit,
                                    std::vector<std::pair<std::string, policies::ValidationErrors>>* policyErrors);

struct PolicyPutResult {
    int32_t version = 0;
    std::string contentHash;
    bool created = false;             // false: identical to the current version, nothing stored
    std::optional<int32_t> previous;  // the version that was current before
};
// Stores `document` (already validated; its content hash is `contentHash`) as the next version of
// dataset/policy unless it equals the current version. Serialised per policy by a row lock;
// retried on serialization failures and unique violations, so concurrent PUTs get distinct,
// consecutive versions. Aborted (409) if the policy is retired.
Result<PolicyPutResult> putPolicyVersion(pqxx::connection& conn, const auth::Principal& principal,
                                         const std::string& dataset, const std::string& policy,
                                         const std::string& document, const std::string& contentHash,
                                         const BeforeCommit& beforeCommit);

struct PolicyRetireResult {
    int32_t version = 0;
    std::string contentHash;
    bool alreadyRetired = false;
    std::string retiredAt;
};
Result<PolicyRetireResult> retirePolicy(pqxx::connection& conn, const auth::Principal& principal,
                                        const std::string& dataset, const std::string& policy,
                                        const BeforeCommit& beforeCommit);

// The datasets (of `agency`, or all), by name, each with the names of its policies (retired ones
// included), by name.
struct DatasetPolicies {
    std::string dataset;
    std::vector<std::string> policies;
};
Result<std::vector<DatasetPolicies>> listDatasetPolicies(pqxx::connection& conn,
                                                         const std::optional<std::string>& agency);

// One stored version of a policy: the document as submitted. NotFound if absent.
struct PolicyVersionDocument {
    PolicyVersionInfo info;
    std::string document;
};
Result<PolicyVersionDocument> policyVersionDocument(pqxx::connection& conn, const std::string& dataset,
                                                    const std::string& policy, int32_t version);

// Every stored version of every policy, by (dataset, policy, version): the transparency register
// classifies each release by the version it was made under.
struct StoredPolicyVersion {
    std::string dataset;
    std::string policy;
    int32_t version = 0;
    std::string document;
};
Result<std::vector<StoredPolicyVersion>> listPolicyVersions(pqxx::connection& conn);

// Version history, oldest first.
Result<std::vector<PolicyVersionInfo>> policyHistory(pqxx::connection& conn, const std::string& dataset,
                                                     const std::string& policy);

// The recipients a policy may name: enabled partner principals, and "group:NAME" for every
// recipient group (auth/groups.hpp).
Result<std::set<std::string, std::less<>>> recipientNames(pqxx::connection& conn);

// One entry per policy that is not retired, with its current version, for the catalog listing.
struct ActivePolicyRef {
    std::string dataset;
    std::string policy;
};
Result<std::vector<ActivePolicyRef>> activePolicies(pqxx::transaction_base& tx);

// The condition on `extracts` rows that count against a daily limit (release::countExtractsToday):
// started streaming (every outcome counts, so that dropping the connection does not get around the
// limit) since 00:00 UTC today.
inline constexpr char kCountedTodaySql[] =
    "status IN ('requested', 'completed', 'aborted') "
    "AND requested_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')";

// What a partner's GET /v1/catalog needs beside the listing (Catalog::listing), read in one
// statement (one round trip, one snapshot): the catalog generation, the partner's groups as of now,
// and its extracts today per (dataset, policy) that has any.
struct PartnerCatalogState {
    int64_t generation = 0;
    std::vector<std::string> groups;
    std::map<std::pair<std::string, std::string>, uint64_t, std::less<>> extractsToday;

    uint64_t countToday(const std::string& dataset, const std::string& policy) const;
};
Result<PartnerCatalogState> partnerCatalogState(pqxx::connection& conn, const std::string& principal);

}  // namespace custodian::catalog
