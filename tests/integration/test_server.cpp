// The gateway server over real sockets against a real PostgreSQL.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "gateway/http/message.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "support/wait_for.hpp"

using namespace custodian;
using namespace custodian::testing;
using api::Access;
using api::RequestContext;
using auth::Role;
using http::HttpResponse;
using std::chrono::milliseconds;

namespace {

// Test-only routes: a protected one, a slow one (for shutdown) and streamed bodies.
struct StreamProbe {
    std::atomic<int> chunksProduced{0};
    std::atomic<bool> clientGone{false};
    std::atomic<bool> slowStarted{false};  // the slow handler is running
};

class CountingProducer : public http::BodyProducer {
public:
    CountingProducer(int chunks, size_t chunkSize, std::shared_ptr<StreamProbe> probe)
        : remaining_(chunks), chunkSize_(chunkSize), probe_(std::move(probe)) {}
    Result<std::optional<std::string>> nextChunk() override {
        if (remaining_ == 0) return std::optional<std::string>();
        if (remaining_ > 0) --remaining_;
        int n = probe_->chunksProduced.fetch_add(1);
        std::string chunk(chunkSize_, static_cast<char>('a' + n % 26));
        if (remaining_ < 0) std::this_thread::sleep_for(milliseconds(2));  // endless: pace it
        return std::optional<std::string>(std::move(chunk));
    }
    void clientGone(const std::string&) override { probe_->clientGone = true; }

private:
    int remaining_;  // < 0: endless
    size_t chunkSize_;
    std::shared_ptr<StreamProbe> probe_;
};

std::vector<api::Route> testRoutes(std::shared_ptr<StreamProbe> probe) {
    return {
        {"GET", "/test/auditor-only", Access::only({Role::Auditor, Role::Admin}),
         [](RequestContext& ctx) -> Result<HttpResponse> {
             return HttpResponse::text(200, "hello " + ctx.principal->name);
         },
         false, "test.auditor_only"},
        {"POST", "/test/echo", Access::publicRoute(),
         [](RequestContext& ctx) -> Result<HttpResponse> {
             return HttpResponse::text(200, std::to_string(ctx.request.body.size()));
         }},
        {"GET", "/test/slow", Access::publicRoute(),
         [probe](RequestContext&) -> Result<HttpResponse> {
             probe->slowStarted = true;
             std::this_thread::sleep_for(milliseconds(1500));
             return HttpResponse::text(200, "finished");
         }},
        {"GET", "/test/stream", Access::publicRoute(),
         [probe](RequestContext& ctx) -> Result<HttpResponse> {
             int chunks = ctx.request.queryParam("chunks") ? std::stoi(*ctx.request.queryParam("chunks")) : -1;
             return HttpResponse::streaming(200, "text/plain", std::make_shared<CountingProducer>(chunks, 1000, probe));
         }},
    };
}

std::vector<std::pair<std::string, std::string>> bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
}

}  // namespace

TEST_CASE("health, readiness, metrics and keys over HTTP", "[integration][server]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo());
    REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);

    auto health = httpRequest(gw.port(), "GET", "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == R"({"status":"ok"})");
    CHECK(health.header("x-request-id").size() == 32);

    auto keys = httpRequest(gw.port(), "GET", "/v1/keys");
    CHECK(keys.status == 200);
    CHECK(keys.body.find("\"algorithm\":\"Ed25519\"") != std::string::npos);
    CHECK(keys.body.find(crypto::toBase64(gw.services().signingKey->publicKey())) != std::string::npos);
    struct stat info {};
    REQUIRE(::stat(gw.config().signingKeyFile.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);

    // Invented methods share one "other" series: a client cannot grow the metrics without bound.
    for (const char* invented : {"BREW1", "BREW2", "BREW3"})
        CHECK(httpRequest(gw.port(), invented, "/healthz").status >= 400);

    // A request is counted once its response has been written, which can be a moment after the
    // client has read it: wait (bounded) until the previous request has left the in-flight gauge.
    auto metrics = httpRequest(gw.port(), "GET", "/metrics");
    for (int attempt = 0;
         attempt < 100 && metrics.body.find("custodian_http_requests_in_flight 1") == std::string::npos; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        metrics = httpRequest(gw.port(), "GET", "/metrics");
    }
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find(R"(custodian_http_requests_total{route="/healthz",method="GET",status="200"} 1)") !=
          std::string::npos);
    CHECK(metrics.body.find("custodian_http_request_duration_seconds_bucket{route=\"/v1/keys\",le=\"+Inf\"} 1") !=
          std::string::npos);
    CHECK(metrics.body.find("custodian_http_requests_in_flight 1") != std::string::npos);  // this request
    CHECK(metrics.body.find("BREW") == std::string::npos);
    CHECK(metrics.body.find(R"(method="other")") != std::string::npos);
    CHECK(metrics.body.find("custodian_db_pool_connections{state=\"max\"} 3") != std::string::npos);
    CHECK(metrics.body.find("custodian_ready 1") != std::string::npos);

    // A client-supplied request id is echoed so logs can be correlated across proxies.
    auto traced = httpRequest(gw.port(), "GET", "/healthz", {{"X-Request-Id", "trace-42"}});
    CHECK(traced.header("x-request-id") == "trace-42");
}

