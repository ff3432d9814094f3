#pragma once
// The chunked body of POST /v1/extracts: a ReleaseStream, encrypted page by page with the
// ExtractSealer (or plain when the policy allows it and the partner asked), ending the extract's
// lifecycle (extract_lifecycle.hpp): completed or aborted.
//
// Order of the last steps (fail closed): after the last source row, the final check re-verifies
// the models on what was emitted; then the final chunk is sealed, the lifecycle completes
// ("extract.completed" appended durably, the signed manifest stored) — and only then is the final
// chunk handed to the server. If any of these fails, the final chunk is never sent, the extract is
// aborted ("extract.aborted"), and the partner's decryption reports a truncated extract.
//
// The extract is also aborted when the client goes away (clientGone), when a chunk cannot be
// produced, and when the producer is destroyed before completing (server shutdown).
//
// Thread-safety: the server calls nextChunk()/clientGone() one at a time; the lifecycle still
// serializes its transitions, so that a late clientGone() cannot race the completion.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "anonymizer/transform.hpp"
#include "gateway/api/extract_lifecycle.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/http/message.hpp"
#include "gateway/release/stream.hpp"

namespace custodian::api {

class ExtractProducer final : public http::BodyProducer {
public:
    // `lifecycle` must be requested and `stream` started. `keyedTransformKey` is the key the
    // stream's transforms use (kept alive here). `recipientKey` is required when the extract is
    // encrypted. On success the producer takes `lifecycle` (the extract stays live until the
    // producer is gone); on failure `lifecycle` is left with the caller, which still closes it
    // (not_released: no byte was sent).
    static Result<std::shared_ptr<ExtractProducer>> create(std::unique_ptr<ExtractLifecycle>& lifecycle,
                                                           std::unique_ptr<anon::MasterKey> keyedTransformKey,
                                                           std::unique_ptr<release::ReleaseStream> stream,
                                                           const std::optional<crypto::BoxPublicKey>& recipientKey);
    ~ExtractProducer() override;

    Result<std::optional<std::string>> nextChunk() override;
    void clientGone(const std::string& reason) override;

private:
    ExtractProducer() = default;
    // Seals (or passes through) one page of plaintext.
    Result<std::string> frame(const std::string& page, bool final);
    // Final check, final chunk, the lifecycle completed; the final chunk on success.
    Result<std::string> complete(const std::string& lastPage);
    // Stops the stream and aborts the lifecycle, once; returns `why` for the caller to propagate.
    Status abort(const std::string& decision, const Status& why);

    std::unique_ptr<ExtractLifecycle> lifecycle_;  // destroyed last: live until the destructor's abort is recorded
    std::unique_ptr<anon::MasterKey> keyedTransformKey_;  // outlives stream_ (declared before it)
    std::unique_ptr<release::ReleaseStream> stream_;
    std::optional<crypto::ExtractSealer> sealer_;
    crypto::Sha256 plainHash_;  // plain output only
    uint64_t plainBytes_ = 0;
    bool headerSent_ = false;
    bool done_ = false;  // the final chunk was returned: the next call ends the body
};

}  // namespace custodian::api
