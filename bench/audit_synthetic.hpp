#pragma once
// Shared by the audit benchmarks: a realistic synthetic audit entry (and process CPU time, from
// cpu_time.hpp).

#include <cstdint>
#include <random>
#include <string>

#include "gateway/audit/entry.hpp"
#include "cpu_time.hpp"
#include "gateway/crypto/digest.hpp"

namespace custodian::bench {

// A realistic mix of entries: extract requests/completions with digests, denials, policy changes.
inline audit::AuditEntry syntheticEntry(uint64_t i, std::mt19937_64& rng) {

    static const char* kActions[] = {"extract.requested", "extract.completed", "policy.put", "catalog.list",
                                     "audit.query"};
    audit::AuditEntry e;
    e.index = i;
    e.timeMs = 1795000000000 + static_cast<int64_t>(i) * 37;
    const uint64_t partner = rng() % 200;
    e.actor = "partner-" + std::to_string(partner);
    e.role = "partner";
    e.action = kActions[i % 5];
    e.target.dataset = "hospital_visits_" + std::to_string(rng() % 20);
    e.target.policy = "research";
    e.target.policyVersion = static_cast<int64_t>(rng() % 9 + 1);
    e.purpose = "epidemiological study " + std::to_string(partner % 17);
    const bool denied = rng() % 10 == 0;
    e.decision = denied ? "denied" : "allowed";
    if (denied) e.reason = "purpose not allowed by policy research v3";
    e.requestId = "01J" + std::to_string(rng());
    e.clientAddress = "198.51.100." + std::to_string(rng() % 254 + 1);
    json::JsonValue::Object details;
    if (e.action == "extract.completed") {
        details.emplace("rows_released", rng() % 1000000);
        details.emplace("rows_suppressed", rng() % 1000);
        details.emplace("k", 10);
        crypto::Sha256Digest d{};
        for (auto& b : d) b = static_cast<uint8_t>(rng());
        details.emplace("plaintext_sha256", crypto::toHex(d));
        details.emplace("ciphertext_sha256", crypto::toHex(crypto::sha256(d)));
    }
    e.details = std::move(details);
    return e;
}

}  // namespace custodian::bench
