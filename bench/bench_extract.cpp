// Extract throughput against a raw COPY of the same rows, in the same run.
//
//   bench_extract CONNINFO [ROWS]      (or CUSTODIAN_BENCH_PG=CONNINFO bench_extract)
//
// CONNINFO is a libpq keyword=value string of a PostgreSQL superuser (e.g. from `ops/pg start DIR`).
// The benchmark (re)creates the database custodian_bench_extract with a deterministic table of ROWS
// (default 1,000,000) rows and 10 columns, then measures:
//   baseline  psql -c "\copy (SELECT <the 10 columns> FROM bench.people) TO STDOUT" > /dev/null
//   extract   the gateway's release pipeline on the same table, twice: combinations counted in
//             the gateway (the default) and by GROUP BY in PostgreSQL; then optimal search, COPY streaming, pseudonymization, three generalized
//             quasi-identifiers, k = 10, CSV encoding, the final check, and libsodium sealing —
//             everything POST /v1/extracts does except the socket write.
//   mondrian  the same extract under the same policy partitioned by strict Mondrian (k = 10): the
//             quasi-identifiers of every row read once and held encoded, then the rows streamed
//             a second time in the same order.
// It prints rows/s of both, the ratio (target >= 0.5), and this process's peak RSS after the
// global-recoding runs and after the Mondrian run.
#include <sys/resource.h>
#include <sys/wait.h>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "anonymizer/transform.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/release/stream.hpp"
#include "policies/policy.hpp"

using namespace custodian;

namespace {

constexpr const char* kDatabase = "custodian_bench_extract";
constexpr const char* kColumns = "id, full_name, birth_year, sex, zip, income, diagnosis, visit_date, cost, notes";

const char* kPolicy = R"({
  "dataset": "people",
  "recipients": ["bench-partner"],
  "purposes": ["benchmark"],
  "columns": [
    {"name": "id", "type": "integer", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "full_name", "type": "text", "role": "identifier", "transform": {"name": "drop"}},
    {"name": "birth_year", "type": "integer", "role": "quasi_identifier",
     "hierarchy": {"builder": "intervals", "widths": [5, 10, 20, 40]}},
    {"name": "sex", "type": "text", "role": "quasi_identifier",
     "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
    {"name": "zip", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "prefix"}},
    {"name": "income", "type": "integer", "role": "insensitive"},
    {"name": "diagnosis", "type": "text", "role": "sensitive"},
    {"name": "visit_date", "type": "date", "role": "insensitive"},
    {"name": "cost", "type": "decimal", "role": "insensitive", "transform": {"name": "round", "params": {"base": 100}}},
    {"name": "notes", "type": "text", "role": "insensitive"}
  ],
  "privacy": {"k": 10, "suppression_limit": 0.02},
  "algorithm": {"name": "optimal"},
  "metric": "loss"
})";

double seconds(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

long peakRssKiB() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}


struct ExtractRun {
    double seconds = 0, searchSeconds = 0;
    std::string levels;
    uint64_t released = 0, suppressed = 0, smallestClass = 0, cipherBytes = 0;
};

