// The release pipeline on a real agency table: aggregate pushdown, search, streaming, final check.
#include <catch2/catch.hpp>

#include <set>

#include <pqxx/pqxx>

#include "anonymizer/transform.hpp"
#include "json/canonical.hpp"
#include "gateway/release/stream.hpp"
#include "runtime_role.hpp"
#include "test_extract_fixture.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

struct Agency {
    TestDatabase db = TestDatabase::create("custodian_agency");
    explicit Agency(int rows) { createVisitsTable(db.conninfo(), rows); }
    release::SourceLocation source() const { return {db.conninfo(), "agency", "visits", std::chrono::seconds(5)}; }
};

anon::MasterKey testKey() {
    std::vector<uint8_t> bytes(32, 7);
    return std::move(anon::MasterKey::fromBytes(bytes)).value();
}

std::string runToEnd(release::ReleaseStream& stream) {
    REQUIRE(stream.start());
    std::string out;
    for (;;) {
        auto page = stream.nextPage();
        REQUIRE(page);
        if (!*page) break;
        out += **page;
    }
    REQUIRE(stream.finished());
    return out;
}

// One release of `policy` with its combinations counted where `counting` says, and what the
// counting tests compare.
struct CountedRun {
    std::string text;
    std::vector<int> levels;
    uint64_t records = 0, suppressed = 0, achievedK = 0, classes = 0, combinations = 0;
};

CountedRun runCounted(const Agency& agency, const std::shared_ptr<const policies::Policy>& policy,
                      release::GroupCounting counting, const anon::MasterKey& key) {
    release::SourceLocation source = agency.source();
    source.groupCounting = counting;
    auto stream = release::ReleaseStream::prepare(source, policy, visitsRelease(key), release::ExtractFormat::Csv);
    INFO((stream ? std::string() : stream.status().message()));
    REQUIRE(stream);
    REQUIRE((*stream)->unreachable() == nullptr);
    CountedRun r;
    REQUIRE((*stream)->privacy().table);
    r.combinations = (*stream)->privacy().table->size();
    r.text = runToEnd(**stream);
    CHECK(!(*stream)->privacy().table);  // freed when the rows start: they do not need it
    r.levels = (*stream)->decision()->levels;
    r.records = (*stream)->decision()->records;
    r.classes = (*stream)->decision()->stats.classes;
    r.achievedK = (*stream)->decision()->stats.achievedK;
    r.suppressed = (*stream)->rowsSuppressed();
    REQUIRE((*stream)->finalCheck());
    return r;
}

void checkSameRelease(const CountedRun& a, const CountedRun& b) {
    CHECK(a.records == b.records);
    CHECK(a.combinations == b.combinations);
    CHECK(a.levels == b.levels);
    CHECK(a.classes == b.classes);
    CHECK(a.achievedK == b.achievedK);
    CHECK(a.suppressed == b.suppressed);
    CHECK(a.text == b.text);
}

}  // namespace

TEST_CASE("an extract of a table is k-anonymous, transformed and complete", "[extract][pipeline]") {
    Agency agency(3000);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsPolicyJson(R"({"k": 10, "suppression_limit": 0.05})"));
    release::ReleaseContext context = visitsRelease(key);
    release::StreamOptions options;
    options.fetchRows = 500;  // several pages
    options.pageBytes = 16 * 1024;
    auto stream = release::ReleaseStream::prepare(agency.source(), policy, std::move(context),
                                                  release::ExtractFormat::Csv, options);
    REQUIRE(stream);
    REQUIRE((*stream)->unreachable() == nullptr);
    REQUIRE((*stream)->decision()->records == 3000);
    const std::string text = runToEnd(**stream);

    ParsedCsv csv = parseCsv(text);
    CHECK(csv.header == std::vector<std::string>{"id", "age", "sex", "zip", "diagnosis", "cost", "visit_date"});
    CHECK(csv.rows.size() == (*stream)->rowsReleased());
    CHECK((*stream)->rowsRead() == 3000);
    CHECK((*stream)->rowsSuppressed() <= 150);
    // Independent k-anonymity check on the plaintext.
    CHECK(smallestGroup(csv, {"age", "sex", "zip"}) >= 10);
    REQUIRE((*stream)->finalCheck());
    CHECK((*stream)->finalCheck()->minClassSize >= 10);
    CHECK((*stream)->finalCheck()->releasedRecords == csv.rows.size());
    // Identifiers never leave in clear: pseudonyms are 32 hex digits and never a source id.
    std::set<std::string> pseudonyms;
    for (const auto& row : csv.rows) {
        const auto& id = row[csv.column("id")];
        CHECK(id.size() == 32);
        pseudonyms.insert(id);
        CHECK(row[csv.column("cost")].find('.') == std::string::npos);  // rounded to 100
    }
    CHECK(pseudonyms.size() == csv.rows.size());
    CHECK(text.find("Person ") == std::string::npos);
}

