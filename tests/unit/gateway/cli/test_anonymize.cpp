// `custodian anonymize` end to end through the real binary: the golden cases of
// tests/golden/anonymize/ (data, no C++ per case), and Adult with the shipped example policies,
// whose output is re-checked here independently of the engine.

#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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

// A directory of this test process's own files, removed when the process exits.
fs::path scratch(const std::string& name) {
    struct Directory {
        fs::path path = fs::temp_directory_path() / ("custodian-anonymize-" + std::to_string(::getpid()));
        Directory() { fs::create_directories(path); }
        ~Directory() {
            std::error_code ignored;
            fs::remove_all(path, ignored);
        }
    };
    static const Directory dir;
    return dir.path / name;
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
            const int code =
                runCustodian("anonymize --policy " + (dir / "policy.json").string() + " --in " +
                             (dir / "input.csv").string() + " --out " + out.string() + " --report " + report.string());
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

// Independent recount of what a Mondrian release of Adult reports (issue 21): the released file is
// grouped by its quasi-identifier cells, and the NCP (Ghinita et al. 2007, relative to the values in
// the input) is counted from the labels alone, with the hierarchy files read here.
TEST_CASE(
    "custodian anonymize --report describes the Mondrian release as written: classes, discernibility, risk and NCP "
    "recounted from the released file",
    "[cli][adult][mondrian]") {
    const fs::path source = fs::path(CUSTODIAN_SOURCE_DIR);
    const fs::path adultDir = fs::path(CUSTODIAN_ADULT_DIR);
    const fs::path adult = adultDir / "adult.csv";
    rapidjson::Document base;
    base.Parse(readFile(source / "policies/examples/adult-mondrian.json").c_str());
    REQUIRE_FALSE(base.HasParseError());

    // Input values per column, and the hierarchy ancestors of every leaf.
    std::ifstream inputFile(adult);
    std::string line;
    REQUIRE(std::getline(inputFile, line));
    const auto inputHeader = splitLine(line, ';');
    std::vector<std::vector<std::string>> inputRows;
    while (std::getline(inputFile, line))
        if (!line.empty()) inputRows.push_back(splitLine(line, ';'));
    REQUIRE(inputRows.size() == 30162);

    for (const std::string mode : {"strict", "relaxed"}) {
        for (const std::string release : {"hierarchy_node", "value_set"}) {
            SECTION(mode + " " + release) {
                rapidjson::Document policy;
                policy.CopyFrom(base, policy.GetAllocator());
                auto& a = policy.GetAllocator();
                policy["algorithm"]["mode"].SetString(mode.c_str(), a);
                policy["algorithm"].AddMember("categorical_release", rapidjson::Value(release.c_str(), a), a);
                struct Qi {
                    std::string name;
                    bool numeric;
                    std::map<std::string, std::set<std::string>> covers;  // label -> input values under it
                };
                std::vector<Qi> qis;
                for (auto& c : policy["columns"].GetArray()) {
                    if (std::string(c["role"].GetString()) != "quasi_identifier") continue;
                    Qi qi{c["name"].GetString(), std::string(c["type"].GetString()) == "integer", {}};
                    if (c.HasMember("hierarchy")) {
                        const fs::path file = adultDir / fs::path(c["hierarchy"]["file"].GetString()).filename();
                        c["hierarchy"]["file"].SetString(file.string().c_str(), a);
                        const size_t column = static_cast<size_t>(
                            std::find(inputHeader.begin(), inputHeader.end(), qi.name) - inputHeader.begin());
                        REQUIRE(column < inputHeader.size());
                        std::set<std::string> present;
                        for (const auto& r : inputRows) present.insert(r[column]);
                        std::ifstream h(file);
                        std::string hline;
                        while (std::getline(h, hline)) {
                            const auto fields = splitLine(hline, ';');
                            if (!present.count(fields[0])) continue;
                            for (const auto& ancestor : fields) qi.covers[ancestor].insert(fields[0]);
                        }
                    }
                    qis.push_back(std::move(qi));
                }
                REQUIRE(qis.size() == 8);
                const fs::path policyPath = scratch("adult-mondrian-" + mode + "-" + release + ".json");
                {
                    rapidjson::StringBuffer buffer;
                    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
                    policy.Accept(writer);
                    std::ofstream(policyPath) << buffer.GetString();
                }
                const fs::path out = scratch("adult-mondrian-" + mode + "-" + release + ".csv");
                const fs::path report = scratch("adult-mondrian-" + mode + "-" + release + ".report.json");
                REQUIRE(runCustodian("anonymize --policy " + policyPath.string() + " --in " + adult.string() +
                                     " --out " + out.string() + " --report " + report.string()) == 0);

                std::ifstream released(out);
                REQUIRE(std::getline(released, line));
                const auto header = splitLine(line, ',');
                std::vector<size_t> outColumn, inColumn;
                for (const auto& qi : qis) {
                    outColumn.push_back(
                        static_cast<size_t>(std::find(header.begin(), header.end(), qi.name) - header.begin()));
                    inColumn.push_back(static_cast<size_t>(std::find(inputHeader.begin(), inputHeader.end(), qi.name) -
                                                           inputHeader.begin()));
                    REQUIRE(outColumn.back() < header.size());
                }
                // Per numeric column the input's range, per categorical one its distinct values.
                std::vector<double> range(qis.size(), 0);
                std::vector<size_t> distinct(qis.size(), 0);
                for (size_t d = 0; d < qis.size(); ++d) {
                    if (qis[d].numeric) {
                        double lo = 1e300, hi = -1e300;
                        for (const auto& r : inputRows) {
                            lo = std::min(lo, std::stod(r[inColumn[d]]));
                            hi = std::max(hi, std::stod(r[inColumn[d]]));
                        }
                        range[d] = hi - lo;
                    } else {
                        std::set<std::string> present;
                        for (const auto& r : inputRows) present.insert(r[inColumn[d]]);
                        distinct[d] = present.size();
                    }
                }
                std::map<std::string, uint64_t> classes;
                std::vector<double> ncp(qis.size(), 0);
                size_t rows = 0;
                while (std::getline(released, line)) {
                    const auto fields = splitLine(line, ',');
                    REQUIRE(fields.size() == header.size());
                    std::string key;
                    for (size_t d = 0; d < qis.size(); ++d) {
                        const std::string& label = fields[outColumn[d]];
                        key += label + '\x1f';
                        if (qis[d].numeric) {
                            if (label.front() == '[') {
                                const size_t dash = label.find('-', 1);
                                ncp[d] += (std::stod(label.substr(dash + 1, label.size() - dash - 2)) -
                                           std::stod(label.substr(1, dash - 1))) /
                                          range[d];
                            }
                        } else {
                            size_t covered = 0;
                            if (label.find('|') != std::string::npos) {
                                INFO(label);
                                REQUIRE(release == "value_set");
                                std::set<std::string> members;
                                for (const auto& m : splitLine(label, '|')) members.insert(m);
                                covered = members.size();
                            } else {
                                INFO(qis[d].name << ": " << label);
                                REQUIRE(qis[d].covers.count(label));
                                covered = qis[d].covers.at(label).size();
                            }
                            ncp[d] += static_cast<double>(covered - 1) / static_cast<double>(distinct[d] - 1);
                        }
                    }
                    ++classes[key];
                    ++rows;
                }
                REQUIRE(rows == 30162);
                double discernibility = 0;
                uint64_t smallest = UINT64_MAX;
                for (const auto& [key, size] : classes) {
                    discernibility += static_cast<double>(size) * static_cast<double>(size);
                    smallest = std::min(smallest, size);
                }
                CHECK(smallest >= 10);

                rapidjson::Document r;
                r.Parse(readFile(report).c_str());
                REQUIRE_FALSE(r.HasParseError());
                CHECK(r["algorithm"].GetString() == "mondrian-" + mode);
                CHECK(r["achieved"]["k"].GetUint64() == smallest);
                CHECK(r["partitioning"]["classes"].GetUint64() == classes.size());
                CHECK(r["partitioning"]["partitions"].GetUint64() >= classes.size());
                CHECK(r["final_check"]["classes"].GetUint64() == classes.size());
                const auto& after = r["risk_after"];
                CHECK(after["classes"].GetUint64() == classes.size());
                CHECK(after["smallest_class"].GetUint64() == smallest);
                CHECK(after["prosecutor_risk_max"].GetDouble() == Approx(1.0 / static_cast<double>(smallest)));
                CHECK(after["prosecutor_risk_average"].GetDouble() ==
                      Approx(static_cast<double>(classes.size()) / static_cast<double>(rows)));
                const auto& loss = r["information_loss_after"];
                CHECK(loss["discernibility"].GetDouble() == discernibility);
                CHECK(loss["average_class_size"].GetDouble() ==
                      Approx(static_cast<double>(rows) / static_cast<double>(classes.size())));
                double overall = 0;
                for (size_t d = 0; d < qis.size(); ++d) {
                    INFO(qis[d].name);
                    ncp[d] /= static_cast<double>(rows);
                    overall += ncp[d];
                    CHECK(r["partitioning"]["ncp"]["attributes"][qis[d].name.c_str()].GetDouble() ==
                          Approx(ncp[d]).margin(1e-9));
                }
                overall /= static_cast<double>(qis.size());
                CHECK(r["partitioning"]["ncp"]["overall"].GetDouble() == Approx(overall).margin(1e-9));
                CHECK(loss["loss"].GetDouble() == Approx(overall).margin(1e-9));
            }
        }
    }
}

TEST_CASE("anonymize (Mondrian) refuses an empty or malformed quasi-identifier deep in the file, naming its line, "
          "and leaves no output",
          "[cli][adult][mondrian]") {
    // Pass 1 is parsed on a second thread: a failure in a later batch must still stop the run.
    const fs::path source = fs::path(CUSTODIAN_SOURCE_DIR);
    rapidjson::Document policy;
    policy.Parse(readFile(source / "policies/examples/adult-mondrian.json").c_str());
    REQUIRE_FALSE(policy.HasParseError());
    for (auto& c : policy["columns"].GetArray())
        if (c.HasMember("hierarchy"))
            c["hierarchy"]["file"].SetString(
                (fs::path(CUSTODIAN_ADULT_DIR) / fs::path(c["hierarchy"]["file"].GetString()).filename())
                    .string()
                    .c_str(),
                policy.GetAllocator());
    const fs::path policyPath = scratch("adult-mondrian-bad-input.json");
    {
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
        policy.Accept(writer);
        std::ofstream(policyPath) << buffer.GetString();
    }
    std::istringstream adult(readFile(fs::path(CUSTODIAN_ADULT_DIR) / "adult.csv"));
    std::vector<std::string> lines;
    for (std::string line; std::getline(adult, line);) lines.push_back(line);
    REQUIRE(lines.size() > 10000);
    const auto header = splitLine(lines[0], ';');
    const size_t age = static_cast<size_t>(std::find(header.begin(), header.end(), "age") - header.begin());
    REQUIRE(age < header.size());
    struct Case {
        std::string value;
        std::string message;
    };
    for (const Case& c :
         {Case{"", "line 9001: column 'age' is empty; Mondrian needs a value"}, Case{"forty", "line 9001"}}) {
        auto fields = splitLine(lines[9000], ';');
        fields[age] = c.value;
        std::string bad;
        for (size_t i = 0; i < lines.size(); ++i) {
            if (i != 9000) {
                bad += lines[i] + "\n";
                continue;
            }
            for (size_t f = 0; f < fields.size(); ++f) bad += (f ? ";" : "") + fields[f];
            bad += "\n";
        }
        const fs::path input = scratch("adult-bad-age.csv");
        std::ofstream(input) << bad;
        const fs::path out = scratch("adult-bad-age.out.csv");
        const fs::path err = scratch("adult-bad-age.err");
        fs::remove(out);
        const std::string cmd = std::string(CUSTODIAN_BINARY) + " anonymize --policy " + policyPath.string() +
                                " --in " + input.string() + " --out " + out.string() + " 2>" + err.string();
        const int status = std::system(cmd.c_str());
        INFO(readFile(err));
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 1);
        CHECK_FALSE(fs::exists(out));
        CHECK(readFile(err).find(c.message) != std::string::npos);
        CHECK(readFile(err).find(input.string()) != std::string::npos);
    }
}

