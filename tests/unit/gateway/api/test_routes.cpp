#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "gateway/http/errors.hpp"
#include "gateway/api/handler.hpp"
#include "gateway/api/router.hpp"
#include "gateway/api/routes.hpp"
#include "gateway/api/services.hpp"
#include "json/writer.hpp"

using namespace custodian;
using namespace custodian::http;
using namespace custodian::api;
using auth::Role;

namespace {

Result<HttpResponse> echoParams(RequestContext& ctx) {
    std::string body;
    for (const auto& [k, v] : ctx.params) body += k + "=" + v + ";";
    return HttpResponse::text(200, body);
}

Router sampleRouter() {
    return Router({
        {"GET", "/v1/datasets/{name}", Access::only({Role::Publisher, Role::Partner}), echoParams, false,
         "dataset.get"},
        {"PUT", "/v1/datasets/{name}", Access::only({Role::Publisher}), echoParams, false, "dataset.put"},
        {"GET", "/v1/datasets/{name}/policies/{policy}", Access::publicRoute(), echoParams, true, "policy.get"},
        {"GET", "/open", Access::publicRoute(), echoParams, true},
    });
}

HttpRequest get(std::string path, std::string method = "GET") {
    HttpRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.target = r.path;
    return r;
}

}  // namespace

TEST_CASE("the router matches literal segments and decodes parameters", "[routes]") {
    Router router = sampleRouter();
    REQUIRE(router.validate().isOk());
    auto m = router.match("GET", "/v1/datasets/census%202020/policies/p1");
    REQUIRE(m.route != nullptr);
    CHECK(m.route->pattern == "/v1/datasets/{name}/policies/{policy}");
    CHECK(m.params.at("name") == "census 2020");
    CHECK(m.params.at("policy") == "p1");

    // An encoded slash stays inside its segment.
    auto slash = router.match("GET", "/v1/datasets/a%2Fb");
    REQUIRE(slash.route != nullptr);
    CHECK(slash.params.at("name") == "a/b");

    CHECK(router.match("GET", "/v1/datasets/").route == nullptr);
    CHECK(router.match("GET", "/v1/datasets").route == nullptr);
    CHECK(router.match("GET", "/v1/datasets/x/y").route == nullptr);
    CHECK_FALSE(router.match("GET", "/v1/datasets/%zz").error.isOk());
}

TEST_CASE("a known path with another method lists the allowed methods", "[routes]") {
    Router router = sampleRouter();
    auto m = router.match("DELETE", "/v1/datasets/x");
    CHECK(m.route == nullptr);
    CHECK(m.allowed == std::vector<std::string>{"GET", "PUT"});
    CHECK(router.match("DELETE", "/nowhere").allowed.empty());
}

TEST_CASE("route table validation rejects unsafe or ambiguous entries", "[routes]") {
    auto handler = echoParams;
    CHECK_FALSE(Router({{"GET", "/a", Access::publicRoute(), handler}, {"GET", "/a", Access::publicRoute(), handler}})
                    .validate()
                    .isOk());
    CHECK_FALSE(Router({{"GET", "a", Access::publicRoute(), handler}}).validate().isOk());
    CHECK_FALSE(Router({{"GET", "/a/{x}/{x}", Access::publicRoute(), handler}}).validate().isOk());
    CHECK_FALSE(Router({{"GET", "/a/x{y}", Access::publicRoute(), handler}}).validate().isOk());
    CHECK_FALSE(Router({{"GET", "/a", Access::only({}), handler}}).validate().isOk());
    CHECK_FALSE(Router({{"GET", "/a", Access::only({Role::Admin}), handler, true}}).validate().isOk());
    CHECK_FALSE(Router({{"GET", "/a", Access::publicRoute(), nullptr}}).validate().isOk());
    // Only the last segment may be empty: "/console/" is a folder's page, "/a//b" a mistake.
    CHECK_FALSE(Router({{"GET", "/a//b", Access::publicRoute(), handler}}).validate().isOk());
    Router folder(
        {{"GET", "/console/", Access::publicRoute(), handler}, {"GET", "/console", Access::publicRoute(), handler}});
    CHECK(folder.validate().isOk());
    CHECK(folder.match("GET", "/console/").route == &folder.routes()[0]);
    CHECK(folder.match("GET", "/console").route == &folder.routes()[1]);
    CHECK(folder.match("GET", "/console/x").route == nullptr);
}

