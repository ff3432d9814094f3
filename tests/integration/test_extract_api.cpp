// POST /v1/extracts and GET /v1/extracts/{id}/manifest end to end: a real gateway (in process, port
// 0), a real agency database, principals with real X25519 keys, the catalog API, decryption and
// an independent k-anonymity check of the plaintext, the audit entries, and the faults.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <rapidjson/document.h>

#include <chrono>
#include <cmath>
#include <future>
#include <thread>

#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "test_extract_fixture.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

struct ExtractWorld {
    TestDatabase gatewayDb = TestDatabase::create("extract_gateway");
    TestDatabase agency = TestDatabase::create("extract_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, partnerA, partnerB, auditor;
    std::optional<crypto::BoxSecretKey> keyA;

    explicit ExtractWorld(int rows = 2000, GatewayOptions options = {}) {
        createVisitsTable(agency.conninfo(), rows);
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo(), std::move(options));
        publisher = add("pub-health", auth::Role::Publisher, "health", std::nullopt);
        keyA.emplace(std::move(crypto::BoxSecretKey::generate()).value());
        partnerA = add("partner-a", auth::Role::Partner, "", keyA->publicKey());
        auto keyB = crypto::BoxSecretKey::generate();
        partnerB = add("partner-b", auth::Role::Partner, "", keyB->publicKey());
        auditor = add("auditor-1", auth::Role::Auditor, "", std::nullopt);
        auto source = call("PUT", "/v1/sources/health-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        INFO(source.body);
        REQUIRE(source.status < 300);
        REQUIRE(call("PUT", "/v1/datasets/visits", publisher, visitsDatasetJson("health-db")).status < 300);
        putPolicy("research", visitsPolicyJson(R"({"k": 10, "suppression_limit": 0.05})"));
    }

    std::string add(const std::string& name, auth::Role role, const std::string& agencyName,
                    std::optional<crypto::BoxPublicKey> key) {
        auth::NewPrincipal p;
        p.name = name;
        p.role = role;
        p.agency = agencyName;
        p.publicKey = key;
        std::string token;
        Status s = gw->services().db->withConnection([&](pqxx::connection& conn) -> Status {
            auto t = auth::addPrincipal(conn, *gw->services().tokens, p);
            if (!t) return t.status();
            token = *t;
            return Status::ok();
        });
        if (!s) throw std::runtime_error(s.message());
        return token;
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }

    void putPolicy(const std::string& name, const std::string& json) {
        auto r = call("PUT", "/v1/datasets/visits/policies/" + name, publisher, json);
        INFO(r.body);
        REQUIRE(r.status < 300);
    }

    HttpResult extract(const std::string& token, const std::string& policy, const std::string& purpose = "research",
                       const std::string& dataset = "visits", const std::string& extra = "") {
        return call("POST", "/v1/extracts", token,
                    "{\"dataset\":\"" + dataset + "\",\"policy\":\"" + policy + "\",\"purpose\":\"" + purpose + "\"" +
                        extra + "}");
    }

    std::string gatewayScalar(const std::string& sql) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        auto r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
    }

    // action:decision of every audit entry mentioning the extract, in order.
    std::vector<std::string> auditTrail(const std::string& extractId) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        auto r = tx.exec_params(
            "SELECT action || ':' || decision FROM audit_entries WHERE convert_from(entry, 'UTF8') LIKE $1 "
            "ORDER BY entry_index",
            "%" + extractId + "%");
        std::vector<std::string> out;
        for (const auto& row : r) out.emplace_back(row[0].c_str());
        return out;
    }

    std::string lastAudit(const std::string& action) {
        return gatewayScalar(
            "SELECT decision || ' ' || convert_from(entry, 'UTF8') FROM audit_entries WHERE action = '" + action +
            "' ORDER BY entry_index DESC LIMIT 1");
    }
};

std::string ruleOf(const HttpResult& r) {
    auto json = json::parseJson(r.body);
    if (!json) return "";
    const auto* details = json->find("error")->find("details");
    if (!details || !details->find("rule")) return "";
    return details->find("rule")->asString();
}

