// What the web console (docs/console.md) reads besides the existing API: the dataset listing with
// each policy's transparency, one stored policy version for diffs, the preview's class-size
// distribution and per-column loss, and the console's own files with their security headers.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "gateway/api/console_routes.hpp"
#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "test_extract_fixture.hpp"
#include "test_source_endpoints.hpp"

using namespace custodian;
using namespace custodian::testing;
namespace fs = std::filesystem;

namespace {

struct ConsoleWorld {
    TestDatabase gatewayDb = TestDatabase::create("console_gateway");
    TestDatabase agency = TestDatabase::create("console_agency");
    fs::path folder;
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, otherPublisher, admin, partner;

    explicit ConsoleWorld(bool ownFolder = false) {
        createVisitsTable(agency.conninfo(), 800);
        if (ownFolder) {
            folder = fs::temp_directory_path() / ("custodian-console-" + std::to_string(::getpid()));
            fs::create_directories(folder);
            std::ofstream(folder / "index.html") << "<!DOCTYPE html><title>own edition</title>";
            std::ofstream(folder / "app.js") << "export const edition = 'own';\n";
            std::ofstream(folder / "notes.txt") << "not a console file type";
        }
        const std::string dir = folder.string();
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo(), GatewayOptions{{}, [dir](config::GatewayConfig& c) {
                                                                                       allowTestSources(c);
                                                                                       c.consoleDirectory = dir;
                                                                                   }});
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        otherPublisher = gw->addPrincipal(auth::Role::Publisher, "pub-transit", "transit");
        admin = gw->addPrincipal(auth::Role::Admin, "admin-1");
        partner = gw->addPrincipal(auth::Role::Partner, "partner-a");
        auto source = call("PUT", "/v1/sources/health-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        INFO(source.body);
        REQUIRE(source.status < 300);
        std::string dataset = visitsDatasetJson("health-db");
        dataset.insert(1, R"("description": "Hospital <visits> & costs", )");
        REQUIRE(call("PUT", "/v1/datasets/visits", publisher, dataset).status < 300);
    }
    ~ConsoleWorld() {
        std::error_code ec;
        if (!folder.empty()) fs::remove_all(folder, ec);
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }
    void putPolicy(const std::string& name, const std::string& privacy, const std::string& extra = "") {
        auto r = call("PUT", "/v1/datasets/visits/policies/" + name, publisher, visitsPolicyJson(privacy, extra));
        INFO(r.body);
        REQUIRE(r.status < 300);
    }
};

}  // namespace

TEST_CASE("GET /v1/datasets lists the caller's datasets with their policies' versions and transparency",
          "[integration][console][catalog]") {
    ConsoleWorld w;
    w.putPolicy("research", R"({"k": 5})", R"(, "transparency": "public")");
    w.putPolicy("research", R"({"k": 10})", R"(, "transparency": "public")");
    w.putPolicy("internal", R"({"k": 5})");
    REQUIRE(w.call("DELETE", "/v1/datasets/visits/policies/internal", w.publisher).status == 200);

    auto r = w.call("GET", "/v1/datasets", w.publisher);
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto list = json::parseJson(r.body);
    REQUIRE(list);
    const auto& datasets = list->find("datasets")->asArray();
    REQUIRE(datasets.size() == 1);
    CHECK(datasets[0].find("name")->asString() == "visits");
    CHECK(datasets[0].find("description")->asString() == "Hospital <visits> & costs");
    CHECK(datasets[0].find("table")->asString() == "agency.visits");
    const auto& policies = datasets[0].find("policies")->asArray();
    REQUIRE(policies.size() == 2);
    CHECK(policies[0].find("name")->asString() == "internal");
    CHECK(policies[0].find("retired")->asBool());
    CHECK(policies[0].find("transparency")->asString() == "summary");
    CHECK(policies[1].find("name")->asString() == "research");
    CHECK(policies[1].find("version")->asUint64() == 2);
    CHECK(policies[1].find("transparency")->asString() == "public");

    // The dataset's own view carries the description too; a non-string one is refused.
    CHECK(w.call("GET", "/v1/datasets/visits", w.publisher).body.find("Hospital <visits> & costs") !=
          std::string::npos);
    std::string bad = visitsDatasetJson("health-db");
    bad.insert(1, R"("description": 7, )");
    auto refused = w.call("PUT", "/v1/datasets/visits", w.publisher, bad);
    CHECK(refused.status == 422);
    CHECK(refused.body.find("/description") != std::string::npos);

    // Another agency's publisher sees nothing of it; the admin sees it; a partner may not list.
    auto other = json::parseJson(w.call("GET", "/v1/datasets", w.otherPublisher).body);
    REQUIRE(other);
    CHECK(other->find("datasets")->asArray().empty());
    CHECK(json::parseJson(w.call("GET", "/v1/datasets", w.admin).body)->find("datasets")->asArray().size() == 1);
    CHECK(w.call("GET", "/v1/datasets", w.partner).status == 403);
}

