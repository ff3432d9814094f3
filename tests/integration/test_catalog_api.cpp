// The catalog API against a real gateway (GatewayRuntime + http::Server on port 0) and real agency
// databases created by the tests: sources with sealed secrets, datasets checked on the source,
// versioned policies (also under concurrency), retirement, publisher scoping, injection attempts in
// every name and in row filters, and the partner catalog.

#include <catch2/catch.hpp>

#include <pqxx/pqxx>
#include <rapidjson/document.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gateway/audit/log.hpp"
#include "gateway/catalog/catalog.hpp"
#include "policies/policy.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using custodian::testing::HttpResult;

namespace {

const std::string kPassword = "Tr0ub4dor-and-3-sekret";

// Two agencies with one database each, and a gateway with principals of every kind.
struct CatalogWorld {
    testing::TestDatabase gatewayDb = testing::TestDatabase::create("catalog_gw");
    testing::TestDatabase agencyA = testing::TestDatabase::create("catalog_agency_a");
    testing::TestDatabase agencyB = testing::TestDatabase::create("catalog_agency_b");
    std::unique_ptr<testing::RunningGateway> gw;
    std::string admin, pubA, pubB, pubNoAgency, partner1, partner2, auditor;

    CatalogWorld() {
        const char* visits = R"SQL(
            CREATE SCHEMA health;
            CREATE TABLE health.visits (
                patient_id text, patient_name text, birth_date date, postal_code text, sex text,
                diagnosis text, length_of_stay integer, cost numeric(10,2), admitted_at timestamptz,
                "ward; DROP TABLE health.visits" text);
            INSERT INTO health.visits VALUES
                ('p1', 'Ann', '1980-02-03', '12345', 'F', 'J10', 3, 1200.50, now(), 'a'),
                ('p2', 'Bob', '1975-07-09', '12399', 'M', 'K35', 5, 2100.00, now(), 'b');
            CREATE VIEW health.visits_view AS SELECT patient_id, sex FROM health.visits;
            CREATE TABLE public.secret_stuff (x integer);
        )SQL";
        testing::runPsql(agencyA.conninfo(), visits);
        testing::runPsql(agencyB.conninfo(), "CREATE TABLE public.trips (trip_id text, fare integer);");
        gw = std::make_unique<testing::RunningGateway>(gatewayDb.conninfo());
        admin = add("root", auth::Role::Admin, "");
        pubA = add("pub-a", auth::Role::Publisher, "agency-a");
        pubB = add("pub-b", auth::Role::Publisher, "agency-b");
        pubNoAgency = add("pub-none", auth::Role::Publisher, "");
        partner1 = add("partner-one", auth::Role::Partner, "");
        partner2 = add("partner-two", auth::Role::Partner, "");
        auditor = add("auditor", auth::Role::Auditor, "");
    }

    std::string add(const std::string& name, auth::Role role, const std::string& agency) {
        auth::NewPrincipal p;
        p.name = name;
        p.role = role;
        p.agency = agency;
        if (role == auth::Role::Partner) {
            crypto::BoxPublicKey key;
            key.bytes.fill(9);
            p.publicKey = key;
        }
        std::string token;
        Status s = gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
            auto t = auth::addPrincipal(conn, *gw->services().tokens, p);
            if (!t) return t.status();
            token = *t;
            return Status::ok();
        });
        if (!s) throw std::runtime_error("addPrincipal: " + s.message());
        return token;
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = {}) {
        std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + token}};
        if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
        return testing::httpRequest(gw->port(), method, target, headers, body);
    }

    std::string sourceBody(const testing::TestDatabase& db, const std::string& agencyField = "") {
        std::string conninfo = db.conninfo() + " password=" + kPassword;
        std::string body = "{\"conninfo\": \"" + conninfo + "\"";
        if (!agencyField.empty()) body += ", \"agency\": \"" + agencyField + "\"";
        return body + "}";
    }

    // Runs SQL on the gateway database and returns the first column of the first row.
    std::string gatewayScalar(const std::string& sql) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        pqxx::result r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? std::string() : r[0][0].as<std::string>();
    }

    size_t auditCount(const std::string& action, const std::string& decision, const std::string& dataset = "") {
        audit::AuditQuery q;
        q.action = action;
        q.decision = decision;
        if (!dataset.empty()) q.dataset = dataset;
        q.limit = 1000;
        auto page = gw->services().audit->query(q);
        REQUIRE(page);
        return page->entries.size();
    }
};

CatalogWorld& world() {
    static std::unique_ptr<CatalogWorld> w = std::make_unique<CatalogWorld>();
    return *w;
}

rapidjson::Document bodyJson(const HttpResult& r) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    INFO(r.body);
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

const char* kVisitColumns = R"([
    {"name": "patient_id", "type": "text", "role": "identifier"},
    {"name": "patient_name", "type": "text", "role": "identifier"},
    {"name": "birth_date", "type": "date", "role": "quasi_identifier"},
    {"name": "postal_code", "type": "text", "role": "quasi_identifier"},
    {"name": "sex", "type": "text", "role": "quasi_identifier"},
    {"name": "diagnosis", "type": "text", "role": "sensitive"},
    {"name": "length_of_stay", "type": "integer", "role": "insensitive"},
    {"name": "cost", "type": "decimal", "role": "insensitive"},
    {"name": "ward; DROP TABLE health.visits", "type": "text", "role": "insensitive"}
])";

std::string datasetBody(const std::string& source, const std::string& table = "health.visits",
                        const std::string& columns = kVisitColumns) {
    return "{\"source\": \"" + source + "\", \"table\": \"" + table + "\", \"columns\": " + columns + "}";
}