// The manifest's information loss: the NCP per quasi-identifier (exactly `qis`) and overall, as
// four-decimal strings in [0, 1], the overall one the mean of the others (up to their rounding).
// Returns the overall value.
double manifestNcp(const crypto::ExtractManifest& manifest, const std::vector<std::string>& qis) {
    const json::JsonValue& loss = manifest.informationLoss;
    REQUIRE(loss.isObject());
    auto decimal = [](const json::JsonValue* v) {
        REQUIRE(v != nullptr);
        REQUIRE(v->isString());
        const std::string& s = v->asString();
        REQUIRE(s.size() == 6);
        REQUIRE(s[1] == '.');
        const double d = std::stod(s);
        REQUIRE(d >= 0);
        REQUIRE(d <= 1);
        return d;
    };
    const json::JsonValue* attributes = loss.find("attributes");
    REQUIRE(attributes != nullptr);
    REQUIRE(attributes->isObject());
    REQUIRE(attributes->asObject().size() == qis.size());
    double mean = 0;
    for (const auto& qi : qis) mean += decimal(attributes->find(qi)) / static_cast<double>(qis.size());
    const double overall = decimal(loss.find("ncp"));
    CHECK(std::fabs(overall - mean) <= 0.0001);
    return overall;
}

// A number in a JSON response, by its path of member names.
double jsonNumber(const std::string& body, const std::vector<std::string>& path) {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    REQUIRE_FALSE(doc.HasParseError());
    const rapidjson::Value* v = &doc;
    for (const auto& name : path) {
        INFO(name);
        REQUIRE(v->HasMember(name.c_str()));
        v = &(*v)[name.c_str()];
    }
    REQUIRE(v->IsNumber());
    return v->GetDouble();
}

}  // namespace

