// The audit log unwritable (issue 6, faults) while partners ask for data: the gateway runs as a
// NON-superuser role, so a revoked privilege bites, and a full disk is simulated by the error
// PostgreSQL raises when it cannot extend a file (SQLSTATE 53100). Data requests must fail closed —
// 503, no extract recorded, not one data byte sent — /readyz must say why, and both must recover
// once the log is writable again, without restarting the gateway. A lock on the audit counter held
// by another session (an operator's LOCK TABLE, a transaction left open) must not stall them either:
// the append gives up after audit.lock_timeout_ms and the request fails closed the same way.
// (test_audit_api.cpp covers the audit routes themselves under a revoked privilege.)
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <thread>
#include <vector>

#include "gateway/audit/verifier.hpp"
#include "gateway/http/message.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/wait_for.hpp"
#include "test_audit_harness.hpp"
#include "test_extract_fixture.hpp"
#include "json/writer.hpp"

using namespace custodian;
using namespace custodian::testing;
using std::chrono::milliseconds;

namespace {

// A gateway on an AuditDatabase (non-superuser role) with the visits dataset published and a
// partner allowed to extract it.
struct UnwritableAuditWorld {
    AuditDatabase db;
    TestDatabase agency = TestDatabase::create("faults_audit_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, partner;

    explicit UnwritableAuditWorld(GatewayOptions options = {}) {
        createVisitsTable(agency.conninfo(), 300);
        gw = std::make_unique<RunningGateway>(db.gatewayConninfo(), std::move(options));
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        partner = gw->addPrincipal(auth::Role::Partner, "partner-a");
        REQUIRE(
            call("PUT", "/v1/sources/health-db", publisher, "{\"conninfo\": " + json::quoted(agency.conninfo()) + "}")
                .status < 300);
        REQUIRE(call("PUT", "/v1/datasets/visits", publisher, visitsDatasetJson("health-db")).status < 300);
        REQUIRE(call("PUT", "/v1/datasets/visits/policies/research", publisher,
                     visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})"))
                    .status < 300);
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return httpRequest(gw->port(), method, target,
                           {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}}, body);
    }

    HttpResult extract() {
        return call("POST", "/v1/extracts", partner,
                    R"({"dataset":"visits","policy":"research","purpose":"research"})");
    }

    int64_t count(const std::string& sql) {
        pqxx::connection conn(db.adminConninfo());
        pqxx::read_transaction tx(conn);
        return tx.exec(sql)[0][0].as<int64_t>();
    }

    HttpResult readiness() {
        gw->services().readiness->probeNow();
        return httpRequest(gw->port(), "GET", "/readyz");
    }

    // The extract was refused before any data: a JSON error, no extract id, nothing recorded.
    void requireFailedClosed(const HttpResult& r, int64_t extractsBefore) {
        INFO(r.body);
        CHECK(r.status == 503);
        CHECK(r.header("retry-after") == "1");
        CHECK(r.header("content-type").find("application/json") != std::string::npos);
        CHECK(r.header("x-extract-id").empty());
        CHECK(r.body.find("audit") != std::string::npos);
        CHECK(r.body.find("Person ") == std::string::npos);
        CHECK(count("SELECT count(*) FROM extracts") == extractsBefore);
    }
};

}  // namespace

TEST_CASE("with INSERT on the audit log revoked, extracts fail closed with 503 and /readyz says so",
          "[integration][faults][audit]") {
    UnwritableAuditWorld w;
    REQUIRE(w.extract().status == 200);
    REQUIRE(w.readiness().status == 200);
    const int64_t extracts = w.count("SELECT count(*) FROM extracts");
    const int64_t entries = w.count("SELECT count(*) FROM audit_entries");

    runPsql(w.db.adminConninfo(), "REVOKE INSERT ON audit_entries FROM \"" + w.db.gatewayRole() + "\"");
    w.requireFailedClosed(w.extract(), extracts);
    auto ready = w.readiness();
    CHECK(ready.status == 503);
    CHECK(ready.body.find("audit log is not writable") != std::string::npos);
    CHECK(w.count("SELECT count(*) FROM audit_entries") == entries);

    runPsql(w.db.adminConninfo(), "GRANT INSERT ON audit_entries TO \"" + w.db.gatewayRole() + "\"");
    CHECK(w.readiness().status == 200);
    CHECK(w.extract().status == 200);
    CHECK(w.count("SELECT count(*) FROM extracts") == extracts + 1);
}

