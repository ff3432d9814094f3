#include "gateway/api/catalog_request.hpp"

#include <rapidjson/error/en.h>

#include <ctime>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "gateway/api/record.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/http/errors.hpp"
#include "json/writer.hpp"

namespace custodian::api {

// {"error":{"code":..., "message":..., "details":[{"pointer":..., "message":...}]}} with 422.
HttpResponse validationFailure(std::string_view code, std::string_view message,
                               const policies::ValidationErrors& errors) {
    json::JsonOut out;
    out.beginObject().key("error").beginObject().field("code", code).field("message", message);
    out.beginArray("details");
    for (const auto& e : errors) out.beginObject().field("pointer", e.pointer).field("message", e.message).endObject();
    out.endArray().endObject().endObject();
    return HttpResponse::json(422, out.text());
}

// ---- audit ------------------------------------------------------------------------------------

audit::AuditEntry entryWith(const RequestContext& ctx, const std::string& action, const std::string& decision,
                            const std::optional<std::string>& source, const std::optional<std::string>& dataset,
                            const std::optional<std::string>& policy) {
    audit::AuditEntry e = entryFor(ctx, action, decision);
    e.target.source = source;
    e.target.dataset = dataset;
    e.target.policy = policy;
    return e;
}

// The audit hook of store changes: appends an "allowed" entry; its failure rolls the change back.
catalog::BeforeCommit auditChange(RequestContext& ctx) {
    return [&ctx](const catalog::ChangeFacts& facts) -> Status {
        audit::AuditEntry e = entryWith(ctx, facts.action, "allowed", facts.source, facts.dataset, facts.policy);
        e.target.policyVersion = facts.policyVersion;
        e.details = json::JsonValue(facts.details);
        auto recorded = record(ctx, std::move(e));
        return recorded ? Status::ok() : recorded.status();
    };
}

// Records a scoping refusal as a denied `action`; fails (503) if the log cannot take it.
Status recordDenial(RequestContext& ctx, const std::string& action, const Status& refusal,
                    const std::optional<std::string>& source, const std::optional<std::string>& dataset,
                    const std::optional<std::string>& policy) {
    audit::AuditEntry e = entryWith(ctx, action, "denied", source, dataset, policy);
    e.reason = refusal.message();
    auto recorded = record(ctx, std::move(e));
    return recorded ? Status::ok() : recorded.status();
}

// Records a scoping refusal and returns it — or the audit log's 503 if the refusal cannot be
// recorded (nothing was changed or shown either way).
Status denied(RequestContext& ctx, const std::string& action, Status refusal, const std::optional<std::string>& source,
              const std::optional<std::string>& dataset, const std::optional<std::string>& policy) {
    if (Status s = recordDenial(ctx, action, refusal, source, dataset, policy); !s) return s;
    return refusal;
}

// ---- request helpers ----------------------------------------------------------------------------

Result<CatalogCall> openCatalogCall(RequestContext& ctx) {
    if (!ctx.services.db) return unavailable("the database is not configured");
    if (!ctx.services.catalog) return unavailable("the catalog is not configured");
    if (!ctx.principal) return Status(StatusCode::Unauthenticated, "authentication required");
    return CatalogCall{ctx, *ctx.principal, *ctx.services.catalog};
}

std::chrono::seconds probeTimeout(const RequestContext& ctx) {
    return ctx.services.config ? ctx.services.config->database.connectTimeout : std::chrono::seconds(5);
}

// A source rule's refusal (source_access.hpp): 422 {"error":{"code":"source_refused","message":...,
// "details":{"rule":...}}}, audited as a denied `action` like the scope refusals.
Result<HttpResponse> sourceRefused(RequestContext& ctx, const std::string& action, const Status& refusal,
                                   const std::optional<std::string>& source,
                                   const std::optional<std::string>& dataset) {
    if (Status s = recordDenial(ctx, action, refusal, source, dataset, {}); !s) return s;
    json::JsonOut details;
    details.beginObject().field("rule", catalog::refusedRule(refusal)).endObject();
    return http::errorResponse(422, "source_refused", refusal.message(), details.text());
}

namespace {

// The first member name an object of the document repeats, or nullopt. A repeated member is
// ambiguous (RapidJSON reads the first, other readers the last), so bodies refuse it, as
// json::parseJson and the policy loader do. Iterative: a body may nest deeply.
std::optional<std::string> repeatedMember(const rapidjson::Value& root) {
    std::vector<const rapidjson::Value*> todo{&root};
    std::set<std::string_view> names;
    while (!todo.empty()) {
        const rapidjson::Value* v = todo.back();
        todo.pop_back();
        if (v->IsObject()) {
            names.clear();
            for (auto m = v->MemberBegin(); m != v->MemberEnd(); ++m) {
                const std::string_view name(m->name.GetString(), m->name.GetStringLength());
                if (!names.insert(name).second) return std::string(name.substr(0, 64));
                todo.push_back(&m->value);
            }
        } else if (v->IsArray()) {
            for (const auto& e : v->GetArray()) todo.push_back(&e);
        }
    }
    return std::nullopt;
}

}  // namespace

Result<rapidjson::Document> parseBody(const RequestContext& ctx) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(ctx.request.body.c_str(), ctx.request.body.size());
    if (doc.HasParseError()) {
        return invalidArgument(std::string("the body is not valid JSON: ") +
                               rapidjson::GetParseError_En(doc.GetParseError()) + " (offset " +
                               std::to_string(doc.GetErrorOffset()) + ")");
    }
    if (!doc.IsObject()) return invalidArgument("the body must be a JSON object");
    if (auto name = repeatedMember(doc))
        return invalidArgument("the body repeats the member \"" + json::sanitizeUtf8(*name) + "\" in one object");
    return doc;
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
    auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

Result<catalog::SourceAccess> sourceAccessFor(RequestContext& ctx) {
    static const config::SourcesConfig kNoSources;  // no configuration: no endpoint is allowed
    catalog::SourceAccess access;
    access.rules = ctx.services.config ? &ctx.services.config->sources : &kNoSources;
    access.timeout = probeTimeout(ctx);
    auto identity =
        withConnection<db::ServerIdentity>(ctx, [](pqxx::connection& conn) { return catalog::gatewayIdentity(conn); });
    if (!identity) return identity.status();
    access.gateway = std::move(identity).value();
    return access;
}

std::string nowIso() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

std::optional<std::string> isoFromMicros(const std::optional<int64_t>& micros) {
    if (!micros) return std::nullopt;
    std::time_t t = static_cast<std::time_t>(*micros / 1000000 - (*micros % 1000000 < 0 ? 1 : 0));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buffer);
}

int64_t nowMicros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Status validateAgency(const std::string& agency) {
    if (agency.empty() || agency.size() > 128) return invalidArgument("agency must be 1 to 128 characters");
    for (unsigned char c : agency)
        if (c < 0x20 || c == 0x7f) return invalidArgument("agency must not contain control characters");
    if (!json::isValidUtf8(agency)) return invalidArgument("agency must be valid UTF-8");
    return Status::ok();
}

}  // namespace custodian::api
