#pragma once
// The route table: method + path pattern → handler, with the roles allowed to call it declared in
// the same entry. Adding an endpoint is one entry in builtinRoutes() (gateway/api/routes.cpp).
//
// Patterns are literal segments and `{name}` parameters: "/v1/datasets/{name}/policies/{policy}".
// Parameters match one non-empty segment and are percent-decoded. Unknown paths are 404; a known
// path with another method is 405 with an Allow header.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/http/message.hpp"

namespace custodian::api {

struct Services;

// The transport types every route file uses.
using http::BodyProducer;
using http::HttpRequest;
using http::HttpResponse;

using PathParams = std::map<std::string, std::string>;

// Everything a handler gets. `principal` is null on public routes.
struct RequestContext {
    const HttpRequest& request;
    Services& services;
    const PathParams& params;
    const auth::Principal* principal = nullptr;
    // Audit entries recorded for this request through record(ctx, …). handleRequest records
    // one entry describing the outcome when the handler recorded none, so every audited request
    // leaves exactly one (an extract's later completion or abort is recorded by its producer).
    int entriesRecorded = 0;

    const std::string& param(const std::string& name) const;  // empty if absent
};

// Handlers return a response, or an error Status that becomes the JSON error body with the status
// mapped by gateway/http/errors. They run on a database worker thread (they may block), unless the
// route is `inlineSafe`.
using Handler = std::function<Result<HttpResponse>(RequestContext&)>;

// Who may call a route.
struct Access {
    bool requiresToken = false;
    auth::RoleSet roles;  // when requiresToken: the roles allowed (403 for the others)

    static Access publicRoute() { return {}; }
    static Access only(auth::RoleSet allowed) { return {true, allowed}; }
};

struct Route {
    std::string method;   // "GET", "PUT", "POST", "DELETE"
    std::string pattern;  // "/v1/keys"; also the metrics label
    Access access;
    Handler handler;
    // True if the handler never blocks (no database, no file I/O): it may run on the network
    // thread. Only public routes can be inline (authentication needs the database).
    bool inlineSafe = false;
    // The audit action of the route ("catalog.get", "policy.put"; docs/audit.md lists them all).
    // Every request to a /v1 route, and every request that presents credentials, leaves exactly
    // one audit entry: the handler's own (richer) entry if it records one, otherwise the entry
    // handleRequest builds from the outcome under this action. Empty only for public routes
    // outside /v1 (/healthz, /readyz, /metrics), which are audited only when credentials are sent.
    std::string action{};
    // True if a call produces an extract: it holds one in-flight extract slot
    // (limits.max_inflight_extracts, …_per_principal) from before the handler runs until its
    // response body has been sent, and is refused with 503 and Retry-After when none is free.
    bool extractSlot = false;
};

struct RouteMatch {
    const Route* route = nullptr;  // null: 404 or 405
    PathParams params;
    std::vector<std::string> allowed;  // methods of routes matching the path (for 405)
    Status error;                      // a malformed path (bad percent escape) → 400
};

class Router {
public:
    Router() = default;
    explicit Router(std::vector<Route> routes);  // asserts nothing: check validate()

    void add(Route route);
    // InvalidArgument naming the first bad entry (malformed pattern, duplicate method+pattern,
    // token-protected route without roles, inline route that needs a token).
    Status validate() const;

    RouteMatch match(std::string_view method, std::string_view path) const;
    const std::vector<Route>& routes() const { return routes_; }

private:
    std::vector<Route> routes_;
};

}  // namespace custodian::api