TEST_CASE("with the audit table unable to grow (disk full), extracts fail closed with 503 and /readyz says so",
          "[integration][faults][audit]") {
    UnwritableAuditWorld w;
    REQUIRE(w.extract().status == 200);
    const int64_t extracts = w.count("SELECT count(*) FROM extracts");
    const int64_t entries = w.count("SELECT count(*) FROM audit_entries");

    // What an INSERT meets on a full disk: PostgreSQL cannot extend the relation's file.
    runPsql(w.db.adminConninfo(),
            "CREATE FUNCTION simulate_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file \"base/16384/16385\": No space left on device' "
            "USING ERRCODE = 'disk_full', HINT = 'Check free disk space.'; END $$;"
            "CREATE TRIGGER simulated_disk_full BEFORE INSERT ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION simulate_disk_full();");
    w.requireFailedClosed(w.extract(), extracts);
    auto ready = w.readiness();
    CHECK(ready.status == 503);
    CHECK(ready.body.find("audit log is not writable") != std::string::npos);
    CHECK(ready.body.find("No space left on device") != std::string::npos);
    CHECK(w.count("SELECT count(*) FROM audit_entries") == entries);

    runPsql(w.db.adminConninfo(), "DROP TRIGGER simulated_disk_full ON audit_entries");
    CHECK(w.readiness().status == 200);
    CHECK(w.extract().status == 200);
    // The counter was never advanced by a failed batch: the log continues without a gap.
    CHECK(w.count("SELECT count(*) FROM audit_entries") == w.count("SELECT max(entry_index) + 1 FROM audit_entries"));
}

TEST_CASE("with audit_log_head locked by another session, extracts fail closed with 503 within audit.lock_timeout_ms",
          "[integration][faults][audit]") {
    const milliseconds lockTimeout(500);
    GatewayOptions options;
    options.adjustConfig = [&](config::GatewayConfig& c) { c.audit.lockTimeout = lockTimeout; };
    UnwritableAuditWorld w(std::move(options));
    const std::string auditor = w.gw->addPrincipal(auth::Role::Auditor, "auditor-a");
    REQUIRE(w.extract().status == 200);
    const int64_t extracts = w.count("SELECT count(*) FROM extracts");
    const int64_t entries = w.count("SELECT count(*) FROM audit_entries");

    {
        // The lock an operator's LOCK TABLE takes; it conflicts with the appender's UPDATE of the
        // counter exactly as a stuck transaction's row lock would.
        pqxx::connection holder(w.db.adminConninfo());
        pqxx::work held(holder);
        held.exec("LOCK TABLE audit_log_head IN EXCLUSIVE MODE");

        const auto start = std::chrono::steady_clock::now();
        const HttpResult refused = w.extract();  // without a bound this hangs until the client's 30 s timeout
        const auto waited = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
        INFO("waited " << waited.count() << " ms");
        w.requireFailedClosed(refused, extracts);
        CHECK(refused.body.find("\"unavailable\"") != std::string::npos);
        CHECK(refused.body.find("audit.lock_timeout_ms") != std::string::npos);
        CHECK(waited >= lockTimeout);         // it did wait for the lock…
        CHECK(waited < milliseconds(10000));  // …for a bounded time
        CHECK(w.count("SELECT count(*) FROM audit_entries") == entries);
    }  // the holder's transaction rolls back: the lock is released

    {
        // A lock on the entries themselves: the readiness probe's trial append waits at most
        // audit.lock_timeout_ms too, and reports the log unwritable instead of hanging.
        pqxx::connection holder(w.db.adminConninfo());
        pqxx::work held(holder);
        held.exec("LOCK TABLE audit_entries IN EXCLUSIVE MODE");
        const auto start = std::chrono::steady_clock::now();
        const HttpResult ready = w.readiness();
        const auto waited = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
        INFO(ready.body << " after " << waited.count() << " ms");
        CHECK(ready.status == 503);
        CHECK(ready.body.find("lock timeout") != std::string::npos);
        CHECK(waited < milliseconds(10000));
    }
    CHECK(w.readiness().status == 200);

    const HttpResult after = w.extract();
    CHECK(after.status == 200);
    CHECK(w.count("SELECT count(*) FROM extracts") == extracts + 1);
    // The timed-out batch rolled the counter back with it: no gap, and the log verifies.
    CHECK(w.count("SELECT count(*) FROM audit_entries") == w.count("SELECT max(entry_index) + 1 FROM audit_entries"));
    const int64_t stored = w.count("SELECT count(*) FROM audit_entries");
    const HttpResult exported = w.call("GET", "/v1/audit/export", auditor);
    REQUIRE(exported.status == 200);
    REQUIRE(exported.complete);
    const auto report = audit::verifyAuditExport(exported.body, w.gw->services().signingKey->publicKey());
    INFO(report.problem);
    CHECK(report.ok);
    CHECK(report.entries == static_cast<uint64_t>(stored) + 1);  // the export records itself
    CHECK(report.verifiedSize == report.entries);
}

