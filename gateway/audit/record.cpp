#include "gateway/audit/record.hpp"

#include "gateway/audit/log.hpp"
#include "gateway/services.hpp"

namespace custodian::audit {

namespace {

void fillRequester(AuditEntry& e, const http::HttpRequest& request, const auth::Principal* principal) {
    e.actor = principal ? principal->name : "anonymous";
    e.role = principal ? auth::roleName(principal->role) : "none";
    e.requestId = request.requestId;
    e.clientAddress = clientAddressOf(request);
}

} // namespace

std::string clientAddressOf(const http::HttpRequest& request) {
    // The server reports "address:port"; the log records the address (the port identifies nothing).
    std::string address = request.remoteAddress;
    if (auto colon = address.rfind(':'); colon != std::string::npos && colon + 1 < address.size() &&
        address.find_first_not_of("0123456789", colon + 1) == std::string::npos)
        address.resize(colon);
    return address;
}

std::string routeAction(const http::Route& route) { return route.method + " " + route.pattern; }

AuditEntry entryFor(const http::RequestContext& ctx, std::string action, std::string decision) {
    AuditEntry e;
    fillRequester(e, ctx.request, ctx.principal);
    e.action = std::move(action);
    e.decision = std::move(decision);
    return e;
}

AuditEntry entryForDenial(const http::HttpRequest& request, const http::Route& route,
                          const auth::Principal* principal, const Status& refusal) {
    AuditEntry e;
    fillRequester(e, request, principal);
    e.action = routeAction(route);
    e.decision = "denied";
    e.reason = refusal.message();
    crypto::JsonValue::Object details;
    details.emplace("path", crypto::sanitizeUtf8(request.path));
    details.emplace("status", refusal.code() == StatusCode::Unauthenticated ? "unauthenticated" : "forbidden");
    e.details = std::move(details);
    return e;
}

Result<uint64_t> record(Services& services, AuditEntry entry) {
    if (services.audit == nullptr) return unavailable("the audit log is not available");
    auto index = services.audit->append(std::move(entry));
    if (!index && index.status().code() != StatusCode::Unavailable)
        return unavailable("the audit entry could not be recorded: " + index.status().message());
    return index;
}

} // namespace custodian::audit