// A valid policy for a dataset registered with kVisitColumns.
std::string policyFor(const std::string& dataset, const std::string& recipients, const std::string& extra = "",
                      const std::string& description = "Visits for research.") {
    return R"({
  "dataset": ")" +
           dataset + R"(",
  "description": ")" +
           description + R"(",
  "recipients": )" +
           recipients + R"(,
  "purposes": ["public-health-research"],)" +
           extra + R"(
  "columns": [
    {"name": "patient_id", "type": "text", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "patient_name", "type": "text", "role": "identifier"},
    {"name": "birth_date", "type": "date", "role": "quasi_identifier", "hierarchy": {"builder": "dates", "levels": ["year", "decade"]}},
    {"name": "postal_code", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "prefix"}},
    {"name": "sex", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
    {"name": "diagnosis", "type": "text", "role": "sensitive"},
    {"name": "length_of_stay", "type": "integer", "role": "insensitive"},
    {"name": "cost", "type": "decimal", "role": "insensitive"},
    {"name": "ward; DROP TABLE health.visits", "type": "text", "role": "insensitive"}
  ],
  "privacy": {"k": 2, "suppression_limit": 0.05}
})";
}

// Registers source + dataset for agency A under fresh names.
void registerVisits(CatalogWorld& w, const std::string& source, const std::string& dataset) {
    auto s = w.call("PUT", "/v1/sources/" + source, w.pubA, w.sourceBody(w.agencyA));
    INFO(s.body);
    REQUIRE((s.status == 201 || s.status == 200));
    auto d = w.call("PUT", "/v1/datasets/" + dataset, w.pubA, datasetBody(source));
    INFO(d.body);
    REQUIRE((d.status == 201 || d.status == 200));
}

bool hasPointer(const rapidjson::Document& d, const std::string& pointer) {
    if (!d.HasMember("error") || !d["error"].HasMember("details")) return false;
    for (const auto& e : d["error"]["details"].GetArray())
        if (pointer == e["pointer"].GetString()) return true;
    return false;
}

}  // namespace

TEST_CASE("a source's conninfo is sealed at rest and never returned", "[integration][catalog]") {
    auto& w = world();
    auto put = w.call("PUT", "/v1/sources/visits-db", w.pubA, w.sourceBody(w.agencyA));
    INFO(put.body);
    REQUIRE(put.status == 201);
    CHECK(put.body.find(kPassword) == std::string::npos);
    auto doc = bodyJson(put);
    CHECK(std::string(doc["agency"].GetString()) == "agency-a");  // from the publisher
    CHECK(doc["created"].GetBool());

    auto get = w.call("GET", "/v1/sources/visits-db", w.pubA);
    REQUIRE(get.status == 200);
    CHECK(get.body.find(kPassword) == std::string::npos);
    CHECK(get.body.find("password") == std::string::npos);
    auto g = bodyJson(get);
    CHECK(std::string(g["connection"]["dbname"].GetString()) == w.agencyA.name());
    auto list = w.call("GET", "/v1/sources", w.pubA);
    REQUIRE(list.status == 200);
    CHECK(list.body.find("visits-db") != std::string::npos);
    CHECK(list.body.find(kPassword) == std::string::npos);

    // At rest: only nonce + ciphertext; neither the password nor any conninfo text is visible.
    std::string raw = w.gatewayScalar("SELECT encode(conninfo_sealed, 'escape') || encode(conninfo_nonce, 'hex') "
                                      "FROM sources WHERE name = 'visits-db'");
    REQUIRE_FALSE(raw.empty());
    CHECK(raw.find(kPassword) == std::string::npos);
    CHECK(raw.find("dbname") == std::string::npos);
    CHECK(w.gatewayScalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'sources' AND "
                          "column_name LIKE '%conninfo%' AND data_type <> 'bytea'") == "0");

    // The release side gets the decrypted conninfo back.
    Status s = w.gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
        auto source = w.gw->services().catalog->loadSource(conn, "visits-db");
        REQUIRE(source);
        CHECK(source->agency == "agency-a");
        CHECK(source->conninfo.find("password='" + kPassword + "'") != std::string::npos);
        pqxx::connection agency(source->conninfo);
        CHECK(agency.is_open());
        return Status::ok();
    });
    REQUIRE(s);

    // Replacing keeps one row; the change and the creation are both on the audit log.
    auto again = w.call("PUT", "/v1/sources/visits-db", w.pubA, w.sourceBody(w.agencyA, "agency-a"));
    REQUIRE(again.status == 200);
    CHECK_FALSE(bodyJson(again)["created"].GetBool());
    CHECK(w.auditCount("source.put", "allowed") >= 2);
}

TEST_CASE("an unreachable or malformed source is refused without echoing the password", "[integration][catalog]") {
    auto& w = world();
    int port = testing::freeTcpPort();
    std::string body = R"({"host": "127.0.0.1", "port": )" + std::to_string(port) +
                       R"(, "dbname": "nowhere", "user": "nobody", "password": ")" + kPassword + R"("})";
    auto r = w.call("PUT", "/v1/sources/dead-db", w.pubA, body);
    INFO(r.body);
    CHECK(r.status == 422);
    CHECK(r.body.find("source_unreachable") != std::string::npos);
    CHECK(r.body.find(kPassword) == std::string::npos);
    CHECK(w.gatewayScalar("SELECT count(*) FROM sources WHERE name = 'dead-db'") == "0");

    // Keywords that would make the gateway read its own files or change settings.
    auto passfile = w.call("PUT", "/v1/sources/evil-db", w.pubA, R"({"conninfo": "dbname=x passfile=/etc/shadow"})");
    CHECK(passfile.status == 422);
    CHECK(passfile.body.find("\"rule\":\"conninfo.keywords\"") != std::string::npos);
    auto both = w.call("PUT", "/v1/sources/evil-db", w.pubA, R"({"conninfo": "dbname=x", "host": "h"})");
    CHECK(both.status == 400);
    CHECK(w.call("PUT", "/v1/sources/evil-db", w.pubA, "not json").status == 400);
    // Names with quotes or semicolons never reach SQL.
    CHECK(w.call("PUT", "/v1/sources/a'%3BDROP%20TABLE%20sources", w.pubA, w.sourceBody(w.agencyA)).status == 400);
    CHECK(w.call("PUT", "/v1/sources/a%22b", w.pubA, w.sourceBody(w.agencyA)).status == 400);
    CHECK(w.gatewayScalar("SELECT count(*) FROM sources WHERE name LIKE '%DROP%' OR name LIKE '%\"%'") == "0");
}

