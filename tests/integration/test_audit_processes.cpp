// Three real `custodian serve` processes on one PostgreSQL append to ONE audit log: no gaps, no
// forks, and the export verifies with the offline verifier.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "gateway/audit/verifier.hpp"
#include "gateway/http/message.hpp"
#include "serve_process.hpp"
#include "test_audit_harness.hpp"
#include "json/writer.hpp"

using namespace custodian;
using namespace custodian::testing;

TEST_CASE("three gateway processes appending concurrently produce one audit log that verifies",
          "[integration][audit][processes]") {
    AuditDatabase db;
    const auto dir = freshTempDir("custodian-audit-procs");
    const std::string signingKeyFile = (dir / "gateway-signing.key").string();
    const std::string masterKeyFile = (dir / "gateway-master.key").string();
    // The three processes share the keys, as replicas behind a load balancer do.
    auto signingKey = crypto::SigningKey::loadOrCreate(signingKeyFile);
    REQUIRE(signingKey);
    auto hasher = auth::TokenHasher::loadOrCreate(masterKeyFile);
    REQUIRE(hasher);
    std::string auditor, partner;
    {
        pqxx::connection conn(db.gatewayConninfo());
        auth::NewPrincipal a{"auditor-ada", auth::Role::Auditor, "", std::nullopt};
        auth::NewPrincipal p{"partner-pat", auth::Role::Partner, "", std::nullopt};
        auditor = *auth::addPrincipal(conn, *hasher, a);
        partner = *auth::addPrincipal(conn, *hasher, p);
    }

    std::vector<uint16_t> ports;
    std::vector<std::unique_ptr<ServeProcess>> processes;
    for (int i = 0; i < 3; ++i) {
        const uint16_t port = static_cast<uint16_t>(freeTcpPort());
        ports.push_back(port);
        const std::string config = (dir / ("gateway" + std::to_string(i) + ".json")).string();
        writeTextFile(config, "{\"listen\":{\"address\":\"127.0.0.1\",\"port\":" + std::to_string(port) +
                                  "},\"database\":{\"conninfo\":" + json::quoted(db.gatewayConninfo()) +
                                  ",\"pool_size\":8},\"keys\":{\"signing_key_file\":" + json::quoted(signingKeyFile) +
                                  ",\"master_key_file\":" + json::quoted(masterKeyFile) +
                                  "},\"log\":{\"access_log\":false},"
                                  "\"audit\":{\"tree_head_every_entries\":25,\"tree_head_interval_ms\":200}}");
        processes.push_back(
            std::make_unique<ServeProcess>(config, (dir / ("gateway" + std::to_string(i) + ".log")).string()));
    }
    for (int i = 0; i < 3; ++i) {
        INFO(readTextFile((dir / ("gateway" + std::to_string(i) + ".log")).string()));
        REQUIRE(waitReady(ports[static_cast<size_t>(i)], std::chrono::seconds(60)));
    }

    constexpr int kThreadsPerProcess = 4, kRequests = 60;
    std::atomic<int> allowed{0}, denied{0}, unexpected{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < 3; ++p) {
        for (int t = 0; t < kThreadsPerProcess; ++t) {
            threads.emplace_back([&, p, t] {
                HttpClient client(ports[static_cast<size_t>(p)]);  // keep-alive
                for (int i = 0; i < kRequests; ++i) {
                    const bool asPartner = (i + t) % 5 == 0;
                    auto r = client.request("GET", "/v1/audit/tree-head",
                                            {{"Authorization", "Bearer " + (asPartner ? partner : auditor)}});
                    if (asPartner && r.status == 403) ++denied;
                    else if (!asPartner && r.status == 200) ++allowed;
                    else ++unexpected;
                }
            });
        }
    }
    for (auto& th : threads) th.join();
    CHECK(unexpected == 0);
    const int requests = allowed + denied;
    CHECK(requests == 3 * kThreadsPerProcess * kRequests);
    for (auto& proc : processes) CHECK(proc->alive());

    // Export from one of them; it covers what all three wrote.
    auto r = httpRequest(ports[1], "GET", "/v1/audit/export", {{"Authorization", "Bearer " + auditor}});
    REQUIRE(r.status == 200);
    REQUIRE(r.complete);
    auto report = audit::verifyAuditExport(r.body, signingKey->publicKey());
    INFO(report.problem);
    REQUIRE(report.ok);
    CHECK(report.entries == static_cast<uint64_t>(requests) + 1);
    CHECK(report.verifiedSize == report.entries);
    CHECK(report.treeHeads >= 3);

    pqxx::connection conn(db.adminConninfo());
    pqxx::read_transaction tx(conn);
    CHECK(tx.exec("SELECT count(*) FROM audit_entries")[0][0].as<int>() == requests + 1);
    CHECK(tx.exec("SELECT max(entry_index) FROM audit_entries")[0][0].as<int>() == requests);
    CHECK(tx.exec("SELECT count(*) FROM audit_entries WHERE decision = 'denied'")[0][0].as<int>() == denied);

    processes.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}