TEST_CASE("pseudonyms are stable for a recipient and policy, and differ between recipients and between policies",
          "[extract][pipeline]") {
    Agency agency(200);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})"));
    auto extract = [&](const std::string& recipient, const std::string& policyName) {
        auto stream = release::ReleaseStream::prepare(
            agency.source(), policy, visitsRelease(key, recipient, policyName), release::ExtractFormat::Csv);
        REQUIRE(stream);
        ParsedCsv csv = parseCsv(runToEnd(**stream));
        std::set<std::string> ids;
        for (const auto& row : csv.rows) ids.insert(row[csv.column("id")]);
        return ids;
    };
    auto disjoint = [](const std::set<std::string>& x, const std::set<std::string>& y) {
        std::vector<std::string> common;
        std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(common));
        return common.empty();
    };
    auto a1 = extract("partner-a", "research"), a2 = extract("partner-a", "research");
    auto b = extract("partner-b", "research"), aOther = extract("partner-a", "quality");
    REQUIRE(a1.size() > 100);
    CHECK(a1 == a2);
    CHECK(disjoint(a1, b));
    CHECK(disjoint(a1, aOther));
}

TEST_CASE("a dropped column is never read by the release's queries: a role without SELECT on it releases the same rows",
          "[extract][pipeline]") {
    Agency agency(500);
    auto key = testKey();
    // A role that may read every column of agency.visits except full_name (the policy drops it).
    RuntimeRole role(agency.db);
    runPsql(agency.db.conninfo(), "GRANT USAGE ON SCHEMA agency TO \"" + role.name() +
                                      "\"; GRANT SELECT (id, age, sex, zip, diagnosis, cost, visit_date) ON "
                                      "agency.visits TO \"" +
                                      role.name() + "\"");
    release::SourceLocation limited = agency.source();
    limited.conninfo = role.conninfo();
    auto extract = [&](const release::SourceLocation& source, const std::string& policyJson) {
        auto stream = release::ReleaseStream::prepare(source, loadTestPolicy(policyJson), visitsRelease(key),
                                                      release::ExtractFormat::Csv);
        if (!stream) return Result<std::string>(stream.status());
        if (Status s = (*stream)->start(); !s) return Result<std::string>(s);
        std::string out;
        for (;;) {
            auto page = (*stream)->nextPage();
            if (!page) return Result<std::string>(page.status());
            if (!*page) return Result<std::string>(std::move(out));
            out += **page;
        }
    };
    const std::string policy = visitsPolicyJson(R"({"k": 5, "suppression_limit": 0.05})");
    auto asOwner = extract(agency.source(), policy);
    auto asLimited = extract(limited, policy);
    REQUIRE(asOwner);
    INFO((asLimited ? std::string() : asLimited.status().message()));
    REQUIRE(asLimited);
    CHECK(*asLimited == *asOwner);
    CHECK(parseCsv(*asLimited).rows.size() > 400);
    // The same role cannot release the column once the policy uses its values (the grant is real).
    std::string pseudonymized = policy;
    const std::string drop = R"("role": "identifier", "transform": {"name": "drop"})";
    pseudonymized.replace(pseudonymized.find(drop), drop.size(),
                          R"("role": "identifier", "transform": {"name": "pseudonymize"})");
    auto refused = extract(limited, pseudonymized);
    REQUIRE(!refused);
    CHECK(refused.status().message().find("permission denied") != std::string::npos);
    // A dropped column the table no longer has is still an error, named, as for any other column.
    runPsql(agency.db.conninfo(), "ALTER TABLE agency.visits DROP COLUMN full_name");
    auto gone = extract(agency.source(), policy);
    REQUIRE(!gone);
    CHECK(gone.status().message().find("no column 'full_name'") != std::string::npos);
}

