// Extract throughput and memory against a raw COPY of the same rows, in the same run.
//
//   bench_extract CONNINFO [ROWS] [--dataset benefits|people] [--repeat N]
//   (or CUSTODIAN_BENCH_PG=CONNINFO bench_extract ...)
//
// CONNINFO is a libpq keyword=value string of a PostgreSQL superuser (e.g. from `ops/pg start DIR`).
// The benchmark (re)creates the database custodian_bench_extract with a deterministic table of ROWS
// (default 1,000,000) rows:
//   benefits (default)  the near-unique social-benefit records of bench/benefits_synthetic.hpp
//                       (birth date, 5-digit postcode, sex, municipality, household size: ~99.4 %
//                       of the rows have a combination of their own; skewed categories, NULLs,
//                       quoted text), policy k = 5 with 2 % suppression (`generate_benefits --policy`);
//   people              the earlier 10-column table with three coarse quasi-identifiers, k = 10.
// Then, in one run:
//   baseline  psql -c "\copy (SELECT <the table's columns> FROM ...) TO STDOUT" > /dev/null
//   extract   the gateway's release pipeline on the same table — counting the combinations (in the
//             gateway, then by GROUP BY in PostgreSQL), optimal search, COPY streaming, transforms,
//             CSV encoding, the final check, libsodium sealing: everything POST /v1/extracts does
//             except the socket write;
//   mondrian  the same extract partitioned by strict Mondrian (k only, no suppression).
// Each extract runs in a child process of its own, so its peak RSS is its own (wait4). Printed per
// extract: time to the first sealed byte after the header (what a client waits for), total time,
// rows/s, the ratio to \copy (issue 16 targets: >= 0.5 at 1M rows, >= 0.4 at 10M), peak RSS
// (<= 200 MB at 1M, <= 400 MB at 10M), how long the first read and the search took before the rows
// started (and the search alone), and the CPU time of the extract's process (all its threads; the
// database server's is not included). With --repeat N, N more global-recoding extracts run one
// after the other in one process, printing the time, CPU time and resident memory after each
// (target: the tenth within 20 % of the first).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#include "anonymizer/transform.hpp"
#include "benefits_synthetic.hpp"
#include "cpu_time.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/release/memory_budget.hpp"
#include "gateway/release/stream.hpp"
#include "policies/policy.hpp"

using namespace custodian;

namespace {

constexpr const char* kDatabase = "custodian_bench_extract";
constexpr const char* kPeopleColumns =
    "id, full_name, birth_year, sex, zip, income, diagnosis, visit_date, cost, notes";

const char* kPeoplePolicy = R"({
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

// Resident set size now (VmRSS), MiB.
double residentMiB() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
    }
    return 0;
}

struct ExtractRun {
    double seconds = 0, firstByteSeconds = 0;
    double prepareSeconds = 0, searchSeconds = 0;  // the first read and the search; the search alone
    char levels[64] = {};
    uint64_t released = 0, suppressed = 0, smallestClass = 0, cipherBytes = 0;
    uint64_t accountedPeakBytes = 0;  // the most the release held by its own account (memory_budget.hpp)
};

// One extract with encryption, as POST /v1/extracts runs it minus the socket.
Result<ExtractRun> runExtract(const release::SourceLocation& source, std::shared_ptr<const policies::Policy> policy,
                              const std::string& dataset) {
    std::vector<uint8_t> keyBytes(32, 42);
    auto transformKey = anon::MasterKey::fromBytes(keyBytes);
    auto recipient = crypto::BoxSecretKey::generate();
    if (!transformKey) return transformKey.status();
    if (!recipient) return recipient.status();
    ExtractRun run;
    const auto t0 = std::chrono::steady_clock::now();
    auto stream = release::ReleaseStream::prepare(
        source, std::move(policy),
        {{anon::kCurrentKeyDerivation, dataset, "bench", "bench-partner"}, &*transformKey, nullptr},
        release::ExtractFormat::Csv);
    if (!stream) return stream.status();
    run.prepareSeconds = seconds(t0);
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
        if (run.firstByteSeconds == 0) run.firstByteSeconds = seconds(t0);
        run.cipherBytes += sealed->size();
        if (last) break;
    }
    run.seconds = seconds(t0);
    if (!(*stream)->finalCheck()) return (*stream)->finalCheck().status().withContext("final check");
    const auto& decision = *(*stream)->decision();
    run.searchSeconds = decision.searchSeconds;
    std::string levels = "levels ";
    for (size_t i = 0; i < decision.levels.size(); ++i) levels += (i ? "," : "") + std::to_string(decision.levels[i]);
    if (decision.local) levels = std::to_string(decision.local->partitions.partitionSizes.size()) + " partitions";
    std::snprintf(run.levels, sizeof run.levels, "%s", levels.c_str());
    run.released = (*stream)->rowsReleased();
    run.suppressed = (*stream)->rowsSuppressed();
    run.smallestClass = (*stream)->finalCheck()->minClassSize;
    run.accountedPeakBytes = (*stream)->memory().peakBytes();
    return run;
}

