// Writes the synthetic social-benefit table of benefits_synthetic.hpp as CSV to stdout.
//
//   generate_benefits ROWS [SEED] > benefits.csv
//   generate_benefits --policy > benefits.json      (the release policy bench_extract uses)
//
// The same rows bench_extract loads into PostgreSQL, for `custodian anonymize`.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "benefits_synthetic.hpp"

int main(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--policy") {
        std::puts(custodian::bench::kBenefitsPolicy);
        return 0;
    }
    if (argc < 2 || std::atoll(argv[1]) <= 0) {
        std::fprintf(stderr, "usage: generate_benefits ROWS [SEED] > benefits.csv | generate_benefits --policy\n");
        return 2;
    }
    const auto rows = static_cast<uint64_t>(std::atoll(argv[1]));
    const uint64_t seed = argc >= 3 ? static_cast<uint64_t>(std::atoll(argv[2])) : 20261205;
    static char buffer[1 << 20];
    std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
    custodian::bench::writeBenefitsCsv(stdout, rows, seed);
    return std::fflush(stdout) == 0 ? 0 : 1;
}