TEST_CASE("the row filter is applied in the database", "[extract][pipeline]") {
    Agency agency(1000);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsPolicyJson(
        R"({"k": 2, "suppression_limit": 0.2})",
        R"(, "row_filter": {"and": [{"column": "sex", "op": "=", "value": "F"}, {"column": "diagnosis", "op": "in", "value": ["I10", "E11"]}]})"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(stream);
    pqxx::connection conn(agency.db.conninfo());
    pqxx::read_transaction tx(conn);
    const auto expected =
        tx.exec("SELECT count(*) FROM agency.visits WHERE sex = 'F' AND diagnosis IN ('I10','E11')")[0][0]
            .as<uint64_t>();
    ParsedCsv csv = parseCsv(runToEnd(**stream));
    CHECK((*stream)->rowsRead() == expected);
    CHECK(expected > 0);
    for (const auto& row : csv.rows) {
        const auto& d = row[csv.column("diagnosis")];
        CHECK((d == "I10" || d == "E11"));
    }

    // Integer, date and numeric comparisons: the COPY reads each value back cast to the type
    // PostgreSQL inferred for the parameter, so it selects exactly what the bind parameters select.
    auto typed = loadTestPolicy(visitsPolicyJson(
        R"({"k": 2, "suppression_limit": 0.5})",
        R"(, "row_filter": {"and": [{"column": "age", "op": ">=", "value": 30}, {"column": "visit_date", "op": "<", "value": "2024-06-01"},
                                    {"column": "cost", "op": ">", "value": 100.5}, {"column": "zip", "op": "not_in", "value": ["10001", "10002"]}]})"));
    auto typedStream =
        release::ReleaseStream::prepare(agency.source(), typed, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(typedStream);
    const auto typedExpected =
        tx.exec("SELECT count(*) FROM agency.visits WHERE age >= 30 AND visit_date < '2024-06-01' AND cost > 100.5 "
                "AND zip NOT IN ('10001', '10002')")[0][0]
            .as<uint64_t>();
    runToEnd(**typedStream);
    CHECK((*typedStream)->rowsRead() == typedExpected);
    CHECK((*typedStream)->decision()->records == typedExpected);
    CHECK(typedExpected > 0);
}

TEST_CASE("hostile text values are released exactly, through COPY, the search and the final check",
          "[extract][pipeline]") {
    Agency agency(3000);
    makeDiagnosesHostile(agency.db.conninfo());
    const auto source = diagnosisCounts(agency.db.conninfo());
    auto key = testKey();
    // t-closeness makes the final check look up every released diagnosis in the distribution the
    // GROUP BY counted: the two COPY readings of a value must agree byte for byte.
    auto policy = loadTestPolicy(visitsPolicyJson(R"({"k": 5, "t_closeness": {"t": 0.95}, "suppression_limit": 0.1})"));
    release::StreamOptions options;
    options.fetchRows = 700;
    auto csvStream = release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key),
                                                     release::ExtractFormat::Csv, options);
    REQUIRE(csvStream);
    REQUIRE((*csvStream)->unreachable() == nullptr);
    ParsedCsv csv = parseCsv(runToEnd(**csvStream));
    REQUIRE((*csvStream)->finalCheck());
    checkReleasedValuesAreSourceValues(csv, "diagnosis", source, (*csvStream)->rowsSuppressed());
    std::set<std::optional<std::string>> seen;
    for (size_t r = 0; r < csv.rows.size(); ++r)
        seen.insert(csv.nulls[r][csv.column("diagnosis")]
                        ? std::nullopt
                        : std::optional<std::string>(csv.rows[r][csv.column("diagnosis")]));
    for (const auto& value : hostileTexts()) CHECK(seen.count(value) == 1);

    // NDJSON: every line is JSON and its diagnosis is the source value (null for NULL).
    auto ndjsonStream = release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key),
                                                        release::ExtractFormat::Ndjson, options);
    REQUIRE(ndjsonStream);
    const std::string text = runToEnd(**ndjsonStream);
    std::map<std::optional<std::string>, uint64_t> released;
    size_t lineStart = 0;
    while (lineStart < text.size()) {
        const size_t end = text.find('\n', lineStart);
        REQUIRE(end != std::string::npos);
        auto object = json::parseJson(text.substr(lineStart, end - lineStart));
        REQUIRE(object);
        const json::JsonValue* d = object->find("diagnosis");
        REQUIRE(d != nullptr);
        ++released[d->isNull() ? std::nullopt : std::optional<std::string>(d->asString())];
        lineStart = end + 1;
    }
    uint64_t releasedRows = 0;
    for (const auto& [value, count] : released) {
        REQUIRE(source.count(value) == 1);
        CHECK(count <= source.at(value));
        releasedRows += count;
    }
    CHECK(releasedRows == (*ndjsonStream)->rowsReleased());
}

