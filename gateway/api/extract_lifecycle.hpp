#pragma once
// One extract's lifecycle: its states, the `extracts` row that mirrors them
// (gateway/release/extract_store.hpp) and the audit entry of every transition. Nothing else changes
// an extract's state: the request handler (gateway/api/extract_routes.cpp) admits and prepares it,
// the ExtractProducer completes or aborts it, the ExtractSweeper closes the ones whose request or
// process is gone (docs/audit.md, "The entries of an extract").
//
//   transition        from -> to                          audit entry (action: decision)       row
//   refuse            a request, refused (no lifecycle)   extract.requested: denied            none
//   admit             a request -> admitted               extract.requested: allowed           none
//   open              admitted -> preparing               -                                    inserted, preparing
//   start             preparing -> requested              -                                    requested
//   notReleased       admitted | preparing | requested    extract.aborted: failed | denied     not_released, if
//   inserted
//                     -> not_released
//   complete          requested -> completed              extract.completed: completed         completed, signed
//   manifest abort             requested -> aborted                extract.aborted: aborted | failed    aborted
//   closeInterrupted  a row left preparing | requested    extract.aborted: interrupted         not_released | aborted
//
// requested -> not_released is the request giving up before its first byte (the producer could
// not be made); once an ExtractProducer holds the lifecycle, a requested extract ends completed or
// aborted. Every closing entry names the "extract.requested" entry (details.requested_entry).
//
// An entry is appended durably before its row changes. A row change that fails after its entry is
// reported on stderr and left to the sweeper, which adopts the entry (extract_sweeper.hpp); an
// entry that cannot be written leaves the state and the row as they were (a closing abort still
// ends the lifecycle: its row is then closed by the sweeper). An illegal transition records
// nothing and changes nothing: FailedPrecondition.
//
// Thread-safety: refuse/admit/open/start/notReleased run on the request's thread and count their
// entries on its RequestContext (so the request handler records no second one). complete and abort
// may race (a chunk against a late clientGone): every transition holds the lifecycle's mutex for
// its whole length, so two closings never both record.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/api/router.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway/release/encoder.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway/release/live_extracts.hpp"

namespace custodian::release {
struct ExtractRecord;
}

namespace custodian::api {

struct Services;

// Who asked for what; copied into every audit entry of the extract.
struct ExtractFacts {
    std::string extractId;
    std::string dataset;
    std::string policy;
    int32_t policyVersion = 0;
    std::string policyHash;
    std::string purpose;
    std::string recipient;
    std::string role;
    std::string requestId;
    std::string clientAddress;
    release::ExtractFormat format = release::ExtractFormat::Csv;
    bool encrypted = true;
    int64_t createdMs = 0;
    uint64_t requestedEntryIndex = 0;  // set by admit
    int keyDerivation = 0;             // 1 or 2: how the keyed transforms' keys were derived (release/key_scope.hpp)
};

// The audit entry skeleton of an extract (actor, role, request, target, purpose, extract id,
// format, encryption, policy hash, key derivation).
audit::AuditEntry extractEntry(const ExtractFacts& facts, std::string action, std::string decision);

enum class ExtractState { Admitted, Preparing, Requested, Completed, Aborted, NotReleased };
std::string_view stateName(ExtractState state);  // "admitted", "preparing", … as the row spells them

// What a release produced, for its "extract.completed" entry and its manifest.
struct ReleasedExtract {
    uint64_t rowsReleased = 0;
    uint64_t rowsSuppressed = 0;
    json::JsonValue achieved;         // the models' values on the emitted rows: {"k":10,"l":3,…}
    json::JsonValue informationLoss;  // {"ncp":"0.1184","attributes":{…}}
    std::vector<crypto::ManifestColumn> columns;
    crypto::ExtractDigests digests;
    json::JsonValue::Object search;  // the entry's "levels", or "algorithm" and "partitions"
};

// How far a stream got before it was aborted.
struct StreamProgress {
    uint64_t rowsRead = 0;
    uint64_t rowsReleased = 0;
};

class ExtractLifecycle {
public:
    // refuse: the request is refused before anything is read; "extract.requested" denied, with
    // `why` as its reason and `details` added to its details. Unavailable if it cannot be recorded.
    static Status refuse(RequestContext& ctx, const ExtractFacts& facts, const Status& why,
                         const json::JsonValue::Object& details);
    // admit: "extract.requested" allowed (with details.recipient_entry, the policy's recipient
    // entry that admitted the partner, when known), committed durably before the source is read.
    // No entry, no extract: Unavailable.
    static Result<std::unique_ptr<ExtractLifecycle>> admit(RequestContext& ctx, ExtractFacts facts,
                                                           const std::optional<std::string>& recipientEntry);
    // closeInterrupted: an extract whose request is over (`own`: of this process, instance
    // `recordedBy`, its request ended without closing it) or whose process is gone, closed in one
    // transaction that holds its row (release::abortInterruptedExtract): "extract.aborted"
    // interrupted, or the abort entry its writer left in the log. Returns whether this call closed it.
    static Result<bool> closeInterrupted(Services& services, const release::ExtractRecord& extract, int32_t recordedBy,
                                         bool own);

    ExtractLifecycle(const ExtractLifecycle&) = delete;
    ExtractLifecycle& operator=(const ExtractLifecycle&) = delete;
    ~ExtractLifecycle() = default;  // records nothing: an open extract is left to the sweeper

    const ExtractFacts& facts() const { return facts_; }
    ExtractState state() const;

    // admitted -> preparing: the row, before the source is read. The extract is live in this
    // process (Services::liveExtracts) from before its row exists until the lifecycle is destroyed.
    Status open();
    // preparing -> requested, just before the first byte; with the release's linkage ledger row in
    // the same transaction (release/extract_store.hpp).
    Status start(const std::optional<release::LedgerRow>& ledger = {});
    // admitted | preparing | requested -> not_released (before the first byte): "extract.aborted"
    // with `decision` ("failed" or "denied"), `why` as its reason and `details` added to its
    // details, then the row closed not_released when it exists.
    Status notReleased(RequestContext& ctx, std::string decision, const Status& why,
                       const json::JsonValue::Object& details);
    // requested -> completed: "extract.completed", the manifest signed once (its audit_index that
    // entry's), the row completed with the signed document and its signature. On failure the
    // extract stays requested (the caller aborts it; the completed entry may already be in the log).
    Status complete(const ReleasedExtract& released);
    // requested -> aborted: "extract.aborted" with `decision` ("aborted" or "failed"), `why` as its
    // reason and the stream's progress, then the row aborted. Ends the lifecycle even when the
    // entry or the row cannot be written (the sweeper then closes the row).
    Status abort(std::string decision, const Status& why, std::optional<StreamProgress> progress);

private:
    ExtractLifecycle(Services& services, ExtractFacts facts) : services_(services), facts_(std::move(facts)) {}
    // FailedPrecondition naming the transition unless the state is one of `from`; mutex_ held.
    Status expect(std::initializer_list<ExtractState> from, std::string_view transition) const;

    Services& services_;
    ExtractFacts facts_;
    release::LiveExtracts::Handle live_;
    mutable std::mutex mutex_;
    ExtractState state_ = ExtractState::Admitted;
};

}  // namespace custodian::api