TEST_CASE("publishers cannot touch another agency's sources, datasets or policies", "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "scope-src", "scope_visits");
    REQUIRE(w.call("PUT", "/v1/datasets/scope_visits/policies/research", w.pubA,
                   policyFor("scope_visits", R"(["partner-one"])"))
                .status == 201);
    size_t deniedBefore = w.auditCount("source.put", "denied") + w.auditCount("dataset.put", "denied") +
                          w.auditCount("policy.put", "denied") + w.auditCount("policy.retire", "denied");

    // Sources: replace A's, or create one claiming agency A.
    CHECK(w.call("PUT", "/v1/sources/scope-src", w.pubB, w.sourceBody(w.agencyB)).status == 403);
    CHECK(w.call("PUT", "/v1/sources/b-claims-a", w.pubB, w.sourceBody(w.agencyB, "agency-a")).status == 403);
    CHECK(w.call("PUT", "/v1/sources/no-agency", w.pubNoAgency, w.sourceBody(w.agencyB)).status == 403);
    CHECK(w.call("GET", "/v1/sources/scope-src", w.pubB).status == 403);
    auto listB = w.call("GET", "/v1/sources", w.pubB);
    CHECK(listB.body.find("scope-src") == std::string::npos);
    // Datasets: on A's source, or replacing A's dataset.
    CHECK(w.call("PUT", "/v1/datasets/b_on_a", w.pubB, datasetBody("scope-src")).status == 403);
    REQUIRE(w.call("PUT", "/v1/sources/b-src", w.pubB, w.sourceBody(w.agencyB)).status == 201);
    CHECK(w.call("PUT", "/v1/datasets/scope_visits", w.pubB,
                 datasetBody("b-src", "public.trips", R"([{"name":"fare","type":"integer","role":"insensitive"}])"))
              .status == 403);
    CHECK(w.call("GET", "/v1/datasets/scope_visits", w.pubB).status == 403);
    // Policies.
    CHECK(w.call("PUT", "/v1/datasets/scope_visits/policies/research", w.pubB,
                 policyFor("scope_visits", R"(["partner-one"])", "", "B was here"))
              .status == 403);
    CHECK(w.call("GET", "/v1/datasets/scope_visits/policies/research", w.pubB).status == 403);
    CHECK(w.call("DELETE", "/v1/datasets/scope_visits/policies/research", w.pubB).status == 403);
    // Roles: partners and auditors cannot publish.
    CHECK(w.call("PUT", "/v1/sources/p-src", w.partner1, w.sourceBody(w.agencyA)).status == 403);
    CHECK(w.call("PUT", "/v1/datasets/scope_visits/policies/x", w.auditor, "{}").status == 403);

    // Nothing changed, and every scoping refusal is on the audit log as denied.
    auto policy = bodyJson(w.call("GET", "/v1/datasets/scope_visits/policies/research", w.pubA));
    CHECK(policy["version"].GetInt() == 1);
    CHECK_FALSE(policy["retired"].GetBool());
    CHECK(w.gatewayScalar("SELECT agency FROM sources WHERE name = 'scope-src'") == "agency-a");
    CHECK(w.gatewayScalar("SELECT source FROM datasets WHERE name = 'scope_visits'") == "scope-src");
    size_t deniedAfter = w.auditCount("source.put", "denied") + w.auditCount("dataset.put", "denied") +
                         w.auditCount("policy.put", "denied") + w.auditCount("policy.retire", "denied");
    // Seven scope refusals by the handlers, and the two role refusals (partner, auditor) under the
    // routes' actions.
    CHECK(deniedAfter - deniedBefore == 9);

    // Admins act for any agency, but must name it for a new source.
    CHECK(w.call("PUT", "/v1/sources/admin-src", w.admin, w.sourceBody(w.agencyB)).status == 400);
    CHECK(w.call("PUT", "/v1/sources/admin-src", w.admin, w.sourceBody(w.agencyB, "agency-b")).status == 201);
    CHECK(w.call("GET", "/v1/sources/scope-src", w.admin).status == 200);
}

