// Overload protection over real sockets: per-principal rate limits (429 + Retry-After) and
// in-flight extract limits (503 + Retry-After), each refusal named, counted and audited.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gateway/audit/log.hpp"
#include "json/canonical.hpp"
#include "gateway/http/message.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "support/wait_for.hpp"
#include "test_audit_harness.hpp"

using namespace custodian;
using namespace custodian::testing;
using api::Access;
using api::RequestContext;
using auth::Role;
using http::HttpResponse;
using std::chrono::milliseconds;

namespace {

std::vector<std::pair<std::string, std::string>> bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
}

json::JsonValue parsed(const HttpResult& r) {
    auto json = json::parseJson(r.body);
    INFO(r.body);
    REQUIRE(json);
    return std::move(json).value();
}

const json::JsonValue& errorDetails(const json::JsonValue& body) {
    const json::JsonValue* error = body.find("error");
    REQUIRE(error != nullptr);
    const json::JsonValue* details = error->find("details");
    REQUIRE(details != nullptr);
    return *details;
}

// The stand-in for an extract body: the first chunk at once, then nothing until the test opens the
// gate (or 10 s pass), then the end. `live` counts producers not yet destroyed.
struct Gate {
    std::mutex mutex;
    std::condition_variable opened;
    bool open = false;
    std::atomic<int> live{0};

    void release() {
        {
            std::lock_guard lock(mutex);
            open = true;
        }
        opened.notify_all();
    }
};

class GatedProducer : public http::BodyProducer {
public:
    explicit GatedProducer(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) { ++gate_->live; }
    ~GatedProducer() override { --gate_->live; }
    Result<std::optional<std::string>> nextChunk() override {
        if (step_ == 0) {
            ++step_;
            return std::optional<std::string>("started\n");
        }
        if (step_ == 1) {
            ++step_;
            std::unique_lock lock(gate_->mutex);
            gate_->opened.wait_for(lock, std::chrono::seconds(10), [&] { return gate_->open; });
            return std::optional<std::string>("finished\n");
        }
        return std::optional<std::string>();
    }
    void clientGone(const std::string&) override {}

private:
    std::shared_ptr<Gate> gate_;
    int step_ = 0;
};

// An endless body in paced 16 KB chunks: it ends only when the client goes away.
class EndlessProducer : public http::BodyProducer {
public:
    explicit EndlessProducer(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) { ++gate_->live; }
    ~EndlessProducer() override { --gate_->live; }
    Result<std::optional<std::string>> nextChunk() override {
        std::this_thread::sleep_for(milliseconds(5));
        return std::optional<std::string>(std::string(16 * 1024, 'x'));
    }
    void clientGone(const std::string&) override {}

private:
    std::shared_ptr<Gate> gate_;
};

// Extract-like test routes: partner only, audited, holding an in-flight extract slot.
std::vector<api::Route> extractLikeRoutes(std::shared_ptr<Gate> gate) {
    return {
        {"POST", "/test/extract", Access::only({Role::Partner}),
         [gate](RequestContext&) -> Result<HttpResponse> {
             return HttpResponse::streaming(200, "text/plain", std::make_shared<GatedProducer>(gate));
         },
         false, "test.extract", true},
        {"POST", "/test/endless-extract", Access::only({Role::Partner}),
         [gate](RequestContext&) -> Result<HttpResponse> {
             return HttpResponse::streaming(200, "text/plain", std::make_shared<EndlessProducer>(gate));
         },
         false, "test.extract", true},
    };
}

// Starts an extract on its own connection and returns once its first chunk has arrived (the
// response head has been read, so the slot is certainly held).
std::unique_ptr<HttpClient> startHeldExtract(uint16_t port, const std::string& token, const std::string& path) {
    auto client = std::make_unique<HttpClient>(port);
    client->sendRaw("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                    "\r\nContent-Length: 0\r\n\r\n");
    return client;
}

GatewayOptions rateLimited(uint32_t requestsPerSecond, uint32_t burst) {
    GatewayOptions o;
    o.adjustConfig = [=](config::GatewayConfig& c) {
        c.overload.requestsPerSecond = requestsPerSecond;
        c.overload.burst = burst;
    };
    return o;
}

std::string metricsText(uint16_t port) { return httpRequest(port, "GET", "/metrics").body; }

// A gateway with the extract-like routes, the given extract limits and two partners, ready.
class ExtractLimitsGateway {
public:
    ExtractLimitsGateway(uint32_t maxInflight, uint32_t perPrincipal)
        : db_(TestDatabase::create()), gate(std::make_shared<Gate>()),
          gw(db_.conninfo(), options(gate, maxInflight, perPrincipal)) {
        pat = gw.addPrincipal(Role::Partner, "partner-pat");
        quinn = gw.addPrincipal(Role::Partner, "partner-quinn");
        REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);
    }

    // Starts an extract on its own connection and returns once its producer exists (the slot is
    // held), i.e. once `live` producers are alive.
    std::unique_ptr<HttpClient> hold(const std::string& token, const std::string& path, int live) {
        auto client = startHeldExtract(gw.port(), token, path);
        REQUIRE(waitFor([&] { return gate->live.load() == live; }, milliseconds(5000)));
        return client;
    }

private:
    static GatewayOptions options(std::shared_ptr<Gate> gate, uint32_t maxInflight, uint32_t perPrincipal) {
        GatewayOptions o;
        o.extraRoutes = extractLikeRoutes(std::move(gate));
        o.adjustConfig = [=](config::GatewayConfig& c) {
            c.database.poolSize = 6;  // blocked producers hold workers; leave some for the refusals
            c.overload.maxInflightExtracts = maxInflight;
            c.overload.maxInflightExtractsPerPrincipal = perPrincipal;
        };
        return o;
    }
    TestDatabase db_;

public:
    std::shared_ptr<Gate> gate;
    RunningGateway gw;
    std::string pat, quinn;
};

