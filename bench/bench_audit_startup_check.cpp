// Start-up integrity check benchmark: the check `custodian serve` runs on its audit log at start
// (gateway/audit/integrity.hpp: stream every stored entry out of PostgreSQL, re-hash it, rebuild the
// Merkle tree, compare with every signed head) against `sha256sum` of the same entry bytes written
// to a file. Prints figures; not a test.
//
//   bench_audit_startup_check --pg "host=... port=... user=postgres dbname=postgres"
//                             [--entries N] [--head-every N] [--runs N]
//
// A fresh database is created on that (superuser) conninfo, filled with N synthetic entries (about
// 330 bytes each, like the gateway's) and a signed head every --head-every entries, vacuumed, and
// dropped at the end. Each side runs --runs times on a warm cache; the median is printed. "wall" is
// what the gateway waits for (PostgreSQL's work included); "cpu" is the checking process's own CPU
// time (PostgreSQL's server process not included), against sha256sum's.
#include <libpq-fe.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/audit_synthetic.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/audit/integrity.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/db/migrations.hpp"

#include <pqxx/pqxx>

using namespace custodian;
using namespace custodian::audit;
using bench::cpuSeconds;
using bench::syntheticEntry;

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string withDatabase(const std::string& conninfo, const std::string& database) {
    return conninfo + " dbname=" + database;  // later keywords win
}

