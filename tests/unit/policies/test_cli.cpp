// `custodian policy validate`: exit codes and output, run as a separate process.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

namespace {

struct Run {
    int exitCode;
    std::string output;
};

std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out.push_back(c);
    }
    return out + "'";
}

Run custodian(const std::string& args) {
    const std::string command = shellQuote(CUSTODIAN_BINARY) + " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe);
    std::string output;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
    const int status = pclose(pipe);
    REQUIRE(WIFEXITED(status));  // a signal (crash) fails here
    return {WEXITSTATUS(status), output};
}

const fs::path kSource(CUSTODIAN_SOURCE_DIR);

}  // namespace

TEST_CASE("policy validate exits 0 on every shipped example", "[policies][cli]") {
    for (const char* name :
         {"adult.json", "adult-mondrian.json", "hospital-visits.json", "school-records.json", "transit-trips.json"}) {
        const auto run = custodian("policy validate " + shellQuote((kSource / "policies/examples" / name).string()));
        INFO(run.output);
        CHECK(run.exitCode == 0);
        CHECK(run.output.find("valid policy for dataset") != std::string::npos);
        CHECK(run.output.find("sha256:") != std::string::npos);
    }
}

TEST_CASE("policy validate exits 1 and prints every error with its pointer", "[policies][cli]") {
    const auto run =
        custodian("policy validate " + shellQuote((kSource / "tests/golden/policies/privacy-rules.json").string()));
    INFO(run.output);
    CHECK(run.exitCode == 1);
    CHECK(run.output.find("privacy-rules.json: /privacy/k: ") != std::string::npos);
    CHECK(run.output.find("/privacy/l_diversity/l: ") != std::string::npos);
    CHECK(run.output.find("/algorithm/mode: ") != std::string::npos);
    CHECK(run.output.find("/algorithm/categorical_release: ") != std::string::npos);
    CHECK(run.output.find("invalid policy, 7 errors") != std::string::npos);
}

TEST_CASE("policy validate checks against a dataset description", "[policies][cli]") {
    const fs::path golden = kSource / "tests/golden/policies";
    const auto ok = custodian("policy validate " + shellQuote((golden / "valid-with-dataset.json").string()) +
                              " --dataset " + shellQuote((golden / "valid-with-dataset.dataset.json").string()));
    INFO(ok.output);
    CHECK(ok.exitCode == 0);
    const auto mismatch = custodian("policy validate " + shellQuote((golden / "valid-with-dataset.json").string()) +
                                    " --dataset " + shellQuote((golden / "dataset-mismatch.dataset.json").string()));
    INFO(mismatch.output);
    CHECK(mismatch.exitCode == 1);
    CHECK(mismatch.output.find("/dataset: ") != std::string::npos);
    const auto badDataset = custodian("policy validate " + shellQuote((golden / "valid-with-dataset.json").string()) +
                                      " --dataset /nonexistent/dataset.json");
    CHECK(badDataset.exitCode == 1);
}

TEST_CASE("policy validate --json prints one machine-readable object", "[policies][cli]") {
    const auto run = custodian("policy validate --json " +
                               shellQuote((kSource / "tests/golden/policies/validity-reversed.json").string()));
    CHECK(run.exitCode == 1);
    CHECK(run.output.find(R"("valid":false)") != std::string::npos);
    CHECK(run.output.find(R"({"pointer":"/validity/expires","message":)") != std::string::npos);
}

TEST_CASE("policy validate usage errors exit 2 and --help exits 0", "[policies][cli]") {
    CHECK(custodian("policy").exitCode == 2);
    CHECK(custodian("policy check x.json").exitCode == 2);
    CHECK(custodian("policy validate").exitCode == 2);
    CHECK(custodian("policy validate a.json --unknown").exitCode == 2);
    const auto help = custodian("policy --help");
    CHECK(help.exitCode == 0);
    CHECK(help.output.find("usage: custodian policy validate") != std::string::npos);
    CHECK(custodian("--help").output.find("policy") != std::string::npos);
}

TEST_CASE("policy validate never crashes on unreadable or garbage files", "[policies][cli][robustness]") {
    CHECK(custodian("policy validate /nonexistent/policy.json").exitCode == 1);
    CHECK(custodian("policy validate /").exitCode == 1);
    const fs::path dir = fs::temp_directory_path() / ("custodian-policy-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int i = 0; i < 5; ++i) {
        const fs::path file = dir / ("garbage" + std::to_string(i) + ".json");
        std::ofstream out(file, std::ios::binary);
        for (int j = 0; j < 2000; ++j) out.put(static_cast<char>(byte(rng)));
        out.close();
        CHECK(custodian("policy validate " + shellQuote(file.string())).exitCode == 1);
    }
    {
        std::ofstream out(dir / "deep.json");
        out << std::string(200000, '[');
    }
    const auto deep = custodian("policy validate " + shellQuote((dir / "deep.json").string()));
    CHECK(deep.exitCode == 1);
    CHECK(deep.output.find("deeper than") != std::string::npos);
    fs::remove_all(dir);
}
