// Stale pooled connections (issue 2): after PostgreSQL restarts, or terminates a session, the
// pool's idle connections are dead. The pool must replace them without costing a request its
// answer, re-run a job only when the server provably received nothing from it, and never re-run
// one that got through.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <atomic>
#include <memory>
#include <regex>
#include <thread>
#include <vector>

#include "gateway/db/pool.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using std::chrono::milliseconds;

namespace {

// Ends the server session with backend `pid` and waits until it is gone, as an administrator
// (or a restart) would. The client side of that session is not told until it next reads.
void terminateSession(const std::string& adminConninfo, int pid) {
    pqxx::connection admin(adminConninfo);
    pqxx::nontransaction tx(admin);
    REQUIRE(tx.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)")[0][0].as<bool>());
}

int64_t scalar(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    return tx.exec(sql)[0][0].as<int64_t>();
}

Status insert(pqxx::connection& conn, int n) {
    pqxx::work tx(conn);
    tx.exec("INSERT INTO marks VALUES (" + std::to_string(n) + ")");
    tx.commit();
    return Status::ok();
}

// A one-connection pool on a fresh database with a table `marks`, its connection open and idle
// (the backend pid of its session in `pid`).
// The re-run decision reads TCP_INFO byte counts, so these pools talk TCP even when the shared test
// cluster is named by its Unix socket (ops/test): every cluster here also listens on 127.0.0.1.
std::string overTcp(const std::string& conninfo) {
    return std::regex_replace(conninfo, std::regex(R"(host=\S+)"), "host=127.0.0.1");
}

struct MarksPool {
    TestDatabase db = TestDatabase::create();
    std::unique_ptr<db::ConnectionPool> pool;
    int pid = 0;

    MarksPool() {
        runPsql(db.conninfo(), "CREATE TABLE marks (n integer)");
        db::PoolOptions o;
        o.conninfo = overTcp(db.conninfo());
        o.size = 1;
        o.connectTimeout = std::chrono::seconds(2);
        o.acquireTimeout = milliseconds(3000);
        pool = std::make_unique<db::ConnectionPool>(o);
        REQUIRE(pool->withConnection([&](pqxx::connection& conn) {
            pid = conn.backendpid();
            return insert(conn, 0);
        }));
    }
    int64_t marks(int n) { return scalar(db.conninfo(), "SELECT count(*) FROM marks WHERE n = " + std::to_string(n)); }
};

}  // namespace

TEST_CASE("after a PostgreSQL restart every pooled connection is replaced without a 503",
          "[integration][faults][pool]") {
    auto cluster = PgCluster::create();
    RunningGateway gw(cluster->conninfo("postgres"), {{}, [](config::GatewayConfig& c) { c.database.poolSize = 3; }});
    REQUIRE(gw.waitForReadiness(200, milliseconds(10000)) == 200);
    const std::string partner = gw.addPrincipal(auth::Role::Partner, "partner-pool");
    const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + partner}};

    // Concurrent requests so that every pooled connection is opened (and then left idle).
    auto burst = [&](int clients) {
        std::vector<int> statuses(static_cast<size_t>(clients));
        std::vector<std::thread> threads;
        for (int i = 0; i < clients; ++i)
            threads.emplace_back([&, i] {
                HttpClient client(gw.port());
                for (int r = 0; r < 4; ++r) {
                    const int status = client.request("GET", "/v1/catalog", auth).status;
                    if (statuses[static_cast<size_t>(i)] == 0 || status != 200)
                        statuses[static_cast<size_t>(i)] = status;
                }
            });
        for (auto& t : threads) t.join();
        return statuses;
    };
    for (int status : burst(6)) REQUIRE(status == 200);
    const db::PoolStats warm = gw.services().db->stats();
    INFO("open " << warm.open << ", connect failures " << warm.connectFailures << ", stale " << warm.staleDiscarded);
    REQUIRE(warm.open == 3);

    cluster->stop();
    // One request while it is down: 503, not a hang or a 500.
    auto down = httpRequest(gw.port(), "GET", "/v1/catalog", auth);
    CHECK(down.status == 503);
    cluster->start();

    // Straight away, before the readiness probe has even noticed: the stale connections are found
    // at checkout and replaced, so no request sees the restart.
    const uint64_t staleBefore = gw.services().db->stats().staleDiscarded;
    for (int status : burst(6)) CHECK(status == 200);
    CHECK(gw.services().db->stats().staleDiscarded > staleBefore);
    CHECK(gw.services().db->stats().jobsRetried == 0);  // nothing was sent down a dead connection
}

