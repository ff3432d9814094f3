// Audited requests per second against a real gateway: GET /v1/audit/tree-head by an auditor writes
// one audit entry per request (durably, synchronous commit, group commit) and reads the latest head.
//
//   bench_audit_load --pg "host=... port=... user=postgres dbname=postgres" [--seconds 10]
//                    [--connections 64] [--pool 32] [--wrk]
//
// A fresh database is created on that (superuser) conninfo and dropped at the end; the gateway
// runs in this process on a free port. The load comes from a built-in closed-loop client with one
// keep-alive connection per thread, or from `wrk --latency` with --wrk. Afterwards the log is
// checked: as many entries as answered requests (plus the set-up), indices without gaps, and the
// export verifies (whose speed is printed too).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gateway/audit/log.hpp"
#include "gateway/audit/verifier.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/config/config.hpp"
#include "gateway/http/server.hpp"
#include "gateway/api/services.hpp"
#include "json/writer.hpp"

using namespace custodian;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string pg;
    int seconds = 10;
    int connections = 64;
    int pool = 32;
    bool wrk = false;
};

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "bench_audit_load: %s\n", message.c_str());
    std::exit(1);
}

Options parseOptions(int argc, char** argv) {
    Options o;
    if (const char* env = std::getenv("CUSTODIAN_TEST_PG")) o.pg = env;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--pg") o.pg = value();
        else if (a == "--seconds") o.seconds = std::stoi(value());
        else if (a == "--connections") o.connections = std::stoi(value());
        else if (a == "--pool") o.pool = std::stoi(value());
        else if (a == "--wrk") o.wrk = true;
        else if (a == "--help" || a == "-h") {
            std::printf("usage: bench_audit_load --pg CONNINFO [--seconds N] [--connections N] [--pool N] [--wrk]\n"
                        "CONNINFO: a superuser conninfo (default: $CUSTODIAN_TEST_PG); e.g. from `ops/pg start DIR`\n");
            std::exit(0);
        } else die("unknown option " + a);
    }
    if (o.pg.empty()) die("give --pg CONNINFO (or set CUSTODIAN_TEST_PG); start a cluster with `ops/pg start DIR`");
    return o;
}