TEST_CASE("datasets are checked on the source, names cannot inject SQL", "[integration][catalog]") {
    auto& w = world();
    REQUIRE(w.call("PUT", "/v1/sources/check-src", w.pubA, w.sourceBody(w.agencyA)).status == 201);

    auto ok = w.call("PUT", "/v1/datasets/checked_visits", w.pubA, datasetBody("check-src"));
    INFO(ok.body);
    REQUIRE(ok.status == 201);
    auto got = bodyJson(w.call("GET", "/v1/datasets/checked_visits", w.pubA));
    CHECK(std::string(got["table"].GetString()) == "health.visits");
    CHECK(std::string(got["agency"].GetString()) == "agency-a");
    CHECK(got["columns"].Size() == 9);
    CHECK(std::string(got["columns"][8]["name"].GetString()) == "ward; DROP TABLE health.visits");
    Status s = w.gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
        auto d = w.gw->services().catalog->loadDataset(conn, "checked_visits");
        REQUIRE(d);
        CHECK(d->quotedTable() == R"("health"."visits")");
        CHECK(d->column("cost")->type == anon::ColumnType::Decimal);
        return Status::ok();
    });
    REQUIRE(s);
    // Views are fine too.
    CHECK(
        w.call(
             "PUT", "/v1/datasets/visit_view", w.pubA,
             datasetBody(
                 "check-src", "health.visits_view",
                 R"([{"name":"patient_id","type":"text","role":"identifier"},{"name":"sex","type":"text","role":"quasi_identifier"}])"))
            .status == 201);

    auto missingTable = bodyJson(w.call("PUT", "/v1/datasets/bad1", w.pubA, datasetBody("check-src", "health.nope")));
    CHECK(hasPointer(missingTable, "/table"));
    auto injectedTable = w.call("PUT", "/v1/datasets/bad2", w.pubA,
                                datasetBody("check-src", "health.visits; DROP TABLE health.visits; --"));
    CHECK(injectedTable.status == 422);
    auto quotedTable = w.call("PUT", "/v1/datasets/bad3", w.pubA, datasetBody("check-src", "health.vis\\\"its"));
    CHECK(quotedTable.status == 422);
    CHECK(hasPointer(bodyJson(quotedTable), "/table"));
    auto wrongColumn = bodyJson(w.call("PUT", "/v1/datasets/bad4", w.pubA,
                                       datasetBody("check-src", "health.visits",
                                                   R"([{"name":"sex","type":"text","role":"quasi_identifier"},
                                                   {"name":"sex' OR '1'='1","type":"text","role":"insensitive"}])")));
    CHECK(hasPointer(wrongColumn, "/columns/1/name"));
    auto quoteColumn = bodyJson(
        w.call("PUT", "/v1/datasets/bad5", w.pubA,
               datasetBody("check-src", "health.visits",
                           R"([{"name":"sex\"; DROP TABLE health.visits; --","type":"text","role":"insensitive"}])")));
    CHECK(hasPointer(quoteColumn, "/columns/0/name"));
    auto wrongType = bodyJson(w.call("PUT", "/v1/datasets/bad6", w.pubA,
                                     datasetBody("check-src", "health.visits",
                                                 R"([{"name":"sex","type":"integer","role":"quasi_identifier"},
                                                 {"name":"cost","type":"date","role":"insensitive"}])")));
    CHECK(hasPointer(wrongType, "/columns/0/type"));
    CHECK(hasPointer(wrongType, "/columns/1/type"));
    auto badRole =
        bodyJson(w.call("PUT", "/v1/datasets/bad7", w.pubA,
                        datasetBody("check-src", "health.visits", R"([{"name":"sex","type":"text","role":"boss"}])")));
    CHECK(hasPointer(badRole, "/columns/0/role"));
    auto badSource = bodyJson(w.call("PUT", "/v1/datasets/bad8", w.pubA, datasetBody("x'; DROP TABLE sources; --")));
    CHECK(hasPointer(badSource, "/source"));
    CHECK(w.call("PUT", "/v1/datasets/bad'name", w.pubA, datasetBody("check-src")).status == 400);

    // None of it touched anything: the agency table and the gateway tables are intact.
    pqxx::connection agency(w.agencyA.conninfo());
    pqxx::work tx(agency);
    CHECK(tx.exec("SELECT count(*) FROM health.visits")[0][0].as<int>() == 2);
    CHECK(w.gatewayScalar("SELECT count(*) FROM datasets WHERE name LIKE 'bad%'") == "0");
    CHECK(w.gatewayScalar("SELECT count(*) FROM sources") != "0");
}

TEST_CASE("policy versions: new version per change, identical documents, history, validation, retirement",
          "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "ver-src", "ver_visits");
    const std::string path = "/v1/datasets/ver_visits/policies/research";

    auto v1 = w.call("PUT", path, w.pubA, policyFor("ver_visits", R"(["partner-one"])"));
    INFO(v1.body);
    REQUIRE(v1.status == 201);
    auto d1 = bodyJson(v1);
    CHECK(d1["version"].GetInt() == 1);
    const std::string hash1 = d1["content_hash"].GetString();
    CHECK(hash1.size() == 64);

    // Same content, other whitespace: no new version, and the response says so.
    std::string reformatted = policyFor("ver_visits", R"([ "partner-one" ])");
    reformatted.insert(1, "\n\n   ");
    auto same = w.call("PUT", path, w.pubA, reformatted);
    REQUIRE(same.status == 200);
    auto ds = bodyJson(same);
    CHECK_FALSE(ds["created"].GetBool());
    CHECK(ds["version"].GetInt() == 1);
    CHECK(std::string(ds["message"].GetString()).find("no new version") != std::string::npos);

    auto v2 = w.call("PUT", path, w.pubA, policyFor("ver_visits", R"(["partner-one", "partner-two"])"));
    REQUIRE(v2.status == 201);
    const std::string hash2 = bodyJson(v2)["content_hash"].GetString();
    CHECK(hash2 != hash1);

    auto get = bodyJson(w.call("GET", path, w.pubA));
    CHECK(get["version"].GetInt() == 2);
    CHECK(std::string(get["content_hash"].GetString()) == hash2);
    CHECK(get["document"]["recipients"].Size() == 2);
    REQUIRE(get["history"].Size() == 2);
    CHECK(get["history"][0]["version"].GetInt() == 1);
    CHECK(std::string(get["history"][0]["content_hash"].GetString()) == hash1);
    CHECK(std::string(get["history"][1]["created_by"].GetString()) == "pub-a");
    CHECK(std::string(get["history"][1]["created_at"].GetString()).size() >= 20);

    // The release side gets the parsed policy, built once per version and shared.
    Status loaded = w.gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
        const auto& catalog = *w.gw->services().catalog;
        auto first = catalog.loadCurrentPolicy(conn, "ver_visits", "research");
        auto second = catalog.loadCurrentPolicy(conn, "ver_visits", "research");
        REQUIRE(first);
        REQUIRE(second);
        CHECK(first->version == 2);
        CHECK(first->contentHash == hash2);
        CHECK_FALSE(first->retired);
        CHECK(first->policy.get() == second->policy.get());
        CHECK(first->policy->contentHash() == hash2);
        pqxx::read_transaction tx(conn);
        auto old = catalog.loadPolicyVersion(tx, "ver_visits", "research", 1);
        REQUIRE(old);
        CHECK(old->contentHash == hash1);
        CHECK(old->currentVersion == 2);
        CHECK(old->policy->model().recipients.size() == 1);
        CHECK(catalog.loadPolicyVersion(tx, "ver_visits", "research", 3).status().code() == StatusCode::NotFound);
        return Status::ok();
    });
    REQUIRE(loaded);

    // Both changes are audited with their version and content hash.
    audit::AuditQuery q;
    q.action = "policy.put";
    q.dataset = "ver_visits";
    auto page = w.gw->services().audit->query(q);
    REQUIRE(page);
    std::set<std::string> hashes;
    for (const auto& e : page->entries) {
        if (const auto* h = e.entry.details.find("content_hash")) hashes.insert(h->asString());
        CHECK(e.entry.target.policyVersion.has_value());
    }
    CHECK(hashes.count(hash1) == 1);
    CHECK(hashes.count(hash2) == 1);

    // Invalid documents: every error with its JSON pointer, and nothing stored.
    std::string invalid = policyFor("ver_visits", R"(["partner-one", "nobody-known"])");
    invalid.replace(invalid.find("\"k\": 2"), 6, "\"k\": 0");
    invalid.replace(invalid.find("\"name\": \"cost\""), 14, "\"name\": \"costs\"");
    auto bad = w.call("PUT", path, w.pubA, invalid);
    INFO(bad.body);
    REQUIRE(bad.status == 422);
    auto badDoc = bodyJson(bad);
    CHECK(std::string(badDoc["error"]["code"].GetString()) == "invalid_policy");
    CHECK(hasPointer(badDoc, "/privacy/k"));
    // Semantic rules run once the schema holds (docs/policies.md): a schema-valid document with an
    // unknown column and an unknown recipient reports both.
    std::string semantic = policyFor("ver_visits", R"(["partner-one", "nobody-known"])");
    semantic.replace(semantic.find("\"name\": \"cost\""), 14, "\"name\": \"costs\"");
    auto badSemantic = w.call("PUT", path, w.pubA, semantic);
    INFO(badSemantic.body);
    REQUIRE(badSemantic.status == 422);
    CHECK(bodyJson(badSemantic)["error"]["details"].Size() >= 2);
    CHECK(w.call("PUT", path, w.pubA, "{not json").status == 422);
    CHECK(bodyJson(w.call("GET", path, w.pubA))["version"].GetInt() == 2);
    CHECK(w.call("PUT", "/v1/datasets/no_such_dataset/policies/p", w.pubA, policyFor("no_such_dataset", "[]")).status ==
          404);

    // Retire: no extract can use it (the release side sees retired), and it cannot be revived.
    auto retired = w.call("DELETE", path, w.pubA);
    REQUIRE(retired.status == 200);
    CHECK(bodyJson(retired)["retired"].GetBool());
    CHECK_FALSE(bodyJson(retired)["already_retired"].GetBool());
    CHECK(bodyJson(w.call("DELETE", path, w.pubA))["already_retired"].GetBool());
    CHECK(bodyJson(w.call("GET", path, w.pubA))["retired"].GetBool());
    Status s = w.gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
        auto p = w.gw->services().catalog->loadCurrentPolicy(conn, "ver_visits", "research");
        REQUIRE(p);
        CHECK(p->retired);
        CHECK(p->version == 2);
        return Status::ok();
    });
    REQUIRE(s);
    CHECK(w.call("PUT", path, w.pubA, policyFor("ver_visits", R"(["partner-one"])", "", "revived")).status == 409);
    // The retirement, and the repeated DELETE that found it already retired: each request is an entry.
    CHECK(w.auditCount("policy.retire", "allowed", "ver_visits") == 2);
}