TEST_CASE("a stored policy version is served as submitted, for diffs between versions",
          "[integration][console][catalog]") {
    ConsoleWorld w;
    w.putPolicy("research", R"({"k": 5})");
    w.putPolicy("research", R"({"k": 10})", R"(, "transparency": "public")");
    auto v1 = w.call("GET", "/v1/datasets/visits/policies/research/versions/1", w.publisher);
    INFO(v1.body);
    REQUIRE(v1.status == 200);
    auto one = json::parseJson(v1.body);
    REQUIRE(one);
    CHECK(one->find("version")->asUint64() == 1);
    CHECK(one->find("created_by")->asString() == "pub-health");
    CHECK(one->find("document")->find("privacy")->find("k")->asUint64() == 5);
    CHECK(one->find("document")->find("transparency") == nullptr);
    auto two = json::parseJson(w.call("GET", "/v1/datasets/visits/policies/research/versions/2", w.publisher).body);
    REQUIRE(two);
    CHECK(two->find("document")->find("privacy")->find("k")->asUint64() == 10);
    CHECK(one->find("content_hash")->asString() != two->find("content_hash")->asString());

    CHECK(w.call("GET", "/v1/datasets/visits/policies/research/versions/3", w.publisher).status == 404);
    CHECK(w.call("GET", "/v1/datasets/visits/policies/research/versions/0", w.publisher).status == 400);
    CHECK(w.call("GET", "/v1/datasets/visits/policies/research/versions/x1", w.publisher).status == 400);
    CHECK(w.call("GET", "/v1/datasets/visits/policies/nothing/versions/1", w.publisher).status == 404);
    CHECK(w.call("GET", "/v1/datasets/visits/policies/research/versions/1", w.otherPublisher).status == 403);
}

TEST_CASE("the preview carries the class-size distribution and each quasi-identifier's loss",
          "[integration][console][preview]") {
    ConsoleWorld w;
    w.putPolicy("research", R"({"k": 5, "suppression_limit": 0.05})");
    {
        // The same policy partitioned by Mondrian.
        auto r = w.call("PUT", "/v1/datasets/visits/policies/mondrian", w.publisher,
                        visitsMondrianPolicyJson(R"({"k": 5})"));
        REQUIRE(r.status < 300);
    }
    for (const std::string policy : {"research", "mondrian"}) {
        INFO(policy);
        auto r = w.call("POST", "/v1/datasets/visits/policies/" + policy + "/preview", w.publisher);
        INFO(r.body);
        REQUIRE(r.status == 200);
        rapidjson::Document doc;
        doc.Parse(r.body.c_str());
        REQUIRE_FALSE(doc.HasParseError());
        REQUIRE(doc["releasable"].GetBool());
        for (const char* side : {"risk_before", "risk_after"}) {
            INFO(side);
            const auto& risk = doc[side];
            const auto& buckets = risk["class_sizes"];
            REQUIRE(buckets.Size() == 9);
            uint64_t classes = 0, records = 0;
            for (rapidjson::SizeType i = 0; i < buckets.Size(); ++i) {
                const auto& b = buckets[i];
                const uint64_t lo = b["min"].GetUint64();
                const uint64_t n = b["classes"].GetUint64(), rec = b["records"].GetUint64();
                CHECK(rec >= n * lo);
                if (!b["max"].IsNull()) CHECK(rec <= n * b["max"].GetUint64());
                else CHECK(i == 8);
                classes += n;
                records += rec;
            }
            CHECK(classes == risk["classes"].GetUint64());
            CHECK(records == risk["records_released"].GetUint64());
        }
        // k = 5: nothing released in a class below 5.
        for (rapidjson::SizeType i = 0; i < 3; ++i)
            CHECK(doc["risk_after"]["class_sizes"][i]["classes"].GetUint64() == 0);
        const auto& loss = doc["column_loss"];
        REQUIRE(loss.IsObject());
        CHECK(loss.MemberCount() == 3);
        double mean = 0;
        for (const char* qi : {"age", "sex", "zip"}) {
            REQUIRE(loss.HasMember(qi));
            const double v = loss[qi].GetDouble();
            CHECK(v >= 0);
            CHECK(v <= 1);
            mean += v / 3;
        }
        if (policy == "research") CHECK(std::fabs(mean - doc["information_loss_after"]["loss"].GetDouble()) < 1e-9);
    }
}

