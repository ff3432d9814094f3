#pragma once
// The `extracts` table (migrations/0003_catalog.sql): one row per extract that started streaming,
// with its outcome and, once completed, the signed manifest. Each function runs its own
// transaction on `conn` and turns libpqxx exceptions into Status (Unavailable for a lost database).

#include <pqxx/connection>

#include <cstdint>
#include <optional>
#include <string>

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
};

struct StoredExtract {
    ExtractRecord record;
    std::string status;                  // requested | completed | aborted
    std::optional<std::string> manifest; // the signed manifest document, once completed
};

// A fresh extract id: "ext_" + 32 lowercase hex digits (128 random bits).
std::string newExtractId();

// Extracts `recipient` made under dataset/policy since 00:00 UTC today (every outcome counts: a
// partner cannot get around the daily limit by dropping the connection).
Result<uint64_t> countExtractsToday(pqxx::connection& conn, const std::string& recipient, const std::string& dataset,
                                    const std::string& policy);

Status insertExtract(pqxx::connection& conn, const ExtractRecord& record);
// Sets status completed, the finishing entry, and the manifest (signed document + signature).
Status completeExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex,
                       const std::string& manifestDocument, const std::string& signatureBase64);
// Sets status aborted (only if it is still requested); finishedEntryIndex when the entry was written.
Status abortExtract(pqxx::connection& conn, const std::string& id, std::optional<uint64_t> finishedEntryIndex);
// NotFound if absent.
Result<StoredExtract> loadExtract(pqxx::connection& conn, const std::string& id);

}  // namespace custodian::release
