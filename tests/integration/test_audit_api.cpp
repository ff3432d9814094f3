// The auditor API over HTTP: roles, recording of every access (denials included), queries and
// pagination, proofs checked with the independent RFC 9162 verification, and failing closed.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <thread>

#include "gateway/audit/proof_verify.hpp"
#include "gateway/api/audit_routes.hpp"
#include "gateway/audit/verifier.hpp"
#include "json/canonical.hpp"
#include "support/wait_for.hpp"
#include "test_audit_harness.hpp"

using namespace custodian;
using namespace custodian::testing;
using json::JsonValue;

namespace {

JsonValue bodyJson(const HttpResult& r) {
    auto v = json::parseJson(r.body);
    INFO(r.body);
    REQUIRE(v);
    return std::move(v).value();
}

audit::Hash hashOf(const JsonValue& v) {
    auto bytes = crypto::fromHex(v.asString());
    REQUIRE(bytes);
    REQUIRE(bytes->size() == 32);
    audit::Hash h{};
    std::copy(bytes->begin(), bytes->end(), h.begin());
    return h;
}

std::vector<audit::Hash> hashesOf(const JsonValue& v) {
    std::vector<audit::Hash> out;
    for (const auto& h : v.asArray()) out.push_back(hashOf(h));
    return out;
}

int64_t count(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    return tx.exec(sql)[0][0].as<int64_t>();
}

std::string errorMessage(const HttpResult& r) {
    auto v = json::parseJson(r.body);
    if (!v || !v->find("error")) return r.body;
    const JsonValue* m = v->find("error")->find("message");
    return m && m->isString() ? m->asString() : r.body;
}

}  // namespace

TEST_CASE("partners and publishers get 403 and callers without a token 401 on every audit route, and each "
          "refusal is recorded",
          "[integration][audit]") {
    AuditDatabase db;
    AuditGateway gw(db);
    const std::vector<std::string> targets = {"/v1/audit", "/v1/audit/export", "/v1/audit/tree-head",
                                              "/v1/audit/proof/inclusion?index=0&tree_size=1",
                                              "/v1/audit/proof/consistency?first=1&second=1"};
    for (const auto& t : targets) {
        INFO(t);
        CHECK(gw.get(t, gw.partnerToken).status == 403);
        CHECK(gw.get(t, gw.publisherToken).status == 403);
        CHECK(gw.get(t, "").status == 401);
        CHECK(gw.get(t, "cus_not-a-real-token-at-all-aaaaaaaaaaaaaaaaaaaa").status == 401);
    }
    const std::string admin = db.adminConninfo();
    CHECK(count(admin, "SELECT count(*) FROM audit_entries WHERE decision = 'denied'") == 20);
    CHECK(count(admin, "SELECT count(*) FROM audit_entries WHERE decision = 'denied' AND actor = 'partner-pat' "
                       "AND role = 'partner'") == 5);
    CHECK(count(admin, "SELECT count(*) FROM audit_entries WHERE decision = 'denied' AND actor = 'publisher-pia' "
                       "AND role = 'publisher'") == 5);
    CHECK(count(admin, "SELECT count(*) FROM audit_entries WHERE decision = 'denied' AND actor = 'anonymous' "
                       "AND role = 'none'") == 10);
    CHECK(count(admin, "SELECT count(*) FROM audit_entries WHERE action = 'audit.export'") == 4);

    // The auditor sees those refusals through the API, with the reason.
    auto r = gw.get("/v1/audit?decision=denied&actor=partner-pat&limit=10", gw.auditorToken);
    REQUIRE(r.status == 200);
    auto body = bodyJson(r);
    const auto& entries = body.find("entries")->asArray();
    REQUIRE(entries.size() == 5);
    const JsonValue& first = *entries[0].find("entry");
    CHECK(first.find("action")->asString() == "audit.query");
    CHECK(first.find("reason")->asString().find("role 'partner' may not call") != std::string::npos);
    CHECK(first.find("client_address")->asString() == "127.0.0.1");
    CHECK(first.find("request_id")->asString().size() >= 16);
    CHECK(body.find("next_cursor")->isNull());
}

