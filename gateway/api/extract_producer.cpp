#include "gateway/api/extract_producer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "anonymizer/fixed_decimal.hpp"
#include "gateway/crypto/manifest.hpp"

namespace custodian::api {

namespace {

using anon::fixedDecimal;

// Achieved model values on the emitted rows, as the manifest and the audit entry carry them.
json::JsonValue achievedModels(const release::ReleasePlan& plan, const anon::FinalCheckReport& check) {
    json::JsonValue::Object m;
    m["k"] = check.minClassSize;
    const auto& models = plan.models();
    if (models.lDiversity) {
        if (models.lDiversity->variant == anon::LDiversityVariant::Entropy) {
            if (check.minEntropyL) m["l"] = fixedDecimal(*check.minEntropyL, 3);
        } else if (check.minDistinctL) {
            m["l"] = static_cast<uint64_t>(std::llround(*check.minDistinctL));
        }
    }
    if (models.tCloseness && check.maxT) m["t"] = fixedDecimal(*check.maxT, 4);
    return m;
}

// The release's information loss as the manifest carries it: the decision's loss (the NCP of the
// released quasi-identifiers, anonymizer/metrics.hpp; under Mondrian relative to the values
// selected) overall and per quasi-identifier, as decimal strings.
json::JsonValue informationLoss(const release::ReleasePlan& plan, const release::PrivacyDecision* decision) {
    json::JsonValue::Object attributes;
    double overall = 0;
    if (decision) {
        overall = decision->stats.metrics.loss;
        const auto& qis = plan.quasiIdentifiers();
        for (size_t d = 0; d < qis.size() && d < decision->stats.lossPerAttribute.size(); ++d)
            attributes[plan.inputColumns()[qis[d]].name] = fixedDecimal(decision->stats.lossPerAttribute[d], 4);
    }
    return json::JsonValue::Object{{"ncp", fixedDecimal(overall, 4)}, {"attributes", std::move(attributes)}};
}

}  // namespace

Result<std::shared_ptr<ExtractProducer>> ExtractProducer::create(
    std::unique_ptr<ExtractLifecycle>& lifecycle, std::unique_ptr<anon::MasterKey> keyedTransformKey,
    std::unique_ptr<release::ReleaseStream> stream, const std::optional<crypto::BoxPublicKey>& recipientKey) {
    // Everything that can fail comes before the producer exists: a producer destroyed while
    // streaming aborts the extract, and the caller closes it after this failure itself.
    std::optional<crypto::ExtractSealer> sealer;
    if (lifecycle->facts().encrypted) {
        if (!recipientKey) return failedPrecondition("an encrypted extract needs the recipient's public key");
        auto created = crypto::ExtractSealer::create(*recipientKey);
        if (!created) return created.status();
        sealer.emplace(std::move(created).value());
    }
    std::shared_ptr<ExtractProducer> p(new ExtractProducer());
    p->keyedTransformKey_ = std::move(keyedTransformKey);
    p->stream_ = std::move(stream);
    p->sealer_ = std::move(sealer);
    p->lifecycle_ = std::move(lifecycle);
    return p;
}

ExtractProducer::~ExtractProducer() {
    (void)abort("aborted", unavailable("the extract stream ended before completing"));
}

Result<std::string> ExtractProducer::frame(const std::string& page, bool final) {
    std::string out;
    // One allocation per page: the plaintext, the overhead of each chunk, the header once.
    out.reserve(page.size() + (page.size() / crypto::kExtractMaxChunkPlaintext + 1) * crypto::kExtractChunkOverhead +
                (headerSent_ ? 0
                 : sealer_   ? sealer_->header().size()
                             : 0));
    if (!headerSent_) {
        if (sealer_) out.assign(sealer_->header().begin(), sealer_->header().end());
        headerSent_ = true;
    }
    if (!sealer_) {
        plainHash_.update(crypto::asBytes(page));
        plainBytes_ += page.size();
        out += page;
        return out;
    }
    // A page may exceed the largest chunk the format allows; split it.
    size_t offset = 0;
    do {
        const size_t n = std::min(page.size() - offset, crypto::kExtractMaxChunkPlaintext);
        const bool last = final && offset + n == page.size();
        auto sealed = sealer_->seal(crypto::asBytes(std::string_view(page).substr(offset, n)), last);
        if (!sealed) return sealed.status();
        out.append(reinterpret_cast<const char*>(sealed->data()), sealed->size());
        offset += n;
    } while (offset < page.size());
    return out;
}

Result<std::optional<std::string>> ExtractProducer::nextChunk() {
    if (lifecycle_->state() == ExtractState::Aborted) return unavailable("the extract was aborted");
    if (done_) return std::optional<std::string>();
    auto page = stream_->nextPage();
    if (!page) return abort("failed", page.status());
    if (stream_->finished()) {
        auto last = complete(page->value_or(std::string()));
        if (!last) return last.status();
        done_ = true;
        // Everything is recorded: free the release now (its memory goes back to the system and to
        // release.memory_budget_mb) rather than when the connection lets go of the response.
        stream_.reset();
        return std::optional<std::string>(std::move(last).value());
    }
    if (!*page) return abort("failed", internalError("the release ended without its final check"));
    auto framed = frame(**page, false);
    if (!framed) return abort("failed", framed.status());
    return std::optional<std::string>(std::move(framed).value());
}

Result<std::string> ExtractProducer::complete(const std::string& lastPage) {
    const auto& check = stream_->finalCheck();
    if (!check)
        return abort("failed", Status(StatusCode::Internal,
                                      "the final check of the released rows failed: " + check.status().message()));
    auto last = frame(lastPage, true);
    if (!last) return abort("failed", last.status());

    ReleasedExtract released;
    if (sealer_) {
        released.digests = sealer_->digests();
    } else {
        released.digests.plaintextSha256 = plainHash_.finish();
        released.digests.ciphertextSha256 = released.digests.plaintextSha256;
        released.digests.plaintextBytes = released.digests.ciphertextBytes = plainBytes_;
    }
    const release::ReleasePlan& plan = stream_->plan();
    released.rowsReleased = stream_->rowsReleased();
    released.rowsSuppressed = stream_->rowsSuppressed();
    released.achieved = achievedModels(plan, *check);
    released.informationLoss = informationLoss(plan, stream_->decision());
    for (const auto& c : stream_->columns()) released.columns.push_back({c.name, c.transform});
    if (const release::PrivacyDecision* decision = stream_->decision(); decision && decision->local) {
        released.search["algorithm"] = decision->local->algorithm;
        released.search["partitions"] = static_cast<uint64_t>(decision->local->partitions.partitionSizes.size());
    } else if (decision) {
        json::JsonValue::Object levels;
        const auto& qis = plan.quasiIdentifiers();
        for (size_t i = 0; i < qis.size() && i < decision->levels.size(); ++i)
            levels[plan.inputColumns()[qis[i]].name] = static_cast<int64_t>(decision->levels[i]);
        released.search["levels"] = std::move(levels);
    }
    // A failure leaves the extract requested (the completed entry may be in the log while the
    // manifest is not stored): the final chunk is withheld and the extract aborted.
    if (Status s = lifecycle_->complete(released); !s) return abort("failed", s);
    return std::move(last).value();
}

void ExtractProducer::clientGone(const std::string& reason) {
    (void)abort("aborted", unavailable("the client disconnected: " + reason));
}

Status ExtractProducer::abort(const std::string& decision, const Status& why) {
    if (!lifecycle_ || lifecycle_->state() != ExtractState::Requested) return why;  // already ended
    std::optional<StreamProgress> progress;
    if (stream_) {
        stream_->close();
        progress = StreamProgress{stream_->rowsRead(), stream_->rowsReleased()};
    }
    (void)lifecycle_->abort(decision, why, progress);
    return why;
}

}  // namespace custodian::api
