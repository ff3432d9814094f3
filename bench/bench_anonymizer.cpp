// Anonymizer benchmark: optimal global recoding and Mondrian on UCI Adult, and on Adult-like
// synthetic tables of 1,000,000 and 10,000,000 rows. Prints figures; not a test.
//
//   bench_anonymizer [--runs N] [--synthetic 1000000,10000000] [--skip-exhaustive]
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

#include "anonymizer/frequency_table.hpp"
#include "anonymizer/hierarchy.hpp"
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
    std::vector<std::vector<uint32_t>> codes; // per row, leaf codes in column order
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
    for (const Case& c : {Case{5, 0, Metric::NonUniformEntropy}, Case{5, 0, Metric::Discernibility},
                          Case{100, 0, Metric::NonUniformEntropy}, Case{5, 0.02, Metric::NonUniformEntropy}}) {
        OptimalSearchConfig cfg;
        cfg.hierarchies = a.hierarchies;
        cfg.models.k = c.k;
        cfg.models.suppressionLimit = c.suppression;
        cfg.metric = c.metric;
        std::vector<double> times, cpu;
        custodian::Result<OptimalSolution> sol = custodian::failedPrecondition("not run");
        for (int r = 0; r < runs; ++r) {
            const auto s = Clock::now();
            const double c0 = threadCpuSeconds();
            sol = findOptimalGeneralization(table, cfg);
            cpu.push_back(threadCpuSeconds() - c0);
            times.push_back(seconds(s));
        }
        if (!sol) {
            std::printf("  k=%llu: %s\n", static_cast<unsigned long long>(c.k), sol.status().message().c_str());
            continue;
        }
        std::printf("  optimal k=%llu suppression=%.0f%% %s: median %.2f ms wall (%.2f ms CPU) over %d runs (min %.2f), node %s, "
                    "loss %.6g, evaluated %zu of %zu nodes (%zu from the table, %zu classes rolled up)\n",
                    static_cast<unsigned long long>(c.k), c.suppression * 100, metricName(c.metric),
                    median(times) * 1e3, median(cpu) * 1e3, runs, *std::min_element(times.begin(), times.end()) * 1e3,
                    levelsText(sol->best.levels).c_str(), sol->objective, sol->nodesEvaluated, sol->latticeSize,
                    sol->evaluationsFromTable, sol->classesRolledUp);
        if (exhaustive) {
            const auto s = Clock::now();
            auto ex = exhaustiveGeneralization(table, cfg);
            const double exSeconds = seconds(s);
            std::printf("    exhaustive: %.1f ms, node %s, loss %.6g, same node: %s, speed-up %.1fx\n", exSeconds * 1e3,
                        ex ? levelsText(ex->best.levels).c_str() : "-", ex ? ex->objective : 0.0,
                        ex && ex->best.levels == sol->best.levels ? "yes" : "NO", exSeconds / median(times));
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    int runs = 9;
    bool exhaustive = true;
    std::string cmd;
    for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "--skip-exhaustive")) exhaustive = false;
    }
    std::printf("rerun: %s\n", cmd.c_str());
    const Adult adult = loadAdult();
    benchOptimalAdult(adult, runs, exhaustive);
    std::printf("peak RSS: %ld MB\n", peakRssMb());
    return 0;
}