TEST_CASE("a partner's extract decrypts to k-anonymous rows with a signed manifest and a full audit trail",
          "[integration][extract]") {
    ExtractWorld w;
    // Values that COPY, CSV and the encryption framing must all carry unchanged.
    makeDiagnosesHostile(w.agency.conninfo());
    auto r = w.extract(w.partnerA, "research");
    INFO(r.body.substr(0, 500));
    REQUIRE(r.status == 200);
    REQUIRE(r.complete);
    const std::string id = r.header("x-extract-id");
    REQUIRE(id.rfind("ext_", 0) == 0);
    CHECK(r.header("content-type") == "application/vnd.custodian.extract");

    auto plaintext = crypto::openExtract(*w.keyA, crypto::asBytes(r.body));
    REQUIRE(plaintext);
    const std::string text(plaintext->begin(), plaintext->end());
    ParsedCsv csv = parseCsv(text);
    CHECK(csv.header == std::vector<std::string>{"id", "age", "sex", "zip", "diagnosis", "cost", "visit_date"});
    CHECK(csv.rows.size() >= 1900);
    CHECK(smallestGroup(csv, {"age", "sex", "zip"}) >= 10);
    CHECK(text.find("Person ") == std::string::npos);

    // The manifest: signed by the gateway key, digests match what was decrypted.
    auto m = w.call("GET", "/v1/extracts/" + id + "/manifest", w.partnerA);
    REQUIRE(m.status == 200);
    auto manifest = crypto::verifyManifest(m.body, w.gw->services().signingKey->publicKey());
    REQUIRE(manifest);
    CHECK(manifest->extractId == id);
    CHECK(manifest->dataset == "visits");
    CHECK(manifest->policy == "research");
    CHECK(manifest->policyVersion == 1);
    CHECK(manifest->recipient == "partner-a");
    CHECK(manifest->purpose == "research");
    CHECK(manifest->rowsReleased == csv.rows.size());
    CHECK(manifest->rowsReleased + manifest->rowsSuppressed == 2000);
    checkReleasedValuesAreSourceValues(csv, "diagnosis", diagnosisCounts(w.agency.conninfo()),
                                       manifest->rowsSuppressed);
    CHECK(manifest->models.find("k")->asUint64() >= 10);
    REQUIRE(manifest->columns.size() == 8);
    CHECK(manifest->columns[0].transform == "pseudonymize");
    CHECK(manifest->columns[1].transform == "drop");
    CHECK(manifest->columns[2].transform.rfind("generalize:level=", 0) == 0);
    // The information loss of the chosen generalization, as the preview reports it.
    const double ncp = manifestNcp(*manifest, {"age", "sex", "zip"});
    CHECK(ncp > 0);
    auto preview = w.call("POST", "/v1/datasets/visits/policies/research/preview", w.publisher);
    REQUIRE(preview.status == 200);
    CHECK(std::fabs(ncp - jsonNumber(preview.body, {"information_loss_after", "loss"})) <= 0.00005 + 1e-12);
    auto opened = crypto::ExtractOpener::create(*w.keyA);
    crypto::Bytes ignored;
    REQUIRE(opened->feed(crypto::asBytes(r.body), ignored));
    REQUIRE(opened->finish());
    CHECK(crypto::checkExtractAgainstManifest(*manifest, opened->digests()));

    // Audit: requested (before any data) then completed, the completed index in the manifest.
    auto trail = w.auditTrail(id);
    REQUIRE(trail.size() >= 2);
    CHECK(trail[0] == "extract.requested:allowed");
    CHECK(trail[1] == "extract.completed:completed");
    CHECK(w.gatewayScalar("SELECT action FROM audit_entries WHERE entry_index = " +
                          std::to_string(manifest->auditIndex)) == "extract.completed");
    CHECK(w.gatewayScalar("SELECT status FROM extracts WHERE id = '" + id + "'") == "completed");

    // Another partner cannot see the manifest; an auditor can.
    CHECK(w.call("GET", "/v1/extracts/" + id + "/manifest", w.partnerB).status == 404);
    CHECK(w.call("GET", "/v1/extracts/" + id + "/manifest", w.auditor).status == 200);

    // Tampered, truncated and wrongly keyed ciphertexts fail with a clear error.
    std::string tampered = r.body;
    tampered[tampered.size() / 2] ^= 0x01;
    auto t = crypto::openExtract(*w.keyA, crypto::asBytes(tampered));
    REQUIRE(!t);
    CHECK(!t.status().message().empty());
    auto truncated =
        crypto::openExtract(*w.keyA, crypto::asBytes(std::string_view(r.body).substr(0, r.body.size() - 40)));
    REQUIRE(!truncated);
    auto other = crypto::BoxSecretKey::generate();
    auto wrong = crypto::openExtract(*other, crypto::asBytes(r.body));
    REQUIRE(!wrong);
}

TEST_CASE("a Mondrian policy releases every row through the gateway, its partitions in the manifest and the audit",
          "[integration][extract][mondrian]") {
    ExtractWorld w;
    w.putPolicy("local", visitsMondrianPolicyJson(R"({"k": 10})"));
    auto r = w.extract(w.partnerA, "local");
    INFO(r.body.substr(0, 500));
    REQUIRE(r.status == 200);
    REQUIRE(r.complete);
    const std::string id = r.header("x-extract-id");
    auto plaintext = crypto::openExtract(*w.keyA, crypto::asBytes(r.body));
    REQUIRE(plaintext);
    ParsedCsv csv = parseCsv(std::string(plaintext->begin(), plaintext->end()));
    CHECK(csv.rows.size() == 2000);
    CHECK(smallestGroup(csv, {"age", "sex", "zip"}) >= 10);

    auto m = w.call("GET", "/v1/extracts/" + id + "/manifest", w.partnerA);
    REQUIRE(m.status == 200);
    auto manifest = crypto::verifyManifest(m.body, w.gw->services().signingKey->publicKey());
    REQUIRE(manifest);
    CHECK(manifest->rowsReleased == 2000);
    CHECK(manifest->rowsSuppressed == 0);
    CHECK(manifest->models.find("k")->asUint64() >= 10);
    CHECK(manifest->columns[2].transform == "mondrian-strict");
    CHECK(manifest->columns[3].transform == "mondrian-strict");
    const std::string completed = w.lastAudit("extract.completed");
    CHECK(completed.find("\"algorithm\":\"mondrian-strict\"") != std::string::npos);
    CHECK(completed.find("\"partitions\":") != std::string::npos);

    // The preview reports the partitioning and its risk; an unreachable k is a 422 naming it.
    auto preview = w.call("POST", "/v1/datasets/visits/policies/local/preview", w.publisher);
    INFO(preview.body);
    REQUIRE(preview.status == 200);
    CHECK(preview.body.find("\"partitioning\":{\"algorithm\":\"mondrian-strict\"") != std::string::npos);
    CHECK(preview.body.find("\"risk_after\"") != std::string::npos);
    // The manifest carries the partitioning's information loss, as for global recoding.
    const double ncp = manifestNcp(*manifest, {"age", "sex", "zip"});
    CHECK(ncp > 0);
    CHECK(std::fabs(ncp - jsonNumber(preview.body, {"partitioning", "ncp", "overall"})) <= 0.00005 + 1e-12);
    w.putPolicy("local-too-strict", visitsMondrianPolicyJson(R"({"k": 5000})"));
    auto refused = w.extract(w.partnerA, "local-too-strict");
    CHECK(refused.status == 422);
    CHECK(refused.body.find("k-anonymity with k = 5000") != std::string::npos);
}

