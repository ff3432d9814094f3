// Readiness follows the database: 503 while the cluster is stopped, 200 again once it is back,
// without restarting the gateway. Needs its own private cluster (it stops it).
#include <catch2/catch.hpp>

#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using std::chrono::milliseconds;

TEST_CASE("readiness turns 503 when the database stops and 200 when it returns", "[integration][readiness]") {
    auto cluster = PgCluster::create();
    RunningGateway gw(cluster->conninfo("postgres"));
    REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);
    std::string token = gw.addPrincipal(auth::Role::Admin, "ada");
    std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + token}};

    cluster->stop();
    CHECK(gw.waitForReadiness(503, milliseconds(10000)) == 503);
    auto notReady = httpRequest(gw.port(), "GET", "/readyz");
    CHECK(notReady.body.find(R"("code":"unavailable")") != std::string::npos);
    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);  // alive, just not ready
    // A request that needs the database fails with 503, not a hang or a crash.
    CHECK(httpRequest(gw.port(), "GET", "/metrics").status == 200);

    cluster->start();
    CHECK(gw.waitForReadiness(200, milliseconds(20000)) == 200);
    auto metrics = httpRequest(gw.port(), "GET", "/metrics");
    CHECK(metrics.body.find("custodian_ready 1") != std::string::npos);
    // The pool reconnects too: authentication works again without a restart.
    auto principalCheck = [&] {
        Status s = gw.services().db->withConnection([&](pqxx::connection& conn) -> Status {
            auto p = auth::findPrincipal(conn, "ada");
            return p ? Status::ok() : p.status();
        });
        return s;
    };
    Status first = principalCheck();  // may hit the connection broken by the restart
    Status second = principalCheck();
    CHECK((first.isOk() || second.isOk()));
    CHECK(second.isOk());
}

TEST_CASE("a gateway started while the database is down becomes ready when it comes up", "[integration][readiness]") {
    auto cluster = PgCluster::create();
    cluster->stop();
    RunningGateway gw(cluster->conninfo("postgres"));
    CHECK(httpRequest(gw.port(), "GET", "/readyz").status == 503);
    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
    cluster->start();
    // The readiness monitor applies the pending migrations once the database is reachable.
    CHECK(gw.waitForReadiness(200, milliseconds(20000)) == 200);
    CHECK_NOTHROW(gw.addPrincipal(auth::Role::Auditor, "late"));
}