TEST_CASE("l-diversity holds in every released group", "[extract][pipeline]") {
    Agency agency(2000);
    auto key = testKey();
    auto policy = loadTestPolicy(
        visitsPolicyJson(R"({"k": 5, "l_diversity": {"variant": "distinct", "l": 3}, "suppression_limit": 0.05})"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(stream);
    ParsedCsv csv = parseCsv(runToEnd(**stream));
    std::map<std::vector<std::string>, std::set<std::string>> diagnoses;
    for (const auto& row : csv.rows)
        diagnoses[{row[csv.column("age")], row[csv.column("sex")], row[csv.column("zip")]}].insert(
            row[csv.column("diagnosis")]);
    REQUIRE(!diagnoses.empty());
    for (const auto& [group, values] : diagnoses) CHECK(values.size() >= 3);
    REQUIRE((*stream)->finalCheck());
    CHECK(*(*stream)->finalCheck()->minDistinctL >= 3);
}

TEST_CASE("an unreachable model names the requirement and the best achievable value", "[extract][pipeline]") {
    Agency agency(300);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsPolicyJson(R"({"k": 1000, "suppression_limit": 0.01})"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(stream);
    const auto* u = (*stream)->unreachable();
    REQUIRE(u != nullptr);
    CHECK(u->requirement == "k-anonymity with k = 1000");
    CHECK(u->bestAchievable.find("k")->asUint64() == 300);
    CHECK(u->message.find("300") != std::string::npos);
    CHECK((*stream)->start().code() == StatusCode::FailedPrecondition);
}

TEST_CASE("NDJSON output types numbers and quotes text", "[extract][pipeline]") {
    Agency agency(100);
    auto key = testKey();
    auto policy = loadTestPolicy(visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})"));
    auto stream =
        release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key), release::ExtractFormat::Ndjson);
    REQUIRE(stream);
    const std::string text = runToEnd(**stream);
    REQUIRE(!text.empty());
    const std::string first = text.substr(0, text.find('\n'));
    CHECK(first.rfind("{\"id\":\"", 0) == 0);
    CHECK(first.find("\"cost\":") != std::string::npos);
    CHECK(first.find("\"cost\":\"") == std::string::npos);  // a number
    CHECK(first.find("\"visit_date\":\"2024-") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == static_cast<long>((*stream)->rowsReleased()));
}

TEST_CASE("a source that cannot be reached is Unavailable", "[extract][pipeline]") {
    auto key = testKey();
    auto policy = loadTestPolicy(visitsPolicyJson(R"({"k": 2})"));
    const int port = freeTcpPort();
    release::SourceLocation nowhere{"host=127.0.0.1 port=" + std::to_string(port) + " dbname=nothing user=nobody",
                                    "agency", "visits", std::chrono::seconds(2)};
    auto stream = release::ReleaseStream::prepare(nowhere, policy, visitsRelease(key), release::ExtractFormat::Csv);
    REQUIRE(!stream);
    CHECK(stream.status().code() == StatusCode::Unavailable);
}

