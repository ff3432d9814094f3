#pragma once
// Audit entries and their canonical bytes (docs/formats/audit.md). The leaf hash of entry i is
// SHA-256(0x00 ‖ canonicalJson(entry object)); the entry object always has every member below,
// with null for an absent optional value:
//   {"action":s,"actor":s,"client_address":s,"decision":s,"details":{...},"index":n,
//    "purpose":s|null,"reason":s|null,"request_id":s,"role":s,
//    "target":{"dataset":s|null,"policy":s|null,"policy_version":n|null,"source":s|null},
//    "time_ms":n}
// Text from requests may be any bytes; it is recorded with invalid UTF-8 replaced by U+FFFD.

#include <cstdint>
#include <optional>
#include <string>

#include "anonymizer/status.hpp"
#include "gateway/audit/merkle.hpp"
#include "json/canonical.hpp"

namespace custodian::audit {

struct AuditTarget {
    std::optional<std::string> source;
    std::optional<std::string> dataset;
    std::optional<std::string> policy;
    std::optional<int64_t> policyVersion;
    friend bool operator==(const AuditTarget&, const AuditTarget&) = default;
};

struct AuditEntry {
    uint64_t index = 0;
    int64_t timeMs = 0;  // Unix time in milliseconds
    std::string actor;   // principal name ("anonymous" before authentication)
    std::string role;    // admin | publisher | partner | auditor | none
    std::string action;  // e.g. "extract.requested", "extract.completed", "policy.put"
    AuditTarget target;
    std::optional<std::string> purpose;
    std::string decision;  // "allowed" | "denied" | "completed" | "aborted" | "failed"
    std::optional<std::string> reason;
    std::string requestId;
    std::string clientAddress;
    // Action-specific facts: rows released/suppressed, achieved k/l/t, digests, policy hash…
    // Integers, strings, booleans, null, arrays and objects only (fractions as decimal strings).
    json::JsonValue details = json::JsonValue::Object{};
    friend bool operator==(const AuditEntry&, const AuditEntry&) = default;
};

json::JsonValue entryToJson(const AuditEntry& entry);
Result<AuditEntry> entryFromJson(const json::JsonValue& json);

// The canonical bytes that are hashed into the log. Never fails for entries built by entryToJson
// from sanitized text; InvalidArgument if `details` holds invalid UTF-8.
Result<std::string> canonicalEntryBytes(const AuditEntry& entry);
Result<Hash> entryLeafHash(const AuditEntry& entry);

}  // namespace custodian::audit