TEST_CASE("extract requests that break the policy are refused with the rule and audited", "[integration][extract]") {
    ExtractWorld w(300);
    w.putPolicy("expired", visitsPolicyJson(R"({"k": 2})", R"(, "validity": {"expires": "2020-01-01T00:00:00Z"})"));
    w.putPolicy("future", visitsPolicyJson(R"({"k": 2})", R"(, "validity": {"not_before": "2999-01-01T00:00:00Z"})"));
    w.putPolicy("strict", visitsPolicyJson(R"({"k": 5000, "suppression_limit": 0.01})"));
    w.putPolicy("small", visitsPolicyJson(R"({"k": 2})", R"(, "output": {"max_rows": 100})"));
    w.putPolicy("daily", visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})",
                                          R"(, "limits": {"extracts_per_day_per_recipient": 1})"));
    w.putPolicy("daily-strict", visitsPolicyJson(R"({"k": 5000, "suppression_limit": 0.01})",
                                                 R"(, "limits": {"extracts_per_day_per_recipient": 1})"));

    SECTION("unknown dataset or policy: 404") {
        CHECK(w.extract(w.partnerA, "research", "research", "nothing").status == 404);
        CHECK(w.extract(w.partnerA, "nothing").status == 404);
    }
    SECTION("purpose not allowed: 403 purpose") {
        auto r = w.extract(w.partnerA, "research", "marketing");
        CHECK(r.status == 403);
        CHECK(ruleOf(r) == "purpose");
        CHECK(w.lastAudit("extract.requested").rfind("denied", 0) == 0);
    }
    SECTION("recipient not listed: 403 recipient") {
        auto r = w.extract(w.partnerB, "research");
        CHECK(r.status == 403);
        CHECK(ruleOf(r) == "recipient");
    }
    SECTION("recipient through a group: allowed while a member, refused as soon as it is removed") {
        const std::string admin = w.add("admin-1", auth::Role::Admin, "", std::nullopt);
        const std::string teamPolicy =
            visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})", "", R"(["group:team"])");
        auto unknown = w.call("PUT", "/v1/datasets/visits/policies/team", w.publisher, teamPolicy);
        CHECK(unknown.status == 422);
        CHECK(unknown.body.find(R"(no group named \"team\" exists)") != std::string::npos);  // JSON-escaped
        REQUIRE(w.call("PUT", "/v1/groups/team", admin).status == 201);
        w.putPolicy("team", teamPolicy);
        CHECK(ruleOf(w.extract(w.partnerB, "team")) == "recipient");
        REQUIRE(w.call("PUT", "/v1/groups/team/members/partner-b", admin).status == 201);
        auto allowed = w.extract(w.partnerB, "team");
        CHECK(allowed.status == 200);
        CHECK(w.lastAudit("extract.completed").rfind("completed", 0) == 0);
        CHECK(w.lastAudit("extract.requested").find(R"("recipient_entry":"group:team")") != std::string::npos);
        REQUIRE(w.call("DELETE", "/v1/groups/team/members/partner-b", admin).status == 200);
        auto removed = w.extract(w.partnerB, "team");
        CHECK(removed.status == 403);
        CHECK(ruleOf(removed) == "recipient");
        CHECK(w.lastAudit("extract.requested").rfind("denied", 0) == 0);
        CHECK(ruleOf(w.extract(w.partnerA, "team")) == "recipient");  // never a member
    }
    SECTION("expired and not yet valid policies: 403") {
        auto r = w.extract(w.partnerA, "expired");
        CHECK(r.status == 403);
        CHECK(ruleOf(r) == "validity.expires");
        r = w.extract(w.partnerA, "future");
        CHECK(r.status == 403);
        CHECK(ruleOf(r) == "validity.not_before");
    }
    SECTION("plain output when the policy requires encryption: 403") {
        auto r = w.extract(w.partnerA, "research", "research", "visits", R"(,"encryption":"none")");
        CHECK(r.status == 403);
        CHECK(ruleOf(r) == "output.encryption_required");
    }
    SECTION("too many rows: 403 output.max_rows, after the requested entry") {
        auto r = w.extract(w.partnerA, "small");
        CHECK(r.status == 403);
        CHECK(ruleOf(r) == "output.max_rows");
        CHECK(w.lastAudit("extract.aborted").rfind("denied", 0) == 0);
        CHECK(w.gatewayScalar("SELECT string_agg(status, ',') FROM extracts") == "not_released");
    }
    SECTION("daily limit: the second extract of the day is refused, and the catalog says so beforehand") {
        // The catalog shows what is left today, per partner.
        auto dailyOf = [&](const std::string& catalog) {
            const size_t at = catalog.find("\"name\":\"daily\"");
            REQUIRE(at != std::string::npos);
            return catalog.substr(at, catalog.find("\"privacy\"", at) - at);
        };
        auto before = w.call("GET", "/v1/catalog", w.partnerA);
        REQUIRE(before.status == 200);
        CHECK(dailyOf(before.body).find("\"extracts_per_day\":1,\"extracts_today\":0,\"extracts_left_today\":1") !=
              std::string::npos);
        auto first = w.extract(w.partnerA, "daily");
        REQUIRE(first.status == 200);
        auto after = w.call("GET", "/v1/catalog", w.partnerA);
        CHECK(dailyOf(after.body).find("\"extracts_today\":1,\"extracts_left_today\":0") != std::string::npos);
        auto second = w.extract(w.partnerA, "daily");
        CHECK(second.status == 403);
        CHECK(ruleOf(second) == "limits.extracts_per_day_per_recipient");
    }
    SECTION("an unreachable model: 422 with the requirement and the best achievable value, nothing released") {
        auto r = w.extract(w.partnerA, "strict");
        INFO(r.body);
        REQUIRE(r.status == 422);
        auto json = json::parseJson(r.body);
        REQUIRE(json);
        const auto* details = json->find("error")->find("details");
        REQUIRE(details);
        CHECK(details->find("requirement")->asString() == "k-anonymity with k = 5000");
        CHECK(details->find("best_achievable")->find("k")->asUint64() == 300);
        CHECK(w.lastAudit("extract.aborted").rfind("failed", 0) == 0);
        // The row was opened before the source was read, and closed with the aborted entry.
        const std::string id = w.gatewayScalar("SELECT id FROM extracts");
        CHECK(w.gatewayScalar("SELECT status FROM extracts") == "not_released");
        CHECK(w.gatewayScalar("SELECT finished_entry_index FROM extracts") ==
              w.gatewayScalar("SELECT max(entry_index) FROM audit_entries WHERE action = 'extract.aborted'"));
        CHECK(w.lastAudit("extract.aborted").find("\"extract_id\":\"" + id + "\"") != std::string::npos);
        auto m = w.call("GET", "/v1/extracts/" + id + "/manifest", w.partnerA);
        CHECK(m.status == 404);
        CHECK(m.body.find("released nothing") != std::string::npos);
    }
    SECTION("an extract that released nothing does not count against the daily limit") {
        CHECK(w.extract(w.partnerA, "daily-strict").status == 422);
        CHECK(w.extract(w.partnerA, "daily-strict").status == 422);  // not 403: the first one is not counted
        CHECK(w.gatewayScalar("SELECT count(*) FROM extracts WHERE status = 'not_released'") == "2");
    }
    SECTION("malformed requests: 400") {
        CHECK(w.call("POST", "/v1/extracts", w.partnerA, "{").status == 400);
        CHECK(w.call("POST", "/v1/extracts", w.partnerA, R"({"dataset":"visits"})").status == 400);
        CHECK(w.extract(w.partnerA, "research", "research", "visits", R"(,"format":"xml")").status == 400);
        CHECK(w.extract(w.partnerA, "research", "research", "visits", R"(,"sql":"DROP TABLE x")").status == 400);
    }
    SECTION("only partners may request extracts") {
        CHECK(w.extract(w.publisher, "research").status == 403);
        CHECK(w.extract(w.auditor, "research").status == 403);
    }
}