TEST_CASE("counting combinations in the gateway and in PostgreSQL gives the same release", "[extract][pipeline]") {
    Agency agency(2500);
    {
        // NULL in the sensitive attribute is a value of its own.
        pqxx::connection conn(agency.db.conninfo());
        pqxx::work tx(conn);
        tx.exec("UPDATE agency.visits SET diagnosis = NULL WHERE id % 89 = 0");
        tx.commit();
    }
    auto key = testKey();
    auto policy = loadTestPolicy(
        visitsPolicyJson(R"({"k": 4, "l_diversity": {"variant": "distinct", "l": 2}, "suppression_limit": 0.1})",
                         R"(, "row_filter": {"column": "age", "op": ">=", "value": 25})"));
    const CountedRun inDatabase = runCounted(agency, policy, release::GroupCounting::Database, key);
    const CountedRun inGateway = runCounted(agency, policy, release::GroupCounting::Gateway, key);
    checkSameRelease(inGateway, inDatabase);
    pqxx::connection conn(agency.db.conninfo());
    pqxx::read_transaction tx(conn);
    CHECK(inGateway.records == tx.exec("SELECT count(*) FROM agency.visits WHERE age >= 25")[0][0].as<uint64_t>());
    CHECK(inGateway.achievedK >= 4);
}

TEST_CASE("gateway counting hands its table to the search whole, and merges values with one canonical form",
          "[extract][pipeline]") {
    Agency agency(3000);
    auto key = testKey();
    const std::string privacy = R"({"k": 4, "suppression_limit": 0.05})";
    // No sensitive attribute and distinct values: the counted columns become the frequency table.
    const auto plain = loadTestPolicy(visitsPolicyJson(privacy));
    checkSameRelease(runCounted(agency, plain, release::GroupCounting::Gateway, key),
                     runCounted(agency, plain, release::GroupCounting::Database, key));

    // Source texts that differ but have one canonical form (numeric 34 and 34.00 of a decimal
    // quasi-identifier) and a NULL next to the empty string (both the empty value of a text
    // quasi-identifier): the combinations they make must be counted as one.
    {
        pqxx::connection conn(agency.db.conninfo());
        pqxx::work tx(conn);
        tx.exec("ALTER TABLE agency.visits ALTER COLUMN age TYPE numeric");
        tx.exec("UPDATE agency.visits SET age = (age::numeric(10,2)) WHERE id % 3 = 0");
        tx.exec("UPDATE agency.visits SET zip = NULL WHERE id % 40 = 0");
        tx.exec("UPDATE agency.visits SET zip = '' WHERE id % 40 = 1");
        const auto texts = tx.exec("SELECT count(DISTINCT age::text) - count(DISTINCT age) FROM agency.visits");
        REQUIRE(texts[0][0].as<int>() > 0);  // the same ages are written two ways
        tx.commit();
    }
    std::string json = visitsPolicyJson(privacy);
    const std::string integerAge = R"("name": "age", "type": "integer")";
    json.replace(json.find(integerAge), integerAge.size(), R"("name": "age", "type": "decimal")");
    const auto decimalAge = loadTestPolicy(json);
    const CountedRun inGateway = runCounted(agency, decimalAge, release::GroupCounting::Gateway, key);
    const CountedRun inDatabase = runCounted(agency, decimalAge, release::GroupCounting::Database, key);
    checkSameRelease(inGateway, inDatabase);
    CHECK(inGateway.records == 3000);
    pqxx::connection conn(agency.db.conninfo());
    pqxx::read_transaction tx(conn);
    CHECK(inGateway.combinations ==
          tx.exec("SELECT count(*) FROM (SELECT DISTINCT age, coalesce(zip, ''), sex FROM agency.visits) AS c")[0][0]
              .as<uint64_t>());
    // The ages are released as before the change of type: 34.00 is 34.
    const CountedRun before = runCounted(agency, plain, release::GroupCounting::Gateway, key);
    CHECK(inGateway.levels == before.levels);
}

TEST_CASE("a row filter that selects few rows of a large table is accounted for those rows, not the table's",
          "[extract][pipeline]") {
    Agency agency(60000);
    auto key = testKey();
    const auto policy = loadTestPolicy(visitsPolicyJson(
        R"({"k": 2, "suppression_limit": 0.5})", R"(, "row_filter": {"column": "id", "op": "<=", "value": 40})"));
    release::StreamOptions options;
    options.memory = std::make_shared<release::MemoryCharge>();
    auto stream = release::ReleaseStream::prepare(agency.source(), policy, visitsRelease(key),
                                                  release::ExtractFormat::Csv, options);
    INFO((stream ? std::string() : stream.status().message()));
    REQUIRE(stream);
    CHECK((*stream)->decision()->records == 40);
    // Room for PostgreSQL's estimate of 60,000 rows was reserved while counting (address space);
    // what the release states is what 40 rows take, far below one code column of 60,000 rows.
    CHECK(options.memory->peakBytes() < 60000 * sizeof(uint32_t));
}

