#include "gateway/api/handler.hpp"

#include <future>

#include "gateway/audit/log.hpp"
#include "gateway/api/record.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/http/errors.hpp"
#include "gateway/api/overload.hpp"
#include "gateway/api/services.hpp"

namespace custodian::api {
namespace {

std::string joinMethods(const std::vector<std::string>& methods) {
    std::string out;
    for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
    return out;
}

// Authenticates the bearer token and checks the route's roles. Runs on a worker thread.
// `authenticated` receives the principal even when its role is refused (for the audit entry).
Result<auth::Principal> authorize(const HttpRequest& request, Services& services, const Route& route,
                                  std::optional<auth::Principal>& authenticated) {
    auto token = auth::bearerToken(request.header("Authorization"));
    if (!token) return token.status();
    if (!services.db || !services.tokens) return unavailable("authentication is not configured");
    Result<auth::Principal> principal = unavailable("database unavailable");
    Status s = services.db->withConnection([&](pqxx::connection& conn) {
        principal = auth::authenticate(conn, *services.tokens, *token);
        return Status::ok();
    });
    if (!s) return s;
    if (!principal) return principal.status();
    authenticated = *principal;
    if (!route.access.roles.contains(principal->role))
        return permissionDenied("role '" + std::string(auth::roleName(principal->role)) + "' may not call " +
                                route.method + " " + route.pattern + " (allowed: " + route.access.roles.describe() +
                                ")");
    return principal;
}

// Keeps an extract's in-flight slot until the server is done with the response body: the server
// destroys the producer after its last call, whether the body ended, failed or the client left.
class SlotHoldingProducer final : public BodyProducer {
public:
    SlotHoldingProducer(OverloadGuard::ExtractSlot slot, std::shared_ptr<BodyProducer> inner)
        : slot_(std::move(slot)), inner_(std::move(inner)) {}
    Result<std::optional<std::string>> nextChunk() override { return inner_->nextChunk(); }
    void clientGone(const std::string& reason) override { inner_->clientGone(reason); }

private:
    OverloadGuard::ExtractSlot slot_;  // declared first: released after the inner producer is gone
    std::shared_ptr<BodyProducer> inner_;
};

// Applies the rate limit and, on extract routes, takes an in-flight slot. Returns the refusal, if
// any; `slot` receives the slot otherwise.
std::optional<OverloadRefusal> admit(OverloadGuard& guard, const Route& route, const auth::Principal& principal,
                                     std::optional<OverloadGuard::ExtractSlot>& slot) {
    if (auto refused = guard.admitRequest(principal.name)) return refused;
    if (!route.extractSlot) return std::nullopt;
    auto acquired = guard.acquireExtractSlot(principal.name);
    if (auto* refused = std::get_if<OverloadRefusal>(&acquired)) return std::move(*refused);
    slot.emplace(std::move(std::get<OverloadGuard::ExtractSlot>(acquired)));
    return std::nullopt;
}

// The refusal of a request to an audited or authenticated route while the audit log is untrusted
// (gateway/audit/log.hpp): no data leaves a gateway whose log no longer matches what it signed.
std::optional<std::string> untrustedAuditLog(Services& services) {
    if (!services.audit) return std::nullopt;
    auto integrity = services.audit->integrity();
    if (integrity.state != audit::IntegrityState::Untrusted) return std::nullopt;
    return integrity.message;
}

}  // namespace

namespace {

bool underV1(std::string_view path) { return path == "/v1" || path.starts_with("/v1/"); }

bool presentsCredentials(const HttpRequest& request) { return !request.header("Authorization").empty(); }

// Which requests leave an audit entry: every one that presents credentials, every one to a protected
// route, and every one to a /v1 path no route serves. Public routes called without credentials
// (/healthz, /readyz, /metrics, /v1/keys, the transparency register and the console's files) are the
// only exceptions (docs/audit.md).
bool audited(const HttpRequest& request, const Route* route) {
    if (presentsCredentials(request)) return true;
    return route ? route->access.requiresToken : underV1(request.path);
}

// The audit entry's name for a credential that did not authenticate: a keyed hash of the token
// (stable across uses, useless to log in with), or "malformed" when there is no bearer token.
std::string credentialId(const HttpRequest& request, const Services& services) {
    auto token = auth::bearerToken(request.header("Authorization"));
    if (!token || !services.tokens) return "malformed";
    const auth::TokenHash h = services.tokens->hash(*token);
    return "token:" + crypto::toHex(crypto::ByteView(h.data(), 8));
}

}  // namespace

bool runsInline(const HttpRequest& request, const Router& router) {
    // Audited requests write to the audit log (and may authenticate): never on the network thread.
    RouteMatch m = router.match(request.method, request.path);
    if (audited(request, m.route)) return false;
    return !m.route || m.route->inlineSafe;
}

void handleRequestAsync(const HttpRequest& request, Services& services, const Router& router,
                        http::RequestHandler::HandledCallback done) {
    HandledRequest out;
    RouteMatch m = router.match(request.method, request.path);
    const bool auditThis = audited(request, m.route);
    std::optional<auth::Principal> principal;      // authenticated and allowed
    std::optional<auth::Principal> authenticated;  // authenticated, whatever the role check said
    std::string failedCredential;
    int entriesRecorded = 0;
    if (m.route) out.route = m.route->pattern;

    // Authentication: on protected routes, and wherever credentials are presented (so that the
    // audit entry names who asked, or which credential failed).
    Status denied;
    if (m.route && m.route->access.requiresToken) {
        auto p = authorize(request, services, *m.route, authenticated);
        if (p) {
            principal = std::move(p).value();
            out.principal = principal->name;
        } else {
            denied = p.status();
            if (authenticated) out.principal = authenticated->name;
        }
    } else if (auditThis && presentsCredentials(request) && m.error.isOk()) {
        auto token = auth::bearerToken(request.header("Authorization"));
        if (token && services.db && services.tokens) {
            Status s = services.db->withConnection([&](pqxx::connection& conn) {
                auto p = auth::authenticate(conn, *services.tokens, *token);
                if (p) authenticated = std::move(p).value();
                return Status::ok();
            });
            if (s.code() == StatusCode::Unavailable) denied = s;
        }
        if (authenticated) out.principal = authenticated->name;
    }
    if (presentsCredentials(request) && !authenticated) failedCredential = credentialId(request, services);

    std::optional<OverloadRefusal> overload;
    std::optional<OverloadGuard::ExtractSlot> slot;
    // No audited request is served while the log cannot be trusted (docs/audit.md, "Integrity
    // checks"); nothing can be appended to it either, so no entry is attempted.
    std::optional<std::string> untrusted = auditThis ? untrustedAuditLog(services) : std::nullopt;
    if (untrusted) {
        out.response = http::errorResponse(503, "audit_log_untrusted", *untrusted);
    } else if (!m.error.isOk()) {
        out.response = http::errorResponse(m.error);
    } else if (!m.route && !m.allowed.empty()) {
        out.route = "method_not_allowed";
        out.response = http::errorResponse(405, "method_not_allowed",
                                           request.method + " is not allowed on " + request.path +
                                               " (allowed: " + joinMethods(m.allowed) + ")");
        out.response.setHeader("Allow", joinMethods(m.allowed));
    } else if (!m.route) {
        out.response = http::errorResponse(404, "not_found", "no route for " + request.path);
    } else if (!denied.isOk()) {
        out.response = http::errorResponse(denied);
    } else if (request.refusedByServer) {
        const auto& refusal = *request.refusedByServer;
        out.response = http::errorResponse(refusal.status, refusal.code, refusal.message);
    } else if (principal && services.overload && (overload = admit(*services.overload, *m.route, *principal, slot))) {
        out.response = overloadResponse(*overload);
    } else {
        RequestContext ctx{request, services, m.params, principal ? &*principal : nullptr};
        try {
            Result<HttpResponse> r = m.route->handler(ctx);
            out.response = r ? std::move(r).value() : http::errorResponse(r.status());
        } catch (const std::exception& e) {
            out.response = http::errorResponse(internalError(std::string("unexpected error: ") + e.what()));
        }
        entriesRecorded = ctx.entriesRecorded;
        // A streamed extract stays in flight until its body is sent; anything else ends here.
        if (slot && out.response.stream)
            out.response.stream =
                std::make_shared<SlotHoldingProducer>(std::move(*slot), std::move(out.response.stream));
    }

    // Exactly one entry per audited request: the handler's, or one describing the outcome. If the
    // log cannot take it, nothing the handler produced leaves the gateway: the answer is 503. The
    // worker thread is not held while the entry waits for its group commit.
    std::string requestId = request.requestId.empty() ? http::newRequestId() : request.requestId;
    if (auditThis && entriesRecorded == 0 && !untrusted) {
        RequestOutcome outcome;
        outcome.request = &request;
        outcome.route = m.route;
        outcome.params = m.route ? &m.params : nullptr;
        outcome.principal = authenticated ? &*authenticated : nullptr;
        outcome.credential = failedCredential;
        outcome.response = &out.response;
        audit::AuditEntry entry = entryForOutcome(outcome);
        recordAsync(services, std::move(entry),
                    [out = std::move(out), requestId = std::move(requestId),
                     done = std::move(done)](Result<uint64_t> recorded) mutable {
                        if (!recorded) out.response = http::errorResponse(recorded.status());
                        out.response.setHeader("X-Request-Id", requestId);
                        done(std::move(out));
                    });
        return;
    }
    out.response.setHeader("X-Request-Id", requestId);
    done(std::move(out));
}

HandledRequest handleRequest(const HttpRequest& request, Services& services, const Router& router) {
    std::promise<HandledRequest> answered;
    std::future<HandledRequest> answer = answered.get_future();
    handleRequestAsync(request, services, router,
                       [&answered](HandledRequest handled) { answered.set_value(std::move(handled)); });
    return answer.get();
}

HandledRequest handleRequest(const HttpRequest& request, Services& services) {
    static const Router kEmpty;
    return handleRequest(request, services, services.router ? *services.router : kEmpty);
}

namespace {

HandledRequest failedRequest(const HttpRequest& request, const std::exception& e) {
    HandledRequest failed;
    failed.response = http::errorResponse(internalError(e.what()));
    failed.response.setHeader("X-Request-Id", request.requestId.empty() ? http::newRequestId() : request.requestId);
    return failed;
}

}  // namespace

HandledRequest RouterHandler::handle(const HttpRequest& request) {
    try {
        return handleRequest(request, services_, router_);
    } catch (const std::exception& e) { return failedRequest(request, e); }
}

void RouterHandler::handleAsync(const HttpRequest& request, HandledCallback done) {
    try {
        handleRequestAsync(request, services_, router_, done);
    } catch (const std::exception& e) {
        done(failedRequest(request, e));  // the server ignores it if the request was answered already
    }
}

}  // namespace custodian::api