TEST_CASE("a source database that is down gives 503 and an aborted entry", "[integration][extract]") {
    ExtractWorld w(100);
    auto cluster = PgCluster::create();
    runPsql(cluster->conninfo(), "CREATE DATABASE agency2");
    createVisitsTable(cluster->conninfo("agency2"), 100);
    REQUIRE(w.call("PUT", "/v1/sources/other-db", w.publisher,
                   "{\"conninfo\": " + json::canonicalJson(json::JsonValue(cluster->conninfo("agency2"))).value() + "}")
                .status < 300);
    REQUIRE(w.call("PUT", "/v1/datasets/visits2", w.publisher, visitsDatasetJson("other-db")).status < 300);
    std::string policy = visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})");
    policy.replace(policy.find("\"visits\""), 8, "\"visits2\"");
    REQUIRE(w.call("PUT", "/v1/datasets/visits2/policies/research", w.publisher, policy).status < 300);
    REQUIRE(w.extract(w.partnerA, "research", "research", "visits2").status == 200);

    cluster->stop();
    auto r = w.extract(w.partnerA, "research", "research", "visits2");
    INFO(r.body);
    CHECK(r.status == 503);
    CHECK(w.lastAudit("extract.aborted").find("unavailable") != std::string::npos);
}

TEST_CASE("a client that disconnects mid-stream leaves an aborted entry and no completed one",
          "[integration][extract]") {
    ExtractWorld w(200000);
    w.putPolicy("bulk", visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})"));
    // A raw socket: send the request, read a little of the body, then go away.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(w.gw->port());
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string body = R"({"dataset":"visits","policy":"bulk","purpose":"research"})";
    const std::string request = "POST /v1/extracts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + w.partnerA +
                                "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n" + body;
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string received;
    char buf[4096];
    while (received.size() < 20000) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        REQUIRE(n > 0);
        received.append(buf, static_cast<size_t>(n));
    }
    CHECK(received.rfind("HTTP/1.1 200", 0) == 0);
    const size_t idAt = received.find("X-Extract-Id: ");
    REQUIRE(idAt != std::string::npos);
    const std::string id = received.substr(idAt + 14, 36);
    ::close(fd);

    std::vector<std::string> trail;
    for (int i = 0; i < 100; ++i) {
        trail = w.auditTrail(id);
        if (trail.size() >= 2) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    REQUIRE(trail.size() == 2);
    CHECK(trail[0] == "extract.requested:allowed");
    CHECK(trail[1] == "extract.aborted:aborted");
    CHECK(w.gatewayScalar("SELECT status FROM extracts WHERE id = '" + id + "'") == "aborted");
    CHECK(w.call("GET", "/v1/extracts/" + id + "/manifest", w.partnerA).status == 404);
}

