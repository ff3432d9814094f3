// The interrupted-extract sweeper (gateway/api/extract_sweeper.hpp) against a real database: an
// extract whose gateway process holds its lease is never touched, one whose process is gone is
// recorded as aborted exactly once — also with two sweepers racing, or when a process died after
// writing the entry but before updating the row — and only after two sweeps.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <thread>

#include "gateway/api/record.hpp"
#include "gateway/db/readiness.hpp"
#include "gateway/api/extract_sweeper.hpp"
#include "gateway_fixture.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using namespace std::chrono_literals;

namespace {

void insertExtract(const std::string& conninfo, const std::string& id, std::optional<int32_t> instance,
                   const std::string& status = "requested") {
    pqxx::connection conn(conninfo);
    pqxx::work tx(conn);
    tx.exec_params0(
        "INSERT INTO extracts (id, dataset, policy, policy_version, policy_hash, recipient, purpose, format, status, "
        "requested_entry_index, gateway_instance, key_derivation) VALUES ($1, 'visits', 'research', 1, 'ab', "
        "'partner-a', 'research', 'csv', $3, 0, $2, 2)",
        id, instance, status);
    tx.commit();
}

std::string statusOf(const std::string& conninfo, const std::string& id) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    return tx.exec_params1("SELECT status FROM extracts WHERE id = $1", id)[0].c_str();
}

// The "extract.aborted" entries recorded for the extract, and whether the row points at the only one.
int interruptedEntries(const std::string& conninfo, const std::string& id, bool* rowPointsAtIt = nullptr) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    auto r = tx.exec_params(
        "SELECT entry_index FROM audit_entries WHERE action = 'extract.aborted' AND decision = 'interrupted' "
        "AND convert_from(entry, 'UTF8') LIKE $1",
        "%\"extract_id\":\"" + id + "\"%");
    if (rowPointsAtIt && r.size() == 1)
        *rowPointsAtIt =
            tx.exec_params1("SELECT finished_entry_index FROM extracts WHERE id = $1", id)[0].as<int64_t>() ==
            r[0][0].as<int64_t>();
    return static_cast<int>(r.size());
}

}  // namespace

TEST_CASE("extracts of a gateway process that died are recorded aborted once, live ones are left alone",
          "[integration][extract][sweeper]") {
    auto db = TestDatabase::create("sweeper");
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) { c.release.sweepInterval = 3600s; }});
    REQUIRE(gw.waitForReadiness(200, 10000ms) == 200);
    const int32_t self = gw.services().instance;
    REQUIRE(self > 0);

    // Another live gateway: a session holding the lease of instance 4242.
    pqxx::connection other(db.conninfo());
    {
        pqxx::nontransaction tx(other);
        REQUIRE(tx.exec_params1("SELECT pg_try_advisory_lock($1, 4242)", db::kInstanceLeaseClass)[0].as<bool>());
    }
    insertExtract(db.conninfo(), "ext_alive", 4242);
    insertExtract(db.conninfo(), "ext_dead", 4343);
    insertExtract(db.conninfo(), "ext_legacy", std::nullopt);  // from before migration 0005
    insertExtract(db.conninfo(), "ext_own", self);
    // A request of this process is still streaming ext_own: live here, so no sweeper may close it.
    auto ownLive = gw.services().liveExtracts->add("ext_own");
    insertExtract(db.conninfo(), "ext_preparing", 4343, "preparing");  // killed while searching: nothing sent

    // Two sweepers of two processes (this gateway's, and one more with instance 777), racing.
    api::ExtractSweeper mine(gw.services(), self, 3600s), theirs(gw.services(), 777, 3600s);
    // First sweep: only suspected.
    REQUIRE(mine.sweepOnce());
    REQUIRE(theirs.sweepOnce());
    CHECK(statusOf(db.conninfo(), "ext_dead") == "requested");
    // Second sweep: recorded, by exactly one of them.
    size_t swept = 0;
    std::thread a([&] { swept += *mine.sweepOnce(); });
    size_t sweptTheirs = *theirs.sweepOnce();
    a.join();
    CHECK(swept + sweptTheirs == 3);
    for (const char* id : {"ext_dead", "ext_legacy", "ext_preparing"}) {
        INFO(id);
        CHECK(statusOf(db.conninfo(), id) == (std::string(id) == "ext_preparing" ? "not_released" : "aborted"));
        bool pointsAtIt = false;
        CHECK(interruptedEntries(db.conninfo(), id, &pointsAtIt) == 1);
        CHECK(pointsAtIt);
    }
    {
        // The entry says the extract never started streaming.
        pqxx::connection conn(db.conninfo());
        pqxx::read_transaction tx(conn);
        CHECK(tx.exec1("SELECT count(*) FROM audit_entries WHERE action = 'extract.aborted' AND convert_from(entry, "
                       "'UTF8') LIKE '%\"extract_id\":\"ext_preparing\"%' AND convert_from(entry, 'UTF8') LIKE "
                       "'%before sending any of it%'")[0]
                  .as<int>() == 1);
    }
    CHECK(statusOf(db.conninfo(), "ext_alive") == "requested");
    // A process does not sweep its own live extracts; another does not either while its lease is held.
    CHECK(statusOf(db.conninfo(), "ext_own") == "requested");
    CHECK(interruptedEntries(db.conninfo(), "ext_alive") == 0);

    // The other gateway dies: its lease goes with its session (the server ends that backend shortly
    // after the client disconnects, so wait until the lock is gone).
    other.disconnect();
    {
        pqxx::connection conn(db.conninfo());
        const auto until = std::chrono::steady_clock::now() + 10s;
        bool held = true;
        while (held && std::chrono::steady_clock::now() < until) {
            pqxx::read_transaction tx(conn);
            held = !tx.exec("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND objid = 4242 AND "
                            "database = (SELECT oid FROM pg_database WHERE datname = current_database())")
                        .empty();
            tx.commit();
            if (held) std::this_thread::sleep_for(10ms);
        }
        REQUIRE_FALSE(held);
    }
    REQUIRE(mine.sweepOnce());
    CHECK(statusOf(db.conninfo(), "ext_alive") == "requested");  // suspected first
    auto last = mine.sweepOnce();
    REQUIRE(last);
    CHECK(*last == 1);
    CHECK(statusOf(db.conninfo(), "ext_alive") == "aborted");
    CHECK(interruptedEntries(db.conninfo(), "ext_alive") == 1);
    // Sweeping again changes nothing.
    REQUIRE(mine.sweepOnce());
    REQUIRE(theirs.sweepOnce());
    REQUIRE(theirs.sweepOnce());
    for (const char* id : {"ext_dead", "ext_legacy", "ext_preparing", "ext_alive"})
        CHECK(interruptedEntries(db.conninfo(), id) == 1);
    CHECK(statusOf(db.conninfo(), "ext_own") == "requested");
    // Once the request that streamed it has ended without closing it, this process closes it itself.
    ownLive = {};
    auto closedOwn = mine.sweepOnce();
    REQUIRE(closedOwn);
    CHECK(*closedOwn == 1);
    CHECK(statusOf(db.conninfo(), "ext_own") == "aborted");
    CHECK(interruptedEntries(db.conninfo(), "ext_own") == 1);
}

