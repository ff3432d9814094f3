#pragma once
// Building audit entries from requests, and recording them.
//
// Every request to a /v1 route, and every request that presents credentials, leaves exactly one
// entry (docs/audit.md, "Every request"). Handlers record what they know best — the dataset,
// policy, version, purpose of what they allowed or refused — through the request's context:
//
//     auto entry = entryFor(ctx, "policy.put", "allowed");
//     entry.target.dataset = name;
//     auto recorded = record(ctx, std::move(entry));
//     if (!recorded) return recorded.status();  // Unavailable → 503, nothing released
//
// When a handler recorded nothing (a read, a refusal before any work, a 404, authentication or
// the role check failing, the rate limit), handleRequest (gateway/api/handler.cpp) records the
// entry built by entryForOutcome() under the route's action, and fails closed with 503 if it
// cannot.

#include <functional>
#include <string>

#include "anonymizer/status.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/http/message.hpp"
#include "gateway/api/router.hpp"

namespace custodian::api {

struct Services;

// Actor, role, request id and client address filled in from the request and its principal
// ("anonymous"/"none" without one); index and time are assigned by AuditLog::append.
audit::AuditEntry entryFor(const RequestContext& ctx, std::string action, std::string decision);

// The action recorded for a request no route matched (404, 405, a malformed path).
inline constexpr const char* kUnroutedAction = "request.unrouted";

// How a request ended, for the entry handleRequest records when the handler recorded none.
struct RequestOutcome {
    const http::HttpRequest* request = nullptr;
    const Route* route = nullptr;                // null: no route matched
    const PathParams* params = nullptr;          // the route's parameters, if any
    const auth::Principal* principal = nullptr;  // the authenticated principal (also when its role was refused)
    // The presented credential when it did not authenticate: "token:<16 hex>" (a keyed hash of the
    // token, the same for every use of that token and useless to log in with) or "malformed".
    std::string credential;
    const http::HttpResponse* response = nullptr;
};

// Action: the route's, or kUnroutedAction. Decision: "allowed" for 1xx–3xx, "denied" for 4xx and
// for a 503 `overloaded` (a deliberate refusal), "failed" for other 5xx. Reason: the error message. Target: the route's
// dataset/policy/source parameters. Details: path, status (the HTTP status), the query string when present, the error
// code and its scalar details (limit, rule…), the presented credential when it failed.
audit::AuditEntry entryForOutcome(const RequestOutcome& outcome);

// Appends to the gateway's audit log and counts the entry on the request (RequestContext::
// entriesRecorded). Unavailable when there is no audit log or the append failed: the caller must
// fail closed. Returns the entry's index on success.
Result<uint64_t> record(RequestContext& ctx, audit::AuditEntry entry);

// Appends outside a request (extract completion, the sweeper): the same failure contract.
Result<uint64_t> record(Services& services, audit::AuditEntry entry);

// The same without waiting for the commit: `done` gets what record(services, entry) would return,
// exactly once, possibly later on the audit log's appender thread (AuditLog::appendAsync).
void recordAsync(Services& services, audit::AuditEntry entry, std::function<void(Result<uint64_t>)> done);

// The client address of a request as the audit log records it (without the port).
std::string clientAddressOf(const http::HttpRequest& request);

}  // namespace custodian::api
