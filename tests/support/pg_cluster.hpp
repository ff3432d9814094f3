#pragma once
// Real PostgreSQL for tests, without any library dependency (this folder is compiled into every
// test binary): the server binaries and psql are run as subprocesses.
//
//   PgCluster     a private cluster (initdb + pg_ctl from /usr/lib/postgresql/15/bin) in a temp
//                 dir, listening on a free 127.0.0.1 port and a Unix socket in that dir; stop(),
//                 start() and destruction (stop + delete). As root, the server runs as `postgres`.
//   TestDatabase  a fresh database with a unique name, dropped on destruction. It lives on the
//                 cluster named by CUSTODIAN_TEST_PG (a keyword=value libpq conninfo of a
//                 superuser, set by ops/test) or, if unset, on one private cluster shared by the
//                 whole test process.
//
//   auto db = custodian::testing::TestDatabase::create();
//   pqxx::connection conn(db.conninfo());
//
// Failures throw std::runtime_error with the command's output, so a test fails with the reason.

#include <memory>
#include <string>
#include <vector>

namespace custodian::testing {

class PgCluster {
public:
    static std::unique_ptr<PgCluster> create();  // initdb + start
    ~PgCluster();                                // stop and delete the directory
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    // pg_ctl stop -m fast: open connections are terminated, each backend aborting its transaction
    // (a lock it holds is released as it goes, so a session waiting for that lock may still be
    // granted it and finish its query). Immediate: -m immediate, every backend exits at once and
    // nothing is released or finished; the next start() recovers from the WAL.
    enum class StopMode { Fast, Immediate };
    void stop(StopMode mode = StopMode::Fast);
    void start();  // pg_ctl start, same port and data
    bool running() const { return running_; }

    int port() const { return port_; }
    const std::string& directory() const { return dir_; }
    // "host=127.0.0.1 port=N user=postgres dbname=<database>"
    std::string conninfo(const std::string& database = "postgres") const;

private:
    PgCluster() = default;
    std::string dir_;
    int port_ = 0;
    bool running_ = false;
};

class TestDatabase {
public:
    static TestDatabase create(const std::string& prefix = "custodian_test");
    ~TestDatabase();
    TestDatabase(TestDatabase&& other) noexcept;
    TestDatabase& operator=(TestDatabase&&) = delete;
    TestDatabase(const TestDatabase&) = delete;

    const std::string& name() const { return name_; }
    const std::string& conninfo() const { return conninfo_; }

private:
    TestDatabase(std::string name, std::string admin, std::string conninfo)
        : name_(std::move(name)), admin_(std::move(admin)), conninfo_(std::move(conninfo)) {}
    std::string name_;
    std::string admin_;  // superuser conninfo on the maintenance database
    std::string conninfo_;
};

// The superuser conninfo TestDatabase uses (CUSTODIAN_TEST_PG or the shared private cluster).
std::string adminConninfo();

// Runs psql with ON_ERROR_STOP against `conninfo`; returns its stdout. Throws on failure.
std::string runPsql(const std::string& conninfo, const std::string& sql);

// Runs argv (argv[0] looked up in PATH), output appended to `logFile` (or discarded if empty).
// Returns the exit status (or 128 + signal).
int runCommand(const std::vector<std::string>& argv, const std::string& logFile = "");

// A TCP port on 127.0.0.1 that was free a moment ago.
int freeTcpPort();

}  // namespace custodian::testing
