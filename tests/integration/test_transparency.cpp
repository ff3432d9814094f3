// The public transparency register (docs/transparency.md) end to end: a real gateway, agency
// database and audit log; releases under public, summary and private policy versions; the
// register's counts checked against the audit entries, and every counted entry's inclusion proof
// and the tree head's signature checked with the independent verifiers, as a citizen would.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "gateway/audit/log.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/proof_verify.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "test_extract_fixture.hpp"
#include "test_source_endpoints.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

constexpr const char* kMarkup = "<script>alert(1)</script><b>visits</b> & \"quotes\"";

struct RegisterWorld {
    TestDatabase gatewayDb = TestDatabase::create("register_gateway");
    TestDatabase agency = TestDatabase::create("register_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, partnerA, partnerB, auditor;

    RegisterWorld() {
        createVisitsTable(agency.conninfo(), 600);
        // The background integrity check is slowed down so that the register, not the check, meets
        // the entry a test rewrites.
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo(), GatewayOptions{{}, [](config::GatewayConfig& c) {
                                                                                       allowTestSources(c);
                                                                                       c.audit.integrityCheckInterval =
                                                                                           std::chrono::hours(24);
                                                                                       c.audit.integrityRecheckBlocks =
                                                                                           0;
                                                                                   }});
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        partnerA = gw->addPrincipal(auth::Role::Partner, "partner-a", "Institute of Epidemiology");
        partnerB = gw->addPrincipal(auth::Role::Partner, "partner-b");
        auditor = gw->addPrincipal(auth::Role::Auditor, "auditor-1");
        auto source = call("PUT", "/v1/sources/health-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        INFO(source.body);
        REQUIRE(source.status < 300);
        std::string dataset = visitsDatasetJson("health-db");
        dataset.insert(1, "\"description\": " + json::canonicalJson(json::JsonValue(kMarkup)).value() + ", ");
        auto put = call("PUT", "/v1/datasets/visits", publisher, dataset);
        INFO(put.body);
        REQUIRE(put.status < 300);
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }
    HttpResult anonymous(const std::string& target) { return httpRequest(gw->port(), "GET", target); }

    void putPolicy(const std::string& name, const std::string& transparency) {
        const std::string extra = transparency.empty() ? "" : ", \"transparency\": \"" + transparency + "\"";
        auto r =
            call("PUT", "/v1/datasets/visits/policies/" + name, publisher,
                 visitsPolicyJson(R"({"k": 5, "suppression_limit": 0.05})", extra, R"(["partner-a", "partner-b"])"));
        INFO(r.body);
        REQUIRE(r.status < 300);
    }

    void extract(const std::string& token, const std::string& policy) {
        auto r = call("POST", "/v1/extracts", token,
                      R"({"dataset":"visits","policy":")" + policy + R"(","purpose":"research"})");
        INFO(r.body);
        REQUIRE(r.status == 200);
    }

    // index → rows_released of every completed extract of `policy`.
    std::map<uint64_t, uint64_t> completed(const std::string& policy) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::read_transaction tx(conn);
        std::map<uint64_t, uint64_t> out;
        for (const auto& row : tx.exec_params(
                 "SELECT entry_index, (convert_from(entry, 'UTF8')::json -> 'details' ->> 'rows_released')::bigint "
                 "FROM audit_entries WHERE action = 'extract.completed' AND "
                 "convert_from(entry, 'UTF8')::json -> 'target' ->> 'policy' = $1",
                 policy))
            out[row[0].as<uint64_t>()] = row[1].as<uint64_t>();
        return out;
    }

    std::string storedEntry(uint64_t index) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::read_transaction tx(conn);
        pqxx::binarystring bytes(tx.exec_params1("SELECT entry FROM audit_entries WHERE entry_index = $1", index)[0]);
        return bytes.str();
    }

    uint64_t entryCount() {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::read_transaction tx(conn);
        return tx.exec1("SELECT count(*) FROM audit_entries")[0].as<uint64_t>();
    }

    // Signs a head over everything recorded so far (as the gateway does every few seconds).
    void signHead() { REQUIRE(gw->services().audit->signTreeHead()); }
};

audit::Hash hashOf(const json::JsonValue& hex) {
    auto bytes = crypto::fromHex(hex.asString());
    REQUIRE(bytes);
    REQUIRE(bytes->size() == 32);
    audit::Hash h{};
    std::copy(bytes->begin(), bytes->end(), h.begin());
    return h;
}