TEST_CASE("an idle connection the server terminated is discarded at checkout, unused", "[integration][faults][pool]") {
    MarksPool m;
    terminateSession(m.db.conninfo(), m.pid);

    int calls = 0;
    Status s = m.pool->withConnection([&](pqxx::connection& conn) {
        ++calls;
        CHECK(conn.backendpid() != m.pid);
        return insert(conn, 1);
    });
    CHECK(s.isOk());
    CHECK(calls == 1);
    CHECK(m.pool->stats().staleDiscarded == 1);
    CHECK(m.pool->stats().jobsRetried == 0);
    CHECK(m.marks(1) == 1);
}

TEST_CASE("a job whose connection died before the server received anything is re-run once on a fresh connection",
          "[integration][faults][pool]") {
    MarksPool m;
    // The session dies after checkout (past the pool's check) and before the job's first statement.
    int calls = 0;
    Status s = m.pool->withConnection([&](pqxx::connection& conn) -> Status {
        if (++calls == 1) terminateSession(m.db.conninfo(), conn.backendpid());
        return insert(conn, 1);
    });
    INFO(s.message());
    CHECK(s.isOk());
    CHECK(calls == 2);
    CHECK(m.pool->stats().jobsRetried == 1);
    CHECK(m.marks(1) == 1);
}

TEST_CASE("a job that got through to the server is never re-run when its connection then breaks",
          "[integration][faults][pool]") {
    MarksPool m;
    int calls = 0;
    Status s = m.pool->withConnection([&](pqxx::connection& conn) -> Status {
        ++calls;
        if (Status first = insert(conn, 1); !first) return first;  // committed
        terminateSession(m.db.conninfo(), conn.backendpid());
        return insert(conn, 2);  // fails: the session is gone
    });
    INFO(s.message());
    CHECK(s.code() == StatusCode::Unavailable);
    CHECK(calls == 1);
    CHECK(m.pool->stats().jobsRetried == 0);
    CHECK(m.marks(1) == 1);  // not written twice
    CHECK(m.marks(2) == 0);

    // The broken connection was dropped: the next job works.
    CHECK(m.pool->withConnection([&](pqxx::connection& conn) { return insert(conn, 3); }).isOk());
}

TEST_CASE("a job that turns its lost connection into another error still fails as database_unavailable",
          "[integration][faults][pool]") {
    MarksPool m;
    // The job catches the driver's exception itself and reports it as its own kind of error; the
    // pool sees the connection is gone and reports the loss of the database.
    Status s = m.pool->withConnection([&](pqxx::connection& conn) -> Status {
        if (Status first = insert(conn, 1); !first) return first;
        terminateSession(m.db.conninfo(), conn.backendpid());
        try {
            return insert(conn, 2);
        } catch (const std::exception& e) { return internalError(std::string("storing mark 2: ") + e.what()); }
    });
    INFO(s.message());
    CHECK(s.code() == StatusCode::Unavailable);
    CHECK(s.reason() == db::kDatabaseUnavailable);
    CHECK(s.message().find("storing mark 2") != std::string::npos);
    // A job that fails on its own, its connection fine, keeps its error.
    Status own = m.pool->withConnection([](pqxx::connection&) { return internalError("the job's own failure"); });
    CHECK(own.code() == StatusCode::Internal);
    CHECK(own.reason().empty());
    // The same loss through an exception the job lets escape.
    Status escaped = m.pool->withConnection([&](pqxx::connection& conn) -> Status {
        terminateSession(m.db.conninfo(), conn.backendpid());
        pqxx::work tx(conn);
        tx.exec("SELECT 1");
        return Status::ok();
    });
    CHECK(escaped.code() == StatusCode::Unavailable);
    CHECK(escaped.reason() == db::kDatabaseUnavailable);
}

TEST_CASE("stopping the pool runs every queued job first, and a job posted after it runs on the caller",
          "[integration][pool]") {
    db::PoolOptions options;
    options.conninfo = "host=127.0.0.1 port=1 dbname=none connect_timeout=1";  // never connected: no job uses it
    options.size = 2;
    db::ConnectionPool pool(options);
    std::atomic<int> ran{0};
    std::atomic<bool> release{false};
    // Both workers busy, eight more jobs queued behind them.
    for (int i = 0; i < 10; ++i) {
        pool.post([&, i] {
            while (i < 2 && !release.load()) std::this_thread::sleep_for(milliseconds(1));
            ++ran;
        });
    }
    std::thread stopper([&] { pool.stopWorkers(); });
    std::this_thread::sleep_for(milliseconds(50));
    CHECK(ran.load() == 0);  // stopping waits for the running jobs
    release = true;
    stopper.join();
    CHECK(ran.load() == 10);  // and runs what was queued before it returns
    const auto caller = std::this_thread::get_id();
    std::thread::id ranOn;
    pool.post([&] { ranOn = std::this_thread::get_id(); });
    CHECK(ranOn == caller);
    pool.stopWorkers();  // twice is harmless
}
