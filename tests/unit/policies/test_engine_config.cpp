// From a Policy to the anonymizer engine's configuration.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "policies/engine_config.hpp"

using namespace custodian::policies;
namespace anon = custodian::anon;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<const Policy> example(const char* name) {
    auto r = loadPolicyFile(fs::path(CUSTODIAN_SOURCE_DIR) / "policies/examples" / name);
    REQUIRE(r.ok());
    return r.policy;
}

// Distinct values of one column of adult.csv (';'-separated, CRLF, header row).
std::vector<std::string> adultColumn(const std::string& column) {
    std::ifstream in(fs::path(CUSTODIAN_ADULT_DIR) / "adult.csv", std::ios::binary);
    REQUIRE(in);
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> header;
    std::stringstream hs(line);
    for (std::string field; std::getline(hs, field, ';');) header.push_back(field);
    const auto index = static_cast<size_t>(std::find(header.begin(), header.end(), column) - header.begin());
    REQUIRE(index < header.size());
    std::set<std::string> values;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        std::stringstream ls(line);
        std::string field;
        for (size_t i = 0; i <= index; ++i) std::getline(ls, field, ';');
        values.insert(field);
    }
    return {values.begin(), values.end()};
}

}  // namespace

TEST_CASE("adult.json becomes an optimal search over nine hierarchies with k=5", "[policies][engine]") {
    const auto policy = example("adult.json");
    auto config = makeEngineConfig(*policy, {});
    REQUIRE(config.isOk());
    CHECK(config->algorithm == anon::Algorithm::Optimal);
    CHECK(config->metric == anon::Metric::NonUniformEntropy);
    CHECK(config->models.k == 5);
    CHECK(config->models.suppressionLimit == 0);
    CHECK(config->sensitive.empty());
    REQUIRE(config->quasiIdentifiers.size() == 9);
    CHECK(config->quasiIdentifiers[0].name == "sex");
    CHECK(config->quasiIdentifiers[1].name == "age");
    CHECK(config->quasiIdentifiers[1].numeric);
    CHECK_FALSE(config->quasiIdentifiers[0].numeric);
    // The data's values are checked against loaded hierarchies.
    CHECK(makeEngineConfig(*policy, {{"age", adultColumn("age")}}).isOk());
    auto uncovered = makeEngineConfig(*policy, {{"sex", {"Male", "Other"}}});
    REQUIRE_FALSE(uncovered.isOk());
    CHECK(uncovered.status().message().find("Other") != std::string::npos);
}

TEST_CASE("adult-mondrian.json becomes strict Mondrian with ages split by value", "[policies][engine]") {
    const auto policy = example("adult-mondrian.json");
    CHECK_FALSE(makeEngineConfig(*policy, {}).isOk());  // age has no hierarchy: the data's ages are needed
    const auto ages = adultColumn("age");
    auto config = makeEngineConfig(*policy, {{"age", ages}});
    REQUIRE(config.isOk());
    CHECK(config->algorithm == anon::Algorithm::Mondrian);
    CHECK(config->mondrianMode == anon::MondrianMode::Strict);
    CHECK(config->models.k == 10);
    REQUIRE(config->quasiIdentifiers.size() == 8);
    const auto& age = config->quasiIdentifiers[1];
    REQUIRE(age.name == "age");
    CHECK(age.numeric);
    CHECK(age.hierarchy->leafCount() == ages.size());
    CHECK(age.hierarchy->levels() == 2);
    // Leaves in numeric order, so Mondrian's ranges are ranges of ages.
    CHECK(age.hierarchy->label(0, 0) == "17");
}

TEST_CASE("sensitive columns get dictionaries and distances when l or t is set", "[policies][engine]") {
    const auto hospital = example("hospital-visits.json");
    const ColumnDomains domains = {
        {"birth_date", {"1980-03-14", "1985-11-02", "1991-07-30"}},
        {"postal_code", {"12345", "12399", "54321"}},
        {"diagnosis", {"J45", "E11", "I10"}},
    };
    auto config = makeEngineConfig(*hospital, domains);
    REQUIRE(config.isOk());
    REQUIRE(config->sensitive.size() == 1);
    CHECK(config->sensitive[0].name == "diagnosis");
    CHECK(config->sensitive[0].distance == anon::TClosenessDistance::Equal);
    CHECK(config->sensitive[0].dictionary->values.size() == 3);
    REQUIRE(config->models.lDiversity);
    CHECK(config->models.lDiversity->variant == anon::LDiversityVariant::Entropy);
    CHECK(config->quasiIdentifiers.size() == 3);

    ColumnDomains missing = domains;
    missing.erase("diagnosis");
    auto r = makeEngineConfig(*hospital, missing);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("diagnosis") != std::string::npos);

    const auto school = example("school-records.json");
    auto schoolConfig = makeEngineConfig(*school, {{"date_of_birth", {"2010-01-02", "2011-05-06"}},
                                                   {"grade_level", {"3", "4", "9"}},
                                                   {"math_score", {"480", "512", "77"}}});
    REQUIRE(schoolConfig.isOk());
    CHECK(schoolConfig->mondrianMode == anon::MondrianMode::Relaxed);
    REQUIRE(schoolConfig->sensitive.size() == 1);
    CHECK(schoolConfig->sensitive[0].distance == anon::TClosenessDistance::Ordered);
    CHECK(schoolConfig->sensitive[0].dictionary->values.front() == "77");  // numeric order
}

TEST_CASE("a text sensitive column is compared with the equal distance even with a hierarchy", "[policies][engine]") {
    // The search, Mondrian and the gateway's final check all ask the model: a text column has no
    // order, so a hierarchy on it does not make its t-closeness distance ordered (docs/policies.md).
    auto r = loadPolicy(R"({"dataset": "d", "recipients": ["bob"], "purposes": ["research"],
      "columns": [{"name": "sex", "type": "text", "role": "quasi_identifier",
                   "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
                  {"name": "diagnosis", "type": "text", "role": "sensitive",
                   "hierarchy": {"builder": "groups", "levels": [{"*": ["E11", "I10", "J45"]}]},
                   "transform": {"name": "generalize", "params": {"level": 0}}},
                  {"name": "stay", "type": "integer", "role": "sensitive"}],
      "privacy": {"k": 2, "t_closeness": {"t": 0.5}}})");
    std::string errors;
    for (const auto& e : r.errors) errors += e.pointer + " " + e.message + "\n";
    INFO(errors);
    REQUIRE(r.ok());
    const PolicyModel& m = r.policy->model();
    CHECK(m.tClosenessDistance(*m.column("diagnosis")) == anon::TClosenessDistance::Equal);
    CHECK(m.tClosenessDistance(*m.column("stay")) == anon::TClosenessDistance::Ordered);
    auto config = makeEngineConfig(
        *r.policy, {{"sex", {"F", "M"}}, {"diagnosis", {"E11", "I10", "J45"}}, {"stay", {"1", "2", "30"}}});
    REQUIRE(config.isOk());
    REQUIRE(config->sensitive.size() == 2);
    CHECK(config->sensitive[0].distance == anon::TClosenessDistance::Equal);
    CHECK(config->sensitive[1].distance == anon::TClosenessDistance::Ordered);
}