TEST_CASE("authentication and routing errors: 401, 403, 404, 405, 413", "[integration][server]") {
    auto db = TestDatabase::create();
    auto probe = std::make_shared<StreamProbe>();
    RunningGateway gw(db.conninfo(), {testRoutes(probe), [](config::GatewayConfig& c) { c.maxBodyBytes = 1000; }});
    std::string auditor = gw.addPrincipal(Role::Auditor, "audrey");
    std::string partner = gw.addPrincipal(Role::Partner, "pat");

    auto ok = httpRequest(gw.port(), "GET", "/test/auditor-only", bearer(auditor));
    CHECK(ok.status == 200);
    CHECK(ok.body == "hello audrey");

    auto missing = httpRequest(gw.port(), "GET", "/test/auditor-only");
    CHECK(missing.status == 401);
    CHECK(missing.body.find(R"("code":"unauthenticated")") != std::string::npos);
    CHECK(httpRequest(gw.port(), "GET", "/test/auditor-only", bearer("cus_" + std::string(43, 'A'))).status == 401);
    CHECK(httpRequest(gw.port(), "GET", "/test/auditor-only", bearer("garbage")).status == 401);

    auto forbidden = httpRequest(gw.port(), "GET", "/test/auditor-only", bearer(partner));
    CHECK(forbidden.status == 403);
    CHECK(forbidden.body.find(R"("code":"permission_denied")") != std::string::npos);

    gw.disablePrincipal("audrey");
    CHECK(httpRequest(gw.port(), "GET", "/test/auditor-only", bearer(auditor)).status == 401);

    auto unknown = httpRequest(gw.port(), "GET", "/v1/nothing-here");
    CHECK(unknown.status == 404);
    CHECK(unknown.body.find(R"({"error":{"code":"not_found")") == 0);
    CHECK_FALSE(unknown.header("x-request-id").empty());

    auto wrongMethod = httpRequest(gw.port(), "DELETE", "/healthz");
    CHECK(wrongMethod.status == 405);
    CHECK(wrongMethod.header("allow") == "GET");

    CHECK(httpRequest(gw.port(), "POST", "/test/echo", {}, std::string(1000, 'x')).body == "1000");
    auto tooLarge = httpRequest(gw.port(), "POST", "/test/echo", {}, std::string(1001, 'x'));
    CHECK(tooLarge.status == 413);
    CHECK(tooLarge.body.find(R"("code":"payload_too_large")") != std::string::npos);

    // A chunked body that grows past the limit is refused too.
    HttpClient chunked(gw.port());
    chunked.sendRaw("POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    chunked.sendRaw("3e8\r\n" + std::string(1000, 'y') + "\r\n");
    chunked.sendRaw("10\r\n" + std::string(16, 'y') + "\r\n0\r\n\r\n");
    CHECK(chunked.readResponse().status == 413);

    auto garbage = HttpClient(gw.port());
    garbage.sendRaw("NOT HTTP AT ALL\r\n\r\n");
    CHECK(garbage.readResponse().status == 400);
}

TEST_CASE("keep-alive serves several requests on one connection", "[integration][server]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo());
    HttpClient client(gw.port());
    auto first = client.request("GET", "/healthz");
    auto second = client.request("GET", "/v1/keys");
    auto third = client.request("GET", "/nope");
    CHECK(first.status == 200);
    CHECK(second.status == 200);
    CHECK(third.status == 404);
    CHECK(first.header("x-request-id") != second.header("x-request-id"));
    // Connection: close is honoured: the server answers, then closes.
    auto last = client.request("GET", "/healthz", {{"Connection", "close"}});
    CHECK(last.status == 200);
    CHECK(client.waitForClose(milliseconds(2000)));
}

TEST_CASE("a client that sends half a header is disconnected after the header timeout", "[integration][server]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) {
                                          c.timeouts.header = milliseconds(300);
                                          c.timeouts.idle = milliseconds(300);
                                      }});
    HttpClient slow(gw.port());
    auto started = std::chrono::steady_clock::now();
    slow.sendRaw("GET /healthz HTTP/1.1\r\nHo");
    CHECK(slow.waitForClose(milliseconds(5000)));
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(waited >= milliseconds(250));
    CHECK(waited < milliseconds(3000));

    // An idle keep-alive connection is closed after the idle timeout as well.
    HttpClient idle(gw.port());
    CHECK(idle.request("GET", "/healthz").status == 200);
    CHECK(idle.waitForClose(milliseconds(5000)));

    // Meanwhile the server still serves others.
    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("graceful shutdown lets the request in flight finish and refuses new ones", "[integration][server]") {
    auto db = TestDatabase::create();
    auto probe = std::make_shared<StreamProbe>();
    RunningGateway gw(db.conninfo(), {testRoutes(probe), nullptr});
    const uint16_t port = gw.port();

    HttpClient idle(port);  // an idle keep-alive connection must not hold up the shutdown
    CHECK(idle.request("GET", "/healthz").status == 200);

    auto inFlight = std::async(std::launch::async, [port] { return httpRequest(port, "GET", "/test/slow"); });
    REQUIRE(waitFor([&] { return probe->slowStarted.load(); }, milliseconds(5000)));  // the slow handler is running now
    auto shutdownStarted = std::chrono::steady_clock::now();
    gw.requestShutdown();

    CHECK(waitFor(
        [port] {  // the listener closes
            try {
                HttpClient probeConnection(port);
                return false;
            } catch (...) { return true; }
        },
        milliseconds(5000)));
    CHECK(idle.waitForClose(milliseconds(2000)));

    HttpResult r = inFlight.get();
    CHECK(r.status == 200);
    CHECK(r.body == "finished");
    CHECK(r.header("connection") == "close");
    gw.join();
    CHECK(std::chrono::steady_clock::now() - shutdownStarted < milliseconds(5000));
}