TEST_CASE("GET /v1/audit filters by actor, role, dataset, action, decision and time, and pages by cursor",
          "[integration][audit]") {
    AuditDatabase db;
    AuditGateway gw(db);
    for (int i = 0; i < 30; ++i) {
        auto e = testEntry(i % 2 ? "alice" : "bob", i % 3 ? "extract.requested" : "policy.put",
                           i % 5 ? "patients" : "visits");
        if (i == 29) e.decision = "denied";
        REQUIRE(gw.log().append(e));
    }
    auto page = [&](const std::string& query) {
        auto r = gw.get("/v1/audit?" + query, gw.auditorToken);
        INFO(query << " → " << r.body);
        REQUIRE(r.status == 200);
        return bodyJson(r);
    };
    CHECK(page("actor=alice&limit=1000").find("entries")->asArray().size() == 15);
    CHECK(page("dataset=visits&limit=1000").find("entries")->asArray().size() == 6);
    CHECK(page("action=policy.put&actor=bob&limit=1000").find("entries")->asArray().size() == 5);
    CHECK(page("decision=denied&role=partner").find("entries")->asArray().size() == 1);
    CHECK(page("role=auditor&action=audit.query").find("entries")->asArray().size() == 5);  // these requests
    CHECK(page("from=2000-01-01T00:00:00Z&to=2999-12-31T23:59:59.999%2B01:00&dataset=patients&limit=1000")
              .find("entries")
              ->asArray()
              .size() == 24);
    CHECK(page("to=2000-01-01T00:00:00Z").find("entries")->asArray().empty());

    // Cursor pagination walks every alice entry once, in index order.
    std::vector<uint64_t> seen;
    std::string cursor;
    for (int guard = 0; guard < 10; ++guard) {
        auto body = page("actor=alice&limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor));
        for (const auto& e : body.find("entries")->asArray()) seen.push_back(e.find("index")->asUint64());
        const JsonValue* next = body.find("next_cursor");
        if (next->isNull()) break;
        cursor = std::to_string(next->asUint64());
    }
    REQUIRE(seen.size() == 15);
    CHECK(std::is_sorted(seen.begin(), seen.end()));
    CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());

    // Bad parameters are 400 with a message that names the problem.
    for (auto [query, expected] : std::vector<std::pair<std::string, std::string>>{
             {"limit=0", "limit: must be between 1 and 1000"},
             {"limit=1001", "limit: must be between 1 and 1000"},
             {"limit=ten", "limit: must be a non-negative integer"},
             {"cursor=-1", "cursor: must be a non-negative integer"},
             {"from=yesterday", "from: not an RFC 3339 date-time"},
             {"to=2026-02-30T00:00:00Z", "to: not an RFC 3339 date-time (day out of range)"},
             {"from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from: must not be later than to"},
             {"datset=patients", "unknown query parameter \"datset\""},
             {"actor=", "actor: must not be empty"},
         }) {
        auto r = gw.get("/v1/audit?" + query, gw.auditorToken);
        INFO(query << " → " << r.body);
        CHECK(r.status == 400);
        CHECK(errorMessage(r).find(expected) != std::string::npos);
    }
}