TEST_CASE("anonymize rejects bad policies and bad input with a message and no output", "[cli]") {
    const fs::path policy = scratch("bad-policy.json");
    std::ofstream(policy) << R"({"dataset": "x", "columns": [{"name": 1}]})";
    const fs::path input = fs::path(CUSTODIAN_SOURCE_DIR) / "tests/golden/anonymize/intervals-prefix-k2/input.csv";
    const fs::path out = scratch("never.csv");
    fs::remove(out);
    REQUIRE(runCustodian("anonymize --policy " + policy.string() + " --in " + input.string() + " --out " +
                         out.string()) == 1);
    REQUIRE_FALSE(fs::exists(out));

    // A CSV whose header lacks a policy column.
    const fs::path goodPolicy =
        fs::path(CUSTODIAN_SOURCE_DIR) / "tests/golden/anonymize/intervals-prefix-k2/policy.json";
    const fs::path badInput = scratch("bad-input.csv");
    std::ofstream(badInput) << "name,age\nAnn,23\n";
    REQUIRE(runCustodian("anonymize --policy " + goodPolicy.string() + " --in " + badInput.string() + " --out " +
                         out.string()) == 1);
    REQUIRE_FALSE(fs::exists(out));

    // An output path that is not a regular file (a FIFO here; /dev/null alike) is refused: renaming
    // the temporary file over it would replace it.
    const fs::path fifo = scratch("out.fifo");
    fs::remove(fifo);
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE(runCustodian("anonymize --policy " + goodPolicy.string() + " --in " + input.string() + " --out " +
                         fifo.string()) == 1);
    CHECK(fs::is_fifo(fifo));
    fs::remove(fifo);

    REQUIRE(runCustodian("anonymize --help") == 0);
    REQUIRE(runCustodian("anonymize --policy") == 2);
}

