// Mondrian (local recoding) on a real agency table: the gateway reads the quasi-identifiers once,
// partitions them, then streams every row a second time in the same order, checking each row
// against what was partitioned. The tests rebuild each row's true values from the table's
// generator (rows come out in the table's physical order, which is insertion order here) and check
// the released labels against them, independently of the pipeline.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <pqxx/pqxx>

#include "anonymizer/transform.hpp"
#include "gateway/release/stream.hpp"
#include "test_extract_fixture.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

struct Agency {
    TestDatabase db = TestDatabase::create("custodian_mondrian");
    explicit Agency(int rows) { createVisitsTable(db.conninfo(), rows); }
    release::SourceLocation source() const { return {db.conninfo(), "agency", "visits", std::chrono::seconds(5)}; }
    void sql(const std::string& statements) const { runPsql(db.conninfo(), statements); }
};

anon::MasterKey testKey() {
    std::vector<uint8_t> bytes(32, 9);
    return std::move(anon::MasterKey::fromBytes(bytes)).value();
}

Result<std::string> runToEnd(release::ReleaseStream& stream) {
    if (Status s = stream.start(); !s) return s;
    std::string out;
    for (;;) {
        auto page = stream.nextPage();
        if (!page) return page.status();
        if (!*page) return out;
        out += **page;
    }
}

// createVisitsTable's generator, for row g (1-based).
int ageOf(int g) { return 18 + (g * 7919) % 70; }
std::string sexOf(int g) { return g % 2 == 0 ? "F" : "M"; }
std::string zipOf(int g) { return std::to_string(10000 + (g * 31) % 40); }

bool ageCovers(const std::string& label, int age) {
    if (!label.empty() && label.front() == '[') {
        const size_t dash = label.find('-');
        return std::stoi(label.substr(1, dash - 1)) <= age &&
               age <= std::stoi(label.substr(dash + 1, label.size() - dash - 2));
    }
    return std::stoi(label) == age;
}

// A prefix-hierarchy label: the value with its last digits masked, or "*".
bool zipCovers(const std::string& label, const std::string& zip) {
    if (label == "*") return true;
    if (label.size() != zip.size()) return false;
    for (size_t i = 0; i < zip.size(); ++i)
        if (label[i] != '*' && label[i] != zip[i]) return false;
    return true;
}

// Checks every released row (in order, `gOf(i)` the generator index of row i) against its true values.
void checkLabelsCoverTruth(const ParsedCsv& csv, const std::function<int(size_t)>& gOf) {
    for (size_t i = 0; i < csv.rows.size(); ++i) {
        const int g = gOf(i);
        const auto& row = csv.rows[i];
        INFO("row " << i << " (g = " << g << ")");
        CHECK(ageCovers(row[csv.column("age")], ageOf(g)));
        const std::string& sex = row[csv.column("sex")];
        CHECK((sex == sexOf(g) || sex == "*"));
        CHECK(zipCovers(row[csv.column("zip")], zipOf(g)));
    }
}

}  // namespace

TEST_CASE("a Mondrian extract releases every row, in table order, under labels that cover its values",
          "[extract][pipeline][mondrian]") {
    Agency agency(3000);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsMondrianPolicyJson(R"({"k": 10})"));
    release::StreamOptions options;
    options.fetchRows = 700;
    options.pageBytes = 8 * 1024;
    auto stream = release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key),
                                                  release::ExtractFormat::Csv, options);
    REQUIRE(stream);
    REQUIRE((*stream)->unreachable() == nullptr);
    const release::PrivacyDecision& decision = *(*stream)->decision();
    REQUIRE(decision.local);
    CHECK(decision.records == 3000);
    CHECK(decision.stats.achievedK >= 10);
    auto text = runToEnd(**stream);
    REQUIRE(text);

    ParsedCsv csv = parseCsv(*text);
    CHECK(csv.header == std::vector<std::string>{"id", "age", "sex", "zip", "diagnosis", "cost", "visit_date"});
    REQUIRE(csv.rows.size() == 3000);  // Mondrian never suppresses
    CHECK((*stream)->rowsSuppressed() == 0);
    CHECK(smallestGroup(csv, {"age", "sex", "zip"}) >= 10);
    checkLabelsCoverTruth(csv, [](size_t i) { return static_cast<int>(i) + 1; });
    // Local recoding: many more classes than a full-domain generalization of these columns gives.
    std::set<std::vector<std::string>> classes;
    for (const auto& row : csv.rows)
        classes.insert({row[csv.column("age")], row[csv.column("sex")], row[csv.column("zip")]});
    CHECK(classes.size() == decision.local->partitions.partitionSizes.size());
    CHECK(classes.size() > 100);
    REQUIRE((*stream)->finalCheck());
    CHECK((*stream)->finalCheck()->minClassSize == decision.stats.achievedK);
    const auto& columns = (*stream)->columns();
    CHECK(columns[2].transform == "mondrian-strict");
    CHECK(columns[0].transform == "pseudonymize");
}