TEST_CASE("the built-in route table is valid and declares who may call each route", "[routes]") {
    Router router(builtinRoutes());
    REQUIRE(router.validate().isOk());
    std::set<std::string> publicRoutes;
    for (const auto& r : router.routes()) {
        if (!r.access.requiresToken) publicRoutes.insert(r.method + " " + r.pattern);
        else CHECK_FALSE(r.access.roles.empty());
    }
    CHECK(publicRoutes.count("GET /healthz") == 1);
    CHECK(publicRoutes.count("GET /readyz") == 1);
    CHECK(publicRoutes.count("GET /metrics") == 1);
    CHECK(publicRoutes.count("GET /v1/keys") == 1);
    // The transparency register and the console's files are public too, and nothing else is.
    CHECK(publicRoutes.count("GET /v1/transparency") == 1);
    CHECK(publicRoutes.count("GET /transparency") == 1);
    CHECK(publicRoutes.count("GET /console/{file}") == 1);
    CHECK(publicRoutes.size() == 10);
    // Operational routes never block the network thread.
    for (const auto& r : operationalRoutes()) CHECK(r.inlineSafe);
}

TEST_CASE("handleRequest answers 404 and 405 with JSON errors and a request id, and fails closed without an audit log",
          "[routes]") {
    Router router = sampleRouter();
    api::Services services;  // no database: protected routes must fail before reaching it

    auto notFound = handleRequest(get("/nowhere"), services, router);
    CHECK(notFound.response.status == 404);
    CHECK(notFound.response.body.find(R"({"error":{"code":"not_found","message":)") == 0);
    CHECK(notFound.response.header("X-Request-Id").size() == 32);

    // Outside /v1 and without credentials a wrong method is not audited: answered here.
    auto wrongMethod = handleRequest(get("/open", "POST"), services, router);
    CHECK(wrongMethod.response.status == 405);
    CHECK(wrongMethod.response.header("Allow") == "GET");
    CHECK(wrongMethod.response.body.find("method_not_allowed") != std::string::npos);

    // A refusal on a protected route is an access: without an audit log to record it, the answer is
    // 503 (fail closed), never the 401 itself (the 401 with its audit entry: test_audit_every_request).
    auto noToken = handleRequest(get("/v1/datasets/x"), services, router);
    CHECK(noToken.response.status == 503);
    CHECK(noToken.response.body.find("the audit log is not available") != std::string::npos);
    HttpRequest basic = get("/v1/datasets/x");
    basic.headers.emplace_back("authorization", "Basic dXNlcjpwYXNz");
    CHECK(handleRequest(basic, services, router).response.status == 503);
    // So is a request to /v1 that no route serves.
    CHECK(handleRequest(get("/v1/nowhere"), services, router).response.status == 503);

    HttpRequest withId = get("/open");
    withId.requestId = "abc-123";
    auto open = handleRequest(withId, services, router);
    CHECK(open.response.status == 200);
    CHECK(open.route == "/open");
    CHECK(open.response.header("x-request-id") == "abc-123");
}

TEST_CASE("public routes report health without a database", "[routes]") {
    Router router(builtinRoutes());
    api::Services services;
    services.router = &router;
    CHECK(handleRequest(get("/healthz"), services).response.status == 200);
    auto ready = handleRequest(get("/readyz"), services);
    CHECK(ready.response.status == 503);
    CHECK(ready.response.body.find("unavailable") != std::string::npos);
    CHECK(handleRequest(get("/v1/keys"), services).response.status == 503);  // no key loaded
}

