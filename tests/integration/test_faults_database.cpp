// PostgreSQL stopped and restarted under load (issue 6, faults): concurrent clients keep calling
// audited routes while the cluster goes down and comes back. While it is down every answer is a
// 503 (never a hang, a 500 or a dropped connection); once it is back the same gateway process
// answers again without a single 503; every answer that allowed or refused something has exactly
// one audit entry (none lost, none doubled); and the exported log verifies.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/audit/verifier.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using std::chrono::milliseconds;

namespace {

enum Phase : int { kUp = 0, kStopping = 1, kDown = 2, kStarting = 3, kBack = 4 };

struct Outcome {
    std::string requestId;
    int status = 0;  // 0: the connection failed
    int sentIn = kUp, answeredIn = kUp;
};

}  // namespace

TEST_CASE("PostgreSQL stopped and restarted under load: 503 while down, recovery without a restart, no audit "
          "entry lost, the log verifies",
          "[integration][faults][database]") {
    auto cluster = PgCluster::create();
    RunningGateway gw(cluster->conninfo("postgres"), {{}, [](config::GatewayConfig& c) {
                                                          c.database.poolSize = 4;
                                                          c.overload.requestsPerSecond = 0;  // load, not abuse: no 429
                                                          c.audit.treeHeadEveryEntries = 40;
                                                          c.audit.treeHeadInterval = milliseconds(200);
                                                      }});
    REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);
    const std::string auditor = gw.addPrincipal(auth::Role::Auditor, "auditor-load");
    const std::string partner = gw.addPrincipal(auth::Role::Partner, "partner-load");

    std::atomic<int> phase{kUp};
    std::atomic<bool> stop{false};
    std::mutex outcomesMutex;
    std::vector<Outcome> outcomes;
    constexpr int kClients = 6;
    std::vector<std::thread> clients;
    for (int t = 0; t < kClients; ++t) {
        clients.emplace_back([&, t] {
            std::unique_ptr<HttpClient> client;
            for (int i = 0; !stop; ++i) {
                Outcome o;
                o.requestId = "load" + std::to_string(t) + "-" + std::to_string(i);
                // Mostly allowed reads of the audit head (each audited), some refused partners
                // (their refusal is audited too).
                const bool asPartner = i % 4 == 3;
                o.sentIn = phase;
                try {
                    if (!client) client = std::make_unique<HttpClient>(gw.port());  // keep-alive across the outage
                    o.status = client
                                   ->request("GET", "/v1/audit/tree-head",
                                             {{"Authorization", "Bearer " + (asPartner ? partner : auditor)},
                                              {"X-Request-Id", o.requestId}})
                                   .status;
                } catch (const std::exception&) { client.reset(); }
                o.answeredIn = phase;
                {
                    std::lock_guard lock(outcomesMutex);
                    outcomes.push_back(o);
                }
                std::this_thread::sleep_for(milliseconds(5));
            }
        });
    }
    std::this_thread::sleep_for(milliseconds(1500));
    phase = kStopping;
    cluster->stop();
    phase = kDown;
    std::this_thread::sleep_for(milliseconds(1500));
    phase = kStarting;
    cluster->start();
    phase = kBack;
    std::this_thread::sleep_for(milliseconds(2000));
    stop = true;
    for (auto& c : clients) c.join();

    std::map<int, int> statuses;
    int down = 0, back = 0, backUnavailable = 0, before = 0;
    for (const auto& o : outcomes) {
        ++statuses[o.status];
        if (o.sentIn == kUp && o.answeredIn == kUp) ++before;
        if (o.sentIn == kDown && o.answeredIn == kDown) {
            ++down;
            CHECK(o.status == 503);
        }
        if (o.sentIn == kBack) {
            ++back;
            if (o.status == 503) ++backUnavailable;
        }
    }
    std::string summary;
    for (const auto& [status, n] : statuses) summary += std::to_string(status) + ": " + std::to_string(n) + "  ";
    INFO("statuses " << summary);
    for (const auto& [status, n] : statuses) CHECK((status == 200 || status == 403 || status == 503));
    CHECK(before > 0);
    CHECK(down > 0);
    CHECK(back > 0);
    CHECK(backUnavailable == 0);  // stale connections were replaced before they cost a request

    // Every allowed (200) or refused (403) answer has exactly one entry; no request id is on
    // record twice, and nothing unanswered left a duplicate either.
    std::map<std::string, int> recorded;
    int64_t entries = 0;
    {
        pqxx::connection conn(cluster->conninfo("postgres"));
        pqxx::read_transaction tx(conn);
        for (const auto& row :
             tx.exec("SELECT substring(convert_from(entry, 'UTF8') from '\"request_id\":\"([^\"]*)\"'), "
                     "count(*) FROM audit_entries GROUP BY 1"))
            recorded[row[0].is_null() ? "" : row[0].c_str()] = row[1].as<int>();
        entries = tx.exec("SELECT count(*) FROM audit_entries")[0][0].as<int64_t>();
    }
    int lost = 0;
    for (const auto& o : outcomes)
        if ((o.status == 200 || o.status == 403) && recorded[o.requestId] != 1) ++lost;
    CHECK(lost == 0);
    for (const auto& [requestId, count] : recorded) {
        INFO(requestId);
        CHECK(count == 1);
    }

    auto exported = httpRequest(gw.port(), "GET", "/v1/audit/export", {{"Authorization", "Bearer " + auditor}});
    REQUIRE(exported.status == 200);
    REQUIRE(exported.complete);
    auto report = audit::verifyAuditExport(exported.body, gw.services().signingKey->publicKey());
    INFO(report.problem);
    REQUIRE(report.ok);
    CHECK(report.entries == static_cast<uint64_t>(entries) + 1);
    CHECK(report.verifiedSize == report.entries);
}