std::vector<audit::StoredEntry> deniedEntries(RunningGateway& gw, const std::string& actor) {
    audit::AuditQuery q;
    q.actor = actor;
    q.decision = "denied";
    q.limit = 1000;
    auto page = gw.services().audit->query(q);
    REQUIRE(page);
    return page->entries;
}

}  // namespace

TEST_CASE("a principal over limits.rate_limit gets 429 with Retry-After, named and audited, others are not affected",
          "[integration][overload]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), rateLimited(1, 3));
    const std::string ada = gw.addPrincipal(Role::Auditor, "auditor-ada");
    const std::string bob = gw.addPrincipal(Role::Auditor, "auditor-bob");
    REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);

    // GET /v1/audit/tree-head is audited and writes an entry per call. The bucket holds 3 requests
    // and refills at 1/s: at least 3 pass, then one is refused well before 20 requests.
    HttpClient client(gw.port());
    int passed = 0;
    HttpResult refused;
    for (int i = 0; i < 20; ++i) {
        auto r = client.request("GET", "/v1/audit/tree-head", bearer(ada));
        if (r.status == 429) {
            refused = r;
            break;
        }
        REQUIRE(r.status == 200);
        ++passed;
    }
    REQUIRE(refused.status == 429);
    CHECK(passed >= 3);
    CHECK(refused.header("retry-after") == "1");
    const json::JsonValue body = parsed(refused);
    CHECK(body.find("error")->find("code")->asString() == "rate_limited");
    CHECK(body.find("error")->find("message")->asString().find("limits.rate_limit") != std::string::npos);
    const json::JsonValue& details = errorDetails(body);
    CHECK(details.find("limit")->asString() == "limits.rate_limit");
    CHECK(details.find("limit_value")->asUint64() == 1);
    CHECK(details.find("retry_after_s")->asUint64() == 1);

    // Another principal has its own bucket.
    CHECK(httpRequest(gw.port(), "GET", "/v1/audit/tree-head", bearer(bob)).status == 200);

    // The refusal is in the audit log as a denial that names the limit.
    auto denied = deniedEntries(gw, "auditor-ada");
    REQUIRE(denied.size() == 1);
    REQUIRE(denied[0].parsed);
    const audit::AuditEntry& e = denied[0].entry;
    CHECK(e.action == "audit.tree_head");
    CHECK(e.role == "auditor");
    CHECK(e.reason.value_or("").find("limits.rate_limit") != std::string::npos);
    CHECK(e.details.find("error")->asString() == "rate_limited");
    CHECK(e.details.find("status")->asInt64() == 429);
    CHECK(e.details.find("limit")->asString() == "limits.rate_limit");

    // Retry-After tells the truth: after it, the principal is served again.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CHECK(client.request("GET", "/v1/audit/tree-head", bearer(ada)).status == 200);

    const std::string metrics = metricsText(gw.port());
    CHECK(metrics.find("custodian_overload_refusals_total{limit=\"limits.rate_limit\"} 1\n") != std::string::npos);
    CHECK(metrics.find("custodian_rate_limit_principals 2\n") != std::string::npos);
    // Public routes are not rate limited.
    for (int i = 0; i < 10; ++i) CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("extracts beyond limits.max_inflight_extracts get 503 with Retry-After until a slot is free",
          "[integration][overload]") {
    ExtractLimitsGateway world(1, 0);
    Gate& gate = *world.gate;
    RunningGateway& gw = world.gw;
    const std::string &pat = world.pat, &quinn = world.quinn;
    auto held = world.hold(pat, "/test/extract", 1);
    CHECK(metricsText(gw.port()).find("custodian_extracts_in_flight 1\n") != std::string::npos);

    // Any principal: the gateway-wide limit is reached.
    auto refused = httpRequest(gw.port(), "POST", "/test/extract", bearer(quinn));
    REQUIRE(refused.status == 503);
    CHECK(refused.header("retry-after") == "1");
    const json::JsonValue body = parsed(refused);
    CHECK(body.find("error")->find("code")->asString() == "overloaded");
    CHECK(errorDetails(body).find("limit")->asString() == "limits.max_inflight_extracts");
    CHECK(errorDetails(body).find("limit_value")->asUint64() == 1);
    CHECK(gate.live.load() == 1);  // the handler never ran

    auto denied = deniedEntries(gw, "partner-quinn");
    REQUIRE(denied.size() == 1);
    CHECK(denied[0].entry.action == "test.extract");
    CHECK(denied[0].entry.details.find("error")->asString() == "overloaded");
    CHECK(denied[0].entry.details.find("status")->asInt64() == 503);
    CHECK(denied[0].entry.details.find("limit")->asString() == "limits.max_inflight_extracts");
    CHECK(denied[0].entry.reason.value_or("").find("limits.max_inflight_extracts") != std::string::npos);

    // The held extract completes; its slot is free again once the body has been sent.
    gate.release();
    auto completed = held->readResponse();
    CHECK(completed.status == 200);
    CHECK(completed.body == "started\nfinished\n");
    REQUIRE(
        waitFor([&] { return metricsText(gw.port()).find("custodian_extracts_in_flight 0\n") != std::string::npos; },
                milliseconds(5000)));
    auto next = httpRequest(gw.port(), "POST", "/test/extract", bearer(quinn));
    CHECK(next.status == 200);
    CHECK(metricsText(gw.port()).find(
              "custodian_overload_refusals_total{limit=\"limits.max_inflight_extracts\"} 1\n") != std::string::npos);
}

