// Anonymizer benchmark: optimal global recoding and Mondrian on UCI Adult, and on Adult-like
// synthetic tables of 1,000,000 and 10,000,000 rows. Prints figures; not a test.
//
//   bench_anonymizer [--runs N] [--synthetic 1000000,10000000] [--skip-exhaustive]
// (--synthetic 0 skips the synthetic tables.)
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "anonymizer/engine.hpp"
#include "anonymizer/frequency_table.hpp"
#include "anonymizer/hierarchy.hpp"
#include "anonymizer/mondrian.hpp"
#include "anonymizer/optimal_search.hpp"

using namespace custodian::anon;

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// CPU time of the calling thread: stable when other processes compete for the cores.
double threadCpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// User + system CPU time of this process.
double processCpuSeconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

long peakRssMb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024;
}

std::vector<std::vector<std::string>> readSemicolonFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", path.c_str());
        std::exit(1);
    }
    std::vector<std::vector<std::string>> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        std::vector<std::string> fields;
        size_t start = 0;
        for (;;) {
            const size_t end = line.find(';', start);
            fields.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
            if (end == std::string::npos) break;
            start = end + 1;
        }
        rows.push_back(std::move(fields));
    }
    return rows;
}

struct Adult {
    std::vector<std::string> columns;
    std::vector<std::shared_ptr<const Hierarchy>> hierarchies;
    std::vector<std::vector<uint32_t>> codes;  // per row, leaf codes in column order
};

Adult loadAdult() {
    Adult a;
    const std::string dir = CUSTODIAN_ADULT_DIR;
    auto rows = readSemicolonFile(dir + "/adult.csv");
    a.columns = rows.front();
    for (const auto& c : a.columns) {
        auto h = Hierarchy::fromRows(c, readSemicolonFile(dir + "/adult_hierarchy_" + c + ".csv"));
        if (!h) {
            std::fprintf(stderr, "%s\n", h.status().message().c_str());
            std::exit(1);
        }
        a.hierarchies.push_back(std::make_shared<const Hierarchy>(std::move(h.value())));
    }
    for (size_t r = 1; r < rows.size(); ++r) {
        std::vector<uint32_t> codes;
        for (size_t c = 0; c < a.columns.size(); ++c) codes.push_back(*a.hierarchies[c]->leafCode(rows[r][c]));
        a.codes.push_back(std::move(codes));
    }
    return a;
}