// One extract of bench.people with encryption, as POST /v1/extracts runs it minus the socket.
Result<ExtractRun> runExtract(const std::string& conninfo, std::shared_ptr<const policies::Policy> policy,
                              release::GroupCounting counting) {
    std::vector<uint8_t> keyBytes(32, 42);
    auto transformKey = anon::MasterKey::fromBytes(keyBytes);
    auto recipient = crypto::BoxSecretKey::generate();
    if (!transformKey) return transformKey.status();
    if (!recipient) return recipient.status();
    ExtractRun run;
    const auto t0 = std::chrono::steady_clock::now();
    release::SourceLocation source{conninfo, "bench", "people", std::chrono::seconds(5), counting};
    auto stream = release::ReleaseStream::prepare(source, std::move(policy),
                                                  {"people", "bench-partner", &*transformKey, nullptr},
                                                  release::ExtractFormat::Csv);
    if (!stream) return stream.status();
    run.searchSeconds = seconds(t0);
    if ((*stream)->unreachable()) return failedPrecondition((*stream)->unreachable()->message);
    auto sealer = crypto::ExtractSealer::create(recipient->publicKey());
    if (!sealer) return sealer.status();
    if (Status s = (*stream)->start(); !s) return s;
    run.cipherBytes = sealer->header().size();
    for (;;) {
        auto page = (*stream)->nextPage();
        if (!page) return page.status();
        const bool last = (*stream)->finished();
        if (!*page && !last) break;
        const std::string_view text = *page ? std::string_view(**page) : std::string_view();
        auto sealed = sealer->seal(crypto::asBytes(text), last);
        if (!sealed) return sealed.status();
        run.cipherBytes += sealed->size();
        if (last) break;
    }
    run.seconds = seconds(t0);
    if (!(*stream)->finalCheck()) return (*stream)->finalCheck().status().withContext("final check");
    const auto& decision = *(*stream)->decision();
    run.levels = "levels ";
    for (size_t i = 0; i < decision.levels.size(); ++i) run.levels += (i ? "," : "") + std::to_string(decision.levels[i]);
    if (decision.local) run.levels = std::to_string(decision.local->partitions.partitionSizes.size()) + " partitions";
    run.released = (*stream)->rowsReleased();
    run.suppressed = (*stream)->rowsSuppressed();
    run.smallestClass = (*stream)->finalCheck()->minClassSize;
    return run;
}
}  // namespace

