#include "gateway/api/extract_routes.hpp"

#include "gateway/api/linkage.hpp"
#include "gateway/api/catalog_request.hpp"
#include "gateway/api/release_lookup.hpp"
#include "gateway/crypto/keyed_transform_key.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <pqxx/pqxx>

#include <chrono>
#include <cmath>

#include "anonymizer/risk.hpp"
#include "gateway/audit/log.hpp"
#include "gateway/api/record.hpp"
#include "gateway/auth/groups.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/catalog/source_access.hpp"
#include "gateway/catalog/store.hpp"
#include "gateway/db/guarded.hpp"
#include "gateway/http/errors.hpp"
#include "gateway/release/authorization.hpp"
#include "gateway/api/extract_lifecycle.hpp"
#include "gateway/api/extract_producer.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway/release/key_scope.hpp"
#include "gateway/release/report.hpp"
#include "gateway/api/services.hpp"
#include "json/writer.hpp"

namespace custodian::api {

using auth::Role;
using http::HttpResponse;

namespace {

// {"error":{"code":..,"message":..,"details":{...}}} — `details` is canonical JSON of an object.
HttpResponse errorWithDetails(int status, const Status& s, const json::JsonValue& details) {
    auto detailsJson = json::canonicalJson(details);
    return http::errorResponse(status, http::errorCodeFor(s), s.message(), detailsJson ? *detailsJson : "");
}

Result<std::unique_ptr<anon::MasterKey>> keyedTransformKey(const Services& services) {
    if (!services.tokens) return unavailable("the gateway master key is not loaded");
    auto key = crypto::keyedTransformKey(*services.tokens);
    if (!key) return key.status();
    return std::make_unique<anon::MasterKey>(std::move(key).value());
}

// The answer to an extract request refused or closed before its first byte, once the lifecycle
// recorded it (`recorded`; 503 if it could not be: every access is audited, or the request fails).
Result<HttpResponse> refusalAnswer(const Status& recorded, int httpStatus, const Status& why,
                                   const json::JsonValue::Object& details) {
    if (!recorded) return recorded;
    if (details.empty()) return http::errorResponse(httpStatus, http::errorCodeFor(why), why.message());
    return errorWithDetails(httpStatus, why, details);
}

int httpStatusOf(const Status& s) { return http::httpStatusFor(s.code()); }

// A release whose memory did not fit (gateway/release/memory_budget.hpp): 503 `overloaded` with
// Retry-After, error.details naming the limit, the bytes the release needed, the structure that
// grew and whether waiting can help.
HttpResponse memoryRefusalResponse(const release::MemoryRefusal& r) {
    OverloadRefusal o;
    o.httpStatus = 503;
    o.code = "overloaded";
    o.limit = r.limit;
    o.limitValue = r.limitMiB;
    o.retryAfter = std::chrono::seconds(r.retryable ? 5 : 60);
    o.message = r.message;
    o.extraDetails["needed_bytes"] = static_cast<uint64_t>(r.neededBytes);
    o.extraDetails["structure"] = r.structure;
    o.extraDetails["retryable"] = r.retryable;
    return overloadResponse(o);
}

// A charge on the gateway's memory budget for one release, or none when the services have no budget.
std::shared_ptr<release::MemoryCharge> memoryCharge(const Services& services) {
    return services.memoryBudget ? services.memoryBudget->open() : nullptr;
}

}  // namespace

std::vector<Route> releaseRoutes() {
    return {
        // audited, and holds an in-flight extract slot (limits.max_inflight_extracts) while it streams
        {"POST", "/v1/extracts", Access::only({Role::Partner}), handleCreateExtract, false, "extract.requested", true},
        {"GET", "/v1/extracts/{id}/manifest", Access::only({Role::Partner, Role::Auditor}), handleGetManifest, false,
         "extract.manifest"},
        {"POST", "/v1/datasets/{dataset}/policies/{policy}/preview", Access::only({Role::Publisher}), handlePreview,
         false, "policy.preview"},
    };
}

Result<HttpResponse> handleCreateExtract(RequestContext& ctx) {
    Services& services = ctx.services;
    const auth::Principal& who = *ctx.principal;
    auto request = release::parseExtractRequest(ctx.request.body);
    if (!request) return request.status();

    ExtractFacts facts;
    facts.extractId = release::newExtractId();
    facts.dataset = request->dataset;
    facts.policy = request->policy;
    facts.purpose = request->purpose;
    facts.recipient = who.name;
    facts.role = auth::roleName(who.role);
    facts.requestId = ctx.request.requestId;
    facts.clientAddress = clientAddressOf(ctx.request);
    facts.format = request->format;
    facts.encrypted = request->encrypted;

    auto found = lookup(services, request->dataset, request->policy, who.name);
    if (!found) {
        const Status& s = found.status();
        if (s.code() != StatusCode::NotFound && s.code() != StatusCode::FailedPrecondition) return s;
        return refusalAnswer(ExtractLifecycle::refuse(ctx, facts, s, {}), httpStatusOf(s), s, {});
    }
    facts.policyVersion = found->policy.version;
    facts.policyHash = found->policy.contentHash;
    facts.keyDerivation = release::keyDerivationNumber(found->keyDerivation);
    const policies::PolicyModel& model = found->policy.policy->model();

    // 1. Authorization, before anything is read.
    release::AuthorizationFacts af;
    af.principal = who.name;
    af.groups = found->recipientGroups;
    af.hasPublicKey = who.publicKey.has_value();
    af.policyRetired = found->policy.retired;
    af.nowMicros = nowMicros();
    af.extractsToday = found->extractsToday;
    if (auto refusal = release::authorizeExtract(model, *request, af)) {
        const json::JsonValue::Object details{{"rule", refusal->rule}};
        const Status why = permissionDenied(refusal->message);
        return refusalAnswer(ExtractLifecycle::refuse(ctx, facts, why, details), 403, why, details);
    }

    // 2. The durable "requested" entry, before the source is queried. No entry, no data. It names
    // the recipient entry that admitted the partner: its name, or the "group:NAME" it is a member of.
    facts.createdMs = af.nowMicros / 1000;
    auto admitted = ExtractLifecycle::admit(ctx, facts, model.admittingRecipient(who.name, found->recipientGroups));
    if (!admitted) return admitted.status();
    std::unique_ptr<ExtractLifecycle> extract = std::move(admitted).value();
    // Closes the extract not_released (no byte was sent) and answers with the error, which names
    // the "extract.requested" entry.
    auto notReleased = [&](const std::string& decision, const Status& why, int httpStatus,
                           json::JsonValue::Object details) -> Result<HttpResponse> {
        details.emplace("requested_entry", extract->facts().requestedEntryIndex);
        return refusalAnswer(extract->notReleased(ctx, decision, why, details), httpStatus, why, details);
    };
    auto failed = [&](const Status& s) -> Result<HttpResponse> {
        json::JsonValue::Object details;
        if (std::string rule = catalog::refusedRule(s); !rule.empty()) details.emplace("rule", rule);
        return notReleased("failed", s, httpStatusOf(s), std::move(details));
    };
    // The extract's row, status preparing, before the source is read: if this process dies during
    // the search, a sweeper closes it (gateway/api/extract_sweeper.hpp).
    if (Status s = extract->open(); !s) return failed(s);

    // 3. Aggregate pushdown and search.
    auto transformKey = keyedTransformKey(services);
    if (!transformKey) return failed(transformKey.status());
    auto location = sourceOf(services, found->source.conninfo, found->dataset.schema, found->dataset.table);
    if (!location) return failed(location.status());
    // The key scope: the policy, or the linkage group it belongs to (docs/security.md).
    auto group = linkageGroup(services, *found);
    if (!group) {
        if (group.status().code() != StatusCode::FailedPrecondition) return failed(group.status());
        return notReleased("denied", group.status(), 422, {{"rule", "linkable_with"}});
    }
    release::ReleaseContext context{
        {found->keyDerivation, found->dataset.name, *group, who.name}, transformKey->get(), nullptr};
    release::StreamOptions streamOptions;
    streamOptions.memory = memoryCharge(services);
    auto stream =
        release::ReleaseStream::prepare(*location, found->policy.policy, context, request->format, streamOptions);
    if (!stream && streamOptions.memory && streamOptions.memory->refusal()) {
        // Refused for memory: audited like any failure (the row closes not_released), answered 503.
        const release::MemoryRefusal& r = *streamOptions.memory->refusal();
        auto recorded = notReleased("failed", stream.status(), 503, {{"limit", r.limit}});
        if (!recorded) return recorded.status();
        return memoryRefusalResponse(r);
    }
    if (!stream) return failed(stream.status());
    if (const release::ModelUnreachable* u = (*stream)->unreachable())
        return notReleased("failed", failedPrecondition(u->message), 422,
                           {{"requirement", u->requirement}, {"best_achievable", u->bestAchievable}});
    if (auto refusal = release::refuseRowCount(model, (*stream)->decision()->records))
        return notReleased("denied", permissionDenied(refusal->message), 403, {{"rule", refusal->rule}});

    // 4. What the recipient could join this release with: k must hold over the join.
    const std::string scope = ledgerScope(*found, *group);
    auto linkage = checkLinkage(services, *found, who.name, scope, context, *location);
    if (!linkage) return failed(linkage.status());
    if (linkage->refuses()) {
        json::JsonValue report = linkage->toJson();
        json::JsonValue::Object details = report.asObject();
        details["rule"] = "linkage";
        return notReleased("denied", permissionDenied(linkage->message()), 422, std::move(details));
    }
    if (Status s = (*stream)->start(); !s) return failed(s);

    // 5. The stream, filed in the linkage ledger as it starts.
    auto disclosed = json::canonicalJson(release::disclosedBy(**stream));
    if (!disclosed) return failed(disclosed.status());
    release::LedgerRow ledger{who.name,
                              found->dataset.name,
                              scope,
                              found->policy.name,
                              found->policy.version,
                              std::move(disclosed).value(),
                              linkage->otherVersionCount};
    if (Status s = extract->start(ledger); !s) return failed(s);
    auto producer =
        ExtractProducer::create(extract, std::move(transformKey).value(), std::move(stream).value(), who.publicKey);
    if (!producer) return failed(producer.status());  // no byte sent yet: the lifecycle stayed here

    const std::string contentType =
        facts.encrypted ? "application/vnd.custodian.extract" : release::formatMediaType(facts.format);
    HttpResponse response = HttpResponse::streaming(200, contentType, std::move(producer).value());
    response.setHeader("X-Extract-Id", facts.extractId);
    response.setHeader("X-Policy-Version", std::to_string(facts.policyVersion));
    response.setHeader("X-Policy-Sha256", facts.policyHash);
    const std::string fileName =
        facts.extractId + "." + release::formatName(facts.format) + (facts.encrypted ? ".enc" : "");
    response.setHeader("Content-Disposition", "attachment; filename=\"" + fileName + "\"");
    response.setHeader("Cache-Control", "no-store");
    return response;
}

Result<HttpResponse> handleGetManifest(RequestContext& ctx) {
    const std::string& id = ctx.param("id");
    if (!ctx.services.db) return unavailable("the database is not available");
    std::optional<release::StoredExtract> extract;
    Status s = ctx.services.db->withConnection([&](pqxx::connection& conn) -> Status {
        auto e = release::loadExtract(conn, id);
        if (!e) return e.status();
        extract = std::move(e).value();
        return Status::ok();
    });
    // A partner learns nothing about other partners' extracts: not found either way.
    if (s.code() == StatusCode::NotFound ||
        (s && ctx.principal->role == Role::Partner && extract->record.recipient != ctx.principal->name))
        return notFound("no extract " + id);
    if (!s) return s;
    audit::AuditEntry e = entryFor(ctx, "extract.manifest", "allowed");
    e.target.dataset = extract->record.dataset;
    e.target.policy = extract->record.policy;
    e.target.policyVersion = extract->record.policyVersion;
    e.details = json::JsonValue::Object{{"extract_id", id}};
    if (auto recorded = record(ctx, std::move(e)); !recorded) return recorded.status();
    if (!extract->manifest) {
        if (extract->status == "aborted")
            return Status(StatusCode::NotFound, "extract " + id + " was aborted; it has no manifest");
        if (extract->status == "not_released")
            return Status(StatusCode::NotFound, "extract " + id + " released nothing; it has no manifest");
        return Status(StatusCode::Aborted,
                      "extract " + id + " is still in progress; its manifest is signed when it completes");
    }
    HttpResponse r = HttpResponse::json(200, *extract->manifest);
    r.setHeader("Cache-Control", "no-store");
    return r;
}

// ---- preview ------------------------------------------------------------------------------------

Result<HttpResponse> handlePreview(RequestContext& ctx) {
    Services& services = ctx.services;
    const auth::Principal& who = *ctx.principal;
    const std::string& datasetName = ctx.param("dataset");
    const std::string& policyName = ctx.param("policy");
    auto denied = [&](const Status& s) -> Result<HttpResponse> {
        audit::AuditEntry e = entryFor(ctx, "policy.preview", "denied");
        e.target.dataset = datasetName;
        e.target.policy = policyName;
        e.reason = json::sanitizeUtf8(s.message());
        if (auto recorded = record(ctx, std::move(e)); !recorded) return recorded.status();
        return s;
    };
    // ?recipient=NAME: also report what the release would add to what that partner can already
    // link (docs/security.md, "Releases that could be joined").
    std::optional<std::string> recipient = ctx.request.queryParam("recipient");
    if (recipient) {
        if (Status s = auth::validatePrincipalName(*recipient); !s) return invalidArgument("recipient: " + s.message());
    }
    auto found = lookup(services, datasetName, policyName, recipient);
    if (!found) {
        if (found.status().code() == StatusCode::NotFound) return denied(found.status());
        return found.status();
    }
    if (Status s = catalog::checkAgencyScope(who, found->dataset.agency); !s) return denied(s);

    audit::AuditEntry e = entryFor(ctx, "policy.preview", "allowed");
    e.target.source = found->dataset.source;
    e.target.dataset = datasetName;
    e.target.policy = policyName;
    e.target.policyVersion = found->policy.version;
    e.details = json::JsonValue::Object{{"policy_sha256", found->policy.contentHash}};
    if (recipient) e.details.asObject()["linkage_recipient"] = *recipient;
    if (auto recorded = record(ctx, std::move(e)); !recorded) return recorded.status();

    // Keyed transforms are not applied in a preview (no rows leave); the key is still required
    // because the release context is the same as an extract's.
    auto transformKey = keyedTransformKey(services);
    if (!transformKey) return transformKey.status();
    auto location = sourceOf(services, found->source.conninfo, found->dataset.schema, found->dataset.table);
    if (!location) return location.status();
    release::ReleaseContext context{
        {anon::kCurrentKeyDerivation, found->dataset.name, policyName, who.name}, transformKey->get(), nullptr};
    release::StreamOptions streamOptions;
    streamOptions.memory = memoryCharge(services);
    auto stream = release::ReleaseStream::prepare(*location, found->policy.policy, context, release::ExtractFormat::Csv,
                                                  streamOptions);
    if (!stream && streamOptions.memory && streamOptions.memory->refusal())
        return memoryRefusalResponse(*streamOptions.memory->refusal());
    if (!stream) return stream.status();
    const auto& privacy = (*stream)->privacy();
    const release::ReleasePlan& plan = (*stream)->plan();
    auto report = release::reportRelease(plan, privacy);
    if (!report) return report.status();

    json::JsonOut j;
    auto& w = j.w();
    w.StartObject();
    j.key("dataset").str(datasetName);
    j.key("policy").str(policyName);
    j.key("policy_version").uint(static_cast<uint64_t>(found->policy.version));
    j.key("policy_sha256").str(found->policy.contentHash);
    j.key("models").str(plan.models().describe());
    j.key("suppression_limit").finite(plan.models().suppressionLimit);
    j.key("records_selected").uint(report->records);
    j.key("releasable").w().Bool(privacy.decision.has_value());
    if (privacy.unreachable) {
        j.key("unreachable").w().StartObject();
        j.key("requirement").str(privacy.unreachable->requirement);
        j.key("message").str(privacy.unreachable->message);
        auto best = json::canonicalJson(privacy.unreachable->bestAchievable);
        if (best) {
            j.key("best_achievable");
            w.RawValue(best->data(), best->size(), rapidjson::kObjectType);
        }
        w.EndObject();
    }
    release::writeReportMembers(w, *report);
    if (recipient && privacy.decision) {
        // The release as this recipient would get it (its key scope, its pseudonyms), joined with
        // what it holds.
        auto group = linkageGroup(services, *found);
        json::JsonValue linkage;
        if (!group) {
            if (group.status().code() != StatusCode::FailedPrecondition) return group.status();
            linkage = json::JsonValue::Object{{"keeps_k", false}, {"problem", group.status().message()}};
        } else {
            release::ReleaseContext theirs{
                {found->keyDerivation, found->dataset.name, *group, *recipient}, transformKey->get(), nullptr};
            auto checked = checkLinkage(services, *found, *recipient, ledgerScope(*found, *group), theirs, *location);
            if (!checked) return checked.status();
            linkage = checked->toJson();
            linkage.asObject()["recipient"] = *recipient;
            if (checked->refuses()) linkage.asObject()["message"] = checked->message();
        }
        auto text = json::canonicalJson(linkage);
        if (!text) return text.status();
        j.key("linkage");
        w.RawValue(text->data(), text->size(), rapidjson::kObjectType);
    }
    w.EndObject();
    return HttpResponse::json(200, j.text());
}

}  // namespace custodian::api