// Runs one extract in a child process; returns its figures, the child's peak RSS (KiB) and the CPU
// time of its threads (user + system; the database server's is not included).
bool runInChild(const release::SourceLocation& source, std::shared_ptr<const policies::Policy> policy,
                const std::string& dataset, ExtractRun& out, long& peakKiB, double& cpuSeconds) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        close(fds[0]);
        auto run = runExtract(source, std::move(policy), dataset);
        if (!run) {
            std::fprintf(stderr, "bench_extract: %s\n", run.status().message().c_str());
            _exit(1);
        }
        const ssize_t n = write(fds[1], &*run, sizeof(ExtractRun));
        _exit(n == static_cast<ssize_t>(sizeof(ExtractRun)) ? 0 : 1);
    }
    close(fds[1]);
    const ssize_t n = read(fds[0], &out, sizeof(ExtractRun));
    close(fds[0]);
    int status = 0;
    rusage usage{};
    wait4(pid, &status, 0, &usage);
    peakKiB = usage.ru_maxrss;
    cpuSeconds = bench::cpuOf(usage);
    return n == static_cast<ssize_t>(sizeof(ExtractRun)) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool loadBenefits(const std::string& conninfo, long rows) {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction nt(conn);
    nt.exec("CREATE SCHEMA bench");
    nt.exec(bench::kBenefitsCreateTable);
    const std::string command = "psql " + shellQuote(conninfo) + " -X -q -c " +
                                shellQuote("\\copy bench.benefits FROM STDIN WITH (FORMAT csv, HEADER true)");
    FILE* psql = popen(command.c_str(), "w");
    if (!psql) return false;
    bench::writeBenefitsCsv(psql, static_cast<uint64_t>(rows));
    if (pclose(psql) != 0) return false;
    nt.exec("VACUUM ANALYZE bench.benefits");
    return true;
}

void loadPeople(const std::string& conninfo, long rows) {
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
            "FROM generate_series(1::bigint, " +
            std::to_string(rows) + ") AS g");
    tx.commit();
    pqxx::nontransaction nt(conn);
    nt.exec("VACUUM ANALYZE bench.people");
}

std::string replaceOnce(std::string s, const std::string& what, const std::string& with) {
    const size_t at = s.find(what);
    if (at == std::string::npos) {
        std::fprintf(stderr, "bench_extract: policy text '%s' not found\n", what.c_str());
        std::exit(1);
    }
    return s.replace(at, what.size(), with);
}

}  // namespace