TEST_CASE("row filter values stay parameters, whatever they contain", "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "filter-src", "filter_visits");
    const std::string evil = "x'); DROP TABLE health.visits; --";
    std::string filter = R"(
  "row_filter": {"or": [
    {"column": "sex", "op": "=", "value": "x'); DROP TABLE health.visits; --"},
    {"column": "ward; DROP TABLE health.visits", "op": "in", "value": ["a", "b\"; DELETE FROM x"]}
  ]},)";
    auto put = w.call("PUT", "/v1/datasets/filter_visits/policies/filtered", w.pubA,
                      policyFor("filter_visits", R"(["partner-one"])", filter));
    INFO(put.body);
    REQUIRE(put.status == 201);

    Status s = w.gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
        auto p = w.gw->services().catalog->loadCurrentPolicy(conn, "filter_visits", "filtered");
        REQUIRE(p);
        auto sql = p->policy->rowFilterSql(1);
        REQUIRE(sql);
        REQUIRE(sql->has_value());
        const auto& fragment = **sql;
        CHECK(fragment.sql.find("DROP") == fragment.sql.rfind("DROP"));  // only inside the quoted column name
        CHECK(fragment.sql.find("\"ward; DROP TABLE health.visits\"") != std::string::npos);
        CHECK(fragment.sql.find("x')") == std::string::npos);
        CHECK(fragment.sql.find("DELETE") == std::string::npos);
        REQUIRE(fragment.parameters.size() == 3);
        CHECK(fragment.parameters[0] == evil);

        // Run the fragment on the agency database: it filters, it does not execute anything.
        pqxx::connection agency(w.agencyA.conninfo());
        pqxx::work tx(agency);
        pqxx::result r = tx.exec_params("SELECT count(*) FROM health.visits WHERE " + fragment.sql,
                                        fragment.parameters[0], fragment.parameters[1], fragment.parameters[2]);
        CHECK(r[0][0].as<int>() == 1);  // ward 'a' only: the quoted values match nothing
        CHECK(tx.exec("SELECT count(*) FROM health.visits")[0][0].as<int>() == 2);
        return Status::ok();
    });
    REQUIRE(s);
}

TEST_CASE("concurrent updates of one policy never lose or duplicate versions", "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "conc-src", "conc_visits");
    const std::string path = "/v1/datasets/conc_visits/policies/busy";
    constexpr int kWriters = 8;
    std::vector<std::thread> threads;
    std::vector<int> status(kWriters, 0);
    std::vector<int> versions(kWriters, 0);
    for (int i = 0; i < kWriters; ++i) {
        threads.emplace_back([&, i] {
            auto r = w.call("PUT", path, w.pubA,
                            policyFor("conc_visits", R"(["partner-one"])", "", "writer " + std::to_string(i)));
            status[i] = r.status;
            rapidjson::Document d;
            d.Parse(r.body.c_str());
            if (!d.HasParseError() && d.HasMember("version")) versions[i] = d["version"].GetInt();
        });
    }
    for (auto& t : threads) t.join();
    std::set<int> seen(versions.begin(), versions.end());
    for (int i = 0; i < kWriters; ++i) CHECK(status[i] == 201);
    CHECK(seen.size() == kWriters);
    CHECK(*seen.begin() == 1);
    CHECK(*seen.rbegin() == kWriters);
    auto get = bodyJson(w.call("GET", path, w.pubA));
    CHECK(get["version"].GetInt() == kWriters);
    REQUIRE(get["history"].Size() == kWriters);
    for (int i = 0; i < kWriters; ++i) CHECK(get["history"][i]["version"].GetInt() == i + 1);

    // The same document from several writers at once: exactly one new version.
    const std::string same = policyFor("conc_visits", R"(["partner-one"])", "", "everyone agrees");
    std::atomic<int> created{0};
    threads.clear();
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            auto r = w.call("PUT", path, w.pubA, same);
            if (r.status == 201) ++created;
        });
    }
    for (auto& t : threads) t.join();
    CHECK(created.load() == 1);
    CHECK(w.gatewayScalar("SELECT count(*) FROM policy_versions WHERE dataset = 'conc_visits'") ==
          std::to_string(kWriters + 1));
}