TEST_CASE("limits.max_inflight_extracts_per_principal refuses one partner's extra extract, not another partner's",
          "[integration][overload]") {
    ExtractLimitsGateway world(4, 1);
    Gate& gate = *world.gate;
    RunningGateway& gw = world.gw;
    const std::string &pat = world.pat, &quinn = world.quinn;
    auto held = world.hold(pat, "/test/extract", 1);

    auto refused = httpRequest(gw.port(), "POST", "/test/extract", bearer(pat));
    REQUIRE(refused.status == 503);
    CHECK(refused.header("retry-after") == "1");
    CHECK(errorDetails(parsed(refused)).find("limit")->asString() == "limits.max_inflight_extracts_per_principal");
    auto denied = deniedEntries(gw, "partner-pat");
    REQUIRE(denied.size() == 1);
    CHECK(denied[0].entry.details.find("limit")->asString() == "limits.max_inflight_extracts_per_principal");

    // Another partner is within both limits.
    auto other = world.hold(quinn, "/test/extract", 2);
    gate.release();
    CHECK(held->readResponse().status == 200);
    CHECK(other->readResponse().status == 200);
    CHECK(metricsText(gw.port()).find(
              "custodian_overload_refusals_total{limit=\"limits.max_inflight_extracts_per_principal\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("an extract whose client disconnects mid-stream gives its in-flight slot back", "[integration][overload]") {
    ExtractLimitsGateway world(1, 0);
    Gate& gate = *world.gate;
    RunningGateway& gw = world.gw;
    const std::string& pat = world.pat;
    {
        auto client = world.hold(pat, "/test/endless-extract", 1);
        CHECK(httpRequest(gw.port(), "POST", "/test/extract", bearer(pat)).status == 503);
        client->close();
    }
    // The next write fails, the server drops the producer, the slot is released.
    REQUIRE(waitFor([&] { return gate.live.load() == 0; }, milliseconds(10000)));
    REQUIRE(
        waitFor([&] { return metricsText(gw.port()).find("custodian_extracts_in_flight 0\n") != std::string::npos; },
                milliseconds(5000)));
    gate.release();
    CHECK(httpRequest(gw.port(), "POST", "/test/extract", bearer(pat)).status == 200);
}

TEST_CASE("a refusal that cannot be audited is the audit log's 503, not a 429", "[integration][overload][audit]") {
    AuditDatabase db;
    RunningGateway gw(db.gatewayConninfo(), rateLimited(1, 1));
    const std::string ada = gw.addPrincipal(Role::Auditor, "auditor-ada");
    REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);

    HttpClient client(gw.port());
    REQUIRE(client.request("GET", "/v1/audit/tree-head", bearer(ada)).status == 200);
    runPsql(db.adminConninfo(), "REVOKE INSERT ON audit_entries FROM \"" + db.gatewayRole() + "\"");
    auto r = client.request("GET", "/v1/audit/tree-head", bearer(ada));
    CHECK(r.status == 503);
    CHECK(r.body.find("audit") != std::string::npos);
    CHECK(r.body.find("\"code\":\"unavailable\"") != std::string::npos);  // not "rate_limited" / "overloaded"
    CHECK(r.header("retry-after") == "1");                                // every 503 says when to come back
    runPsql(db.adminConninfo(), "GRANT INSERT ON audit_entries TO \"" + db.gatewayRole() + "\"");
}