TEST_CASE("the console's files are served with a strict Content-Security-Policy, and only its own files",
          "[integration][console]") {
    SECTION("from a configured folder") {
        ConsoleWorld w(true);
        auto index = httpRequest(w.gw->port(), "GET", "/console/");
        REQUIRE(index.status == 200);
        CHECK(index.header("content-type") == "text/html; charset=utf-8");
        CHECK(index.body.find("own edition") != std::string::npos);
        const std::string csp = index.header("content-security-policy");
        CHECK(csp.find("default-src 'none'") != std::string::npos);
        CHECK(csp.find("script-src 'self'") != std::string::npos);
        CHECK(csp.find("unsafe-inline") == std::string::npos);
        CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
        CHECK(index.header("x-content-type-options") == "nosniff");
        CHECK(index.header("referrer-policy") == "no-referrer");
        auto js = httpRequest(w.gw->port(), "GET", "/console/app.js");
        REQUIRE(js.status == 200);
        CHECK(js.header("content-type") == "text/javascript; charset=utf-8");
        CHECK(js.header("content-security-policy") == csp);
        auto redirect = httpRequest(w.gw->port(), "GET", "/console");
        CHECK(redirect.status == 308);
        CHECK(redirect.header("location") == "/console/");
        // Not a console file type, not there, or trying to leave the folder: 404.
        CHECK(httpRequest(w.gw->port(), "GET", "/console/notes.txt").status == 404);
        CHECK(httpRequest(w.gw->port(), "GET", "/console/missing.js").status == 404);
        CHECK(httpRequest(w.gw->port(), "GET", "/console/..%2F..%2Fetc%2Fpasswd").status == 404);
        CHECK(httpRequest(w.gw->port(), "GET", "/console/.hidden.js").status == 404);
        CHECK(httpRequest(w.gw->port(), "GET", "/console/%2Fetc%2Fpasswd.css").status == 404);
        CHECK(httpRequest(w.gw->port(), "POST", "/console/app.js").status == 405);
    }
    SECTION("built into the binary") {
        TestDatabase db = TestDatabase::create("console_builtin");
        RunningGateway gw(db.conninfo());
        const auto& files = api::embeddedConsoleFiles();
        REQUIRE_FALSE(files.empty());
        for (const auto& [name, bytes] : files) {
            INFO(name);
            auto r = httpRequest(gw.port(), "GET", "/console/" + std::string(name));
            REQUIRE(r.status == 200);
            CHECK(r.body == bytes);
            CHECK_FALSE(r.header("content-security-policy").empty());
        }
        const bool hasIndex =
            std::any_of(files.begin(), files.end(), [](const auto& f) { return f.first == "index.html"; });
        CHECK(hasIndex);
        CHECK(httpRequest(gw.port(), "GET", "/console/").status == (hasIndex ? 200 : 404));
    }
}