TEST_CASE("a Mondrian extract keeps its order across indexes, filters and concurrent updates",
          "[extract][pipeline][mondrian]") {
    Agency agency(4000);
    auto key = testKey();
    // An index that covers the quasi-identifiers: without the fixed row order, the first read
    // (quasi-identifiers only) could take an index-only scan and the second a sequential scan.
    agency.sql("CREATE INDEX visits_qi ON agency.visits (age, sex, zip);");
    agency.sql("VACUUM ANALYZE agency.visits;");  // all-visible pages: index-only scans become cheap
    auto policy = loadTestPolicy(
        visitsMondrianPolicyJson(R"({"k": 5, "l_diversity": {"variant": "distinct", "l": 2}})",
                                 R"(, "row_filter": {"column": "age", "op": ">=", "value": 60})", "relaxed"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(stream);
    REQUIRE((*stream)->decision());
    // Between the two reads, another session moves every selected row to a new physical place;
    // the release's snapshot still sees the old versions where they were.
    agency.sql("UPDATE agency.visits SET cost = cost + 1 WHERE age >= 60;");
    auto text = runToEnd(**stream);
    REQUIRE(text);
    ParsedCsv csv = parseCsv(*text);
    std::vector<int> selected;
    for (int g = 1; g <= 4000; ++g)
        if (ageOf(g) >= 60) selected.push_back(g);
    REQUIRE(csv.rows.size() == selected.size());
    checkLabelsCoverTruth(csv, [&](size_t i) { return selected[i]; });
    std::map<std::vector<std::string>, std::set<std::string>> diagnoses;
    for (const auto& row : csv.rows)
        diagnoses[{row[csv.column("age")], row[csv.column("sex")], row[csv.column("zip")]}].insert(
            row[csv.column("diagnosis")]);
    for (const auto& [group, values] : diagnoses) CHECK(values.size() >= 2);
    REQUIRE((*stream)->finalCheck());
    CHECK(*(*stream)->finalCheck()->minDistinctL >= 2);
    CHECK((*stream)->columns()[2].transform == "mondrian-relaxed");
}

TEST_CASE("a Mondrian model the whole selection cannot meet is unreachable, with the best achievable value",
          "[extract][pipeline][mondrian]") {
    Agency agency(300);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsMondrianPolicyJson(R"({"k": 1000})"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(stream);
    const auto* u = (*stream)->unreachable();
    REQUIRE(u != nullptr);
    CHECK(u->requirement == "k-anonymity with k = 1000");
    CHECK(u->bestAchievable.find("k")->asUint64() == 300);
    CHECK(u->message.find("300 records") != std::string::npos);
    CHECK((*stream)->start().code() == StatusCode::FailedPrecondition);
}

TEST_CASE("a NULL quasi-identifier stops a Mondrian extract before any row is released",
          "[extract][pipeline][mondrian]") {
    Agency agency(500);
    agency.sql("UPDATE agency.visits SET zip = NULL WHERE id = 250;");
    auto key = testKey();
    auto policy = loadTestPolicy(visitsMondrianPolicyJson(R"({"k": 5})"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE_FALSE(stream);
    CHECK(stream.status().code() == StatusCode::FailedPrecondition);
    CHECK(stream.status().message().find("'zip' is NULL") != std::string::npos);
    // With the row filtered out, the release goes through.
    auto filtered = loadTestPolicy(
        visitsMondrianPolicyJson(R"({"k": 5})", R"(, "row_filter": {"column": "zip", "op": "is_not_null"})"));
    auto again =
        release::ReleaseStream::prepare(agency.source(), filtered, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(again);
    auto text = runToEnd(**again);
    REQUIRE(text);
    CHECK(parseCsv(*text).rows.size() == 499);
}
