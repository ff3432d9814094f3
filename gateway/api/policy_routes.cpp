// Versioned policies of a dataset: PUT, GET and DELETE (retire) /v1/datasets/{dataset}/policies/{policy}.
#include "gateway/api/catalog_routes.hpp"

#include <charconv>

#include "policies/json_text.hpp"

#include "gateway/api/catalog_request.hpp"
#include "gateway/api/record.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/http/errors.hpp"
#include "json/writer.hpp"

namespace custodian::api {

using auth::Role;

namespace {

Status validatePolicyPath(const RequestContext& ctx) {
    if (Status s = catalog::validateCatalogName("dataset", ctx.param("dataset")); !s) return s;
    return catalog::validateCatalogName("policy", ctx.param("policy"));
}

}  // namespace

Result<HttpResponse> handlePutPolicy(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    const catalog::Catalog& catalog = call->catalog;

    struct Context {
        catalog::Dataset dataset;
        std::set<std::string, std::less<>> recipients;
    };
    auto context = withConnection<Context>(ctx, [&](pqxx::connection& conn) -> Result<Context> {
        auto d = catalog.loadDataset(conn, datasetName);
        if (!d) return d.status();
        auto recipients = catalog::recipientNames(conn);
        if (!recipients) return recipients.status();
        return Context{std::move(d).value(), std::move(recipients).value()};
    });
    if (!context) return context.status();
    if (Status s = catalog::checkAgencyScope(who, context->dataset.agency); !s)
        return denied(ctx, "policy.put", s, context->dataset.source, datasetName, policyName);

    policies::DatasetDescription description = context->dataset.description();
    policies::PolicyLoadOptions options;
    options.dataset = &description;
    options.knownRecipients = &context->recipients;
    if (!json::isValidUtf8(ctx.request.body)) {
        return validationFailure("invalid_policy", "the policy has 1 error(s)",
                                 {{"", "the document is not valid UTF-8 text"}});
    }
    policies::PolicyLoadResult loaded = policies::loadPolicy(ctx.request.body, options);
    if (!loaded.ok()) {
        return validationFailure("invalid_policy",
                                 "the policy has " + std::to_string(loaded.errors.size()) + " error(s)", loaded.errors);
    }
    const std::string hash = loaded.policy->contentHash();

    Status scopeRefusal;
    auto stored = withConnection<catalog::PolicyPutResult>(ctx, [&](pqxx::connection& conn) {
        auto r =
            catalog::putPolicyVersion(conn, who, datasetName, policyName, ctx.request.body, hash, auditChange(ctx));
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!stored) {
        if (!scopeRefusal.isOk())
            return denied(ctx, "policy.put", scopeRefusal, context->dataset.source, datasetName, policyName);
        return stored.status();
    }
    if (!stored->created) {
        // Nothing changed, but the request is still on record.
        audit::AuditEntry e = entryWith(ctx, "policy.put", "allowed", context->dataset.source, datasetName, policyName);
        e.target.policyVersion = stored->version;
        json::JsonValue::Object details;
        details["content_hash"] = hash;
        details["version"] = static_cast<int64_t>(stored->version);
        details["unchanged"] = true;
        e.details = json::JsonValue(std::move(details));
        auto recorded = record(ctx, std::move(e));
        if (!recorded) return recorded.status();
    }
    json::JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(stored->version))
        .field("content_hash", stored->contentHash)
        .field("created", stored->created)
        .field("message", stored->created ? "version " + std::to_string(stored->version) + " stored"
                                          : "identical to the current version " + std::to_string(stored->version) +
                                                "; no new version was created");
    out.endObject();
    return HttpResponse::json(stored->created ? 201 : 200, out.text());
}

Result<HttpResponse> handleGetPolicy(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    const catalog::Catalog& catalog = call->catalog;
    struct View {
        catalog::Dataset dataset;
        std::optional<catalog::LoadedPolicy> current;
        std::vector<catalog::PolicyVersionInfo> history;
    };
    auto view = withConnection<View>(ctx, [&](pqxx::connection& conn) -> Result<View> {
        auto d = catalog.loadDataset(conn, datasetName);
        if (!d) return d.status();
        View v{std::move(d).value(), std::nullopt, {}};
        if (!catalog::checkAgencyScope(who, v.dataset.agency).isOk()) return v;  // refused below, nothing read
        auto p = catalog.loadCurrentPolicy(conn, datasetName, policyName);
        if (!p) return p.status();
        v.current = std::move(p).value();
        auto h = catalog::policyHistory(conn, datasetName, policyName);
        if (!h) return h.status();
        v.history = std::move(h).value();
        return v;
    });
    if (!view) return view.status();
    if (Status s = catalog::checkAgencyScope(who, view->dataset.agency); !s)
        return denied(ctx, "policy.get", s, view->dataset.source, datasetName, policyName);
    const catalog::LoadedPolicy& p = *view->current;
    json::JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(p.version))
        .field("content_hash", p.contentHash)
        .field("retired", p.retired)
        .optional("retired_at", p.retiredAt)
        .raw("document", p.document);
    out.beginArray("history");
    for (const auto& h : view->history) {
        out.beginObject()
            .field("version", static_cast<int64_t>(h.version))
            .field("content_hash", h.contentHash)
            .field("created_by", h.createdBy)
            .field("created_at", h.createdAt)
            .endObject();
    }
    out.endArray().endObject();
    return HttpResponse::json(200, out.text());
}