TEST_CASE("the audit log being unavailable means no extract", "[integration][extract]") {
    ExtractWorld w(100);
    // A constraint no new entry can satisfy: the requested entry cannot be written.
    {
        pqxx::connection conn(w.gatewayDb.conninfo());
        pqxx::work tx(conn);
        tx.exec("ALTER TABLE audit_entries ADD CONSTRAINT no_more_entries CHECK (entry_index < 0) NOT VALID");
        tx.commit();
    }
    auto r = w.extract(w.partnerA, "research");
    CHECK(r.status == 503);
    CHECK(w.gatewayScalar("SELECT count(*) FROM extracts") == "0");
}

TEST_CASE("the policy preview reports risk and information loss without releasing data",
          "[integration][extract][preview]") {
    ExtractWorld w(1000);
    auto r = w.call("POST", "/v1/datasets/visits/policies/research/preview", w.publisher);
    INFO(r.body);
    REQUIRE(r.status == 200);
    // The report has fractional numbers, which the strict canonical parser refuses; check the text.
    CHECK(r.body.find("\"records_selected\":1000") != std::string::npos);
    CHECK(r.body.find("\"releasable\":true") != std::string::npos);
    CHECK(r.body.find("\"risk_before\"") != std::string::npos);
    CHECK(r.body.find("\"risk_after\"") != std::string::npos);
    CHECK(r.body.find("\"information_loss_after\"") != std::string::npos);
    CHECK(r.body.find("Person") == std::string::npos);
    CHECK(w.lastAudit("policy.preview").rfind("allowed", 0) == 0);
    // Partners and other agencies' publishers may not preview.
    CHECK(w.call("POST", "/v1/datasets/visits/policies/research/preview", w.partnerA).status == 403);
    auto other = w.add("pub-transit", auth::Role::Publisher, "transit", std::nullopt);
    CHECK(w.call("POST", "/v1/datasets/visits/policies/research/preview", other).status == 403);
    CHECK(w.call("POST", "/v1/datasets/visits/policies/nothing/preview", w.publisher).status == 404);
}