TEST_CASE("the sweeper's thread records an interrupted extract without being asked",
          "[integration][extract][sweeper]") {
    auto db = TestDatabase::create("sweeper_thread");
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) { c.release.sweepInterval = 50ms; }});
    REQUIRE(gw.waitForReadiness(200, 10000ms) == 200);
    insertExtract(db.conninfo(), "ext_gone", 999);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (statusOf(db.conninfo(), "ext_gone") != "aborted" && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(20ms);
    CHECK(statusOf(db.conninfo(), "ext_gone") == "aborted");
    CHECK(interruptedEntries(db.conninfo(), "ext_gone") == 1);
}

TEST_CASE("an extract.aborted entry whose writer died before updating the row is adopted, not recorded twice",
          "[integration][extract][sweeper]") {
    auto db = TestDatabase::create("sweeper_adopt");
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) { c.release.sweepInterval = 3600s; }});
    REQUIRE(gw.waitForReadiness(200, 10000ms) == 200);
    // ext_half: a process wrote its closing entry (a disconnect, or an earlier sweep) and was killed
    // before the row update. ext_half2: its id extends ext_half's, and it has no entry of its own.
    insertExtract(db.conninfo(), "ext_half", 5151);
    insertExtract(db.conninfo(), "ext_half2", 5151);
    audit::AuditEntry written;
    written.actor = "partner-a";
    written.role = "partner";
    written.action = "extract.aborted";
    written.decision = "disconnected";
    written.target.dataset = "visits";
    written.details = json::JsonValue::Object{{"extract_id", std::string("ext_half")}};
    auto writtenIndex = api::record(gw.services(), written);
    REQUIRE(writtenIndex);

    api::ExtractSweeper sweeper(gw.services(), 777, 3600s);
    REQUIRE(sweeper.sweepOnce());
    auto swept = sweeper.sweepOnce();
    REQUIRE(swept);
    CHECK(*swept == 2);
    pqxx::connection conn(db.conninfo());
    pqxx::read_transaction tx(conn);
    auto row = tx.exec_params1("SELECT status, finished_entry_index FROM extracts WHERE id = 'ext_half'");
    CHECK(std::string(row[0].c_str()) == "aborted");
    CHECK(row[1].as<uint64_t>() == *writtenIndex);  // the entry already in the log is the outcome
    CHECK(tx.exec1("SELECT count(*) FROM audit_entries WHERE action = 'extract.aborted' AND "
                   "convert_from(entry, 'UTF8') LIKE '%\"extract_id\":\"ext_half\"%'")[0]
              .as<int>() == 1);
    CHECK(interruptedEntries(db.conninfo(), "ext_half") == 0);
    // The longer id was not mistaken for it: it gets an entry of its own.
    CHECK(interruptedEntries(db.conninfo(), "ext_half2") == 1);
}