TEST_CASE("a dataset change that would break a policy in force is refused", "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "chg-src", "chg_visits");
    REQUIRE(w.call("PUT", "/v1/datasets/chg_visits/policies/p", w.pubA, policyFor("chg_visits", R"(["partner-one"])"))
                .status == 201);
    auto r =
        w.call("PUT", "/v1/datasets/chg_visits", w.pubA,
               datasetBody("chg-src", "health.visits", R"([{"name":"sex","type":"text","role":"quasi_identifier"}])"));
    INFO(r.body);
    CHECK(r.status == 422);
    CHECK(r.body.find("policies_in_force") != std::string::npos);
    CHECK(bodyJson(w.call("GET", "/v1/datasets/chg_visits", w.pubA))["columns"].Size() == 9);
}

TEST_CASE("the catalog shows a partner exactly what it may request now", "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "cat-src", "cat_visits");
    auto put = [&](const std::string& policy, const std::string& recipients, const std::string& extra = "") {
        auto r = w.call("PUT", "/v1/datasets/cat_visits/policies/" + policy, w.pubA,
                        policyFor("cat_visits", recipients, extra));
        INFO(r.body);
        REQUIRE(r.status == 201);
    };
    put("open", R"(["partner-one"])",
        R"( "validity": {"not_before": "2020-01-01T00:00:00Z", "expires": "2099-01-01T00:00:00Z"},
            "output": {"formats": ["csv"], "max_rows": 1000},)");
    put("both", R"(["partner-one", "partner-two"])");
    put("expired", R"(["partner-one"])", R"( "validity": {"expires": "2021-01-01T00:00:00Z"},)");
    put("future", R"(["partner-one"])", R"( "validity": {"not_before": "2098-01-01T00:00:00Z"},)");
    put("retired", R"(["partner-one"])");
    REQUIRE(w.call("DELETE", "/v1/datasets/cat_visits/policies/retired", w.pubA).status == 200);
    put("other", R"(["partner-two"])");

    auto policiesFor = [&](const std::string& token) {
        auto r = w.call("GET", "/v1/catalog", token);
        INFO(r.body);
        REQUIRE(r.status == 200);
        auto d = bodyJson(r);
        std::map<std::string, rapidjson::Document> out;
        for (const auto& ds : d["datasets"].GetArray()) {
            if (std::string(ds["name"].GetString()) != "cat_visits") continue;
            for (const auto& p : ds["policies"].GetArray()) {
                rapidjson::Document copy;
                copy.CopyFrom(p, copy.GetAllocator());
                out.emplace(p["name"].GetString(), std::move(copy));
            }
        }
        return out;
    };
    auto one = policiesFor(w.partner1);
    CHECK(one.size() == 2);
    CHECK(one.count("open") == 1);
    CHECK(one.count("both") == 1);
    auto two = policiesFor(w.partner2);
    CHECK(two.size() == 2);
    CHECK(two.count("both") == 1);
    CHECK(two.count("other") == 1);

    // What the entry says: purposes, validity, formats, and the columns as released.
    const auto& open = one.at("open");
    CHECK(std::string(open["purposes"][0].GetString()) == "public-health-research");
    CHECK(std::string(open["validity"]["not_before"].GetString()) == "2020-01-01T00:00:00Z");
    CHECK(std::string(open["validity"]["expires"].GetString()) == "2099-01-01T00:00:00Z");
    CHECK(open["output"]["formats"].Size() == 1);
    CHECK(open["output"]["max_rows"].GetUint64() == 1000);
    CHECK(open["version"].GetInt() == 1);
    std::map<std::string, std::string> released;
    for (const auto& c : open["columns"].GetArray()) released[c["name"].GetString()] = c["transform"].GetString();
    CHECK(released.count("patient_name") == 0);  // dropped identifier
    CHECK(released.at("patient_id") == "pseudonymize");
    CHECK(released.at("birth_date") == "generalize");
    CHECK(released.at("diagnosis") == "keep");
    CHECK(one.at("both")["validity"]["expires"].IsNull());

    // Only partners call it.
    CHECK(w.call("GET", "/v1/catalog", w.pubA).status == 403);
}

