// Every access is one audit entry (docs/audit.md, "Every request"): each request to a /v1 route,
// and each request that presents credentials anywhere, leaves exactly one entry naming the
// principal (or the failed credential), the route's action, the decision and the HTTP status —
// reads, refusals of every kind (401, 403, 404, 405, 400, 413, 422), unknown /v1 paths and public
// routes called with a token. Public routes called without credentials leave none.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include "json/canonical.hpp"
#include "test_audit_harness.hpp"

using namespace custodian;
using namespace custodian::testing;
using json::JsonValue;

namespace {

struct LastEntry {
    int64_t count = 0;
    std::string actor, role, action, decision;
    JsonValue entry;
};

LastEntry lastEntry(const std::string& conninfo) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    LastEntry out;
    out.count = tx.exec("SELECT count(*) FROM audit_entries")[0][0].as<int64_t>();
    auto r = tx.exec("SELECT actor, role, action, decision, convert_from(entry, 'UTF8') FROM audit_entries "
                     "ORDER BY entry_index DESC LIMIT 1");
    if (r.empty()) return out;
    out.actor = r[0][0].as<std::string>();
    out.role = r[0][1].as<std::string>();
    out.action = r[0][2].as<std::string>();
    out.decision = r[0][3].as<std::string>();
    auto parsed = json::parseJson(r[0][4].as<std::string>());
    if (parsed) out.entry = std::move(parsed).value();
    return out;
}

const JsonValue* detail(const LastEntry& e, const std::string& name) {
    const JsonValue* details = e.entry.find("details");
    return details ? details->find(name) : nullptr;
}

}  // namespace

