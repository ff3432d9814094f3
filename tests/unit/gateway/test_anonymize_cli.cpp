// `custodian anonymize` end to end through the real binary: the golden cases of
// tests/golden/anonymize/ (data, no C++ per case), and Adult with the shipped example policies,
// whose output is re-checked here independently of the engine.

#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

int runCustodian(const std::string& args) {
    const std::string cmd = std::string(CUSTODIAN_BINARY) + " " + args + " 2>/dev/null";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

fs::path scratch(const std::string& name) {
    fs::path dir = fs::temp_directory_path() / ("custodian-anonymize-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    return dir / name;
}

// Every member of `expected` is in `actual` with the same value (objects compared recursively).
void requireSubset(const rapidjson::Value& expected, const rapidjson::Value& actual, const std::string& where) {
    if (expected.IsObject()) {
        REQUIRE(actual.IsObject());
        for (auto it = expected.MemberBegin(); it != expected.MemberEnd(); ++it) {
            const std::string name = it->name.GetString();
            INFO(where + "/" + name);
            REQUIRE(actual.HasMember(name.c_str()));
            requireSubset(it->value, actual[name.c_str()], where + "/" + name);
        }
        return;
    }
    INFO(where);
    REQUIRE(expected == actual);
}

std::vector<std::string> splitLine(const std::string& line, char delimiter) {
    std::vector<std::string> out(1);
    for (char c : line) {
        if (c == delimiter) out.emplace_back();
        else if (c != '\r') out.back().push_back(c);
    }
    return out;
}

}  // namespace

TEST_CASE("golden anonymization cases produce exactly the expected output and report", "[cli][golden]") {
    const fs::path root = fs::path(CUSTODIAN_SOURCE_DIR) / "tests/golden/anonymize";
    size_t cases = 0;
    for (const auto& entry : fs::directory_iterator(root)) {
        if (!entry.is_directory()) continue;
        const fs::path dir = entry.path();
        const std::string name = dir.filename().string();
        SECTION(name) {
            const fs::path out = scratch(name + ".csv");
            const fs::path report = scratch(name + ".json");
            fs::remove(out);
            const int code = runCustodian("anonymize --policy " + (dir / "policy.json").string() + " --in " +
                                          (dir / "input.csv").string() + " --out " + out.string() + " --report " +
                                          report.string());
            if (fs::exists(dir / "expected.exit")) {
                REQUIRE(code == std::stoi(readFile(dir / "expected.exit")));
                REQUIRE_FALSE(fs::exists(out));  // a refused release leaves no output behind
            } else {
                REQUIRE(code == 0);
                REQUIRE(readFile(out) == readFile(dir / "expected.csv"));
                if (fs::exists(dir / "expected-report.json")) {
                    rapidjson::Document expected, actual;
                    expected.Parse(readFile(dir / "expected-report.json").c_str());
                    actual.Parse(readFile(report).c_str());
                    REQUIRE_FALSE(expected.HasParseError());
                    REQUIRE_FALSE(actual.HasParseError());
                    requireSubset(expected, actual, "");
                }
            }
        }
        ++cases;
    }
    REQUIRE(cases >= 4);
}

TEST_CASE("anonymize releases Adult under the example policies with every class of at least k rows", "[cli][adult]") {
    const fs::path source = fs::path(CUSTODIAN_SOURCE_DIR);
    const fs::path adult = fs::path(CUSTODIAN_ADULT_DIR) / "adult.csv";
    struct Case {
        std::string policy;
        size_t k;
        size_t qiColumns;
    };
    for (const Case& c : {Case{"adult.json", 5, 9}, Case{"adult-mondrian.json", 10, 8}}) {
        SECTION(c.policy) {
            const fs::path out = scratch(c.policy + ".csv");
            const fs::path report = scratch(c.policy + ".report.json");
            REQUIRE(runCustodian("anonymize --policy " + (source / "policies/examples" / c.policy).string() + " --in " +
                                 adult.string() + " --out " + out.string() + " --report " + report.string()) == 0);
            // Independent check: group the released rows by their quasi-identifier cells.
            std::ifstream in(out);
            std::string line;
            REQUIRE(std::getline(in, line));
            const auto header = splitLine(line, ',');
            REQUIRE(header.size() == 9);
            std::map<std::string, size_t> classes;
            size_t rows = 0;
            while (std::getline(in, line)) {
                const auto fields = splitLine(line, ',');
                REQUIRE(fields.size() == header.size());
                std::string key;
                // The Mondrian policy keeps salary-class as an insensitive column: it is not a QI.
                for (size_t i = 0; i < header.size(); ++i)
                    if (c.qiColumns == 9 || header[i] != "salary-class") key += fields[i] + '\x1f';
                ++classes[key];
                ++rows;
            }
            REQUIRE(rows == 30162);  // 0% suppression: every record released
            for (const auto& [key, size] : classes) {
                INFO(key);
                REQUIRE(size >= c.k);
            }
            rapidjson::Document r;
            r.Parse(readFile(report).c_str());
            REQUIRE_FALSE(r.HasParseError());
            REQUIRE(r["records"].GetUint64() == 30162);
            REQUIRE(r["achieved"]["k"].GetUint64() >= c.k);
            // The risk of what was written: every released record, in the classes the final check counted.
            const auto& after = r["risk_after"];
            REQUIRE(after["records_released"].GetUint64() == 30162);
            REQUIRE(after["classes"].GetUint64() == r["final_check"]["classes"].GetUint64());
            REQUIRE(after["classes"].GetUint64() == classes.size());
            REQUIRE(after["smallest_class"].GetUint64() >= c.k);
            REQUIRE(after["prosecutor_risk_max"].GetDouble() <= 1.0 / static_cast<double>(c.k) + 1e-12);
            REQUIRE(after["prosecutor_risk_max"].GetDouble() > 0);
            REQUIRE(r["risk_before"]["prosecutor_risk_max"].GetDouble() == 1.0);  // Adult has unique records
        }
    }
}

TEST_CASE("anonymize rejects bad policies and bad input with a message and no output", "[cli]") {
    const fs::path policy = scratch("bad-policy.json");
    std::ofstream(policy) << R"({"dataset": "x", "columns": [{"name": 1}]})";
    const fs::path input = fs::path(CUSTODIAN_SOURCE_DIR) / "tests/golden/anonymize/intervals-prefix-k2/input.csv";
    const fs::path out = scratch("never.csv");
    fs::remove(out);
    REQUIRE(runCustodian("anonymize --policy " + policy.string() + " --in " + input.string() + " --out " + out.string()) ==
            1);
    REQUIRE_FALSE(fs::exists(out));

    // A CSV whose header lacks a policy column.
    const fs::path goodPolicy = fs::path(CUSTODIAN_SOURCE_DIR) / "tests/golden/anonymize/intervals-prefix-k2/policy.json";
    const fs::path badInput = scratch("bad-input.csv");
    std::ofstream(badInput) << "name,age\nAnn,23\n";
    REQUIRE(runCustodian("anonymize --policy " + goodPolicy.string() + " --in " + badInput.string() + " --out " +
                         out.string()) == 1);
    REQUIRE_FALSE(fs::exists(out));

    REQUIRE(runCustodian("anonymize --help") == 0);
    REQUIRE(runCustodian("anonymize --policy") == 2);
}
