#include "gateway/api/routes.hpp"

#include <sodium.h>

#include "gateway/api/audit_routes.hpp"
#include "gateway/api/group_routes.hpp"
#include "json/writer.hpp"
#include "gateway/api/catalog_routes.hpp"
#include "gateway/api/console_routes.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/http/errors.hpp"
#include "gateway/api/extract_routes.hpp"
#include "gateway/api/metrics_sources.hpp"
#include "gateway/api/query_routes.hpp"
#include "gateway/api/services.hpp"
#include "gateway/api/transparency_routes.hpp"

namespace custodian::api {

using auth::Role;

std::vector<Route> operationalRoutes() {
    return {
        {"GET", "/healthz", Access::publicRoute(), handleHealthz, true, "health.get"},
        {"GET", "/readyz", Access::publicRoute(), handleReadyz, true, "readiness.get"},
        {"GET", "/metrics", Access::publicRoute(), handleMetrics, true, "metrics.get"},
    };
}

std::vector<Route> builtinRoutes() {
    std::vector<Route> routes = operationalRoutes();
    std::vector<Route> api = {
        // method  pattern     who may call                handler     inline  audit action
        {"GET", "/v1/keys", Access::publicRoute(), handleKeys, true, "keys.get"},
    };
    routes.insert(routes.end(), api.begin(), api.end());
    for (auto& r : auditRoutes()) routes.push_back(std::move(r));
    for (auto& r : catalogRoutes()) routes.push_back(std::move(r));
    for (auto& r : groupRoutes()) routes.push_back(std::move(r));
    for (auto& r : releaseRoutes()) routes.push_back(std::move(r));
    for (auto& r : queryRoutes()) routes.push_back(std::move(r));
    for (auto& r : consoleRoutes()) routes.push_back(std::move(r));
    for (auto& r : transparencyRoutes()) routes.push_back(std::move(r));
    return routes;
}

Result<HttpResponse> handleHealthz(RequestContext&) { return HttpResponse::json(200, R"({"status":"ok"})"); }

Result<HttpResponse> handleReadyz(RequestContext& ctx) {
    auto* readiness = ctx.services.readiness;
    std::optional<audit::IntegrityStatus> integrity;
    if (ctx.services.audit) integrity = ctx.services.audit->integrity();
    // A log that no longer matches its signed heads is the most important reason: it needs an operator.
    if (integrity && integrity->state == audit::IntegrityState::Untrusted)
        return http::errorResponse(503, "audit_log_untrusted", "not ready: " + integrity->message);
    if (readiness && readiness->ready()) {
        if (!integrity || integrity->state == audit::IntegrityState::Trusted)
            return HttpResponse::json(200, R"({"status":"ready"})");
        return Status(StatusCode::Unavailable, "not ready: " + integrity->message);
    }
    std::string reason = readiness ? readiness->reason() : "readiness monitor not running";
    return Status(StatusCode::Unavailable, "not ready: " + reason);
}

Result<HttpResponse> handleMetrics(RequestContext& ctx) {
    if (!ctx.services.metrics) return internalError("metrics are not configured");
    return HttpResponse::text(200, ctx.services.metrics->render(), "text/plain; version=0.0.4; charset=utf-8");
}

Result<HttpResponse> handleKeys(RequestContext& ctx) {
    const crypto::SigningKey* key = ctx.services.signingKey;
    if (!key) return unavailable("the gateway signing key is not loaded");
    const auto& pk = key->publicKey();
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, pk.data(), pk.size());
    std::string keyId = crypto::toHex(crypto::ByteView(digest, 8));
    json::JsonOut out;
    out.beginObject().beginArray("keys").beginObject();
    out.field("key_id", keyId).field("algorithm", "Ed25519").field("use", "manifest and tree-head signatures");
    out.field("public_key", crypto::toBase64(pk)).endObject().endArray().endObject();
    HttpResponse r = HttpResponse::json(200, out.text());
    r.setHeader("Cache-Control", "max-age=300");
    return r;
}

}  // namespace custodian::api
