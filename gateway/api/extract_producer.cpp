#include "gateway/api/extract_producer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "gateway/audit/log.hpp"
#include "gateway/api/record.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway/api/services.hpp"

namespace custodian::api {

namespace {

std::string decimal(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// Achieved model values on the emitted rows, as the manifest and the audit entry carry them.
crypto::JsonValue achievedModels(const release::ReleasePlan& plan, const anon::FinalCheckReport& check) {
    crypto::JsonValue::Object m;
    m["k"] = check.minClassSize;
    const auto& models = plan.models();
    if (models.lDiversity) {
        if (models.lDiversity->variant == anon::LDiversityVariant::Entropy) {
            if (check.minEntropyL) m["l"] = decimal(*check.minEntropyL, 3);
        } else if (check.minDistinctL) {
            m["l"] = static_cast<uint64_t>(std::llround(*check.minDistinctL));
        }
    }
    if (models.tCloseness && check.maxT) m["t"] = decimal(*check.maxT, 4);
    return m;
}

// The release's information loss as the manifest carries it: the decision's loss (the NCP of the
// released quasi-identifiers, anonymizer/metrics.hpp; under Mondrian relative to the values
// selected) overall and per quasi-identifier, as decimal strings.
crypto::JsonValue informationLoss(const release::ReleasePlan& plan, const release::PrivacyDecision* decision) {
    crypto::JsonValue::Object attributes;
    double overall = 0;
    if (decision) {
        overall = decision->stats.metrics.loss;
        const auto& qis = plan.quasiIdentifiers();
        for (size_t d = 0; d < qis.size() && d < decision->stats.lossPerAttribute.size(); ++d)
            attributes[plan.inputColumns()[qis[d]].name] = decimal(decision->stats.lossPerAttribute[d], 4);
    }
    return crypto::JsonValue::Object{{"ncp", decimal(overall, 4)}, {"attributes", std::move(attributes)}};
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
    e.purpose = crypto::sanitizeUtf8(facts.purpose);
    crypto::JsonValue::Object details;
    details["extract_id"] = facts.extractId;
    details["format"] = release::formatName(facts.format);
    details["encrypted"] = facts.encrypted;
    if (!facts.policyHash.empty()) details["policy_sha256"] = facts.policyHash;
    if (facts.keyDerivation > 0) details["key_derivation"] = facts.keyDerivation;
    e.details = std::move(details);
    return e;
}

Result<std::shared_ptr<ExtractProducer>> ExtractProducer::create(Services& services, ExtractFacts facts,
                                                                 std::unique_ptr<anon::MasterKey> keyedTransformKey,
                                                                 std::unique_ptr<release::ReleaseStream> stream,
                                                                 const std::optional<crypto::BoxPublicKey>& recipientKey,
                                                                 release::LiveExtracts::Handle& live) {
    // Everything that can fail comes before the producer exists: a producer destroyed while
    // streaming records an abort, and the caller records this failure itself.
    std::optional<crypto::ExtractSealer> sealer;
    if (facts.encrypted) {
        if (!recipientKey) return failedPrecondition("an encrypted extract needs the recipient's public key");
        auto created = crypto::ExtractSealer::create(*recipientKey);
        if (!created) return created.status();
        sealer.emplace(std::move(created).value());
    }
    std::shared_ptr<ExtractProducer> p(new ExtractProducer(services, std::move(facts)));
    p->keyedTransformKey_ = std::move(keyedTransformKey);
    p->stream_ = std::move(stream);
    p->sealer_ = std::move(sealer);
    p->live_ = std::move(live);
    return p;
}

ExtractProducer::~ExtractProducer() {
    bool streaming;
    {
        std::lock_guard lock(outcomeMutex_);
        streaming = outcome_ == Outcome::Streaming;
    }
    if (streaming) (void)abort("aborted", unavailable("the extract stream ended before completing"));
}

bool ExtractProducer::completed() const {
    std::lock_guard lock(outcomeMutex_);
    return outcome_ == Outcome::Completed;
}

Result<std::string> ExtractProducer::frame(const std::string& page, bool final) {
    std::string out;
    // One allocation per page: the plaintext, the overhead of each chunk, the header once.
    out.reserve(page.size() + (page.size() / crypto::kExtractMaxChunkPlaintext + 1) * crypto::kExtractChunkOverhead +
                (headerSent_ ? 0 : sealer_ ? sealer_->header().size() : 0));
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
    {
        std::lock_guard lock(outcomeMutex_);
        if (outcome_ == Outcome::Aborted) return unavailable("the extract was aborted");
    }
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

    crypto::ExtractDigests digests;
    if (sealer_) {
        digests = sealer_->digests();
    } else {
        digests.plaintextSha256 = plainHash_.finish();
        digests.ciphertextSha256 = digests.plaintextSha256;
        digests.plaintextBytes = digests.ciphertextBytes = plainBytes_;
    }
    const crypto::JsonValue models = achievedModels(stream_->plan(), *check);

    audit::AuditEntry entry = extractEntry(facts_, "extract.completed", "completed");
    auto& d = entry.details.asObject();
    d["rows_released"] = stream_->rowsReleased();
    d["rows_suppressed"] = stream_->rowsSuppressed();
    d["achieved"] = models;
    d["plaintext_sha256"] = crypto::toHex(digests.plaintextSha256);
    d["ciphertext_sha256"] = crypto::toHex(digests.ciphertextSha256);
    d["plaintext_bytes"] = digests.plaintextBytes;
    d["ciphertext_bytes"] = digests.ciphertextBytes;
    d["requested_entry"] = facts_.requestedEntryIndex;
    if (const release::PrivacyDecision* decision = stream_->decision(); decision && decision->local) {
        d["algorithm"] = decision->local->algorithm;
        d["partitions"] = static_cast<uint64_t>(decision->local->partitions.partitionSizes.size());
    } else if (decision) {
        crypto::JsonValue::Object levels;
        const auto& qis = stream_->plan().quasiIdentifiers();
        for (size_t i = 0; i < qis.size() && i < decision->levels.size(); ++i)
            levels[stream_->plan().inputColumns()[qis[i]].name] = static_cast<int64_t>(decision->levels[i]);
        d["levels"] = std::move(levels);
    }
    auto index = record(services_, std::move(entry));
    if (!index) return abort("failed", index.status());

    crypto::ExtractManifest manifest;
    manifest.extractId = facts_.extractId;
    manifest.dataset = facts_.dataset;
    manifest.policy = facts_.policy;
    manifest.policyVersion = facts_.policyVersion;
    manifest.policySha256 = facts_.policyHash;
    manifest.purpose = crypto::sanitizeUtf8(facts_.purpose);
    manifest.recipient = facts_.recipient;
    manifest.keyDerivation = static_cast<uint64_t>(facts_.keyDerivation);
    manifest.createdMs = facts_.createdMs;
    manifest.format = release::formatName(facts_.format);
    manifest.rowsReleased = stream_->rowsReleased();
    manifest.rowsSuppressed = stream_->rowsSuppressed();
    for (const auto& c : stream_->columns()) manifest.columns.push_back({c.name, c.transform});
    manifest.models = models;
    manifest.informationLoss = informationLoss(stream_->plan(), stream_->decision());
    manifest.digests = digests;
    manifest.auditIndex = *index;
    if (!services_.signingKey) return abort("failed", unavailable("the gateway signing key is not loaded"));
    auto document = crypto::signManifest(manifest, *services_.signingKey);
    if (!document) return abort("failed", document.status());
    auto signedBytes = crypto::manifestSignedBytes(manifest);
    if (!signedBytes) return abort("failed", signedBytes.status());
    const std::string signature = crypto::toBase64(services_.signingKey->sign(crypto::asBytes(*signedBytes)));
    Status stored = services_.db ? services_.db->withConnection([&](pqxx::connection& conn) {
        return release::completeExtract(conn, facts_.extractId, *index, *document, signature);
    }) : unavailable("no database");
    if (!stored) {
        // The completed entry is in the log, but the partner cannot get the manifest: withhold the
        // final chunk so the partner does not end up with an extract nobody can verify.
        return abort("failed", stored);
    }
    {
        std::lock_guard lock(outcomeMutex_);
        outcome_ = Outcome::Completed;
    }
    return std::move(last).value();
}

void ExtractProducer::clientGone(const std::string& reason) {
    (void)abort("aborted", unavailable("the client disconnected: " + reason));
}

Status ExtractProducer::abort(const std::string& decision, const Status& why) {
    {
        std::lock_guard lock(outcomeMutex_);
        if (outcome_ != Outcome::Streaming) return why;
        outcome_ = Outcome::Aborted;
    }
    if (stream_) stream_->close();
    audit::AuditEntry entry = extractEntry(facts_, "extract.aborted", decision);
    entry.reason = crypto::sanitizeUtf8(why.message());
    auto& d = entry.details.asObject();
    if (stream_) {
        d["rows_read"] = stream_->rowsRead();
        d["rows_released"] = stream_->rowsReleased();
    }
    d["requested_entry"] = facts_.requestedEntryIndex;
    auto index = record(services_, std::move(entry));
    if (!index)
        std::fprintf(stderr, "custodian: extract %s: the abort could not be audited: %s\n", facts_.extractId.c_str(),
                     index.status().message().c_str());
    // Without its entry the row stays 'requested': the sweeper records the abort once the log can
    // be written (extract_sweeper.hpp), so the extract never ends closed without a closing entry.
    if (services_.db && index) {
        Status s = services_.db->withConnection(
            [&](pqxx::connection& conn) { return release::abortExtract(conn, facts_.extractId, *index); });
        if (!s)
            std::fprintf(stderr, "custodian: extract %s: could not be marked aborted: %s\n", facts_.extractId.c_str(),
                         s.message().c_str());
    }
    return why;
}

}  // namespace custodian::api