FrequencyTable buildTable(const Adult& a, const std::vector<std::vector<uint32_t>>& rows) {
    std::vector<uint32_t> cards;
    for (const auto& h : a.hierarchies) cards.push_back(static_cast<uint32_t>(h->leafCount()));
    auto b = FrequencyTableBuilder::create(cards);
    for (const auto& r : rows) b->addUnchecked(r.data(), nullptr);
    return std::move(b.value()).finish();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::string levelsText(const std::vector<int>& levels) {
    std::string s = "[";
    for (size_t i = 0; i < levels.size(); ++i) s += (i ? "," : "") + std::to_string(levels[i]);
    return s + "]";
}

void benchOptimalAdult(const Adult& a, int runs, bool exhaustive) {
    const auto t0 = Clock::now();
    const FrequencyTable table = buildTable(a, a.codes);
    const double buildSeconds = seconds(t0);
    std::printf("Adult: %zu rows, %zu quasi-identifiers, %zu distinct combinations (frequency table %.2f ms)\n",
                a.codes.size(), a.columns.size(), table.size(), buildSeconds * 1e3);
    struct Case {
        uint64_t k;
        double suppression;
        Metric metric;
    };
    double baselineCpu[8] = {};  // per metric: k = 5 without suppression
    for (const Case& c : {Case{5, 0, Metric::NonUniformEntropy}, Case{5, 0, Metric::Discernibility},
                          Case{5, 0, Metric::Loss}, Case{100, 0, Metric::NonUniformEntropy},
                          Case{5, 0.02, Metric::NonUniformEntropy}, Case{5, 0.04, Metric::NonUniformEntropy},
                          Case{5, 0.04, Metric::Loss}, Case{5, 0.04, Metric::Discernibility}}) {
        // The entry point the gateway's releases call (the search and the suppressed classes' index).
        AnonymizationConfig config;
        for (size_t q = 0; q < a.columns.size(); ++q)
            config.quasiIdentifiers.push_back({a.columns[q], a.hierarchies[q], false, 0, -1});
        config.models.k = c.k;
        config.models.suppressionLimit = c.suppression;
        config.metric = c.metric;
        const OptimalSearchConfig cfg = optimalSearchConfig(config);
        std::vector<double> times, cpu;
        custodian::Result<GlobalRecoding> recoding = custodian::failedPrecondition("not run");
        for (int r = 0; r < runs; ++r) {
            const auto s = Clock::now();
            const double c0 = threadCpuSeconds();
            recoding = anonymizeGlobal(config, table);
            cpu.push_back(threadCpuSeconds() - c0);
            times.push_back(seconds(s));
        }
        if (!recoding) {
            std::printf("  k=%llu: %s\n", static_cast<unsigned long long>(c.k), recoding.status().message().c_str());
            continue;
        }
        const OptimalSolution* sol = &recoding->solution;
        std::printf(
            "  optimal k=%llu suppression=%.0f%% %s: median %.2f ms wall (%.2f ms CPU) over %d runs (min %.2f), node "
            "%s, "
            "loss %.6g, evaluated %zu of %zu nodes (%zu from the table, %zu classes rolled up; %zu two-QI projections, "
            "%zu of %zu candidates evaluated)\n",
            static_cast<unsigned long long>(c.k), c.suppression * 100, metricName(c.metric), median(times) * 1e3,
            median(cpu) * 1e3, runs, *std::min_element(times.begin(), times.end()) * 1e3,
            levelsText(sol->best.levels).c_str(), sol->objective, sol->nodesEvaluated, sol->latticeSize,
            sol->evaluationsFromTable, sol->classesRolledUp, sol->projections, sol->candidatesEvaluated,
            sol->candidates);
        // Issue 16.4: a suppression limit must not cost more than 3x the search without one.
        if (c.suppression == 0 && c.k == 5) baselineCpu[static_cast<size_t>(c.metric)] = median(cpu);
        if (c.suppression > 0 && baselineCpu[static_cast<size_t>(c.metric)] > 0) {
            std::printf("    %.1fx the CPU time of k=5 with 0%% suppression, same metric, same run (target <= 3x)\n",
                        median(cpu) / baselineCpu[static_cast<size_t>(c.metric)]);
        }
        if (exhaustive) {
            const auto s = Clock::now();
            const double c0 = threadCpuSeconds();
            auto ex = exhaustiveGeneralization(table, cfg);
            const double exCpu = threadCpuSeconds() - c0;
            const double exSeconds = seconds(s);
            std::printf(
                "    exhaustive (all %zu nodes, same evaluator): %.1f ms wall (%.1f ms CPU), node %s, loss %.6g, "
                "same node: %s, speed-up %.1fx wall, %.1fx CPU\n",
                sol->latticeSize, exSeconds * 1e3, exCpu * 1e3, ex ? levelsText(ex->best.levels).c_str() : "-",
                ex ? ex->objective : 0.0, ex && ex->best.levels == sol->best.levels ? "yes" : "NO",
                exSeconds / median(times), exCpu / median(cpu));
        }
    }
}

const char* kMondrianColumns[] = {"age",        "workclass", "education", "marital-status",
                                  "occupation", "race",      "sex",       "native-country"};

MondrianConfig mondrianConfig(const Adult& a, uint64_t k, std::vector<size_t>& columnIndex) {
    MondrianConfig cfg;
    columnIndex.clear();
    for (const char* name : kMondrianColumns) {
        const size_t c = static_cast<size_t>(std::find(a.columns.begin(), a.columns.end(), name) - a.columns.begin());
        columnIndex.push_back(c);
        cfg.hierarchies.push_back(a.hierarchies[c]);
        cfg.numeric.push_back(std::string(name) == "age");
    }
    cfg.models.k = k;
    return cfg;
}

void benchMondrianAdult(const Adult& a, int runs) {
    std::vector<size_t> index;
    MondrianConfig cfg = mondrianConfig(a, 10, index);
    std::vector<std::vector<uint32_t>> cols(index.size());
    for (size_t d = 0; d < index.size(); ++d) {
        for (const auto& r : a.codes) cols[d].push_back(r[index[d]]);
    }
    EncodedColumns view;
    for (const auto& c : cols) view.qi.emplace_back(c);
    for (int variant = 0; variant < 4; ++variant) {
        const MondrianMode mode = variant % 2 ? MondrianMode::Relaxed : MondrianMode::Strict;
        cfg.mode = mode;
        cfg.valueSets = variant >= 2;
        std::vector<double> times, cpu;
        custodian::Result<MondrianResult> r = custodian::failedPrecondition("not run");
        for (int i = 0; i < runs; ++i) {
            const auto s = Clock::now();
            const double c0 = threadCpuSeconds();
            r = mondrianPartition(cfg, view);
            cpu.push_back(threadCpuSeconds() - c0);
            times.push_back(seconds(s));
        }
        if (!r) {
            std::printf("  mondrian: %s\n", r.status().message().c_str());
            continue;
        }
        std::printf("  mondrian %s%s k=10 (8 columns, age numeric): median %.2f ms wall (%.2f ms CPU) over %d runs, "
                    "%zu classes (%zu partitions), NCP %.2f %%, discernibility %.0f, smallest %llu\n",
                    mode == MondrianMode::Strict ? "strict" : "relaxed", cfg.valueSets ? " value-sets" : "",
                    median(times) * 1e3, median(cpu) * 1e3, runs, r->partitionSizes.size(), r->partitions, r->ncp * 100,
                    r->discernibility, static_cast<unsigned long long>(r->achievedK));
    }
}

// Adult-like synthetic rows, deterministic: a random Adult record whose age moves by -2..+2 years
// half of the time and, one time in ten, one categorical value replaced by a random value of its
// domain. Rows are generated on the fly, so the optimal search pipeline never stores them.
class SyntheticAdult {
public:
    SyntheticAdult(const Adult& a, uint64_t seed) : a_(a), rng_(seed) {
        ageColumn_ = static_cast<size_t>(std::find(a.columns.begin(), a.columns.end(), "age") - a.columns.begin());
        const Hierarchy& age = *a.hierarchies[ageColumn_];
        const auto& v = *age.numericLeaves();
        byValue_.resize(age.leafCount());
        for (uint32_t i = 0; i < byValue_.size(); ++i) byValue_[i] = i;
        std::sort(byValue_.begin(), byValue_.end(), [&](uint32_t x, uint32_t y) { return v[x] < v[y]; });
        rankOf_.resize(byValue_.size());
        for (uint32_t r = 0; r < byValue_.size(); ++r) rankOf_[byValue_[r]] = r;
    }
    void next(std::vector<uint32_t>& row) {
        row = a_.codes[rng_() % a_.codes.size()];
        const uint64_t dice = rng_();
        if (dice % 2 == 0) {
            const int shift = static_cast<int>((dice >> 8) % 5) - 2;
            const int rank = std::clamp(static_cast<int>(rankOf_[row[ageColumn_]]) + shift, 0,
                                        static_cast<int>(byValue_.size()) - 1);
            row[ageColumn_] = byValue_[static_cast<size_t>(rank)];
        }
        if ((dice >> 16) % 10 == 0) {
            const size_t c = (dice >> 24) % row.size();
            if (c != ageColumn_) row[c] = static_cast<uint32_t>((dice >> 32) % a_.hierarchies[c]->leafCount());
        }
    }

private:
    const Adult& a_;
    std::mt19937_64 rng_;
    size_t ageColumn_ = 0;
    std::vector<uint32_t> byValue_, rankOf_;
};

// Runs fn in a child process so that its peak RSS is its own.
template <typename Fn> void isolated(Fn fn) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        fn();
        std::fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
}

