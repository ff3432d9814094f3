#pragma once
// The `extracts` table (migrations/0003_catalog.sql, 0005, 0006, 0007): one row per extract whose
// "extract.requested" entry was written, with its status and, once completed, the signed manifest:
//   preparing -> requested (streaming) -> completed | aborted
//   preparing -> not_released (closed before the first byte: refused, failed, or interrupted)
// The functions that change a status are called by the extract lifecycle
// (gateway/api/extract_lifecycle.hpp), which pairs each change with its audit entry.
// Each function runs its own transaction on `conn` and turns libpqxx exceptions into Status
// (Unavailable for a lost database).

#include <pqxx/connection>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::release {

struct ExtractRecord {
    std::string id;
    std::string dataset;
    std::string policy;
    int32_t policyVersion = 0;
    std::string policyHash;
    std::string recipient;
    std::string purpose;
    std::string format;
    uint64_t requestedEntryIndex = 0;
    int32_t gatewayInstance = 0;  // the process streaming it (api::Services::instance); 0 = unknown
    int keyDerivation = 0;        // 1 or 2, the keyed-transform key derivation (key_scope.hpp)
};

struct StoredExtract {
    ExtractRecord record;
    std::string status;                   // preparing | requested | completed | not_released | aborted
    std::optional<std::string> manifest;  // the signed manifest document, once completed
};

// A fresh extract id: "ext_" + 32 lowercase hex digits (128 random bits).
std::string newExtractId();

// Extracts `recipient` made under dataset/policy since 00:00 UTC today that started streaming
// (every outcome counts: a partner cannot get around the daily limit by dropping the connection;
// extracts still preparing or closed before streaming do not).
Result<uint64_t> countExtractsToday(pqxx::connection& conn, const std::string& recipient, const std::string& dataset,
                                    const std::string& policy);

// A new row in status preparing.
Status insertExtract(pqxx::connection& conn, const ExtractRecord& record);
// What a release let its recipient see, for the linkage ledger (migrations/0010_release_ledger.sql).
struct LedgerRow {
    std::string recipient;
    std::string dataset;
    std::string keyScope;  // the policy, or its linkage group "a+b"
    std::string policy;
    int32_t policyVersion = 0;
    std::string disclosed;  // JSON: release::disclosedBy()
    // How many releases of the scope under another policy version the linkage check saw: if another
    // such release was filed since (two extracts checked at once), the start is Aborted (409, retry)
    // instead of filing a release that was never checked against it. Releases of the same policy
    // version are not joined, so concurrent extracts under one version never conflict.
    uint64_t releasesChecked = 0;
};
// preparing -> requested, just before the first byte is sent; an error if the row is not preparing.
// With `ledger`, its row is written in the same transaction: from here on bytes may reach the
// recipient, so the release counts for every later linkage check, whether it completes or not.
// The transaction holds an advisory lock on the (recipient, dataset, key scope) while it compares
// the scope's releases with ledger->releasesChecked.
Status startExtract(pqxx::connection& conn, const std::string& id, const std::optional<LedgerRow>& ledger = {});

// The releases `recipient` holds of `dataset` in `keyScope` (any byte of them sent), oldest first.
struct LedgerEntry {
    std::string extractId;
    std::string policy;
    int32_t policyVersion = 0;
    std::string createdAt;  // RFC 3339, UTC
};
Result<std::vector<LedgerEntry>> ledgerEntries(pqxx::connection& conn, const std::string& recipient,
                                               const std::string& dataset, const std::string& keyScope);
// preparing (or requested, when no byte was sent) -> not_released with the closing entry: a
// refusal or failure before streaming.
Status closeUnreleasedExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex);
// Sets status completed, the finishing entry, and the manifest (signed document + signature).
Status completeExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex,
                       const std::string& manifestDocument, const std::string& signatureBase64);
// Sets status aborted (only if it is still requested) with the closing entry.
Status abortExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex);
// Extracts still preparing or requested whose gateway instance holds no lease
// (db::kInstanceLeaseClass), or that have no instance: their process is gone. `self` (this process) is never listed.
Result<std::vector<ExtractRecord>> findInterruptedExtracts(pqxx::connection& conn, int32_t self);
// Extracts of this process (`self`) still preparing or requested: the sweeper closes those whose
// request has ended (live_extracts.hpp).
Result<std::vector<ExtractRecord>> findOwnOpenExtracts(pqxx::connection& conn, int32_t self);
// Closes one interrupted extract, in one transaction that holds the row (FOR UPDATE SKIP LOCKED, so
// two sweepers never both take it): if it is still preparing or requested and still has no live
// instance (with `ownInstance`: still belongs to that instance, this process), `record` is called (it writes the audit
// entry and returns its index; `streaming` says whether the extract had started streaming) and the row is set aborted
// (it was streaming) or not_released, with that entry; if `record` fails, nothing changes. If the log already holds an
// "extract.aborted" entry for it (its writer died before updating the row), that entry is adopted
// and `record` is not called. Returns whether the row was taken.
Result<bool> abortInterruptedExtract(pqxx::connection& conn, const std::string& id,
                                     const std::function<Result<uint64_t>(bool streaming)>& record,
                                     int32_t ownInstance = 0);
// NotFound if absent.
Result<StoredExtract> loadExtract(pqxx::connection& conn, const std::string& id);

}  // namespace custodian::release