// ---- release.memory_budget_mb -----------------------------------------------------------------------

namespace {

// A gateway whose releases share `totalMiB` (one at most `perExtractMiB`), over 20,000 visits with
// a distinct zip each: the counting table alone then takes more than 1 MiB.
ExtractWorld budgetedWorld(uint64_t totalMiB, uint64_t perExtractMiB, std::chrono::milliseconds wait) {
    GatewayOptions options;
    options.adjustConfig = [=](config::GatewayConfig& c) {
        c.release.memoryBudgetMiB = totalMiB;
        c.release.extractMemoryBudgetMiB = perExtractMiB;
        c.release.memoryWait = wait;
    };
    return ExtractWorld(20000, std::move(options));
}

void makeZipsUnique(const std::string& agency) { runPsql(agency, "UPDATE agency.visits SET zip = (10000 + id)::text"); }

const json::JsonValue& errorOf(const json::JsonValue& body) {
    const json::JsonValue* error = body.find("error");
    REQUIRE(error != nullptr);
    return *error;
}

}  // namespace

TEST_CASE("an extract whose memory exceeds release.extract_memory_budget_mb gets 503, audited, holding nothing after",
          "[integration][extract][memory]") {
    ExtractWorld w = budgetedWorld(64, 1, std::chrono::milliseconds(30000));
    makeZipsUnique(w.agency.conninfo());
    const auto started = std::chrono::steady_clock::now();
    auto r = w.extract(w.partnerA, "research");
    INFO(r.body);
    REQUIRE(r.status == 503);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(15));  // no waiting: it never fits
    CHECK(r.header("retry-after") == "60");
    auto body = json::parseJson(r.body);
    REQUIRE(body);
    const json::JsonValue& error = errorOf(*body);
    CHECK(error.find("code")->asString() == "overloaded");
    const std::string message = error.find("message")->asString();
    CHECK(message.find("more than release.extract_memory_budget_mb (1 MiB) allows one release") != std::string::npos);
    CHECK(message.find("combination counting table") != std::string::npos);
    const json::JsonValue& details = *error.find("details");
    CHECK(details.find("limit")->asString() == "release.extract_memory_budget_mb");
    CHECK(details.find("limit_value")->asUint64() == 1);
    CHECK(details.find("retry_after_s")->asUint64() == 60);
    CHECK(details.find("needed_bytes")->asUint64() > (uint64_t{1} << 20));
    CHECK(details.find("structure")->asString() == "combination counting table");
    CHECK_FALSE(details.find("retryable")->asBool());

    // Audited as a failed extract, its row closed without releasing anything, and nothing held.
    const std::string aborted = w.lastAudit("extract.aborted");
    CHECK(aborted.starts_with("failed "));
    CHECK(aborted.find("release.extract_memory_budget_mb") != std::string::npos);
    CHECK(w.gatewayScalar("SELECT string_agg(status, ',') FROM extracts") == "not_released");
    const auto stats = w.gw->services().memoryBudget->stats();
    CHECK(stats.heldBytes == 0);
    CHECK(stats.refusedExtract == 1);
    auto metrics = httpRequest(w.gw->port(), "GET", "/metrics").body;
    CHECK(metrics.find("custodian_release_memory_refusals_total{limit=\"release.extract_memory_budget_mb\"} 1\n") !=
          std::string::npos);
    CHECK(metrics.find("custodian_release_memory_bytes 0\n") != std::string::npos);
}