int main(int argc, char** argv) {
    const char* env = std::getenv("CUSTODIAN_BENCH_PG");
    if (argc < 2 && (!env || !*env)) {
        std::fprintf(stderr, "usage: bench_extract CONNINFO [ROWS]   (or set CUSTODIAN_BENCH_PG)\n"
                             "CONNINFO: a superuser conninfo, e.g. the output of `ops/pg start /tmp/pg`\n");
        return 2;
    }
    const std::string admin = argc >= 2 ? argv[1] : env;
    const long rows = argc >= 3 ? std::atol(argv[2]) : 1000000;
    const std::string conninfo = admin + " dbname=" + kDatabase;

    try {
        pqxx::connection adminConn(admin);
        pqxx::nontransaction nt(adminConn);
        nt.exec(std::string("DROP DATABASE IF EXISTS ") + kDatabase);
        nt.exec(std::string("CREATE DATABASE ") + kDatabase);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_extract: cannot create the database: %s\n", e.what());
        return 1;
    }
    auto t0 = std::chrono::steady_clock::now();
    try {
        pqxx::connection conn(conninfo);
        pqxx::work tx(conn);
        tx.exec("CREATE SCHEMA bench");
        tx.exec("CREATE TABLE bench.people (id bigint, full_name text, birth_year integer, sex text, zip text, "
                "income integer, diagnosis text, visit_date date, cost numeric(10,2), notes text)");
        // setseed() makes random() deterministic: every run gets the same table. Independent
        // quasi-identifiers (80 birth years x 2 sexes x 900 postcodes for 1M rows: about 7 rows per
        // combination) force the search to generalize to reach k = 10.
        tx.exec("SELECT setseed(0.2026)");
        tx.exec("INSERT INTO bench.people SELECT g, 'Person ' || g, 1930 + floor(random() * 80)::integer, "
                "CASE WHEN random() < 0.5 THEN 'F' ELSE 'M' END, (10000 + floor(random() * 900)::integer)::text, "
                "20000 + floor(random() * 90000)::integer, "
                "(ARRAY['I10','E11','J45','M54','F32','K21','I25','J18'])[1 + floor(random() * 8)::integer], "
                "DATE '2024-01-01' + floor(random() * 730)::integer, round((random() * 50000)::numeric, 2), "
                "'visit note ' || (g % 97) "
                "FROM generate_series(1::bigint, " + std::to_string(rows) + ") AS g");
        tx.commit();
        pqxx::nontransaction nt(conn);
        nt.exec("VACUUM ANALYZE bench.people");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_extract: cannot load the table: %s\n", e.what());
        return 1;
    }
    std::printf("table bench.people: %ld rows, 10 columns (loaded in %.1f s)\n", rows, seconds(t0));

    // Baseline: psql \copy of the same rows to /dev/null.
    const std::string command = "psql " + shellQuote(conninfo) + " -X -q -c " +
                                shellQuote(std::string("\\copy (SELECT ") + kColumns + " FROM bench.people) TO STDOUT") +
                                " > /dev/null";
    t0 = std::chrono::steady_clock::now();
    const int rc = std::system(command.c_str());
    const double copySeconds = seconds(t0);
    if (rc != 0) {
        std::fprintf(stderr, "bench_extract: psql failed (%d): %s\n", rc, command.c_str());
        return 1;
    }

    auto loaded = policies::loadPolicy(kPolicy);
    if (!loaded.ok()) {
        std::fprintf(stderr, "bench_extract: policy: %s\n", loaded.errors[0].message.c_str());
        return 1;
    }
    const double copyRate = static_cast<double>(rows) / copySeconds;
    std::printf("baseline psql \\copy        : %8.2f s  %10.0f rows/s\n", copySeconds, copyRate);
    // The default first (the figure the target is about), then GROUP BY pushdown for comparison.
    std::string mondrianJson = kPolicy;
    const std::string optimal = R"("algorithm": {"name": "optimal"})";
    mondrianJson.replace(mondrianJson.find(optimal), optimal.size(), R"("algorithm": {"name": "mondrian"})");
    const std::string privacy = R"("privacy": {"k": 10, "suppression_limit": 0.02})";
    mondrianJson.replace(mondrianJson.find(privacy), privacy.size(), R"("privacy": {"k": 10})");
    auto mondrian = policies::loadPolicy(mondrianJson);
    if (!mondrian.ok()) {
        std::fprintf(stderr, "bench_extract: Mondrian policy: %s\n", mondrian.errors[0].message.c_str());
        return 1;
    }
    const struct {
        release::GroupCounting counting;
        const char* label;
        std::shared_ptr<const policies::Policy> policy;
    } runs[] = {{release::GroupCounting::Gateway, "combinations counted in the gateway (default)", loaded.policy},
                {release::GroupCounting::Database, "combinations counted by GROUP BY in PostgreSQL", loaded.policy},
                {release::GroupCounting::Gateway, "strict Mondrian (local recoding)", mondrian.policy}};
    for (const auto& [counting, label, policy] : runs) {
        if (policy == mondrian.policy)
            std::printf("peak RSS after the global-recoding runs: %.1f MiB\n", static_cast<double>(peakRssKiB()) / 1024.0);
        auto run = runExtract(conninfo, policy, counting);
        if (!run) {
            std::fprintf(stderr, "bench_extract: %s\n", run.status().message().c_str());
            return 1;
        }
        const double extractRate = static_cast<double>(rows) / run->seconds;
        std::printf("extract, %s:\n", label);
        std::printf("  k=10, 3 QIs, pseudonyms, sealed: %8.2f s  %10.0f rows/s  (reading + search %.2f s, %s)\n",
                    run->seconds, extractRate, run->searchSeconds, run->levels.c_str());
        std::printf("  rows released %llu, suppressed %llu, smallest class %llu, ciphertext %.1f MiB\n",
                    static_cast<unsigned long long>(run->released), static_cast<unsigned long long>(run->suppressed),
                    static_cast<unsigned long long>(run->smallestClass), static_cast<double>(run->cipherBytes) / (1024.0 * 1024.0));
        std::printf("  ratio extract / copy: %.2f (target >= 0.5)\n", extractRate / copyRate);
    }
    std::printf("peak RSS after the Mondrian run: %.1f MiB\n", static_cast<double>(peakRssKiB()) / 1024.0);
    return 0;
}
