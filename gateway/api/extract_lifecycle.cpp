#include "gateway/api/extract_lifecycle.hpp"

#include <pqxx/pqxx>

#include <cstdio>
#include <functional>

#include "gateway/api/record.hpp"
#include "gateway/api/services.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/release/extract_store.hpp"

namespace custodian::api {

namespace {

// An entry that closes or refuses the extract: `why` as its reason, `details` added to its details.
audit::AuditEntry entryWithReason(const ExtractFacts& facts, std::string action, std::string decision,
                                  const Status& why, const json::JsonValue::Object& details) {
    audit::AuditEntry e = extractEntry(facts, std::move(action), std::move(decision));
    e.reason = json::sanitizeUtf8(why.message());
    for (const auto& [k, v] : details) e.details.asObject()[k] = v;
    return e;
}

// The facts of an extract known only from its row (the sweeper's): no request, no encryption flag.
ExtractFacts factsOf(const release::ExtractRecord& extract) {
    ExtractFacts facts;
    facts.extractId = extract.id;
    facts.dataset = extract.dataset;
    facts.policy = extract.policy;
    facts.policyVersion = extract.policyVersion;
    facts.policyHash = extract.policyHash;
    facts.purpose = extract.purpose;
    facts.recipient = extract.recipient;
    facts.role = "partner";
    facts.keyDerivation = extract.keyDerivation;
    facts.format = extract.format == "ndjson" ? release::ExtractFormat::Ndjson : release::ExtractFormat::Csv;
    facts.requestedEntryIndex = extract.requestedEntryIndex;
    return facts;
}

// Runs the row change that follows a transition's entry. The entry is the outcome: a row left open
// is closed by a sweeper once this request is over, and the sweeper adopts the entry instead of
// writing a second (extract_sweeper.hpp). So a failure is only reported.
void changeRowAfterEntry(Services& services, const std::string& id, const char* failure,
                         const std::function<Status(pqxx::connection&)>& change) {
    if (!services.db) return;
    if (Status s = services.db->withConnection(change); !s)
        std::fprintf(stderr, "custodian: extract %s: %s: %s\n", id.c_str(), failure, s.message().c_str());
}

}  // namespace

audit::AuditEntry extractEntry(const ExtractFacts& facts, std::string action, std::string decision) {
    audit::AuditEntry e;
    e.actor = facts.recipient;
    e.role = facts.role;
    e.requestId = facts.requestId;
    e.clientAddress = facts.clientAddress;
    e.action = std::move(action);
    e.decision = std::move(decision);
    e.target.dataset = facts.dataset;
    e.target.policy = facts.policy;
    if (facts.policyVersion > 0) e.target.policyVersion = facts.policyVersion;
    e.purpose = json::sanitizeUtf8(facts.purpose);
    json::JsonValue::Object details;
    details["extract_id"] = facts.extractId;
    details["format"] = release::formatName(facts.format);
    details["encrypted"] = facts.encrypted;
    if (!facts.policyHash.empty()) details["policy_sha256"] = facts.policyHash;
    if (facts.keyDerivation > 0) details["key_derivation"] = facts.keyDerivation;
    e.details = std::move(details);
    return e;
}

std::string_view stateName(ExtractState state) {
    switch (state) {
    case ExtractState::Admitted: return "admitted";
    case ExtractState::Preparing: return "preparing";
    case ExtractState::Requested: return "requested";
    case ExtractState::Completed: return "completed";
    case ExtractState::Aborted: return "aborted";
    case ExtractState::NotReleased: return "not_released";
    }
    return "unknown";
}

Status ExtractLifecycle::refuse(RequestContext& ctx, const ExtractFacts& facts, const Status& why,
                                const json::JsonValue::Object& details) {
    auto recorded = record(ctx, entryWithReason(facts, "extract.requested", "denied", why, details));
    return recorded ? Status::ok() : recorded.status();
}

Result<std::unique_ptr<ExtractLifecycle>> ExtractLifecycle::admit(RequestContext& ctx, ExtractFacts facts,
                                                                  const std::optional<std::string>& recipientEntry) {
    audit::AuditEntry requested = extractEntry(facts, "extract.requested", "allowed");
    if (recipientEntry) requested.details.asObject()["recipient_entry"] = *recipientEntry;
    auto index = record(ctx, std::move(requested));
    if (!index) return index.status();
    facts.requestedEntryIndex = *index;
    return std::unique_ptr<ExtractLifecycle>(new ExtractLifecycle(ctx.services, std::move(facts)));
}

Result<bool> ExtractLifecycle::closeInterrupted(Services& services, const release::ExtractRecord& extract,
                                                int32_t recordedBy, bool own) {
    if (!services.db) return unavailable("the database is not available");
    const ExtractFacts facts = factsOf(extract);
    auto recordEntry = [&](bool streaming) -> Result<uint64_t> {
        audit::AuditEntry entry = extractEntry(facts, "extract.aborted", "interrupted");
        if (own)
            entry.reason = streaming ? "this gateway's request streaming this extract ended without recording its end "
                                       "(the database was unavailable)"
                                     : "this gateway's request preparing this extract ended without recording its end "
                                       "(the database was unavailable); nothing of it was sent";
        else
            entry.reason = streaming ? "the gateway process streaming this extract stopped before finishing it"
                                     : "the gateway process preparing this extract stopped before sending any of it";
        auto& details = entry.details.asObject();
        details.erase("encrypted");  // not stored with the extract
        details["requested_entry"] = facts.requestedEntryIndex;
        if (extract.gatewayInstance > 0) details["gateway_instance"] = static_cast<int64_t>(extract.gatewayInstance);
        details["recorded_by_instance"] = static_cast<int64_t>(recordedBy);
        return record(services, std::move(entry));
    };
    bool closed = false;
    Status s = services.db->withConnection([&](pqxx::connection& conn) -> Status {
        auto taken = release::abortInterruptedExtract(conn, extract.id, recordEntry, own ? recordedBy : 0);
        if (!taken) return taken.status();
        closed = *taken;
        return Status::ok();
    });
    if (!s) return s;
    return closed;
}

ExtractState ExtractLifecycle::state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

Status ExtractLifecycle::expect(std::initializer_list<ExtractState> from, std::string_view transition) const {
    for (ExtractState s : from)
        if (state_ == s) return Status::ok();
    return failedPrecondition("extract " + facts_.extractId + " is " + std::string(stateName(state_)) + ": it cannot " +
                              std::string(transition));
}

Status ExtractLifecycle::open() {
    std::lock_guard lock(mutex_);
    if (Status s = expect({ExtractState::Admitted}, "be prepared"); !s) return s;
    if (!services_.db) return unavailable("the database is not available");
    // Live from before its row exists (live_extracts.hpp): a sweeper of this process never closes
    // it under this request's feet.
    if (services_.liveExtracts && !live_) live_ = services_.liveExtracts->add(facts_.extractId);
    const release::ExtractRecord row{
        facts_.extractId,           facts_.dataset,     facts_.policy,       facts_.policyVersion,
        facts_.policyHash,          facts_.recipient,   facts_.purpose,      release::formatName(facts_.format),
        facts_.requestedEntryIndex, services_.instance, facts_.keyDerivation};
    Status inserted =
        services_.db->withConnection([&](pqxx::connection& conn) { return release::insertExtract(conn, row); });
    if (!inserted) return inserted;
    state_ = ExtractState::Preparing;
    return Status::ok();
}

Status ExtractLifecycle::start(const std::optional<release::LedgerRow>& ledger) {
    std::lock_guard lock(mutex_);
    if (Status s = expect({ExtractState::Preparing}, "start streaming"); !s) return s;
    Status started = services_.db->withConnection(
        [&](pqxx::connection& conn) { return release::startExtract(conn, facts_.extractId, ledger); });
    if (!started) return started;
    state_ = ExtractState::Requested;
    return Status::ok();
}

Status ExtractLifecycle::notReleased(RequestContext& ctx, std::string decision, const Status& why,
                                     const json::JsonValue::Object& details) {
    std::lock_guard lock(mutex_);
    if (Status s = expect({ExtractState::Admitted, ExtractState::Preparing, ExtractState::Requested}, "end unreleased");
        !s)
        return s;
    json::JsonValue::Object closing = details;
    closing["requested_entry"] = facts_.requestedEntryIndex;
    auto index = record(ctx, entryWithReason(facts_, "extract.aborted", std::move(decision), why, closing));
    if (!index) return index.status();
    const bool rowInserted = state_ != ExtractState::Admitted;
    state_ = ExtractState::NotReleased;
    if (rowInserted)
        changeRowAfterEntry(services_, facts_.extractId, "could not be closed", [&](pqxx::connection& conn) {
            return release::closeUnreleasedExtract(conn, facts_.extractId, *index);
        });
    return Status::ok();
}

Status ExtractLifecycle::complete(const ReleasedExtract& released) {
    std::lock_guard lock(mutex_);
    if (Status s = expect({ExtractState::Requested}, "complete"); !s) return s;
    audit::AuditEntry entry = extractEntry(facts_, "extract.completed", "completed");
    auto& d = entry.details.asObject();
    d["rows_released"] = released.rowsReleased;
    d["rows_suppressed"] = released.rowsSuppressed;
    d["achieved"] = released.achieved;
    d["plaintext_sha256"] = crypto::toHex(released.digests.plaintextSha256);
    d["ciphertext_sha256"] = crypto::toHex(released.digests.ciphertextSha256);
    d["plaintext_bytes"] = released.digests.plaintextBytes;
    d["ciphertext_bytes"] = released.digests.ciphertextBytes;
    d["requested_entry"] = facts_.requestedEntryIndex;
    for (const auto& [k, v] : released.search) d[k] = v;
    auto index = record(services_, std::move(entry));
    if (!index) return index.status();

    crypto::ExtractManifest manifest;
    manifest.extractId = facts_.extractId;
    manifest.dataset = facts_.dataset;
    manifest.policy = facts_.policy;
    manifest.policyVersion = facts_.policyVersion;
    manifest.policySha256 = facts_.policyHash;
    manifest.purpose = json::sanitizeUtf8(facts_.purpose);
    manifest.recipient = facts_.recipient;
    manifest.keyDerivation = static_cast<uint64_t>(facts_.keyDerivation);
    manifest.createdMs = facts_.createdMs;
    manifest.format = release::formatName(facts_.format);
    manifest.rowsReleased = released.rowsReleased;
    manifest.rowsSuppressed = released.rowsSuppressed;
    manifest.columns = released.columns;
    manifest.models = released.achieved;
    manifest.informationLoss = released.informationLoss;
    manifest.digests = released.digests;
    manifest.auditIndex = *index;
    if (!services_.signingKey) return unavailable("the gateway signing key is not loaded");
    auto signedManifest = crypto::signManifest(manifest, *services_.signingKey);
    if (!signedManifest) return signedManifest.status();
    // Without its row the partner cannot get the manifest: the caller withholds the final chunk so
    // that nobody ends up with an extract that cannot be verified.
    Status stored = services_.db ? services_.db->withConnection([&](pqxx::connection& conn) {
        return release::completeExtract(conn, facts_.extractId, *index, signedManifest->document,
                                        signedManifest->signature);
    })
                                 : unavailable("no database");
    if (!stored) return stored;
    state_ = ExtractState::Completed;
    return Status::ok();
}

Status ExtractLifecycle::abort(std::string decision, const Status& why, std::optional<StreamProgress> progress) {
    std::lock_guard lock(mutex_);
    if (Status s = expect({ExtractState::Requested}, "abort"); !s) return s;
    state_ = ExtractState::Aborted;
    json::JsonValue::Object details{{"requested_entry", facts_.requestedEntryIndex}};
    if (progress) {
        details["rows_read"] = progress->rowsRead;
        details["rows_released"] = progress->rowsReleased;
    }
    auto index = record(services_, entryWithReason(facts_, "extract.aborted", std::move(decision), why, details));
    if (!index) {
        // The row stays requested: the sweeper records the abort once the log can be written
        // (extract_sweeper.hpp), so the extract never ends closed without a closing entry.
        std::fprintf(stderr, "custodian: extract %s: the abort could not be audited: %s\n", facts_.extractId.c_str(),
                     index.status().message().c_str());
        return index.status();
    }
    changeRowAfterEntry(services_, facts_.extractId, "could not be marked aborted",
                        [&](pqxx::connection& conn) { return release::abortExtract(conn, facts_.extractId, *index); });
    return Status::ok();
}

}  // namespace custodian::api
