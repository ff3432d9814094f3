#include "gateway/api/record.hpp"

#include "gateway/audit/log.hpp"
#include "gateway/api/services.hpp"

namespace custodian::api {

namespace {

void fillRequester(audit::AuditEntry& e, const http::HttpRequest& request, const auth::Principal* principal) {
    e.actor = principal ? principal->name : "anonymous";
    e.role = principal ? auth::roleName(principal->role) : "none";
    e.requestId = request.requestId;
    e.clientAddress = clientAddressOf(request);
}

}  // namespace

std::string clientAddressOf(const http::HttpRequest& request) {
    // The server reports "address:port"; the log records the address (the port identifies nothing).
    std::string address = request.remoteAddress;
    if (auto colon = address.rfind(':'); colon != std::string::npos && colon + 1 < address.size() &&
                                         address.find_first_not_of("0123456789", colon + 1) == std::string::npos)
        address.resize(colon);
    return address;
}

audit::AuditEntry entryFor(const RequestContext& ctx, std::string action, std::string decision) {
    audit::AuditEntry e;
    fillRequester(e, ctx.request, ctx.principal);
    e.action = std::move(action);
    e.decision = std::move(decision);
    return e;
}

audit::AuditEntry entryForOutcome(const RequestOutcome& o) {
    audit::AuditEntry e;
    fillRequester(e, *o.request, o.principal);
    e.action = o.route && !o.route->action.empty() ? o.route->action : std::string(kUnroutedAction);
    const int status = o.response ? o.response->status : 500;
    e.decision = status < 400 ? "allowed" : status < 500 ? "denied" : "failed";
    json::JsonValue::Object details;
    details.emplace("path", json::sanitizeUtf8(o.request->path));
    details.emplace("status", static_cast<int64_t>(status));
    if (!o.request->query.empty()) details.emplace("query", json::sanitizeUtf8(o.request->query));
    if (!o.credential.empty()) details.emplace("credential", o.credential);
    if (o.params) {
        for (const auto& [name, value] : *o.params) {
            if (name == "dataset" || (name == "name" && o.route && o.route->pattern.starts_with("/v1/datasets/")))
                e.target.dataset = json::sanitizeUtf8(value);
            else if (name == "policy") e.target.policy = json::sanitizeUtf8(value);
            else if (name == "name" && o.route && o.route->pattern.starts_with("/v1/sources/"))
                e.target.source = json::sanitizeUtf8(value);
            else details.emplace(name, json::sanitizeUtf8(value));
        }
    }
    // The error body's code, message and scalar details (limit, rule, …): the reason of a refusal.
    if (status >= 400 && o.response && !o.response->body.empty()) {
        if (auto body = json::parseJson(o.response->body); body && body->isObject()) {
            const auto& root = body->asObject();
            if (auto err = root.find("error"); err != root.end() && err->second.isObject()) {
                for (const auto& [key, value] : err->second.asObject()) {
                    if (key == "message" && value.isString()) {
                        e.reason = value.asString();
                    } else if (key == "code" && value.isString()) {
                        details.emplace("error", value.asString());
                        // A deliberate refusal for capacity is a denial, not a failure of the gateway.
                        if (value.asString() == "overloaded") e.decision = "denied";
                    } else if (key == "details" && value.isObject()) {
                        for (const auto& [name, v] : value.asObject())
                            if (v.isString() || v.isInteger() || v.isBool()) details.emplace(name, v);
                    } else if (value.isString() || value.isInteger() || value.isBool()) {
                        details.emplace(key, value);
                    }
                }
            }
        }
    }
    e.details = std::move(details);
    return e;
}

Result<uint64_t> record(RequestContext& ctx, audit::AuditEntry entry) {
    auto index = record(ctx.services, std::move(entry));
    if (index) ++ctx.entriesRecorded;
    return index;
}

namespace {

// What a caller of record() sees of a failed append: always Unavailable (fail closed, 503).
Result<uint64_t> recorded(Result<uint64_t> index) {
    if (!index && index.status().code() != StatusCode::Unavailable)
        return unavailable("the audit entry could not be recorded: " + index.status().message());
    return index;
}

}  // namespace

Result<uint64_t> record(Services& services, audit::AuditEntry entry) {
    if (services.audit == nullptr) return unavailable("the audit log is not available");
    return recorded(services.audit->append(std::move(entry)));
}

void recordAsync(Services& services, audit::AuditEntry entry, std::function<void(Result<uint64_t>)> done) {
    if (services.audit == nullptr) return done(unavailable("the audit log is not available"));
    services.audit->appendAsync(std::move(entry),
                                [done = std::move(done)](Result<uint64_t> index) { done(recorded(std::move(index))); });
}

}  // namespace custodian::api
