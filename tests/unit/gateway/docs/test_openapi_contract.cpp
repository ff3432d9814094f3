// The contract check that every integration test's responses go through (support/openapi_contract)
// must itself catch what it exists for: a member the document does not describe, a wrong type, an
// undocumented status or content type.

#include <catch2/catch.hpp>

#include "support/http_client.hpp"
#include "support/openapi_contract.hpp"

namespace {

using custodian::testing::checkAgainstOpenApi;
using custodian::testing::HttpResult;

HttpResult json(int status, std::string body) {
    HttpResult r;
    r.status = status;
    r.headers["content-type"] = "application/json";
    r.body = std::move(body);
    return r;
}

const char* kCatalogPolicy =
    R"({"name":"research","version":1,"content_hash":"0000000000000000000000000000000000000000000000000000000000000000",)"
    R"("description":"d","recipient":"alice","purposes":["p"],"validity":{"not_before":null,"expires":null},)"
    R"("output":{"formats":["csv"],"encryption_required":true,"max_rows":null},"extracts_per_day":null,)"
    R"("privacy":{"k":5,"suppression_limit":0.02,"l_diversity":false,"t_closeness":false},)"
    R"("columns":[{"name":"age","type":"integer","role":"quasi_identifier","transform":"generalize",)"
    R"("generalization":"intervals"}],"row_filter":false,"aggregates":null})";

std::string catalogWith(const std::string& policy) {
    return R"({"as_of":"2026-12-04T00:00:00Z","principal":"alice","datasets":[{"name":"v","agency":"a","policies":[)" +
           policy + "]}]}";
}

}  // namespace

TEST_CASE("the OpenAPI contract check accepts a documented response and names what differs in others", "[openapi]") {
    CHECK(checkAgainstOpenApi("GET", "/v1/catalog", json(200, catalogWith(kCatalogPolicy))).empty());

    // The bug a third-party client found: "type":true instead of the column type's name.
    std::string boolType = kCatalogPolicy;
    boolType.replace(boolType.find(R"("type":"integer")"), 16, R"("type":true)");
    const std::string wrongType = checkAgainstOpenApi("GET", "/v1/catalog", json(200, catalogWith(boolType)));
    CHECK_THAT(wrongType, Catch::Contains("body does not match the schema"));
    CHECK_THAT(wrongType, Catch::Contains("/type"));

    std::string extra = kCatalogPolicy;
    extra.insert(extra.size() - 1, R"(,"surprise":1)");
    CHECK_THAT(checkAgainstOpenApi("GET", "/v1/catalog", json(200, catalogWith(extra))),
               Catch::Contains("additionalProperties"));

    // Query strings are not part of the path; nullable members accept null.
    CHECK(checkAgainstOpenApi("GET", "/v1/audit?limit=1", json(200, R"({"entries":[],"next_cursor":null})")).empty());
    CHECK_THAT(checkAgainstOpenApi("GET", "/v1/audit", json(200, R"({"entries":[],"next_cursor":"x"})")),
               Catch::Contains("next_cursor"));

    CHECK_THAT(checkAgainstOpenApi("GET", "/v1/catalog", json(418, R"({"error":{"code":"internal","message":"m"}})")),
               Catch::Contains("status 418 is not documented"));
    HttpResult text = json(200, "hello");
    text.headers["content-type"] = "text/plain";
    CHECK_THAT(checkAgainstOpenApi("GET", "/v1/catalog", text), Catch::Contains("content type 'text/plain'"));
    CHECK_THAT(checkAgainstOpenApi("GET", "/v1/nowhere", json(200, "{}")), Catch::Contains("not in docs/openapi.yaml"));
    CHECK(checkAgainstOpenApi("GET", "/v1/nowhere", json(404, R"({"error":{"code":"not_found","message":"m"}})"))
              .empty());
    // An error code the document does not list is drift too.
    CHECK_THAT(checkAgainstOpenApi("GET", "/v1/catalog", json(403, R"({"error":{"code":"nope","message":"m"}})")),
               Catch::Contains("enum"));
    // Routes that tests add to the gateway are not the API's.
    CHECK(checkAgainstOpenApi("GET", "/test/anything", json(200, "not json")).empty());
}