TEST_CASE("inclusion and consistency proofs from the API verify with the independent RFC 9162 functions",
          "[integration][audit]") {
    AuditDatabase db;
    AuditGateway gw(db);
    for (int i = 0; i < 37; ++i) REQUIRE(gw.log().append(testEntry("p", "extract.requested")));

    auto headResponse = gw.get("/v1/audit/tree-head", gw.auditorToken);  // entry 37, signs a head if none yet
    REQUIRE(headResponse.status == 200);
    auto head = audit::treeHeadFromJson(bodyJson(headResponse));
    REQUIRE(head);
    CHECK(audit::verifyTreeHead(*head, gw.signingKey().publicKey()));
    REQUIRE(head->head.treeSize >= 37);

    auto stored = gw.log().entriesInRange(0, 37);
    REQUIRE(stored);
    for (uint64_t size : {1ull, 2ull, 5ull, 8ull, 13ull, 37ull}) {
        for (uint64_t index = 0; index < size; index += (size > 8 ? 3 : 1)) {
            auto r = gw.get("/v1/audit/proof/inclusion?index=" + std::to_string(index) +
                                "&tree_size=" + std::to_string(size),
                            gw.auditorToken);
            INFO(index << "/" << size << ": " << r.body);
            REQUIRE(r.status == 200);
            auto body = bodyJson(r);
            const auto leaf = hashOf(*body.find("leaf_hash"));
            CHECK(leaf == (*stored)[index].leafHash);
            const auto path = hashesOf(*body.find("audit_path"));
            const auto root = hashOf(*body.find("root_hash"));
            CHECK(audit::verifyInclusion(index, size, leaf, path, root));
            if (size > 1)
                CHECK_FALSE(audit::verifyInclusion(index, size, (*stored)[(index + 1) % size].leafHash, path, root));
        }
    }
    // Against the signed head.
    {
        const uint64_t size = head->head.treeSize;
        auto r = gw.get("/v1/audit/proof/inclusion?index=36&tree_size=" + std::to_string(size), gw.auditorToken);
        REQUIRE(r.status == 200);
        auto body = bodyJson(r);
        CHECK(audit::verifyInclusion(36, size, (*stored)[36].leafHash, hashesOf(*body.find("audit_path")),
                                     head->head.rootHash));
    }
    for (auto [first, second] :
         std::vector<std::pair<uint64_t, uint64_t>>{{1, 1}, {1, 37}, {3, 7}, {4, 8}, {8, 37}, {36, 37}, {37, 37}}) {
        auto r =
            gw.get("/v1/audit/proof/consistency?first=" + std::to_string(first) + "&second=" + std::to_string(second),
                   gw.auditorToken);
        INFO(first << ".." << second << ": " << r.body);
        REQUIRE(r.status == 200);
        auto body = bodyJson(r);
        const auto r1 = hashOf(*body.find("first_root"));
        const auto r2 = hashOf(*body.find("second_root"));
        const auto path = hashesOf(*body.find("consistency_path"));
        CHECK(audit::verifyConsistency(first, second, r1, r2, path));
        if (first != second) CHECK_FALSE(audit::verifyConsistency(first, second, r2, r1, path));
    }

    for (auto [target, status, message] : std::vector<std::tuple<std::string, int, std::string>>{
             {"/v1/audit/proof/inclusion?index=5", 400, "tree_size: required"},
             {"/v1/audit/proof/inclusion?index=5&tree_size=5", 400, "index: 5 is not in a tree of size 5"},
             {"/v1/audit/proof/inclusion?index=0&tree_size=0", 400, "tree_size: must be at least 1"},
             {"/v1/audit/proof/inclusion?index=x&tree_size=3", 400, "index: must be a non-negative integer"},
             {"/v1/audit/proof/inclusion?index=1&tree_size=100000", 404, "beyond the log"},
             {"/v1/audit/proof/consistency?first=0&second=3", 400, "first: must be at least 1"},
             {"/v1/audit/proof/consistency?first=9&second=3", 400, "first: 9 is larger than second"},
             {"/v1/audit/proof/consistency?first=1&second=100000", 404, "beyond the log"},
             {"/v1/audit/proof/consistency?first=1", 400, "second: required"},
         }) {
        auto r = gw.get(target, gw.auditorToken);
        INFO(target << " → " << r.body);
        CHECK(r.status == status);
        CHECK(errorMessage(r).find(message) != std::string::npos);
    }
}