TEST_CASE("columns are read bare only where the source type already prints the declared type's text",
          "[extract][pipeline]") {
    Agency agency(10);
    // Each value is one that a missing cast would print differently: real widens to
    // 1.100000023841858 as float8, char(4) loses its padding as text, numeric drops trailing zeros
    // only through the float8 round trip, a domain over numeric is not numeric to the check.
    runPsql(agency.db.conninfo(),
            "CREATE DOMAIN agency.money2 AS numeric(8,2);"
            "CREATE TABLE agency.typed (grp text, r real, n numeric(6,2), d8 double precision, c char(4),"
            "  v varchar(10), i2 smallint, dt date, dm agency.money2);"
            "INSERT INTO agency.typed SELECT 'g', 1.1, 2.50, 0.1, 'ab', 'xy', 7, DATE '2024-02-29', 3.10"
            "  FROM generate_series(1, 3);");
    auto policy = loadTestPolicy(R"({
  "dataset": "typed", "recipients": ["partner-a"], "purposes": ["research"],
  "columns": [
    {"name": "grp", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "prefix"}},
    {"name": "r", "type": "decimal", "role": "insensitive"},
    {"name": "n", "type": "decimal", "role": "insensitive"},
    {"name": "d8", "type": "decimal", "role": "insensitive"},
    {"name": "c", "type": "text", "role": "insensitive"},
    {"name": "v", "type": "text", "role": "insensitive"},
    {"name": "i2", "type": "integer", "role": "insensitive"},
    {"name": "dt", "type": "date", "role": "insensitive"},
    {"name": "dm", "type": "decimal", "role": "insensitive"}
  ],
  "privacy": {"k": 2, "suppression_limit": 0}, "algorithm": {"name": "optimal"}, "metric": "loss"})");
    auto key = testKey();
    release::SourceLocation source{agency.db.conninfo(), "agency", "typed", std::chrono::seconds(5)};
    auto stream = release::ReleaseStream::prepare(
        source, policy, {{anon::kCurrentKeyDerivation, "typed", "research", "partner-a"}, &key, nullptr},
        release::ExtractFormat::Csv);
    REQUIRE(stream);
    ParsedCsv csv = parseCsv(runToEnd(**stream));
    REQUIRE(csv.rows.size() == 3);
    for (const auto& row : csv.rows) {
        CHECK(row[csv.column("r")] == "1.100000023841858");
        CHECK(row[csv.column("n")] == "2.5");
        CHECK(row[csv.column("d8")] == "0.1");
        CHECK(row[csv.column("c")] == "ab");
        CHECK(row[csv.column("v")] == "xy");
        CHECK(row[csv.column("i2")] == "7");
        CHECK(row[csv.column("dt")] == "2024-02-29");
        CHECK(row[csv.column("dm")] == "3.1");
    }
}