TEST_CASE("the catalog a gateway keeps in memory follows every change, also changes made outside it",
          "[integration][catalog]") {
    auto& w = world();
    registerVisits(w, "gen-src", "gen_visits");
    auto put = [&](const std::string& policy, const std::string& extra) {
        auto r = w.call("PUT", "/v1/datasets/gen_visits/policies/" + policy, w.pubA,
                        policyFor("gen_visits", R"(["partner-one"])", extra));
        INFO(r.body);
        REQUIRE((r.status == 201 || r.status == 200));
    };
    // The catalog entry of dataset gen_visits as partner-one sees it now.
    auto seen = [&] {
        auto r = w.call("GET", "/v1/catalog", w.partner1);
        INFO(r.body);
        REQUIRE(r.status == 200);
        auto d = bodyJson(r);
        std::map<std::string, std::string> out;  // "agency" -> the dataset's agency; policy -> version:max_rows
        for (const auto& ds : d["datasets"].GetArray()) {
            if (std::string(ds["name"].GetString()) != "gen_visits") continue;
            out["agency"] = ds["agency"].GetString();
            for (const auto& p : ds["policies"].GetArray()) {
                const auto& maxRows = p["output"]["max_rows"];
                out[p["name"].GetString()] = std::to_string(p["version"].GetInt()) + ":" +
                                             (maxRows.IsNull() ? "-" : std::to_string(maxRows.GetUint64()));
            }
        }
        return out;
    };
    auto generation = [&] { return std::stoll(w.gatewayScalar("SELECT generation FROM catalog_generation")); };

    put("first", R"( "output": {"formats": ["csv"], "max_rows": 100},)");
    put("second", "");
    auto before = seen();
    CHECK(before.at("first") == "1:100");
    CHECK(before.at("second") == "1:-");
    CHECK(seen() == before);  // read twice at one generation: the same

    // Through this gateway: a new version is listed at once.
    const auto g0 = generation();
    put("first", R"( "output": {"formats": ["csv"], "max_rows": 200},)");
    CHECK(generation() > g0);
    CHECK(seen().at("first") == "2:200");

    // Outside it, as another gateway process or an operator would: retiring a policy and renaming the
    // dataset's agency in the database are both seen by the next request.
    const auto g1 = generation();
    testing::runPsql(w.gatewayDb.conninfo(),
                     "UPDATE policies SET retired_at = now() WHERE dataset = 'gen_visits' AND name = 'second'");
    CHECK(generation() == g1 + 1);  // one statement, one step
    auto after = seen();
    CHECK(after.count("second") == 0);
    CHECK(after.at("first") == "2:200");
    testing::runPsql(w.gatewayDb.conninfo(), "UPDATE datasets SET agency = 'agency-a2' WHERE name = 'gen_visits'");
    CHECK(seen().at("agency") == "agency-a2");
    testing::runPsql(w.gatewayDb.conninfo(), "UPDATE datasets SET agency = 'agency-a' WHERE name = 'gen_visits'");
    CHECK(seen().at("agency") == "agency-a");

    // A statement that changes nothing the catalog lists still moves the generation: the listing is
    // rebuilt and stays the same.
    testing::runPsql(w.gatewayDb.conninfo(), "UPDATE policies SET retired_at = retired_at WHERE false");
    CHECK(seen() == after);
}

TEST_CASE("recipient groups: admin-managed and audited, validated in policies, effective at once",
          "[integration][catalog][groups]") {
    auto& w = world();
    registerVisits(w, "grp-src", "grp_visits");
    auto catalogPolicies = [&](const std::string& token) {
        auto r = w.call("GET", "/v1/catalog", token);
        REQUIRE(r.status == 200);
        std::map<std::string, std::string> out;  // policy -> admitting recipient entry
        auto d = bodyJson(r);
        for (const auto& ds : d["datasets"].GetArray()) {
            if (std::string(ds["name"].GetString()) != "grp_visits") continue;
            for (const auto& p : ds["policies"].GetArray()) out[p["name"].GetString()] = p["recipient"].GetString();
        }
        return out;
    };

    // Admins only; names are checked.
    CHECK(w.call("PUT", "/v1/groups/epi", w.pubA).status == 403);
    CHECK(w.call("PUT", "/v1/groups/epi", w.partner1).status == 403);
    CHECK(w.call("PUT", "/v1/groups/bad%20name", w.admin).status == 400);
    CHECK(w.call("PUT", "/v1/groups/epi", w.admin, R"({"members": ["x"]})").status == 400);
    auto created = w.call("PUT", "/v1/groups/epi", w.admin, R"({"description": "Epidemiology partners"})");
    INFO(created.body);
    CHECK(created.status == 201);
    CHECK(w.call("PUT", "/v1/groups/epi", w.admin, R"({"description": "Epidemiology research partners"})").status ==
          200);

    // Only existing, enabled partners become members.
    CHECK(w.call("PUT", "/v1/groups/epi/members/pub-a", w.admin).status == 422);
    CHECK(w.call("PUT", "/v1/groups/epi/members/nobody", w.admin).status == 404);
    CHECK(w.call("PUT", "/v1/groups/nosuch/members/partner-two", w.admin).status == 404);
    CHECK(w.call("PUT", "/v1/groups/epi/members/partner-two", w.admin).status == 201);
    CHECK(w.call("PUT", "/v1/groups/epi/members/partner-two", w.admin).status == 200);  // already a member

    // A policy may name existing groups only.
    auto unknown = w.call("PUT", "/v1/datasets/grp_visits/policies/p", w.pubA,
                          policyFor("grp_visits", R"(["group:nosuch", "partner-one"])"));
    CHECK(unknown.status == 422);
    CHECK(hasPointer(bodyJson(unknown), "/recipients/0"));
    REQUIRE(w.call("PUT", "/v1/datasets/grp_visits/policies/p", w.pubA, policyFor("grp_visits", R"(["group:epi"])"))
                .status == 201);

    // The catalog follows membership as it changes, without a restart.
    CHECK(catalogPolicies(w.partner2) == std::map<std::string, std::string>{{"p", "group:epi"}});
    CHECK(catalogPolicies(w.partner1).empty());
    CHECK(w.call("PUT", "/v1/groups/epi/members/partner-one", w.admin).status == 201);
    CHECK(catalogPolicies(w.partner1) == std::map<std::string, std::string>{{"p", "group:epi"}});
    CHECK(w.call("DELETE", "/v1/groups/epi/members/partner-two", w.admin).status == 200);
    CHECK(w.call("DELETE", "/v1/groups/epi/members/partner-two", w.admin).status == 404);
    CHECK(catalogPolicies(w.partner2).empty());

    auto group = w.call("GET", "/v1/groups/epi", w.admin);
    REQUIRE(group.status == 200);
    auto g = bodyJson(group);
    CHECK(std::string(g["description"].GetString()) == "Epidemiology research partners");
    REQUIRE(g["members"].Size() == 1);
    CHECK(std::string(g["members"][0]["name"].GetString()) == "partner-one");
    CHECK(w.call("GET", "/v1/groups", w.admin).body.find("\"epi\"") != std::string::npos);
    CHECK(w.call("GET", "/v1/groups", w.auditor).status == 403);

    // A group named by a policy in force cannot go; once the policy is retired it can.
    auto inUse = w.call("DELETE", "/v1/groups/epi", w.admin);
    CHECK(inUse.status == 409);
    CHECK(inUse.body.find("grp_visits/p") != std::string::npos);
    REQUIRE(w.call("DELETE", "/v1/datasets/grp_visits/policies/p", w.pubA).status == 200);
    CHECK(w.call("DELETE", "/v1/groups/epi", w.admin).status == 200);
    CHECK(w.call("GET", "/v1/groups/epi", w.admin).status == 404);

    // Every change is on record, with the group and member in the details.
    CHECK(w.auditCount("group.put", "allowed") >= 2);
    CHECK(w.auditCount("group.member.add", "allowed") >= 3);
    CHECK(w.auditCount("group.member.remove", "allowed") >= 1);
    CHECK(w.auditCount("group.delete", "allowed") >= 1);
    CHECK(w.auditCount("group.put", "denied") >= 2);
    const std::string removal =
        w.gatewayScalar("SELECT convert_from(entry, 'UTF8') FROM audit_entries WHERE action = 'group.member.remove' "
                        "AND decision = 'allowed' ORDER BY entry_index DESC LIMIT 1");
    CHECK(removal.find("\"group\":\"epi\"") != std::string::npos);
    CHECK(removal.find("\"member\":\"partner-two\"") != std::string::npos);
}