void benchSyntheticOptimal(const Adult& a, uint64_t rows) {
    isolated([&] {
        const double cpu0 = processCpuSeconds();
        AnonymizationConfig cfg;
        for (size_t c = 0; c < a.columns.size(); ++c)
            cfg.quasiIdentifiers.push_back({a.columns[c], a.hierarchies[c], false, 0, -1});
        cfg.models.k = 10;
        cfg.metric = Metric::NonUniformEntropy;
        const auto t0 = Clock::now();
        auto builder = newFrequencyTable(cfg);
        SyntheticAdult gen(a, 42);
        std::vector<uint32_t> row;
        for (uint64_t i = 0; i < rows; ++i) {
            gen.next(row);
            builder->addUnchecked(row.data(), nullptr);
        }
        const FrequencyTable table = std::move(builder.value()).finish();
        const double buildSeconds = seconds(t0);
        const auto t1 = Clock::now();
        auto result = anonymizeGlobal(cfg, table);
        const double searchSeconds = seconds(t1);
        if (!result) {
            std::printf("  synthetic %llu: %s\n", static_cast<unsigned long long>(rows),
                        result.status().message().c_str());
            return;
        }
        // Release: stream the rows again (same seed), map to labels, final check, count bytes.
        const auto t2 = Clock::now();
        auto check = makeFinalCheck(cfg, rows, &table);
        SyntheticAdult again(a, 42);
        std::vector<std::string_view> labels;
        uint64_t released = 0, bytes = 0;
        for (uint64_t i = 0; i < rows; ++i) {
            again.next(row);
            if (!result->release(row, labels)) continue;
            ++released;
            for (auto l : labels) bytes += l.size() + 1;
            if (!check.addRow(std::span<const std::string_view>(labels), std::span<const std::string_view>()).isOk())
                std::abort();
        }
        auto report = check.finish();
        const double releaseSeconds = seconds(t2);
        const double total = buildSeconds + searchSeconds + releaseSeconds;
        std::printf("  synthetic %llu rows, optimal k=10 (9 QIs, 0%%): %zu combinations; frequency table %.2f s "
                    "(%.2f M rows/s), search %.1f ms (node %s, %zu evaluated), release + final check %.2f s "
                    "(%llu rows, %.1f MB of labels, check %s); total %.2f s wall, %.2f s CPU = %.2f M rows/s, peak RSS "
                    "%ld MB\n",
                    static_cast<unsigned long long>(rows), table.size(), buildSeconds, rows / buildSeconds / 1e6,
                    searchSeconds * 1e3, levelsText(result->solution.best.levels).c_str(),
                    result->solution.nodesEvaluated, releaseSeconds, static_cast<unsigned long long>(released),
                    static_cast<double>(bytes) / 1e6, report.isOk() ? "passed" : report.status().message().c_str(),
                    total, processCpuSeconds() - cpu0, rows / total / 1e6, peakRssMb());
    });
}

