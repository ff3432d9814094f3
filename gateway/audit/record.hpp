#pragma once
// Building audit entries from requests, and recording them.
//
// Handlers record the requests they allow (they know the dataset, policy, version, purpose…):
//
//     auto entry = audit::entryFor(ctx, "policy.put", "allowed");
//     entry.target.dataset = name;
//     auto recorded = audit::record(ctx.services, std::move(entry));
//     if (!recorded) return recorded.status();  // Unavailable → 503, nothing released
//
// handleRequest (gateway/http/handler.cpp) records authentication and role denials on routes
// marked `audited`, with entryForDenial().

#include <string>

#include "anonymizer/status.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/http/message.hpp"
#include "gateway/http/router.hpp"

namespace custodian {
struct Services;
}

namespace custodian::audit {

// Actor, role, request id and client address filled in from the request and its principal
// ("anonymous"/"none" without one); index and time are assigned by AuditLog::append.
AuditEntry entryFor(const http::RequestContext& ctx, std::string action, std::string decision);

// The entry for a request that authentication or the role check refused: action routeAction(route)
// ("GET /v1/audit"), decision "denied", reason the refusal's message, the path parameters in
// details. `principal` is null when authentication failed (actor "anonymous", role "none").
AuditEntry entryForDenial(const http::HttpRequest& request, const http::Route& route,
                          const auth::Principal* principal, const Status& refusal);

// Appends to services.audit. Unavailable when there is no audit log or the append failed: the
// caller must fail closed. Returns the entry's index on success.
Result<uint64_t> record(Services& services, AuditEntry entry);

// The action name recorded for a route: "METHOD pattern", e.g. "GET /v1/audit/export".
// The client address of a request as the audit log records it (without the port).
std::string clientAddressOf(const http::HttpRequest& request);

std::string routeAction(const http::Route& route);

} // namespace custodian::audit