TEST_CASE("an extract that does not fit beside the releases in progress gets 503 after waiting, and runs once they end",
          "[integration][extract][memory]") {
    ExtractWorld w = budgetedWorld(64, 64, std::chrono::milliseconds(100));
    makeZipsUnique(w.agency.conninfo());
    // Another release holding all but half a MiB of the budget (stated as any release does).
    auto other = w.gw->services().memoryBudget->open();
    REQUIRE(other->set("frequency sink", (uint64_t{64} << 20) - (uint64_t{1} << 19)));

    auto refused = w.extract(w.partnerA, "research");
    INFO(refused.body);
    REQUIRE(refused.status == 503);
    CHECK(refused.header("retry-after") == "5");
    auto body = json::parseJson(refused.body);
    REQUIRE(body);
    const json::JsonValue& error = errorOf(*body);
    CHECK(error.find("code")->asString() == "overloaded");
    CHECK(error.find("message")->asString().find("the releases in progress hold 63.5 MiB of release.memory_budget_mb "
                                                 "(64 MiB); retry when they have finished") != std::string::npos);
    CHECK(error.find("details")->find("limit")->asString() == "release.memory_budget_mb");
    CHECK(error.find("details")->find("retryable")->asBool());
    CHECK(w.lastAudit("extract.aborted").find("release.memory_budget_mb") != std::string::npos);
    CHECK(w.gw->services().memoryBudget->stats().heldBytes == other->bytes());

    // That release ends: the same extract now runs, and gives everything back when it ends.
    other.reset();
    auto released = w.extract(w.partnerA, "research");
    INFO(released.body.substr(0, 300));
    REQUIRE(released.status == 200);
    const auto stats = w.gw->services().memoryBudget->stats();
    CHECK(stats.heldBytes == 0);
    CHECK(stats.peakBytes > (uint64_t{1} << 20));  // the extract's structures were accounted
    CHECK(stats.refusedGateway == 1);
    const std::string id = released.header("x-extract-id");
    CHECK(w.gatewayScalar("SELECT status FROM extracts WHERE id = '" + id + "'") == "completed");
}

TEST_CASE("an extract waits up to release.memory_wait_ms for another release to give memory back",
          "[integration][extract][memory]") {
    ExtractWorld w = budgetedWorld(64, 64, std::chrono::milliseconds(20000));
    makeZipsUnique(w.agency.conninfo());
    auto other = w.gw->services().memoryBudget->open();
    REQUIRE(other->set("frequency sink", (uint64_t{64} << 20) - (uint64_t{1} << 19)));
    auto pending = std::async(std::launch::async, [&] { return w.extract(w.partnerA, "research"); });
    // Wait until the extract is blocked on the budget, then end the other release.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (w.gw->services().memoryBudget->stats().waits == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(w.gw->services().memoryBudget->stats().waits == 1);
    other.reset();
    auto r = pending.get();
    INFO(r.body.substr(0, 300));
    CHECK(r.status == 200);
    CHECK(w.gw->services().memoryBudget->stats().heldBytes == 0);
    CHECK(w.gw->services().memoryBudget->stats().refusedGateway == 0);
}