TEST_CASE("a streamed body is sent chunked, and a disconnect reaches the producer", "[integration][server]") {
    auto db = TestDatabase::create();
    auto probe = std::make_shared<StreamProbe>();
    RunningGateway gw(db.conninfo(), {testRoutes(probe), nullptr});

    HttpClient client(gw.port());
    auto r = client.request("GET", "/test/stream?chunks=50");
    CHECK(r.status == 200);
    CHECK(r.chunked);
    CHECK(r.complete);
    CHECK(r.body.size() == 50 * 1000);
    CHECK(r.body.substr(0, 3) == "aaa");
    CHECK(r.body.substr(1000, 3) == "bbb");
    CHECK_FALSE(probe->clientGone);
    // The connection is still usable after a chunked response.
    CHECK(client.request("GET", "/healthz").status == 200);

    // Endless stream: read a little, hang up; the producer is told and stops being called.
    probe->chunksProduced = 0;
    {
        HttpClient reader(gw.port());
        reader.sendRaw("GET /test/stream HTTP/1.1\r\nHost: x\r\n\r\n");
        REQUIRE(waitFor([&] { return probe->chunksProduced.load() > 0; }, milliseconds(10000)));  // it streams
        reader.close();
    }
    CHECK(waitFor([&] { return probe->clientGone.load(); }, milliseconds(10000)));
    // No more calls: the endless producer would have made several chunks in this time (one per 2 ms).
    int produced = probe->chunksProduced;
    std::this_thread::sleep_for(milliseconds(200));
    CHECK(probe->chunksProduced == produced);
}