void benchSyntheticMondrian(const Adult& a, uint64_t rows) {
    isolated([&] {
        std::vector<size_t> index;
        MondrianConfig cfg = mondrianConfig(a, 10, index);
        const auto t0 = Clock::now();
        std::vector<std::vector<uint32_t>> cols(index.size(), std::vector<uint32_t>(rows));
        SyntheticAdult gen(a, 42);
        std::vector<uint32_t> row;
        for (uint64_t i = 0; i < rows; ++i) {
            gen.next(row);
            for (size_t d = 0; d < index.size(); ++d) cols[d][i] = row[index[d]];
        }
        const double genSeconds = seconds(t0);
        EncodedColumns view;
        for (const auto& c : cols) view.qi.emplace_back(c);
        for (int variant = 0; variant < 4; ++variant) {
            cfg.mode = variant % 2 ? MondrianMode::Relaxed : MondrianMode::Strict;
            cfg.valueSets = variant >= 2;
            const auto t1 = Clock::now();
            const double cpu0 = processCpuSeconds();
            auto r = mondrianPartition(cfg, view);
            const double s = seconds(t1);
            const double cpu = processCpuSeconds() - cpu0;
            if (!r) {
                std::printf("  synthetic mondrian: %s\n", r.status().message().c_str());
                return;
            }
            std::printf(
                "  synthetic %llu rows, %s%s Mondrian k=10 (8 QIs): encode %.2f s, partition %.2f s wall (%.2f s CPU) "
                "= %.2f M rows/s, %zu classes, NCP %.2f %%, discernibility %.0f, smallest %llu, peak RSS %ld MB\n",
                static_cast<unsigned long long>(rows), cfg.mode == MondrianMode::Strict ? "strict" : "relaxed",
                cfg.valueSets ? " value-sets" : "", genSeconds, s, cpu, rows / s / 1e6, r->partitionSizes.size(),
                r->ncp * 100, r->discernibility, static_cast<unsigned long long>(r->achievedK), peakRssMb());
        }
    });
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 9;
    bool exhaustive = true;
    std::vector<uint64_t> synthetic = {1'000'000, 10'000'000};
    std::string cmd;
    for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
    const char* usage =
        "usage: bench_anonymizer [--runs N] [--synthetic ROWS[,ROWS...]] [--skip-exhaustive]\n"
        "  Optimal global recoding and Mondrian on UCI Adult (data/adult), and on Adult-like synthetic\n"
        "  tables (default 1000000,10000000 rows; --synthetic 0 skips them). --runs: runs per Adult case\n"
        "  (default 9, the median is printed); --skip-exhaustive: no exhaustive baseline.\n";
    for (int i = 1; i < argc; ++i) {
        const bool hasValue = i + 1 < argc;
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            std::fputs(usage, stdout);
            return 0;
        } else if (!std::strcmp(argv[i], "--runs") && hasValue) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (!std::strcmp(argv[i], "--skip-exhaustive")) {
            exhaustive = false;
        } else if (!std::strcmp(argv[i], "--synthetic") && hasValue) {
            synthetic.clear();
            for (const char* p = argv[++i]; *p;) {
                char* end = nullptr;
                const unsigned long long v = std::strtoull(p, &end, 10);
                if (end == p || (*end && *end != ',')) {
                    std::fprintf(stderr,
                                 "bench_anonymizer: --synthetic takes row counts separated by commas, not '%s'\n%s",
                                 argv[i], usage);
                    return 2;
                }
                if (v) synthetic.push_back(v);
                p = *end ? end + 1 : end;
            }
        } else {
            std::fprintf(stderr, "bench_anonymizer: unknown or incomplete argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    std::printf("rerun: %s\n", cmd.c_str());
    const Adult adult = loadAdult();
    // Synthetic tables first, each in a child process forked while this process is still small, so
    // that the peak RSS printed is the pipeline's own.
    std::printf("peak RSS before the synthetic runs (Adult loaded): %ld MB\n", peakRssMb());
    for (uint64_t rows : synthetic) {
        benchSyntheticOptimal(adult, rows);
        benchSyntheticMondrian(adult, rows);
    }
    benchOptimalAdult(adult, runs, exhaustive);
    benchMondrianAdult(adult, runs);
    std::printf("peak RSS: %ld MB\n", peakRssMb());
    return 0;
}
