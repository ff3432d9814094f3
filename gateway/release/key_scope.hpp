#pragma once
// Which key derivation a release's keyed transforms use (docs/formats/csv-and-hierarchies.md,
// "Keyed transforms"). New releases key pseudonyms and date shifts per (dataset, policy,
// recipient), derivation 2. A (dataset, policy, recipient) that already received a release keyed
// with derivation 1 — per (dataset, recipient), before per-policy keys — keeps derivation 1, so the
// recipient's pseudonyms under that policy stay what they were (a longitudinal study keeps
// working). Each extract row records the derivation it used (migrations/0007_key_derivation.sql),
// and so does its manifest.

#include <pqxx/connection>

#include <optional>
#include <string>

#include "anonymizer/status.hpp"
#include "anonymizer/transform.hpp"

namespace custodian::release {

// The derivation's number as stored and signed: 1 or 2.
int keyDerivationNumber(anon::KeyDerivation derivation) noexcept;
// The derivation numbered `number`, or nullopt for another number.
std::optional<anon::KeyDerivation> keyDerivationOfNumber(int64_t number) noexcept;

// The derivation the next release of `dataset` under `policy` to `recipient` uses: the oldest one
// among that scope's extracts that started streaming (any outcome: bytes may have left), else the
// current one. Runs its own transaction on `conn`.
Result<anon::KeyDerivation> keyDerivationFor(pqxx::connection& conn, const std::string& recipient,
                                             const std::string& dataset, const std::string& policy);

}  // namespace custodian::release