// Checks, as a citizen would with the JSON alone and the gateway's public key: the head's
// signature, then every counted entry's inclusion proof against it. Returns the counted entries
// (index → rows) of each month row under `rows` (a months array).
std::map<uint64_t, uint64_t> verifiedEntries(const json::JsonValue& months, const audit::SignedTreeHead& head,
                                             uint64_t& releases, uint64_t& rows) {
    std::map<uint64_t, uint64_t> out;
    releases = rows = 0;
    for (const auto& month : months.asArray()) {
        releases += month.find("releases")->asUint64();
        rows += month.find("rows_released")->asUint64();
        uint64_t monthRows = 0;
        for (const auto& e : month.find("entries")->asArray()) {
            const uint64_t index = e.find("index")->asUint64();
            std::vector<audit::Hash> path;
            for (const auto& h : e.find("audit_path")->asArray()) path.push_back(hashOf(h));
            INFO("entry " << index);
            CHECK(audit::verifyInclusion(index, head.head.treeSize, hashOf(*e.find("leaf_hash")), path,
                                         head.head.rootHash));
            out[index] = e.find("rows_released")->asUint64();
            monthRows += out[index];
        }
        CHECK(month.find("entries")->asArray().size() == month.find("releases")->asUint64());
        CHECK(monthRows == month.find("rows_released")->asUint64());
    }
    return out;
}

const json::JsonValue* findNamed(const json::JsonValue& array, const std::string& name) {
    for (const auto& v : array.asArray())
        if (v.find("name") && v.find("name")->asString() == name) return &v;
    return nullptr;
}

audit::SignedTreeHead checkedHead(const json::JsonValue& reg, uint16_t port) {
    auto head = audit::treeHeadFromJson(*reg.find("tree_head"));
    REQUIRE(head);
    auto keys = httpRequest(port, "GET", "/v1/keys");
    REQUIRE(keys.status == 200);
    auto key = crypto::parseGatewayPublicKey(keys.body);
    REQUIRE(key);
    CHECK(crypto::toBase64(*key) == reg.find("public_key")->asString());
    CHECK(audit::verifyTreeHead(*head, *key));
    return *head;
}

}  // namespace