TEST_CASE("status codes map to HTTP statuses in one table", "[routes]") {
    CHECK(httpStatusFor(StatusCode::InvalidArgument) == 400);
    CHECK(httpStatusFor(StatusCode::Unauthenticated) == 401);
    CHECK(httpStatusFor(StatusCode::PermissionDenied) == 403);
    CHECK(httpStatusFor(StatusCode::NotFound) == 404);
    CHECK(httpStatusFor(StatusCode::Aborted) == 409);
    CHECK(httpStatusFor(StatusCode::FailedPrecondition) == 422);
    CHECK(httpStatusFor(StatusCode::ResourceExhausted) == 429);
    CHECK(httpStatusFor(StatusCode::Internal) == 500);
    CHECK(httpStatusFor(StatusCode::Unavailable) == 503);
    auto r = errorResponse(Status(StatusCode::NotFound, "no \"x\"\n"));
    CHECK(r.body == R"({"error":{"code":"not_found","message":"no \"x\"\n"}})");
    CHECK(r.header("content-type") == "application/json");
}

TEST_CASE("JSON quoting escapes control characters and replaces invalid UTF-8", "[routes]") {
    CHECK(json::quoted("a\x01"
                       "b") == "\"a\\u0001b\"");
    CHECK(json::quoted("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
    CHECK(json::quoted("bad\xff") == "\"bad\xEF\xBF\xBD\"");
    CHECK(acceptableRequestId("req-1.A_b"));
    CHECK_FALSE(acceptableRequestId("has space"));
    CHECK_FALSE(acceptableRequestId(std::string(65, 'a')));
}

TEST_CASE("query parameters are percent-decoded", "[routes]") {
    HttpRequest r;
    r.query = "actor=alice%40agency&from=2026-01-01&flag&q=a+b";
    CHECK(r.queryParam("actor") == std::optional<std::string>("alice@agency"));
    CHECK(r.queryParam("flag") == std::optional<std::string>(""));
    CHECK(r.queryParam("q") == std::optional<std::string>("a b"));
    CHECK_FALSE(r.queryParam("missing").has_value());
}

TEST_CASE("docs/audit.md lists every route with its audit action", "[unit][http][audit][docs]") {
    std::ifstream in(std::string(CUSTODIAN_SOURCE_DIR) + "/docs/audit.md");
    REQUIRE(in);
    std::string line;
    bool inTable = false;
    std::set<std::string> documented;
    while (std::getline(in, line)) {
        if (line.rfind("<!-- route-actions", 0) == 0) inTable = true;
        if (line.rfind("<!-- /route-actions", 0) == 0) inTable = false;
        if (!inTable || line.rfind("| ", 0) != 0 || line.rfind("| method", 0) == 0 || line.rfind("| any", 0) == 0 ||
            line.rfind("| ---", 0) == 0)
            continue;
        // | GET | `/v1/catalog` | `catalog.get` | partner |
        std::vector<std::string> cells;
        size_t at = 1;
        while (at < line.size()) {
            const size_t next = line.find('|', at);
            if (next == std::string::npos) break;
            std::string cell = line.substr(at, next - at);
            cell.erase(0, cell.find_first_not_of(" `"));
            cell.erase(cell.find_last_not_of(" `") + 1);
            cells.push_back(cell);
            at = next + 1;
        }
        REQUIRE(cells.size() == 4);
        documented.insert(cells[0] + " " + cells[1] + " " + cells[2] + " " + cells[3]);
    }
    std::set<std::string> routed;
    for (const auto& r : builtinRoutes()) {
        const std::string who =
            r.access.requiresToken ? r.access.roles.describe() : "anyone (recorded only with credentials)";
        routed.insert(r.method + " " + r.pattern + " " + r.action + " " + who);
    }
    CHECK(documented == routed);
    CHECK(Router(builtinRoutes()).validate().isOk());
}