void exec(PGconn* conn, const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error(sql.substr(0, 80) + ": " + PQerrorMessage(conn));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string pg;
    uint64_t entries = 1000000, headEvery = 1000;
    int runs = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--pg") == 0) pg = argv[i + 1];
        else if (std::strcmp(argv[i], "--entries") == 0) entries = std::strtoull(argv[i + 1], nullptr, 10);
        else if (std::strcmp(argv[i], "--head-every") == 0) headEvery = std::strtoull(argv[i + 1], nullptr, 10);
        else if (std::strcmp(argv[i], "--runs") == 0) runs = std::max(1, std::atoi(argv[i + 1]));
    }
    if (pg.empty() || entries == 0 || headEvery == 0) {
        std::fprintf(stderr,
                     "usage: bench_audit_startup_check --pg CONNINFO [--entries N] [--head-every N] [--runs N]\n");
        return 2;
    }
    const std::string database = "custodian_bench_check_" + std::to_string(::getpid());
    const std::string bytesPath =
        (std::filesystem::temp_directory_path() / ("custodian-bench-check-" + std::to_string(::getpid()) + ".bin"))
            .string();
    int status = 1;
    PGconn* admin = PQconnectdb(pg.c_str());
    try {
        if (PQstatus(admin) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(admin));
        exec(admin, "CREATE DATABASE " + database);
        const std::string conninfo = withDatabase(pg, database);
        {
            auto migrations = db::loadMigrations(CUSTODIAN_MIGRATIONS_DIR);
            if (!migrations) throw std::runtime_error(migrations.status().message());
            pqxx::connection conn(conninfo);
            auto applied = db::applyMigrations(conn, *migrations);
            if (!applied) throw std::runtime_error(applied.status().message());
        }

        // 1. The log: entries through COPY, a signed head every `headEvery`, the counter.
        auto key = crypto::SigningKey::generate();
        if (!key) throw std::runtime_error(key.status().message());
        auto t0 = Clock::now();
        PGconn* conn = PQconnectdb(conninfo.c_str());
        if (PQstatus(conn) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn));
        std::FILE* bytesFile = std::fopen(bytesPath.c_str(), "wb");
        if (bytesFile == nullptr) throw std::runtime_error("cannot write " + bytesPath);
        {
            PGresult* r = PQexec(conn, "COPY audit_entries (entry_index, entry, leaf_hash, recorded_at, actor, role, "
                                       "action, dataset, decision) FROM STDIN");
            const bool copying = PQresultStatus(r) == PGRES_COPY_IN;
            PQclear(r);
            if (!copying) throw std::runtime_error(std::string("COPY audit_entries: ") + PQerrorMessage(conn));
        }
        std::mt19937_64 rng(2026);
        MerkleTree tree;
        std::vector<SignedTreeHead> heads;
        uint64_t totalBytes = 0;
        std::string line;
        for (uint64_t i = 0; i < entries; ++i) {
            const AuditEntry e = syntheticEntry(i, rng);
            const std::string bytes = *canonicalEntryBytes(e);
            const Hash leaf = leafHash(crypto::asBytes(bytes));
            tree.append(leaf);
            std::fwrite(bytes.data(), 1, bytes.size(), bytesFile);
            totalBytes += bytes.size();
            // COPY text: bytea as \\x<hex> (the backslash escaped); the synthetic text needs no escaping.
            line = std::to_string(i) + "\t\\\\x" + crypto::toHex(crypto::asBytes(bytes)) + "\t\\\\x" +
                   crypto::toHex(leaf) + "\t2026-11-27 00:00:00+00\t" + e.actor + "\t" + e.role + "\t" + e.action +
                   "\t" + *e.target.dataset + "\t" + e.decision + "\n";
            if (PQputCopyData(conn, line.data(), static_cast<int>(line.size())) != 1)
                throw std::runtime_error(PQerrorMessage(conn));
            if ((i + 1) % headEvery == 0 || i + 1 == entries)
                heads.push_back(signTreeHead({i + 1, tree.root(), 1795000000000 + (i + 1) * 37}, *key));
        }
        std::fclose(bytesFile);
        if (PQputCopyEnd(conn, nullptr) != 1) throw std::runtime_error(PQerrorMessage(conn));
        while (PGresult* r = PQgetResult(conn)) {
            const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (!ok) throw std::runtime_error(std::string("COPY audit_entries: ") + PQerrorMessage(conn));
        }
        std::string insertHeads;
        for (const auto& h : heads) {
            if (!insertHeads.empty()) insertHeads += ',';
            insertHeads += "(" + std::to_string(h.head.treeSize) + ",'\\x" + crypto::toHex(h.head.rootHash) +
                           "'::bytea," + std::to_string(h.head.timestampMs) + ",'\\x" + crypto::toHex(h.signature) +
                           "'::bytea)";
        }
        exec(conn,
             "INSERT INTO audit_tree_heads (tree_size, root_hash, timestamp_ms, signature) VALUES " + insertHeads);
        exec(conn, "UPDATE audit_log_head SET next_index = " + std::to_string(entries));
        exec(conn, "VACUUM ANALYZE audit_entries");
        PQfinish(conn);
        std::printf("log: %llu entries, %zu signed tree heads, %.1f MB of entry bytes (%.0f bytes/entry), loaded in "
                    "%.1f s\n",
                    static_cast<unsigned long long>(entries), heads.size(), static_cast<double>(totalBytes) / 1e6,
                    static_cast<double>(totalBytes) / static_cast<double>(entries), seconds(t0));

        // 2. The start-up check, as the gateway runs it (one warm-up run first).
        StoredEntryReader reader(conninfo);
        std::vector<double> wall, cpu;
        for (int run = 0; run <= runs; ++run) {
            MerkleTree checked(nullptr, 10);
            t0 = Clock::now();
            const double c0 = cpuSeconds(RUSAGE_SELF);
            auto report = checkStoredLog(reader, key->publicKey(), checked);
            const double w = seconds(t0), c = cpuSeconds(RUSAGE_SELF) - c0;
            if (!report) throw std::runtime_error(report.status().message());
            if (report->failure) throw std::runtime_error("the check failed: " + report->failure->problem);
            if (report->entries != entries || report->bytes != totalBytes || checked.root() != tree.root())
                throw std::runtime_error("the check read a different log");
            if (run == 0) continue;
            wall.push_back(w);
            cpu.push_back(c);
        }
        const double mb = static_cast<double>(totalBytes) / 1e6;
        const double checkWall = median(wall), checkCpu = median(cpu);
        std::printf("start-up check:  wall %.2f s (%.0f MB/s)  cpu %.2f s (%.0f MB/s)  %zu heads verified\n", checkWall,
                    mb / checkWall, checkCpu, mb / checkCpu, heads.size());

        // 3. sha256sum of the same bytes (page cache warm).
        std::vector<double> shaWall, shaCpu;
        const std::string command = "sha256sum '" + bytesPath + "'";
        for (int run = 0; run <= runs; ++run) {
            t0 = Clock::now();
            const double c0 = cpuSeconds(RUSAGE_CHILDREN);
            std::FILE* pipe = ::popen(command.c_str(), "r");
            char digest[200] = {0};
            if (pipe == nullptr || std::fgets(digest, sizeof digest, pipe) == nullptr)
                throw std::runtime_error("sha256sum failed");
            ::pclose(pipe);
            const double w = seconds(t0), c = cpuSeconds(RUSAGE_CHILDREN) - c0;
            if (run == 0) continue;
            shaWall.push_back(w);
            shaCpu.push_back(c);
        }
        const double sw = median(shaWall), sc = median(shaCpu);
        std::printf("sha256sum:       wall %.2f s (%.0f MB/s)  cpu %.2f s (%.0f MB/s)  (same %.1f MB)\n", sw, mb / sw,
                    sc, mb / sc, mb);
        std::printf("start-up check / sha256sum throughput: wall %.2fx, cpu %.2fx  (target >= 0.5x)\n", sw / checkWall,
                    sc / checkCpu);
        status = 0;
    } catch (const std::exception& e) { std::fprintf(stderr, "bench_audit_startup_check: %s\n", e.what()); }
    std::filesystem::remove(bytesPath);
    if (PQstatus(admin) == CONNECTION_OK) {
        PGresult* r = PQexec(admin, ("DROP DATABASE IF EXISTS " + database).c_str());
        PQclear(r);
    }
    PQfinish(admin);
    return status;
}