TEST_CASE("the export streams entries and signed heads that the offline verifier accepts, and records itself",
          "[integration][audit]") {
    AuditDatabase db;
    config::AuditConfig audit;
    audit.treeHeadEveryEntries = 10;
    AuditGateway gw(db, audit);
    for (int i = 0; i < 95; ++i) REQUIRE(gw.log().append(testEntry("p", "extract.requested")));
    // The background signer has signed a head over the appends (it is asked every 10 entries).
    REQUIRE(waitFor(
        [&] {
            auto heads = gw.log().treeHeads(UINT64_MAX);
            return heads && !heads->empty();
        },
        std::chrono::milliseconds(10000)));
    auto r = gw.get("/v1/audit/export", gw.auditorToken);
    REQUIRE(r.status == 200);
    CHECK(r.chunked);
    REQUIRE(r.complete);
    auto report = audit::verifyAuditExport(r.body, gw.signingKey().publicKey());
    INFO(report.problem);
    REQUIRE(report.ok);
    CHECK(report.entries == 96);
    CHECK(report.verifiedSize == 96);  // the export signs a head over everything, itself included
    CHECK(report.treeHeads >= 2);
    CHECK(r.body.find("\"action\":\"audit.export\"") != std::string::npos);
    CHECK(gw.get("/v1/audit/export?x=1", gw.auditorToken).status == 400);
}

TEST_CASE("audited requests fail closed with 503 and /readyz says so when the audit log cannot be written",
          "[integration][audit]") {
    AuditDatabase db;
    AuditGateway gw(db);
    {
        auto first = gw.get("/v1/audit/tree-head", gw.auditorToken);
        INFO(first.body);
        REQUIRE(first.status == 200);
    }
    gw.services().readiness->probeNow();
    REQUIRE(gw.get("/readyz", "").status == 200);

    runPsql(db.adminConninfo(), "REVOKE INSERT ON audit_entries FROM \"" + db.gatewayRole() + "\"");
    auto r = gw.get("/v1/audit/tree-head", gw.auditorToken);
    CHECK(r.status == 503);
    CHECK(errorMessage(r).find("audit") != std::string::npos);
    // Refusals cannot be recorded either: they fail closed too.
    CHECK(gw.get("/v1/audit", gw.partnerToken).status == 503);
    gw.services().readiness->probeNow();
    auto ready = gw.get("/readyz", "");
    CHECK(ready.status == 503);
    CHECK(ready.body.find("audit log is not writable") != std::string::npos);
    const int64_t before = count(db.adminConninfo(), "SELECT count(*) FROM audit_entries");

    runPsql(db.adminConninfo(), "GRANT INSERT ON audit_entries TO \"" + db.gatewayRole() + "\"");
    CHECK(gw.get("/v1/audit/tree-head", gw.auditorToken).status == 200);
    gw.services().readiness->probeNow();
    CHECK(gw.get("/readyz", "").status == 200);
    // Nothing was half-written meanwhile: the sequence continued without a gap.
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == before + 1);
    CHECK(count(db.adminConninfo(), "SELECT max(entry_index) + 1 FROM audit_entries") == before + 1);
}

TEST_CASE("RFC 3339 timestamps for the audit filters", "[audit]") {
    CHECK(*api::parseRfc3339Ms("1970-01-01T00:00:00Z") == 0);
    CHECK(*api::parseRfc3339Ms("2026-11-27T21:00:00Z") == 1795813200000);
    CHECK(*api::parseRfc3339Ms("2026-11-27T22:00:00.25+01:00") == 1795813200250);
    CHECK(*api::parseRfc3339Ms("2026-11-27t16:30:00.123456-04:30") == 1795813200123);
    CHECK(*api::parseRfc3339Ms("2024-02-29T00:00:00Z") == 1709164800000);
    for (const char* bad :
         {"", "2026-11-27", "2026-11-27T21:00:00", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
          "2026-11-27T24:00:00Z", "2026-11-27T21:00:00.Z", "2026-11-27T21:00:00+0100", "2026-11-27T21:00:00Zjunk"}) {
        INFO(bad);
        CHECK_FALSE(api::parseRfc3339Ms(bad));
    }
}
