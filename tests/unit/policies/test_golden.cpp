// Golden validation cases as data (tests/golden/policies, see its README) and the shipped examples.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policies/policy.hpp"

namespace fs = std::filesystem;
using namespace custodian::policies;

namespace {

std::string readText(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

struct ExpectedError {
    std::string pointer;
    std::string fragment;
};

std::vector<ExpectedError> readExpected(const fs::path& path) {
    std::vector<ExpectedError> out;
    std::istringstream in(readText(path));
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        ExpectedError e;
        const auto sep = line.find(" :: ");
        e.pointer = line.substr(0, sep);
        if (sep != std::string::npos) e.fragment = line.substr(sep + 4);
        if (e.pointer == "(document)") e.pointer.clear();
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<fs::path> jsonFiles(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const auto name = entry.path().filename().string();
        if (entry.is_regular_file() && entry.path().extension() == ".json" &&
            name.find(".dataset.json") == std::string::npos)
            out.push_back(entry.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string describe(const ValidationErrors& errors) {
    std::string out;
    for (const auto& e : errors)
        out += "  " + (e.pointer.empty() ? "(document)" : e.pointer) + " :: " + e.message + "\n";
    return out.empty() ? "  (no errors)\n" : out;
}

}  // namespace

TEST_CASE("golden policy cases report exactly the expected error pointers", "[policies][golden]") {
    const fs::path dir = fs::path(CUSTODIAN_SOURCE_DIR) / "tests/golden/policies";
    const auto cases = jsonFiles(dir);
    size_t invalidCases = 0, validCases = 0;
    for (const auto& file : cases) {
        const std::string name = file.stem().string();
        DYNAMIC_SECTION(name) {
            fs::path expectedFile = file;
            expectedFile.replace_extension(".expected");
            REQUIRE(fs::exists(expectedFile));
            const auto expected = readExpected(expectedFile);

            PolicyLoadOptions options;
            DatasetDescription dataset;
            fs::path datasetFile = dir / (name + ".dataset.json");
            if (fs::exists(datasetFile)) {
                auto parsed = parseDatasetDescription(readText(datasetFile));
                REQUIRE(parsed.isOk());
                dataset = parsed.value();
                options.dataset = &dataset;
            }
            const auto result = loadPolicyFile(file, options);
            INFO("case " << name << " reported:\n" << describe(result.errors));

            std::vector<std::string> want, got;
            for (const auto& e : expected) want.push_back(e.pointer);
            for (const auto& e : result.errors) got.push_back(e.pointer);
            std::sort(want.begin(), want.end());
            std::sort(got.begin(), got.end());
            CHECK(got == want);
            CHECK(result.ok() == expected.empty());
            for (const auto& e : expected) {
                if (e.fragment.empty()) continue;
                const bool found =
                    std::any_of(result.errors.begin(), result.errors.end(), [&](const ValidationError& r) {
                        return r.pointer == e.pointer && r.message.find(e.fragment) != std::string::npos;
                    });
                INFO("expected at " << (e.pointer.empty() ? "(document)" : e.pointer) << ": " << e.fragment);
                CHECK(found);
            }
        }
        (readExpected(fs::path(file).replace_extension(".expected")).empty() ? validCases : invalidCases)++;
    }
    CHECK(invalidCases >= 10);
    CHECK(validCases >= 2);
}

TEST_CASE("every shipped example policy is valid", "[policies][examples]") {
    const fs::path dir = fs::path(CUSTODIAN_SOURCE_DIR) / "policies/examples";
    const auto files = jsonFiles(dir);
    REQUIRE(files.size() >= 5);
    for (const auto& file : files) {
        DYNAMIC_SECTION(file.filename().string()) {
            const auto result = loadPolicyFile(file);
            INFO(describe(result.errors));
            REQUIRE(result.ok());
            CHECK(result.policy->contentHash().size() == 64);
            CHECK(!result.policy->model().description.empty());
        }
    }
}

TEST_CASE("adult.json declares the nine Adult quasi-identifiers for an optimal k=5 search", "[policies][examples]") {
    const auto result = loadPolicyFile(fs::path(CUSTODIAN_SOURCE_DIR) / "policies/examples/adult.json");
    INFO(describe(result.errors));
    REQUIRE(result.ok());
    const PolicyModel& m = result.policy->model();
    CHECK(m.inputDelimiter == ';');
    CHECK(m.columns.size() == 9);
    CHECK(m.privacy.k == std::optional<uint64_t>(5));
    CHECK(m.privacy.suppressionLimit == 0);
    CHECK(m.algorithm == SearchAlgorithm::Optimal);
    CHECK(m.metric == custodian::anon::Metric::NonUniformEntropy);
    // The lattice of the shipped hierarchies has 2·5·2·3·4·3·3·3·2 = 12,960 nodes.
    uint64_t nodes = 1;
    for (const auto& c : m.columns) {
        CHECK(c.role == ColumnRole::QuasiIdentifier);
        auto h = result.policy->hierarchy(c.name);
        REQUIRE(h);
        nodes *= static_cast<uint64_t>(h->levels());
    }
    CHECK(nodes == 12960);
    CHECK(result.policy->hierarchy("age")->leafCode("39").has_value());
}

TEST_CASE("adult-mondrian.json declares eight quasi-identifiers for strict Mondrian with k=10",
          "[policies][examples]") {
    const auto result = loadPolicyFile(fs::path(CUSTODIAN_SOURCE_DIR) / "policies/examples/adult-mondrian.json");
    INFO(describe(result.errors));
    REQUIRE(result.ok());
    const PolicyModel& m = result.policy->model();
    std::vector<std::string> qis;
    for (const auto& c : m.columns)
        if (c.role == ColumnRole::QuasiIdentifier) qis.push_back(c.name);
    std::sort(qis.begin(), qis.end());
    CHECK(qis == std::vector<std::string>{"age", "education", "marital-status", "native-country", "occupation", "race",
                                          "sex", "workclass"});
    CHECK(m.privacy.k == std::optional<uint64_t>(10));
    CHECK(m.algorithm == SearchAlgorithm::Mondrian);
    CHECK(m.mondrianMode == MondrianMode::Strict);
    CHECK(m.column("salary-class")->role != ColumnRole::QuasiIdentifier);
}