int main(int argc, char** argv) {
    release::configureAllocator();  // as `custodian serve` does
    std::string admin, dataset = "benefits";
    long rows = 1000000;
    int repeat = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--dataset" && i + 1 < argc) dataset = argv[++i];
        else if (arg == "--repeat" && i + 1 < argc) repeat = std::atoi(argv[++i]);
        else if (admin.empty() && arg.find('=') != std::string_view::npos) admin = argv[i];
        else rows = std::atol(argv[i]);
    }
    if (admin.empty() && std::getenv("CUSTODIAN_BENCH_PG")) admin = std::getenv("CUSTODIAN_BENCH_PG");
    if (admin.empty() || rows <= 0 || (dataset != "benefits" && dataset != "people") || repeat < 0) {
        std::fprintf(stderr, "usage: bench_extract CONNINFO [ROWS] [--dataset benefits|people] [--repeat N]\n"
                             "   (or set CUSTODIAN_BENCH_PG); CONNINFO: a superuser conninfo, e.g. the output of\n"
                             "   `ops/pg start /tmp/pg`\n");
        return 2;
    }
    const std::string conninfo = admin + " dbname=" + kDatabase;
    const bool benefits = dataset == "benefits";

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
        if (benefits) {
            if (!loadBenefits(conninfo, rows)) {
                std::fprintf(stderr, "bench_extract: psql \\copy of the generated rows failed\n");
                return 1;
            }
        } else {
            loadPeople(conninfo, rows);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_extract: cannot load the table: %s\n", e.what());
        return 1;
    }
    const char* table = benefits ? "benefits" : "people";
    const char* columns = benefits ? bench::kBenefitsColumns : kPeopleColumns;
    std::printf("table bench.%s: %ld rows (loaded in %.1f s)\n", table, rows, seconds(t0));
    try {
        pqxx::connection conn(conninfo);
        pqxx::nontransaction nt(conn);
        const std::string qis =
            benefits ? "birth_date, postcode, sex, municipality, household_size" : "birth_year, sex, zip";
        const auto distinct =
            nt.exec1("SELECT count(*) FROM (SELECT DISTINCT " + qis + " FROM bench." + table + ") d")[0].as<long>();
        std::printf("quasi-identifiers (%s): %ld distinct combinations\n", qis.c_str(), distinct);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_extract: %s\n", e.what());
        return 1;
    }

    // Baseline: psql \copy of the same rows to /dev/null.
    const std::string command =
        "psql " + shellQuote(conninfo) + " -X -q -c " +
        shellQuote(std::string("\\copy (SELECT ") + columns + " FROM bench." + table + ") TO STDOUT") + " > /dev/null";
    t0 = std::chrono::steady_clock::now();
    const int rc = std::system(command.c_str());
    const double copySeconds = seconds(t0);
    if (rc != 0) {
        std::fprintf(stderr, "bench_extract: psql failed (%d): %s\n", rc, command.c_str());
        return 1;
    }
    const double copyRate = static_cast<double>(rows) / copySeconds;
    std::printf("baseline psql \\copy        : %8.2f s  %10.0f rows/s\n", copySeconds, copyRate);

    const std::string policyText = benefits ? bench::kBenefitsPolicy : kPeoplePolicy;
    auto loaded = policies::loadPolicy(policyText);
    const std::string privacy = benefits ? R"("privacy": {"k": 5, "suppression_limit": 0.02})"
                                         : R"("privacy": {"k": 10, "suppression_limit": 0.02})";
    std::string mondrianText =
        replaceOnce(policyText, R"("algorithm": {"name": "optimal"})", R"("algorithm": {"name": "mondrian"})");
    mondrianText = replaceOnce(mondrianText, privacy, benefits ? R"("privacy": {"k": 5})" : R"("privacy": {"k": 10})");
    auto mondrian = policies::loadPolicy(mondrianText);
    if (!loaded.ok() || !mondrian.ok()) {
        std::fprintf(stderr, "bench_extract: policy: %s\n",
                     (loaded.ok() ? mondrian.errors : loaded.errors)[0].message.c_str());
        return 1;
    }
    const release::SourceLocation gatewayCounts{conninfo, "bench", table, std::chrono::seconds(5),
                                                release::GroupCounting::Gateway};
    const release::SourceLocation databaseCounts{conninfo, "bench", table, std::chrono::seconds(5),
                                                 release::GroupCounting::Database};
    const struct {
        const release::SourceLocation* source;
        const char* label;
        std::shared_ptr<const policies::Policy> policy;
    } runs[] = {{&gatewayCounts, "global recoding, combinations counted in the gateway (default)", loaded.policy},
                {&databaseCounts, "global recoding, combinations counted by GROUP BY in PostgreSQL", loaded.policy},
                {&gatewayCounts, "strict Mondrian (local recoding)", mondrian.policy}};
    const char* model = benefits ? "k=5, 5 QIs" : "k=10, 3 QIs";
    for (const auto& [source, label, policy] : runs) {
        ExtractRun run;
        long peakKiB = 0;
        double cpuSeconds = 0;
        if (!runInChild(*source, policy, table, run, peakKiB, cpuSeconds)) {
            std::fprintf(stderr, "bench_extract: the extract (%s) failed\n", label);
            return 1;
        }
        const double extractRate = static_cast<double>(rows) / run.seconds;
        std::printf("extract, %s:\n", label);
        std::printf("  %s, sealed: first byte %.2f s, total %.2f s, %10.0f rows/s, %s\n", model, run.firstByteSeconds,
                    run.seconds, extractRate, run.levels);
        std::printf("  first read and search %.2f s (search %.2f s), then streaming %.2f s; CPU of the extract's "
                    "process %.2f s (user + system, all its threads)\n",
                    run.prepareSeconds, run.searchSeconds, run.seconds - run.prepareSeconds, cpuSeconds);
        std::printf("  rows released %llu, suppressed %llu, smallest class %llu, ciphertext %.1f MiB\n",
                    static_cast<unsigned long long>(run.released), static_cast<unsigned long long>(run.suppressed),
                    static_cast<unsigned long long>(run.smallestClass),
                    static_cast<double>(run.cipherBytes) / (1024.0 * 1024.0));
        std::printf("  ratio extract / copy: %.2f (target >= %.1f), peak RSS %.1f MiB (target <= %d), "
                    "accounted peak %.1f MiB (release.memory_budget_mb)\n",
                    extractRate / copyRate, rows > 2000000 ? 0.4 : 0.5, static_cast<double>(peakKiB) / 1024.0,
                    rows > 2000000 ? 400 : 200, static_cast<double>(run.accountedPeakBytes) / (1024.0 * 1024.0));
    }
    if (repeat > 0) {
        std::printf("%d global-recoding extracts in a row in this process, resident memory after each:\n", repeat);
        double first = 0;
        for (int i = 0; i < repeat; ++i) {
            rusage before{}, after{};
            getrusage(RUSAGE_SELF, &before);
            auto run = runExtract(gatewayCounts, loaded.policy, table);
            getrusage(RUSAGE_SELF, &after);
            if (!run) {
                std::fprintf(stderr, "bench_extract: %s\n", run.status().message().c_str());
                return 1;
            }
            const double rss = residentMiB();
            if (i == 0) first = rss;
            std::printf("  %2d: %.2f s, CPU %.2f s, RSS %.1f MiB (%+.0f %% of the first)\n", i + 1, run->seconds,
                        bench::cpuOf(after) - bench::cpuOf(before), rss, first > 0 ? (rss / first - 1) * 100 : 0.0);
        }
    }
    return 0;
}