// One keep-alive HTTP/1.1 connection issuing GETs and reading Content-Length responses.
class LoadConnection {
public:
    LoadConnection(uint16_t port, std::string request) : request_(std::move(request)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect failed");
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~LoadConnection() { ::close(fd_); }

    // Returns the HTTP status, or 0 when the connection broke.
    int roundTrip() {
        if (::send(fd_, request_.data(), request_.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request_.size()))
            return 0;
        for (;;) {
            const size_t end = buffer_.find("\r\n\r\n");
            if (end != std::string::npos) {
                const int status = std::atoi(buffer_.c_str() + 9);
                size_t length = 0;
                const size_t cl = findHeader("content-length:", end);
                if (cl != std::string::npos) length = std::strtoul(buffer_.c_str() + cl, nullptr, 10);
                while (buffer_.size() < end + 4 + length)
                    if (!fill()) return 0;
                buffer_.erase(0, end + 4 + length);
                return status;
            }
            if (!fill()) return 0;
        }
    }

private:
    size_t findHeader(const char* lowercaseName, size_t end) const {
        std::string head = buffer_.substr(0, end);
        std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
        const size_t at = head.find(lowercaseName);
        return at == std::string::npos ? at : at + std::strlen(lowercaseName);
    }
    bool fill() {
        char chunk[16384];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer_.append(chunk, static_cast<size_t>(n));
        return true;
    }

    int fd_ = -1;
    std::string request_;
    std::string buffer_;
};

int64_t scalar(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    return tx.exec(sql)[0][0].as<int64_t>();
}

// Entry count and largest index from one snapshot: indices are committed in order, so a snapshot
// without gaps has count == max + 1.
std::pair<int64_t, int64_t> countAndMaxIndex(const std::string& conninfo) {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    pqxx::row r = tx.exec("SELECT count(*), coalesce(max(entry_index), -1) FROM audit_entries")[0];
    return {r[0].as<int64_t>(), r[1].as<int64_t>()};
}

// wrk closes its connections at the deadline with requests still being handled; wait until the
// gateway has answered them (bounded) so that the log is compared with a settled state.
void waitUntilIdle(const api::Services& services) {
    for (int i = 0; i < 500 && services.metrics && services.metrics->inFlight() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

double percentile(std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
    return sorted[i];
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parseOptions(argc, argv);
    const std::string dbName = "custodian_bench_" + std::to_string(::getpid());
    {
        pqxx::connection admin(o.pg);
        pqxx::nontransaction tx(admin);
        tx.exec("CREATE DATABASE " + dbName);
    }
    const std::string conninfo = o.pg + " dbname=" + dbName;
    const auto keyDir = std::filesystem::temp_directory_path() / dbName;
    std::filesystem::create_directories(keyDir);

    std::string json = "{\"listen\":{\"address\":\"127.0.0.1\",\"port\":0},\"threads\":2,"
                       "\"database\":{\"conninfo\":" +
                       json::quoted(conninfo) + ",\"pool_size\":" + std::to_string(o.pool) +
                       "},\"keys\":{\"signing_key_file\":" + json::quoted((keyDir / "sign.key").string()) +
                       ",\"master_key_file\":" + json::quoted((keyDir / "master.key").string()) +
                       "},\"log\":{\"access_log\":false},"
                       // One auditor drives the whole load: the per-principal rate limit is off.
                       "\"limits\":{\"rate_limit\":null}}";
    auto config = config::parseConfig(json, "");
    if (!config) die(config.status().message());
    int exitCode = 0;
    {
        // The benchmark connects as the cluster's superuser: it applies the schema itself and skips
        // serve's runtime-role check (a start-up check; it costs nothing per request).
        api::RuntimeOptions runtimeOptions;
        runtimeOptions.applyMigrationsAtStart = true;
        runtimeOptions.requireLeastPrivilege = false;
        auto rt = api::GatewayRuntime::create(std::move(config).value(), std::move(runtimeOptions));
        if (!rt) die(rt.status().message());
        api::Services& services = (*rt)->services();
        http::Server server((*rt)->serverParts());
        if (Status s = server.start(); !s) die(s.message());
        std::thread serverThread([&] { server.run(); });
        std::string token;
        {
            pqxx::connection conn(conninfo);
            auth::NewPrincipal p;
            p.name = "bench-auditor";
            p.role = auth::Role::Auditor;
            auto t = auth::addPrincipal(conn, *services.tokens, p);
            if (!t) die(t.status().message());
            token = *t;
        }
        const uint16_t port = server.port();
        const std::string path = "/v1/audit/tree-head";
        const int64_t entriesBefore = scalar(conninfo, "SELECT count(*) FROM audit_entries");

        std::printf("audited route: GET %s (auditor; one durable audit entry per request)\n", path.c_str());
        std::printf("machine: %u hardware threads; gateway threads 2, pool %d; PostgreSQL synchronous_commit on\n",
                    std::thread::hardware_concurrency(), o.pool);
        uint64_t answered = 0;
        if (o.wrk) {
            const std::string cmd = "wrk --latency -t2 -c" + std::to_string(o.connections) + " -d" +
                                    std::to_string(o.seconds) + "s -H 'Authorization: Bearer " + token +
                                    "' http://127.0.0.1:" + std::to_string(port) + path;
            std::printf("load: %s\n", std::string(cmd).replace(cmd.find(token), token.size(), "<token>").c_str());
            std::fflush(stdout);
            if (std::system(cmd.c_str()) != 0) exitCode = 1;
        } else {
            const std::string request =
                "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n\r\n";
            std::atomic<bool> measuring{false}, stop{false};
            std::vector<std::vector<double>> latencies(static_cast<size_t>(o.connections));
            std::atomic<uint64_t> ok{0}, failed{0};
            std::vector<std::thread> clients;
            for (int c = 0; c < o.connections; ++c) {
                clients.emplace_back([&, c] {
                    LoadConnection conn(port, request);
                    auto& lat = latencies[static_cast<size_t>(c)];
                    while (!stop.load(std::memory_order_relaxed)) {
                        const auto t0 = Clock::now();
                        const int status = conn.roundTrip();
                        const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
                        if (status == 0) {
                            ++failed;
                            return;
                        }
                        if (!measuring.load(std::memory_order_relaxed)) continue;
                        if (status == 200) {
                            ++ok;
                            lat.push_back(us);
                        } else {
                            ++failed;
                        }
                    }
                });
            }
            std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up: connections, caches
            measuring = true;
            const auto t0 = Clock::now();
            std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
            measuring = false;
            const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
            stop = true;
            for (auto& t : clients) t.join();
            std::vector<double> all;
            for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
            std::sort(all.begin(), all.end());
            std::printf("load: built-in client, %d keep-alive connections (one thread each), %d s after 1 s warm-up\n",
                        o.connections, o.seconds);
            std::printf("requests: %llu answered 200 in %.2f s, %llu failed\n",
                        static_cast<unsigned long long>(ok.load()), elapsed,
                        static_cast<unsigned long long>(failed.load()));
            std::printf("throughput: %.0f audited requests/s\n", static_cast<double>(ok.load()) / elapsed);
            std::printf("latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", percentile(all, 0.50) / 1000,
                        percentile(all, 0.99) / 1000, all.empty() ? 0.0 : all.back() / 1000);
            if (failed.load() > 0) exitCode = 1;
        }

        waitUntilIdle(services);
        const auto [entries, maxIndex] = countAndMaxIndex(conninfo);
        answered = static_cast<uint64_t>(entries - entriesBefore);
        const audit::AuditLogStats appended = services.audit->stats();
        std::printf("audit log: %lld entries written during the run (%lld in total, max index %lld: %s), "
                    "%.1f entries per group commit (%llu commits)\n",
                    static_cast<long long>(answered), static_cast<long long>(entries), static_cast<long long>(maxIndex),
                    entries == maxIndex + 1 ? "no gaps" : "GAPS",
                    appended.commits > 0
                        ? static_cast<double>(appended.entriesCommitted) / static_cast<double>(appended.commits)
                        : 0.0,
                    static_cast<unsigned long long>(appended.commits));
        if (entries != maxIndex + 1) exitCode = 1;

        // Verify what was written: the export's lines (as the export route writes them) through the
        // offline verifier, timed.
        auto head = services.audit->signTreeHead();
        if (!head) die(head.status().message());
        std::string exportText;
        {
            auto heads = services.audit->treeHeads(UINT64_MAX);
            auto rows = services.audit->entriesInRange(0, head->head.treeSize);
            if (!heads || !rows) die("cannot read the log back");
            size_t h = 0;
            for (const auto& r : *rows) {
                while (h < heads->size() && (*heads)[h].head.treeSize <= r.index)
                    exportText += audit::exportTreeHeadLine((*heads)[h++]) + "\n";
                exportText += audit::exportEntryLine(r.canonicalBytes, r.leafHash) + "\n";
            }
            while (h < heads->size()) exportText += audit::exportTreeHeadLine((*heads)[h++]) + "\n";
        }
        const auto v0 = Clock::now();
        auto report = audit::verifyAuditExport(exportText, services.signingKey->publicKey());
        const double vs = std::chrono::duration<double>(Clock::now() - v0).count();
        std::printf("verify: %s, %llu entries, %llu heads, %.1f MB in %.3f s (%.0f entries/s)\n",
                    report.ok ? "OK" : report.problem.c_str(), static_cast<unsigned long long>(report.entries),
                    static_cast<unsigned long long>(report.treeHeads), static_cast<double>(exportText.size()) / 1e6, vs,
                    static_cast<double>(report.entries) / vs);
        if (!report.ok) exitCode = 1;

        server.requestShutdown();
        serverThread.join();
    }
    {
        pqxx::connection admin(o.pg);
        pqxx::nontransaction tx(admin);
        tx.exec("DROP DATABASE " + dbName + " WITH (FORCE)");
    }
    std::filesystem::remove_all(keyDir);
    return exitCode;
}