TEST_CASE("an audited read waiting for its entry's commit does not hold a database worker",
          "[integration][faults][audit]") {
    // One worker thread (database.pool_size 1) and the audit counter locked by another session, so
    // the first entry's group commit waits. Before the change the worker waited with it, and the
    // other requests could not even start; now each request hands its entry to the appender and
    // gives the worker back, so the others are handled and their entries queue behind the lock.
    GatewayOptions options;
    options.adjustConfig = [](config::GatewayConfig& c) {
        c.database.poolSize = 1;
        c.audit.lockTimeout = milliseconds(30000);
    };
    UnwritableAuditWorld w(std::move(options));
    auto& audit = *w.gw->services().audit;
    const int64_t entries = w.count("SELECT count(*) FROM audit_entries");

    constexpr int kRequests = 4;
    std::vector<HttpResult> answers(kRequests);
    std::vector<std::thread> clients;
    {
        pqxx::connection holder(w.db.adminConninfo());
        pqxx::work held(holder);
        held.exec("LOCK TABLE audit_log_head IN EXCLUSIVE MODE");
        const auto ask = [&](int i) {
            clients.emplace_back([&, i] { answers[i] = w.call("GET", "/v1/catalog", w.partner); });
        };
        // The first request's entry alone in the batch that waits for the lock…
        ask(0);
        const bool waiting = waitFor(
            [&] {
                return w.count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
                               "current_database()") == 1;
            },
            milliseconds(20000));
        REQUIRE(waiting);
        // …and the others handled on the one worker meanwhile, their entries waiting in the queue.
        for (int i = 1; i < kRequests; ++i) ask(i);
        const bool queued = waitFor([&] { return audit.stats().queued == kRequests - 1; }, milliseconds(20000));
        INFO("queued: " << audit.stats().queued);
        CHECK(queued);
        CHECK(w.count("SELECT count(*) FROM audit_entries") == entries);  // nothing answered yet
    }  // the holder's transaction rolls back: the lock is released
    for (auto& c : clients) c.join();
    for (const auto& a : answers) {
        INFO(a.body);
        CHECK(a.status == 200);
        CHECK(!a.header("x-request-id").empty());
    }
    CHECK(w.count("SELECT count(*) FROM audit_entries") == entries + kRequests);
}
