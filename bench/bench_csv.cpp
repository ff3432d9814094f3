// CSV reading figures: Adult (30,162 rows) and an Adult-like file of 1,000,000 rows (Adult's rows
// repeated, written to the temporary directory), read as raw records, as typed batches, and — the
// baseline — with std::getline and a plain ';' split (no quoting, no UTF-8 check, no types).
// Prints CPU time (best of 5, robust to other processes on the machine), wall time and peak RSS.
//
//   build-x/bench/bench_csv [rows]        (default 1000000)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "anonymizer/csv.hpp"
#include "anonymizer/table.hpp"
#include "cpu_time.hpp"

using namespace custodian::anon;

namespace {

double wallSeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
    double cpu = 1e9;
    double wall = 1e9;
    size_t rows = 0;
};

template <typename F> Timing bestOf5(F&& run) {
    Timing best;
    for (int rep = 0; rep < 5; ++rep) {
        const double c0 = custodian::bench::processCpuSeconds();
        const double w0 = wallSeconds();
        best.rows = run();
        best.cpu = std::min(best.cpu, custodian::bench::processCpuSeconds() - c0);
        best.wall = std::min(best.wall, wallSeconds() - w0);
    }
    return best;
}

SchemaPtr adultSchema() {
    std::vector<ColumnSpec> columns = {{"sex", ColumnType::Text},         {"age", ColumnType::Integer},
                                       {"race", ColumnType::Text},        {"marital-status", ColumnType::Text},
                                       {"education", ColumnType::Text},   {"native-country", ColumnType::Text},
                                       {"workclass", ColumnType::Text},   {"occupation", ColumnType::Text},
                                       {"salary-class", ColumnType::Text}};
    return std::make_shared<const Schema>(Schema::make(std::move(columns)).value());
}

size_t readRaw(const std::string& path) {
    CsvDialect dialect;
    dialect.delimiter = ';';
    auto reader = CsvReader::openFile(path, dialect);
    if (!reader) throw std::runtime_error(reader.status().message());
    CsvRecords records;
    size_t rows = 0;
    while (true) {
        auto n = reader->read(records);
        if (!n) throw std::runtime_error(n.status().message());
        if (*n == 0) return rows;
        rows += *n;
    }
}

size_t readTyped(const std::string& path, const SchemaPtr& schema) {
    CsvDialect dialect;
    dialect.delimiter = ';';
    auto reader = CsvTableReader::openFile(path, dialect, schema);
    if (!reader) throw std::runtime_error(reader.status().message());
    size_t rows = 0;
    while (true) {
        auto batch = reader->next();
        if (!batch) throw std::runtime_error(batch.status().message());
        if (!batch->has_value()) return rows;
        rows += (*batch)->rows();
    }
}

// Baseline: line splitting with the standard library, fields copied into a reused vector.
size_t readGetline(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    std::vector<std::string> fields;
    size_t rows = 0;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        fields.clear();
        size_t start = 0;
        for (;;) {
            const size_t end = line.find(';', start);
            fields.emplace_back(line, start, end == std::string::npos ? std::string::npos : end - start);
            if (end == std::string::npos) break;
            start = end + 1;
        }
        ++rows;
    }
    return rows;
}

void report(const char* what, const Timing& t, uintmax_t bytes) {
    std::printf("  %-34s %9zu rows  cpu %8.1f ms  wall %8.1f ms  %7.0f MB/s (cpu)\n", what, t.rows, t.cpu * 1e3,
                t.wall * 1e3, static_cast<double>(bytes) / 1e6 / t.cpu);
}

void benchFile(const std::string& path) {
    const uintmax_t bytes = std::filesystem::file_size(path);
    std::printf("%s (%.1f MB)\n", path.c_str(), static_cast<double>(bytes) / 1e6);
    const SchemaPtr schema = adultSchema();
    report("CsvReader raw records", bestOf5([&] { return readRaw(path); }), bytes);
    report("CsvTableReader typed batches", bestOf5([&] { return readTyped(path, schema); }), bytes);
    report("baseline getline + split", bestOf5([&] { return readGetline(path); }), bytes);
}

}  // namespace

int main(int argc, char** argv) {
    const size_t rows = argc > 1 ? std::stoull(argv[1]) : 1'000'000;
    const std::string adult = std::string(CUSTODIAN_ADULT_DIR) + "/adult.csv";
    try {
        benchFile(adult);

        // Adult-like file: Adult's rows repeated until `rows` (CRLF, as the original).
        const std::string big =
            (std::filesystem::temp_directory_path() / ("custodian_bench_csv_" + std::to_string(rows) + ".csv"))
                .string();
        if (!std::filesystem::exists(big)) {
            std::ifstream in(adult, std::ios::binary);
            std::string header;
            std::getline(in, header);
            std::vector<std::string> lines;
            for (std::string line; std::getline(in, line);) lines.push_back(line);
            std::ofstream out(big + ".tmp", std::ios::binary);
            out << header << '\n';
            for (size_t i = 0; i < rows; ++i) out << lines[i % lines.size()] << '\n';
            out.close();
            std::filesystem::rename(big + ".tmp", big);
        }
        benchFile(big);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_csv: %s\n", e.what());
        return 1;
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("peak RSS of the whole run: %.1f MB (streaming: independent of the row count)\n",
                static_cast<double>(usage.ru_maxrss) / 1024.0);
    return 0;
}