TEST_CASE("anonymize --key keys pseudonyms per dataset, --policy-name and --recipient, --key-derivation 1 per dataset "
          "and recipient",
          "[cli][crypto]") {
    // The known answer of docs/formats/csv-and-hierarchies.md ("Keyed transforms"): master key
    // 00 01 .. 1f, dataset hospital_visits, policy readmissions, recipient alice.researcher.
    const fs::path key = scratch("master.key");
    std::ofstream(key) << "custodian-master-key:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    const fs::path policy = scratch("keyed-policy.json");
    std::ofstream(policy) << R"({
  "dataset": "hospital_visits",
  "recipients": ["alice.researcher"],
  "purposes": ["research"],
  "columns": [
    {"name": "patient", "type": "text", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "sex", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}}
  ],
  "privacy": {"k": 2, "suppression_limit": 0},
  "algorithm": {"name": "optimal"},
  "metric": "loss"
})";
    const fs::path input = scratch("keyed-input.csv");
    std::ofstream(input) << "patient,sex\nP-000124,F\nP-000125,F\n";
    const fs::path out = scratch("keyed.csv");
    auto firstPseudonym = [&](const std::string& extra) -> std::string {
        fs::remove(out);
        const int code =
            runCustodian("anonymize --policy " + policy.string() + " --in " + input.string() + " --out " +
                         out.string() + " --key " + key.string() + " --recipient alice.researcher " + extra);
        if (code != 0) return "exit " + std::to_string(code);
        std::istringstream lines(readFile(out));
        std::string header, row;
        std::getline(lines, header);
        std::getline(lines, row);
        return splitLine(row, ',')[0];
    };
    CHECK(firstPseudonym("--policy-name readmissions") == "95a002fd8c0a466d84a445749b58766b");
    CHECK(firstPseudonym("--policy-name readmissions --key-derivation 2") == "95a002fd8c0a466d84a445749b58766b");
    CHECK(firstPseudonym("--key-derivation 1") == "749925695c749f8cb3d7072c02bc2165");
    const std::string other = firstPseudonym("--policy-name billing");
    CHECK(other.size() == 32);
    CHECK(other != "95a002fd8c0a466d84a445749b58766b");
    // No policy name with derivation 2, a policy name with derivation 1, an unknown derivation: usage
    // errors, nothing written.
    CHECK(firstPseudonym("") == "exit 2");
    CHECK_FALSE(fs::exists(out));
    CHECK(firstPseudonym("--key-derivation 1 --policy-name readmissions") == "exit 2");
    CHECK(firstPseudonym("--policy-name readmissions --key-derivation 3") == "exit 2");
    CHECK(firstPseudonym("--policy-name ''") == "exit 2");
}
