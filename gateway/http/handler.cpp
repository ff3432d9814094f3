#include "gateway/http/handler.hpp"

#include <sodium.h>

#include "gateway/audit/log.hpp"
#include "gateway/audit/record.hpp"
#include "gateway/http/errors.hpp"
#include "gateway/http/overload.hpp"
#include "gateway/services.hpp"

namespace custodian::http {
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
    OverloadGuard::ExtractSlot slot_;      // declared first: released after the inner producer is gone
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
std::optional<std::string> untrustedAuditLog(Services& services, const Route& route) {
    if (!services.audit || !(route.audited || route.access.requiresToken)) return std::nullopt;
    auto integrity = services.audit->integrity();
    if (integrity.state != audit::IntegrityState::Untrusted) return std::nullopt;
    return integrity.message;
}

}  // namespace

std::string newRequestId() {
    unsigned char bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    char hex[sizeof bytes * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
    return hex;
}

bool acceptableRequestId(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool runsInline(const HttpRequest& request, const Router& router) {
    RouteMatch m = router.match(request.method, request.path);
    return !m.route || m.route->inlineSafe;
}

HandledRequest handleRequest(const HttpRequest& request, Services& services, const Router& router) {
    HandledRequest out;
    RouteMatch m = router.match(request.method, request.path);
    if (!m.error.isOk()) {
        out.response = errorResponse(m.error);
    } else if (!m.route && !m.allowed.empty()) {
        out.route = "method_not_allowed";
        out.response = errorResponse(405, "method_not_allowed",
                                     request.method + " is not allowed on " + request.path + " (allowed: " +
                                         joinMethods(m.allowed) + ")");
        out.response.setHeader("Allow", joinMethods(m.allowed));
    } else if (!m.route) {
        out.response = errorResponse(404, "not_found", "no route for " + request.path);
    } else if (auto untrusted = untrustedAuditLog(services, *m.route)) {
        out.route = m.route->pattern;
        out.response = errorResponse(503, "audit_log_untrusted", *untrusted);
    } else {
        out.route = m.route->pattern;
        std::optional<auth::Principal> principal;
        Status denied;
        if (m.route->access.requiresToken) {
            std::optional<auth::Principal> authenticated;
            auto p = authorize(request, services, *m.route, authenticated);
            if (p) {
                principal = std::move(p).value();
                out.principal = principal->name;
            } else {
                denied = p.status();
                if (authenticated) out.principal = authenticated->name;
                // Refusals on routes that touch data or configuration are accesses too: record
                // them, and fail closed (503) if the log cannot be written.
                const bool refusal = denied.code() == StatusCode::Unauthenticated ||
                                     denied.code() == StatusCode::PermissionDenied;
                if (refusal && m.route->audited) {
                    auto recorded = audit::record(
                        services, audit::entryForDenial(request, *m.route,
                                                        authenticated ? &*authenticated : nullptr, denied));
                    if (!recorded) denied = recorded.status();
                }
            }
        }
        std::optional<OverloadRefusal> overload;
        std::optional<OverloadGuard::ExtractSlot> slot;
        if (denied.isOk() && principal && services.overload) {
            overload = admit(*services.overload, *m.route, *principal, slot);
            if (overload && m.route->audited) {
                // A refused data request is an access too; if even the refusal cannot be recorded,
                // the answer is the audit log's 503.
                const StatusCode code =
                    overload->httpStatus == 429 ? StatusCode::ResourceExhausted : StatusCode::Unavailable;
                audit::AuditEntry e =
                    audit::entryForDenial(request, *m.route, &*principal, Status(code, overload->message));
                e.details.asObject()["status"] = overload->code;
                e.details.asObject()["limit"] = overload->limit;
                if (auto recorded = audit::record(services, std::move(e)); !recorded) {
                    denied = recorded.status();
                    overload.reset();
                }
            }
        }
        if (!denied.isOk()) {
            out.response = errorResponse(denied);
        } else if (overload) {
            out.response = overloadResponse(*overload);
        } else {
            RequestContext ctx{request, services, m.params, principal ? &*principal : nullptr};
            try {
                Result<HttpResponse> r = m.route->handler(ctx);
                out.response = r ? std::move(r).value() : errorResponse(r.status());
            } catch (const std::exception& e) {
                out.response = errorResponse(internalError(std::string("unexpected error: ") + e.what()));
            }
            // A streamed extract stays in flight until its body is sent; anything else ends here.
            if (slot && out.response.stream)
                out.response.stream =
                    std::make_shared<SlotHoldingProducer>(std::move(*slot), std::move(out.response.stream));
        }
    }
    out.response.setHeader("X-Request-Id", request.requestId.empty() ? newRequestId() : request.requestId);
    return out;
}

HandledRequest handleRequest(const HttpRequest& request, Services& services) {
    static const Router kEmpty;
    return handleRequest(request, services, services.router ? *services.router : kEmpty);
}

}  // namespace custodian::http