TEST_CASE("dates are read as day numbers and released as the dates they were, and dates without a canonical "
          "text are refused as before",
          "[extract][pipeline]") {
    Agency agency(10);
    // A date quasi-identifier (counted in the gateway, by GROUP BY, and partitioned by Mondrian), an
    // insensitive date stored as text (cast, read as text) and one stored as date (read as day
    // numbers), with the extremes of the canonical form and NULLs.
    const std::string rows =
        "DELETE FROM agency.dated;"
        "INSERT INTO agency.dated SELECT d, d::text, d FROM (VALUES (DATE '0001-01-01'), (DATE '1969-12-31'),"
        "  (DATE '1970-01-01'), (DATE '2024-02-29'), (DATE '9999-12-31')) AS v(d), generate_series(1, 2);"
        "INSERT INTO agency.dated VALUES (DATE '2024-02-29', NULL, NULL), (DATE '2024-02-29', NULL, NULL);";
    runPsql(agency.db.conninfo(), "CREATE TABLE agency.dated (born date, seen text, kept date);" + rows);
    const std::string hierarchy = R"({"builder": "dates", "levels": ["year", "decade"]})";
    auto policyJson = [&](const std::string& algorithm) {
        return R"({
  "dataset": "dated", "recipients": ["partner-a"], "purposes": ["research"],
  "columns": [
    {"name": "born", "type": "date", "role": "quasi_identifier", "hierarchy": )" +
               hierarchy + R"(},
    {"name": "seen", "type": "date", "role": "insensitive"},
    {"name": "kept", "type": "date", "role": "insensitive"}
  ],
  "privacy": {"k": 2, "suppression_limit": 0}, "algorithm": )" +
               algorithm + R"(, "metric": "loss"})";
    };
    auto key = testKey();
    auto extract = [&](release::GroupCounting counting, const std::string& algorithm) -> Result<std::string> {
        release::SourceLocation source{agency.db.conninfo(), "agency", "dated", std::chrono::seconds(5), counting};
        auto stream = release::ReleaseStream::prepare(
            source, loadTestPolicy(policyJson(algorithm)),
            {{anon::kCurrentKeyDerivation, "dated", "research", "partner-a"}, &key, nullptr},
            release::ExtractFormat::Csv);
        if (!stream) return stream.status();
        if ((*stream)->unreachable()) return failedPrecondition((*stream)->unreachable()->message);
        if (Status s = (*stream)->start(); !s) return s;
        std::string out;
        for (;;) {
            auto page = (*stream)->nextPage();
            if (!page) return page.status();
            if (!*page) return out;
            out += **page;
        }
    };
    const std::string optimal = R"({"name": "optimal"})", mondrian = R"({"name": "mondrian"})";
    for (auto [counting, algorithm] :
         {std::pair{release::GroupCounting::Gateway, mondrian}, std::pair{release::GroupCounting::Gateway, optimal},
          std::pair{release::GroupCounting::Database, optimal}}) {
        INFO((counting == release::GroupCounting::Gateway ? "gateway" : "database") << " counting, " << algorithm);
        auto text = extract(counting, algorithm);
        INFO((text ? std::string() : text.status().message()));
        REQUIRE(text);
        ParsedCsv csv = parseCsv(*text);
        std::multiset<std::string> seen;
        for (const auto& row : csv.rows) seen.insert(row[csv.column("seen")]);
        std::multiset<std::string> expected{"",           "",           "0001-01-01", "0001-01-01",
                                            "1969-12-31", "1969-12-31", "1970-01-01", "1970-01-01",
                                            "2024-02-29", "2024-02-29", "9999-12-31", "9999-12-31"};
        CHECK(seen == expected);
        std::multiset<std::string> kept;  // a date column stored as date: read as day numbers, NULLs too
        for (const auto& row : csv.rows) kept.insert(row[csv.column("kept")]);
        CHECK(kept == expected);
        if (algorithm == optimal) {
            // k = 2 holds on the exact dates: the quasi-identifier is released ungeneralized, as read.
            for (const auto& row : csv.rows) {
                const std::string& born = row[csv.column("born")];
                if (!row[csv.column("seen")].empty()) CHECK(born == row[csv.column("seen")]);
                else CHECK(born == "2024-02-29");
            }
        }
    }
    // A date whose text is not YYYY-MM-DD (before year 1, after 9999, infinite) is refused, naming
    // the column, whether it is counted first (born) or only read with the rows (seen).
    for (const char* value : {"0044-03-15 BC", "10000-01-01", "infinity", "-infinity"}) {
        for (const char* column : {"born", "seen", "kept"}) {
            INFO(column << " = " << value);
            runPsql(agency.db.conninfo(), std::string("UPDATE agency.dated SET ") + column + " = '" + value +
                                              "' WHERE born = DATE '1970-01-01'");
            for (auto counting : {release::GroupCounting::Gateway, release::GroupCounting::Database}) {
                auto refused = extract(counting, optimal);
                REQUIRE(!refused);
                CHECK(refused.status().message().find("'" + std::string(column) +
                                                      "' holds a value that is not a date") != std::string::npos);
            }
            runPsql(agency.db.conninfo(), rows);
        }
    }
}