TEST_CASE("the transparency register counts public and summary releases from the signed log, never private ones",
          "[integration][transparency]") {
    RegisterWorld w;
    w.putPolicy("research", "public");
    w.putPolicy("internal", "");  // summary by default
    w.putPolicy("secret", "private");
    w.extract(w.partnerA, "research");
    w.extract(w.partnerA, "research");
    w.extract(w.partnerB, "research");
    w.extract(w.partnerA, "internal");
    w.extract(w.partnerA, "secret");
    const auto research = w.completed("research");
    const auto internal = w.completed("internal");
    const auto secret = w.completed("secret");
    REQUIRE(research.size() == 3);
    REQUIRE(internal.size() == 1);
    REQUIRE(secret.size() == 1);

    w.signHead();
    const uint64_t entriesBefore = w.entryCount();
    auto r = w.anonymous("/v1/transparency");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type").rfind("application/json", 0) == 0);
    auto reg = json::parseJson(r.body);
    REQUIRE(reg);
    const audit::SignedTreeHead head = checkedHead(*reg, w.gw->port());

    const auto& datasets = reg->find("datasets")->asArray();
    REQUIRE(datasets.size() == 1);
    const json::JsonValue& visits = datasets[0];
    CHECK(visits.find("name")->asString() == "visits");
    CHECK(visits.find("agency")->asString() == "health");
    CHECK(visits.find("description")->asString() == kMarkup);

    // The public policy: named, purposes, organisations, every release with a valid proof.
    const auto& policies = visits.find("policies")->asArray();
    REQUIRE(policies.size() == 1);
    const json::JsonValue& p = policies[0];
    CHECK(p.find("name")->asString() == "research");
    REQUIRE(p.find("purposes")->asArray().size() == 1);
    CHECK(p.find("purposes")->asArray()[0].asString() == "research");
    std::set<std::string> recipients;
    for (const auto& rc : p.find("recipients")->asArray()) recipients.insert(rc.asString());
    CHECK(recipients ==
          std::set<std::string>{"Institute of Epidemiology", "a partner without a declared organisation"});
    uint64_t releases = 0, rows = 0;
    CHECK(verifiedEntries(*p.find("months"), head, releases, rows) == research);
    CHECK(releases == 3);
    uint64_t researchRows = 0;
    for (const auto& [index, n] : research) researchRows += n;
    CHECK(rows == researchRows);

    // The summary policy: counted, unnamed.
    uint64_t otherReleases = 0, otherRows = 0;
    CHECK(verifiedEntries(*visits.find("other_releases"), head, otherReleases, otherRows) == internal);
    CHECK(otherReleases == 1);
    CHECK(visits.find("releases")->asUint64() == 4);
    CHECK(visits.find("rows_released")->asUint64() == researchRows + internal.begin()->second);

    // Each counted leaf is the hash of the stored extract.completed entry at that index.
    for (const auto& [index, n] : research) {
        const std::string bytes = w.storedEntry(index);
        auto leaf =
            audit::leafHash(crypto::ByteView(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
        auto one = w.anonymous("/v1/transparency/entries/" + std::to_string(index));
        INFO(one.body);
        REQUIRE(one.status == 200);
        auto proof = json::parseJson(one.body);
        REQUIRE(proof);
        CHECK(hashOf(*proof->find("entry")->find("leaf_hash")) == leaf);
    }

    // Nothing of the private policy, no principal names, no tokens.
    const uint64_t secretIndex = secret.begin()->first;
    CHECK(w.anonymous("/v1/transparency/entries/" + std::to_string(secretIndex)).status == 404);
    CHECK(w.anonymous("/v1/transparency/entries/abc").status == 400);
    CHECK(w.anonymous("/v1/transparency?x=1").status == 400);
    for (const std::string& secretText : {std::string("secret"), std::string("partner-a"), std::string("partner-b"),
                                          w.partnerA, w.partnerB, w.publisher}) {
        INFO(secretText);
        CHECK(r.body.find(secretText) == std::string::npos);
    }

    // The HTML page: the same figures, every text escaped, the strict policy.
    auto html = w.anonymous("/transparency");
    REQUIRE(html.status == 200);
    CHECK(html.header("content-type") == "text/html; charset=utf-8");
    CHECK(html.header("content-security-policy").find("script-src 'self'") != std::string::npos);
    CHECK(html.body.find("<script>") == std::string::npos);
    CHECK(html.body.find("&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;visits&lt;/b&gt; &amp; &quot;quotes&quot;") !=
          std::string::npos);
    CHECK(html.body.find("Institute of Epidemiology") != std::string::npos);
    CHECK(html.body.find("/v1/transparency/entries/" + std::to_string(research.begin()->first)) != std::string::npos);
    CHECK(html.body.find("partner-a") == std::string::npos);

    // Visits without credentials are not audit entries (docs/audit.md).
    CHECK(w.entryCount() == entriesBefore);

    SECTION("a release made under a public version stays public when the policy turns private") {
        w.putPolicy("research", "private");
        w.putPolicy("internal", "private");
        w.signHead();
        auto again = json::parseJson(w.anonymous("/v1/transparency").body);
        REQUIRE(again);
        const auto* still = findNamed(*again->find("datasets"), "visits");
        REQUIRE(still != nullptr);  // its releases are listed though no current version is public
        const auto* research2 = findNamed(*still->find("policies"), "research");
        REQUIRE(research2 != nullptr);
        CHECK(research2->find("version_described")->asUint64() == 1);
        uint64_t n = 0, sum = 0;
        CHECK(verifiedEntries(*research2->find("months"), checkedHead(*again, w.gw->port()), n, sum) == research);
    }
}

TEST_CASE("the register refuses to vouch for an entry that differs from the signed tree",
          "[integration][transparency]") {
    RegisterWorld w;
    w.putPolicy("research", "public");
    w.extract(w.partnerA, "research");
    w.signHead();
    const uint64_t index = w.completed("research").begin()->first;
    {
        // A superuser rewrites the counted entry (the runtime role cannot: docs/audit.md).
        pqxx::connection conn(w.gatewayDb.conninfo());
        pqxx::work tx(conn);
        tx.exec("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only");
        tx.exec_params("UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), "
                       "'\"rows_released\":', '\"rows_released\":1'), 'UTF8') WHERE entry_index = $1",
                       index);
        tx.exec("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only");
        tx.commit();
    }
    // A new head makes the register rebuild; it reads the altered bytes and refuses.
    w.extract(w.partnerA, "research");
    w.signHead();
    auto r = w.anonymous("/v1/transparency");
    INFO(r.body);
    CHECK(r.status == 503);
    CHECK(r.body.find("entry " + std::to_string(index)) != std::string::npos);
}

TEST_CASE("an empty log or catalog gives an empty register, not an error", "[integration][transparency]") {
    TestDatabase db = TestDatabase::create("register_empty");
    RunningGateway gw(db.conninfo());
    REQUIRE(gw.waitForReadiness(200, std::chrono::milliseconds(10000)) == 200);
    auto r = httpRequest(gw.port(), "GET", "/v1/transparency");
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto reg = json::parseJson(r.body);
    REQUIRE(reg);
    CHECK(reg->find("datasets")->asArray().empty());
    auto html = httpRequest(gw.port(), "GET", "/transparency");
    CHECK(html.status == 200);
    CHECK(html.body.find("No dataset is listed") != std::string::npos);
}
