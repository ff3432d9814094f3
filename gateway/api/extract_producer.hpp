#pragma once
// The chunked body of POST /v1/extracts: a ReleaseStream, encrypted page by page with the
// ExtractSealer (or plain when the policy allows it and the partner asked), with the outcome
// recorded in the audit log and the `extracts` table.
//
// Order of the last steps (fail closed): after the last source row, the final check re-verifies
// the models on what was emitted; then the final chunk is sealed, "extract.completed" is appended
// durably and the signed manifest stored — and only then is the final chunk handed to the server.
// If any of these fails, the final chunk is never sent, "extract.aborted" is recorded, and the
// partner's decryption reports a truncated extract.
//
// "extract.aborted" is also recorded when the client goes away (clientGone), when a chunk cannot
// be produced, and when the producer is destroyed before completing (server shutdown).
//
// Thread-safety: the server calls nextChunk()/clientGone() one at a time; a mutex still guards the
// outcome so that a late clientGone() cannot race the completion.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "anonymizer/transform.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/http/message.hpp"
#include "gateway/release/authorization.hpp"
#include "gateway/release/live_extracts.hpp"
#include "gateway/release/stream.hpp"

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
    uint64_t requestedEntryIndex = 0;
    int keyDerivation = 0;  // 1 or 2: how the keyed transforms' keys were derived (release/key_scope.hpp)
};

class ExtractProducer final : public http::BodyProducer {
public:
    // `stream` must be started. `keyedTransformKey` is the key the stream's transforms use (kept
    // alive here). `recipientKey` is required when facts.encrypted. On success the producer takes
    // `live` (the extract stays live until the producer is gone, live_extracts.hpp); on failure
    // `live` is left with the caller, which still closes the extract's row.
    static Result<std::shared_ptr<ExtractProducer>> create(Services& services, ExtractFacts facts,
                                                           std::unique_ptr<anon::MasterKey> keyedTransformKey,
                                                           std::unique_ptr<release::ReleaseStream> stream,
                                                           const std::optional<crypto::BoxPublicKey>& recipientKey,
                                                           release::LiveExtracts::Handle& live);
    ~ExtractProducer() override;

    Result<std::optional<std::string>> nextChunk() override;
    void clientGone(const std::string& reason) override;

    bool completed() const;

private:
    ExtractProducer(Services& services, ExtractFacts facts) : services_(services), facts_(std::move(facts)) {}
    // Seals (or passes through) one page of plaintext.
    Result<std::string> frame(const std::string& page, bool final);
    // Final check, final chunk, audit entry, manifest; the final chunk on success.
    Result<std::string> complete(const std::string& lastPage);
    // Records the abort once (audit + extracts row); returns `why` for the caller to propagate.
    Status abort(const std::string& decision, const Status& why);

    release::LiveExtracts::Handle live_;  // released after the destructor recorded any abort
    Services& services_;
    ExtractFacts facts_;
    std::unique_ptr<anon::MasterKey> keyedTransformKey_;  // outlives stream_ (declared before it)
    std::unique_ptr<release::ReleaseStream> stream_;
    std::optional<crypto::ExtractSealer> sealer_;
    crypto::Sha256 plainHash_;  // plain output only
    uint64_t plainBytes_ = 0;
    bool headerSent_ = false;
    bool done_ = false;  // the final chunk was returned: the next call ends the body

    mutable std::mutex outcomeMutex_;
    enum class Outcome { Streaming, Completed, Aborted } outcome_ = Outcome::Streaming;
};

// The audit entry skeleton of an extract (actor, role, request, target, purpose).
audit::AuditEntry extractEntry(const ExtractFacts& facts, std::string action, std::string decision);

}  // namespace custodian::api
