#include "pg_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

namespace custodian::testing {
namespace {

const std::string kPgBin = "/usr/lib/postgresql/15/bin";

bool isRoot() { return ::geteuid() == 0; }

std::vector<std::string> asPostgres(std::vector<std::string> argv) {
    if (!isRoot()) return argv;
    std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return wrapped;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string psqlPath() {
    if (std::filesystem::exists(kPgBin + "/psql")) return kPgBin + "/psql";
    return "psql";
}

}  // namespace

int runCommand(const std::vector<std::string>& argv, const std::string& logFile) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        int fd = logFile.empty() ? ::open("/dev/null", O_WRONLY)
                                 : ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw std::runtime_error("waitpid failed");
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int freeTcpPort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot bind a free port");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::unique_ptr<PgCluster> PgCluster::create() {
    std::unique_ptr<PgCluster> c(new PgCluster());
    char tmpl[] = "/tmp/custodian-pg-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    c->dir_ = tmpl;
    std::filesystem::create_directories(c->dir_ + "/sock");
    if (isRoot()) {
        passwd* pw = ::getpwnam("postgres");
        if (!pw) throw std::runtime_error("running as root but there is no 'postgres' user to run PostgreSQL");
        for (const auto& p : {c->dir_, c->dir_ + "/sock"})
            if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown " + p + " failed");
    }
    const std::string log = c->dir_ + "/setup.log";
    int rc = runCommand(asPostgres({kPgBin + "/initdb", "-D", c->dir_ + "/data", "-U", "postgres", "--auth=trust", "-E",
                                    "UTF8", "--locale=C", "--no-sync"}),
                        log);
    if (rc != 0)
        throw std::runtime_error("initdb failed (exit " + std::to_string(rc) + ") in " + c->dir_ + ": " +
                                 readFile(log));
    // A free port can be taken between probing and binding: retry with another one.
    for (int attempt = 0; attempt < 5; ++attempt) {
        c->port_ = freeTcpPort();
        try {
            c->start();
            return c;
        } catch (const std::runtime_error&) {
            if (attempt == 4) throw;
        }
    }
    return c;
}

void PgCluster::start() {
    const std::string options = "-p " + std::to_string(port_) + " -k " + dir_ + "/sock" +
                                " -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
                                " -c synchronous_commit=off -c max_connections=200";
    int rc = runCommand(asPostgres({kPgBin + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t",
                                    "60", "-o", options, "start"}));
    if (rc != 0)
        throw std::runtime_error("pg_ctl start failed (exit " + std::to_string(rc) +
                                 "): " + readFile(dir_ + "/server.log"));
    running_ = true;
}

void PgCluster::stop(StopMode mode) {
    const std::string how = mode == StopMode::Immediate ? "immediate" : "fast";
    int rc = runCommand(asPostgres({kPgBin + "/pg_ctl", "-D", dir_ + "/data", "-m", how, "-w", "-t", "60", "stop"}));
    if (rc != 0) throw std::runtime_error("pg_ctl stop failed (exit " + std::to_string(rc) + ")");
    running_ = false;
}

PgCluster::~PgCluster() {
    try {
        if (running_) stop();
    } catch (...) {
        // Destructors must not throw; the directory is removed regardless.
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string PgCluster::conninfo(const std::string& database) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + database;
}

std::string runPsql(const std::string& conninfo, const std::string& sql) {
    char tmpl[] = "/tmp/custodian-psql-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    int rc = runCommand({psqlPath(), conninfo, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql}, tmpl);
    std::string out = readFile(tmpl);
    ::unlink(tmpl);
    if (rc != 0)
        throw std::runtime_error("psql failed (exit " + std::to_string(rc) + ") running '" + sql + "': " + out);
    return out;
}

std::string adminConninfo() {
    if (const char* env = std::getenv("CUSTODIAN_TEST_PG"); env && *env) return env;
    static std::mutex mutex;
    static std::unique_ptr<PgCluster> shared;
    std::lock_guard lock(mutex);
    if (!shared) shared = PgCluster::create();
    return shared->conninfo("postgres");
}

TestDatabase TestDatabase::create(const std::string& prefix) {
    static std::atomic<int> counter{0};
    std::string admin = adminConninfo();
    std::mt19937_64 rng(std::random_device{}());
    std::string name = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1)) + "_" +
                       std::to_string(rng() % 100000);
    runPsql(admin, "CREATE DATABASE " + name);
    // The admin conninfo (e.g. CUSTODIAN_TEST_PG from ops/pg) names a database of its own: replace it,
    // since strict conninfo parsers (the catalog's) refuse a repeated keyword.
    std::string conninfo;
    std::istringstream words(admin);
    for (std::string word; words >> word;)
        if (word.rfind("dbname=", 0) != 0) conninfo += word + " ";
    return TestDatabase(name, admin, conninfo + "dbname=" + name);
}

TestDatabase::TestDatabase(TestDatabase&& other) noexcept
    : name_(std::move(other.name_)), admin_(std::move(other.admin_)), conninfo_(std::move(other.conninfo_)) {
    other.name_.clear();
}

TestDatabase::~TestDatabase() {
    if (name_.empty()) return;
    try {
        runPsql(admin_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
        // Leaving a test database behind is harmless; a destructor must not throw.
    }
}

}  // namespace custodian::testing