Result<HttpResponse> handleGetPolicyVersion(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    const std::string& versionText = ctx.param("version");
    int32_t version = 0;
    auto [end, ec] = std::from_chars(versionText.data(), versionText.data() + versionText.size(), version);
    if (ec != std::errc() || end != versionText.data() + versionText.size() || version < 1)
        return invalidArgument("version must be a positive integer, got \"" + json::sanitizeUtf8(versionText) + "\"");
    const catalog::Catalog& catalog = call->catalog;
    struct View {
        catalog::Dataset dataset;
        std::optional<catalog::PolicyVersionDocument> version;
    };
    auto view = withConnection<View>(ctx, [&](pqxx::connection& conn) -> Result<View> {
        auto d = catalog.loadDataset(conn, datasetName);
        if (!d) return d.status();
        View v{std::move(d).value(), std::nullopt};
        if (!catalog::checkAgencyScope(who, v.dataset.agency).isOk()) return v;  // refused below, nothing read
        auto document = catalog::policyVersionDocument(conn, datasetName, policyName, version);
        if (!document) return document.status();
        v.version = std::move(document).value();
        return v;
    });
    if (!view) return view.status();
    if (Status s = catalog::checkAgencyScope(who, view->dataset.agency); !s)
        return denied(ctx, "policy.version.get", s, view->dataset.source, datasetName, policyName);
    const catalog::PolicyVersionDocument& v = *view->version;
    json::JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(v.info.version))
        .field("content_hash", v.info.contentHash)
        .field("created_by", v.info.createdBy)
        .field("created_at", v.info.createdAt)
        .raw("document", v.document)
        .endObject();
    return HttpResponse::json(200, out.text());
}

Result<HttpResponse> handleRetirePolicy(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    Status scopeRefusal;
    auto retired = withConnection<catalog::PolicyRetireResult>(ctx, [&](pqxx::connection& conn) {
        auto r = catalog::retirePolicy(conn, who, datasetName, policyName, auditChange(ctx));
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!retired) {
        if (!scopeRefusal.isOk()) return denied(ctx, "policy.retire", scopeRefusal, {}, datasetName, policyName);
        return retired.status();
    }
    json::JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(retired->version))
        .field("content_hash", retired->contentHash)
        .field("retired", true)
        .field("retired_at", retired->retiredAt)
        .field("already_retired", retired->alreadyRetired)
        .endObject();
    return HttpResponse::json(200, out.text());
}

}  // namespace custodian::api