TEST_CASE("dataset hierarchies are validated like policy hierarchies and checked against the source's values",
          "[integration][catalog][hierarchies]") {
    auto& w = world();
    REQUIRE(w.call("PUT", "/v1/sources/hier-src", w.pubA, w.sourceBody(w.agencyA)).status == 201);
    auto put = [&](const std::string& hierarchies) {
        return w.call("PUT", "/v1/datasets/hier_visits", w.pubA,
                      "{\"source\": \"hier-src\", \"table\": \"health.visits\", \"columns\": " +
                          std::string(kVisitColumns) + ", \"hierarchies\": " + hierarchies + "}");
    };
    auto refused = [&](const std::string& hierarchies, const std::string& pointer, const std::string& fragment) {
        auto r = put(hierarchies);
        INFO(hierarchies << " -> " << r.body);
        CHECK(r.status == 422);
        auto d = bodyJson(r);
        bool found = false;
        for (const auto& e : d["error"]["details"].GetArray())
            found = found || (pointer == e["pointer"].GetString() &&
                              std::string(e["message"].GetString()).find(fragment) != std::string::npos);
        CHECK(found);
    };
    refused(R"({"length_of_stay": {"builder": "intervals", "widths": [5, 12]}})",
            "/hierarchies/length_of_stay/widths/1", "not a multiple");
    refused(R"({"sex": {"builder": "intervals", "widths": [5]}})", "/hierarchies/sex/builder",
            "intervals apply to integer and decimal columns");
    refused(R"({"sex": {"builder": "groups", "levels": [{"a": ["F", "M"], "b": ["M"]}]}})",
            "/hierarchies/sex/levels/0/b/0", "already in the group");
    refused(R"({"sex": {"builder": "slices"}})", "/hierarchies/sex/builder",
            "is not allowed here; use one of: intervals, dates, prefix, groups");
    refused(R"({"sex": {"file": "/etc/passwd"}})", "/hierarchies/sex/file", "cannot be used here");
    refused(R"({"nosuch": {"builder": "prefix"}})", "/hierarchies/nosuch", "no column");
    refused(R"({"sex": "prefix"})", "/hierarchies/sex", "");
    // Leaves are known for explicit groups: every value on the source must be one ("M" is missing).
    refused(R"({"sex": {"builder": "groups", "levels": [{"*": ["F", "X"]}]}})", "/hierarchies/sex", "\"M\"");
    CHECK(w.call("GET", "/v1/datasets/hier_visits", w.pubA).status == 404);  // nothing was stored

    auto ok = put(R"({"sex": {"builder": "groups", "levels": [{"*": ["F", "M", "X"]}]},
                      "postal_code": {"builder": "prefix"},
                      "birth_date": {"builder": "dates", "levels": ["year", "decade"]},
                      "length_of_stay": {"builder": "intervals", "widths": [5, 10]}})");
    INFO(ok.body);
    CHECK(ok.status == 201);
    auto stored = bodyJson(w.call("GET", "/v1/datasets/hier_visits", w.pubA));
    CHECK(stored["hierarchies"].MemberCount() == 4);
    CHECK(std::string(stored["hierarchies"]["postal_code"]["builder"].GetString()) == "prefix");
}

TEST_CASE("a policy version stored under the earlier policy encoder's hash keeps loading, any other hash does not",
          "[integration][catalog]") {
    auto& w = world();
    REQUIRE(w.call("PUT", "/v1/sources/legacy-src", w.pubA, w.sourceBody(w.agencyA)).status == 201);
    REQUIRE(w.call("PUT", "/v1/datasets/legacy_visits", w.pubA, datasetBody("legacy-src")).status == 201);
    // A description with U+001F: the earlier encoder wrote \u001F, the one canonical encoder \u001f.
    const std::string body = policyFor("legacy_visits", R"(["partner-one"])", "", R"(Visits\u001f for research.)");
    auto put = w.call("PUT", "/v1/datasets/legacy_visits/policies/research", w.pubA, body);
    INFO(put.body);
    REQUIRE(put.status == 201);
    const auto loaded = policies::loadPolicy(body);
    REQUIRE(loaded.ok());
    const std::string legacy = loaded.policy->legacyContentHash();
    REQUIRE(legacy != loaded.policy->contentHash());
    const auto storeHash = [&](const std::string& hash) {
        pqxx::connection conn(w.gatewayDb.conninfo());
        pqxx::work tx(conn);
        tx.exec_params("UPDATE policy_versions SET content_hash = $1 WHERE dataset = 'legacy_visits'", hash);
        tx.commit();
    };
    storeHash(legacy);
    auto got = w.call("GET", "/v1/datasets/legacy_visits/policies/research", w.pubA);
    INFO(got.body);
    REQUIRE(got.status == 200);
    CHECK(std::string(bodyJson(got)["content_hash"].GetString()) == legacy);
    storeHash(std::string(64, '0'));
    auto refused = w.call("GET", "/v1/datasets/legacy_visits/policies/research", w.pubA);
    CHECK(refused.status == 500);
}