TEST_CASE("every request to /v1 and every request with credentials leaves exactly one audit entry",
          "[integration][audit]") {
    AuditDatabase db;
    AuditGateway gw(db);
    const std::string admin = db.adminConninfo();
    const std::string bogus = "cus_not-a-real-token-at-all-aaaaaaaaaaaaaaaaaaaa";
    const std::string bigBody(1024 * 1024 + 10, 'x');

    struct Case {
        std::string method, target, token, body;
        int status;
        std::string action, decision, actor;
        std::string authorization = "";  // overrides the Bearer header when set
    };
    const std::vector<Case> cases = {
        // The partner's main screen, allowed and refused.
        {"GET", "/v1/catalog", gw.partnerToken, "", 200, "catalog.get", "allowed", "partner-pat"},
        {"GET", "/v1/catalog", "", "", 401, "catalog.get", "denied", "anonymous"},
        {"GET", "/v1/catalog", gw.publisherToken, "", 403, "catalog.get", "denied", "publisher-pia"},
        {"GET", "/v1/catalog", bogus, "", 401, "catalog.get", "denied", "anonymous"},
        {"GET", "/v1/catalog", "", "", 401, "catalog.get", "denied", "anonymous", "Basic cGF0OnB3"},
        // Reads.
        {"GET", "/v1/sources", gw.publisherToken, "", 200, "source.list", "allowed", "publisher-pia"},
        {"GET", "/v1/groups", gw.adminToken, "", 200, "group.list", "allowed", "admin-ava"},
        {"PUT", "/v1/groups/analysts", gw.adminToken, "{}", 201, "group.put", "allowed", "admin-ava"},
        {"GET", "/v1/groups/analysts", gw.adminToken, "", 200, "group.get", "allowed", "admin-ava"},
        {"GET", "/v1/groups/no-such", gw.adminToken, "", 404, "group.get", "denied", "admin-ava"},
        {"GET", "/v1/datasets/no-such", gw.publisherToken, "", 404, "dataset.get", "denied", "publisher-pia"},
        // Refused changes.
        {"DELETE", "/v1/groups/no-such", gw.adminToken, "", 404, "group.delete", "denied", "admin-ava"},
        {"PUT", "/v1/groups/bad", gw.adminToken, "{", 400, "group.put", "denied", "admin-ava"},
        {"PUT", "/v1/groups/big", gw.adminToken, bigBody, 413, "group.put", "denied", "admin-ava"},
        {"PUT", "/v1/sources/elsewhere", gw.publisherToken,
         R"({"agency":"health","conninfo":"host=192.0.2.10 dbname=x user=y sslmode=require"})", 422, "source.put",
         "denied", "publisher-pia"},
        // Another partner's or an unknown extract.
        {"GET", "/v1/extracts/0123456789abcdef0123456789abcdef/manifest", gw.partnerToken, "", 404, "extract.manifest",
         "denied", "partner-pat"},
        // A proof the log cannot give is not "allowed".
        {"GET", "/v1/audit/proof/inclusion?index=0&tree_size=1000000", gw.auditorToken, "", 0, "audit.proof.inclusion",
         "denied", "auditor-ada"},
        {"GET", "/v1/audit/tree-head", gw.auditorToken, "", 200, "audit.tree_head", "allowed", "auditor-ada"},
        // No route: unknown /v1 paths and wrong methods.
        {"GET", "/v1/no-such-route", "", "", 404, "request.unrouted", "denied", "anonymous"},
        {"POST", "/v1/catalog", gw.partnerToken, "{}", 405, "request.unrouted", "denied", "partner-pat"},
        // Public routes with credentials name who called.
        {"GET", "/healthz", gw.partnerToken, "", 200, "health.get", "allowed", "partner-pat"},
        {"GET", "/v1/keys", bogus, "", 200, "keys.get", "allowed", "anonymous"},
    };
    for (const auto& c : cases) {
        INFO(c.method << " " << c.target << " (" << c.status << ")");
        const int64_t before = lastEntry(admin).count;
        std::vector<std::pair<std::string, std::string>> headers;
        if (!c.authorization.empty()) headers.emplace_back("Authorization", c.authorization);
        else if (!c.token.empty()) headers.emplace_back("Authorization", "Bearer " + c.token);
        if (!c.body.empty()) headers.emplace_back("Content-Type", "application/json");
        const HttpResult r = httpRequest(gw.port(), c.method, c.target, headers, c.body);
        INFO(r.body);
        if (c.status != 0) {
            CHECK(r.status == c.status);
        } else {
            CHECK(r.status >= 400);
            CHECK(r.status < 500);
        }
        const LastEntry e = lastEntry(admin);
        CHECK(e.count == before + 1);
        CHECK(e.action == c.action);
        CHECK(e.decision == c.decision);
        CHECK(e.actor == c.actor);
        CHECK(e.entry.find("request_id")->asString() == r.headers.at("x-request-id"));
        // Entries the gateway builds from the outcome carry the status and what failed.
        if (const JsonValue* status = detail(e, "status"); status && status->isInteger()) {
            CHECK(status->asInt64() == r.status);
            if (c.token == bogus) CHECK(detail(e, "credential")->asString().rfind("token:", 0) == 0);
            if (!c.authorization.empty()) CHECK(detail(e, "credential")->asString() == "malformed");
        }
    }
    // The same unknown token is named the same way each time, and never by its value.
    {
        pqxx::connection conn(admin);
        pqxx::read_transaction tx(conn);
        auto r =
            tx.exec("SELECT DISTINCT convert_from(entry, 'UTF8')::jsonb->'details'->>'credential' FROM "
                    "audit_entries WHERE convert_from(entry, 'UTF8')::jsonb->'details'->>'credential' LIKE 'token:%'");
        CHECK(r.size() == 1);
        auto leaked = tx.exec("SELECT count(*) FROM audit_entries WHERE position('not-a-real-token' in "
                              "convert_from(entry, 'UTF8')) > 0");
        CHECK(leaked[0][0].as<int64_t>() == 0);
    }
    // Public routes without credentials are the only requests that leave nothing.
    const int64_t before = lastEntry(admin).count;
    for (const char* target : {"/healthz", "/readyz", "/metrics", "/v1/keys"}) {
        INFO(target);
        CHECK(httpRequest(gw.port(), "GET", target).status < 600);
    }
    CHECK(lastEntry(admin).count == before);
}

TEST_CASE("a request whose audit entry cannot be written is answered 503 and nothing else", "[integration][audit]") {
    AuditDatabase db;
    AuditGateway gw(db);
    runPsql(db.adminConninfo(), "REVOKE INSERT ON audit_entries FROM \"" + db.gatewayRole() + "\"");
    for (const auto& [target, token] :
         std::vector<std::pair<std::string, std::string>>{{"/v1/catalog", gw.partnerToken},
                                                          {"/v1/groups", gw.adminToken},
                                                          {"/v1/catalog", ""},
                                                          {"/healthz", gw.partnerToken}}) {
        INFO(target);
        const HttpResult r = gw.get(target, token);
        CHECK(r.status == 503);
        CHECK(r.body.find("\"catalog\"") == std::string::npos);
        CHECK(r.body.find("\"groups\"") == std::string::npos);
    }
}
