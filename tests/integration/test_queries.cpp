// POST /v1/queries end to end (docs/aggregates.md): a real gateway, a real agency database, the
// answers against the exact figures computed independently in SQL, the budget's accounting in the
// database and in the audit log, its exhaustion, parallel queries that cannot overspend, and the
// refusals.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <rapidjson/document.h>

#include <atomic>
#include <cmath>
#include <map>
#include <thread>
#include <vector>

#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "test_extract_fixture.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

// The aggregates section of the test policy: counts and sums of visits by sex, diagnosis and age
// band (the intervals hierarchy's level 2, bands of 10 years), costs clamped to [0, 5000].
std::string aggregatesJson(const std::string& budget = R"({"epsilon": 1.0, "delta": 1e-6, "period": "month"})",
                           const std::string& personKey = "id", int maxRows = 1) {
    return R"(, "aggregates": {"person_key": ")" + personKey + R"(", "max_rows_per_person": )" +
           std::to_string(maxRows) +
           R"(,
      "measures": [{"column": "cost", "lower": 0, "upper": 5000}],
      "group_by": [{"column": "sex", "values": ["F", "M"]},
                   {"column": "diagnosis", "values": ["I10", "E11", "J45", "M54", "F32"]},
                   {"column": "age", "level": 2, "values": ["[10-20[", "[20-30[", "[30-40[", "[40-50[", "[50-60[", "[60-70[", "[70-80[", "[80-90["]}],
      "budget": )" +
           budget + "}";
}

struct QueryWorld {
    TestDatabase gatewayDb = TestDatabase::create("query_gateway");
    TestDatabase agency = TestDatabase::create("query_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, partnerA, partnerB, auditor;

    explicit QueryWorld(int rows = 3000, const std::string& aggregates = aggregatesJson()) {
        createVisitsTable(agency.conninfo(), rows);
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo());
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        partnerA = gw->addPrincipal(auth::Role::Partner, "partner-a");
        partnerB = gw->addPrincipal(auth::Role::Partner, "partner-b");
        auditor = gw->addPrincipal(auth::Role::Auditor, "auditor-1");
        auto source = call("PUT", "/v1/sources/health-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        REQUIRE(source.status < 300);
        REQUIRE(call("PUT", "/v1/datasets/visits", publisher, visitsDatasetJson("health-db")).status < 300);
        putPolicy("stats", visitsPolicyJson(R"({"k": 5})", aggregates, R"(["partner-a", "partner-b"])"));
        putPolicy("extracts-only", visitsPolicyJson(R"({"k": 5})"));
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }

    void putPolicy(const std::string& name, const std::string& json) {
        auto r = call("PUT", "/v1/datasets/visits/policies/" + name, publisher, json);
        INFO(r.body);
        REQUIRE(r.status < 300);
    }

    HttpResult query(const std::string& token, const std::string& members, const std::string& policy = "stats") {
        return call("POST", "/v1/queries", token,
                    R"({"dataset": "visits", "policy": ")" + policy + R"(", "purpose": "research", )" + members + "}");
    }

    std::string gatewayScalar(const std::string& sql) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        auto r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
    }

    // The exact figure per group key ("F", "F|I10", ...) from the agency table.
    std::map<std::string, double> exact(const std::string& sql) {
        pqxx::connection conn(agency.conninfo());
        pqxx::work tx(conn);
        std::map<std::string, double> out;
        for (const auto& row : tx.exec(sql)) out[row[0].c_str()] = row[1].as<double>();
        return out;
    }
};

struct Answered {
    std::string key;  // the group's values joined with '|'
    std::optional<double> value;
    double low = 0, high = 0;
};

std::vector<Answered> groupsOf(const std::string& body) {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    REQUIRE_FALSE(doc.HasParseError());
    REQUIRE(doc.HasMember("groups"));
    std::vector<Answered> out;
    for (const auto& g : doc["groups"].GetArray()) {
        Answered a;
        for (auto m = g["key"].MemberBegin(); m != g["key"].MemberEnd(); ++m)
            a.key += (a.key.empty() ? "" : "|") + std::string(m->value.GetString());
        if (g["value"].IsNumber()) a.value = g["value"].GetDouble();
        a.low = g["interval"][0].GetDouble();
        a.high = g["interval"][1].GetDouble();
        out.push_back(std::move(a));
    }
    return out;
}

double numberAt(const std::string& body, std::initializer_list<const char*> path) {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    REQUIRE_FALSE(doc.HasParseError());
    const rapidjson::Value* v = &doc;
    for (const char* name : path) {
        INFO(name);
        REQUIRE(v->HasMember(name));
        v = &(*v)[name];
    }
    REQUIRE(v->IsNumber());
    return v->GetDouble();
}

std::string ruleOf(const HttpResult& r) {
    auto json = json::parseJson(r.body);
    if (!json) return "";
    const auto* error = json->find("error");
    const auto* details = error ? error->find("details") : nullptr;
    if (!details || !details->find("rule")) return "";
    return details->find("rule")->asString();
}

}  // namespace

TEST_CASE("a histogram answers every group of the public domain within its stated noise", "[integration][queries]") {
    QueryWorld w;
    auto r = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["sex", "diagnosis"], "epsilon": 0.5)");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto truth = w.exact("SELECT sex || '|' || diagnosis, count(*) FROM agency.visits GROUP BY 1");
    const auto groups = groupsOf(r.body);
    REQUIRE(groups.size() == 10);  // 2 x 5, in the policy's order
    CHECK(groups.front().key == "F|I10");
    CHECK(groups.back().key == "M|F32");
    const double scale = numberAt(r.body, {"noise_scale"});
    CHECK(scale == Approx(1 / 0.5));  // sensitivity 1 (one row per person: id is the primary key)
    for (const auto& g : groups) {
        INFO(g.key);
        REQUIRE(g.value);
        // Ten scales off has probability e^-10 per group: not a flaky bound.
        CHECK(std::fabs(*g.value - truth.at(g.key)) <= 10 * scale);
        CHECK(g.low <= *g.value);
        CHECK(g.high >= *g.value);
        CHECK(*g.value == std::round(*g.value));  // discrete noise on an integer count
    }
    CHECK(numberAt(r.body, {"budget", "epsilon_spent"}) == Approx(0.5));
    CHECK(numberAt(r.body, {"budget", "epsilon_remaining"}) == Approx(0.5));
    // The audit entry of the answer carries its epsilon, and the database its spend.
    CHECK(w.gatewayScalar("SELECT count(*) FROM audit_entries WHERE action = 'query.answer' AND decision = 'allowed' "
                          "AND convert_from(entry, 'UTF8') LIKE '%\"epsilon\":\"0.5\"%'") == "1");
    CHECK(w.gatewayScalar("SELECT epsilon_spent FROM privacy_budget WHERE recipient = 'partner-a'") == "0.5");
    CHECK(w.gatewayScalar("SELECT count(*) FROM privacy_answers WHERE recipient = 'partner-a'") == "1");
}

TEST_CASE("groups come from the hierarchy level and values outside the domain are never answered",
          "[integration][queries]") {
    QueryWorld w;
    auto r = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["age"], "epsilon": 0.5)");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto groups = groupsOf(r.body);
    REQUIRE(groups.size() == 8);
    CHECK(groups[0].key == "[10-20[");
    // Ages are 18..87: the band [10-20[ holds 18 and 19, [80-90[ holds 80..87.
    const auto truth = w.exact(
        "SELECT '[' || (age / 10 * 10) || '-' || (age / 10 * 10 + 10) || '[', count(*) FROM agency.visits GROUP BY 1");
    for (const auto& g : groups) {
        INFO(g.key);
        CHECK(std::fabs(*g.value - truth.at(g.key)) <= 10 * 2.0);
    }
}

TEST_CASE("a date column groups an aggregate by the dates the policy lists", "[integration][queries]") {
    // The group column is read as its day number in PostgreSQL and turned back into the date.
    std::string aggregates = aggregatesJson();
    const std::string sex = R"({"column": "sex", "values": ["F", "M"]},)";
    aggregates.replace(aggregates.find(sex), sex.size(),
                       sex + R"( {"column": "visit_date", "values": ["2024-01-01", "2024-01-02", "2024-12-30"]},)");
    QueryWorld w(3000, aggregates);
    auto r = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["visit_date"], "epsilon": 0.5)");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto groups = groupsOf(r.body);
    REQUIRE(groups.size() == 3);
    const auto truth = w.exact("SELECT visit_date::text, count(*) FROM agency.visits GROUP BY 1");
    for (const auto& g : groups) {
        INFO(g.key);
        REQUIRE(truth.count(g.key) == 1);
        CHECK(std::fabs(*g.value - truth.at(g.key)) <= 10 * 2.0);
    }
    CHECK(groups[0].key == "2024-01-01");
}

TEST_CASE("sums and means clamp to the declared bounds and state their budget split", "[integration][queries]") {
    QueryWorld w;
    // cost = (id % 1000) * 10.5 reaches 10489.5; clamped to 5000.
    auto r = w.query(w.partnerA, R"("aggregate": "sum", "column": "cost", "group_by": ["sex"], "epsilon": 0.5)");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto truth = w.exact("SELECT sex, sum(LEAST(cost, 5000)) FROM agency.visits GROUP BY 1");
    const double scale = numberAt(r.body, {"noise_scale"});
    CHECK(scale >= 5000 / 0.5);
    CHECK(scale <= 5000 / 0.5 * 1.01);
    for (const auto& g : groupsOf(r.body)) {
        INFO(g.key);
        CHECK(std::fabs(*g.value - truth.at(g.key)) <= 10 * scale);
    }
    auto m = w.query(w.partnerA, R"("aggregate": "mean", "column": "cost", "epsilon": 0.5)");
    INFO(m.body);
    REQUIRE(m.status == 200);
    const double mean = w.exact("SELECT 'all', avg(LEAST(cost, 5000)) FROM agency.visits").at("all");
    const auto all = groupsOf(m.body);
    REQUIRE(all.size() == 1);
    CHECK(all[0].key.empty());
    CHECK(std::fabs(*all[0].value - mean) < 100);  // noise of sum 2*5000/0.5 over about 3000 rows
    CHECK(all[0].low <= mean + 100);
    CHECK(all[0].high >= mean - 100);
    CHECK(numberAt(m.body, {"budget", "epsilon_remaining"}) == Approx(0));
    CHECK(numberAt(m.body, {"split", "sum", "epsilon"}) == Approx(0.25));
    CHECK(numberAt(m.body, {"split", "count", "epsilon"}) == Approx(0.25));
    CHECK(numberAt(m.body, {"count_noise_scale"}) == Approx(1 / 0.25));
}

TEST_CASE("a query's row filter narrows what the policy allows", "[integration][queries]") {
    QueryWorld w;
    auto r =
        w.query(w.partnerA,
                R"("aggregate": "count", "row_filter": {"column": "sex", "op": "=", "value": "F"}, "epsilon": 0.5)");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(std::fabs(*groupsOf(r.body).at(0).value - 1500) <= 20);
    auto bad =
        w.query(w.partnerA,
                R"("aggregate": "count", "row_filter": {"column": "nope", "op": "=", "value": "F"}, "epsilon": 0.5)");
    CHECK(bad.status == 422);
    CHECK(bad.body.find("nope") != std::string::npos);
}

TEST_CASE("repeating a query until the budget refuses does not average the noise away", "[integration][queries]") {
    QueryWorld w(3000, aggregatesJson(R"({"epsilon": 2.0, "period": "month"})"));
    std::vector<double> answers;
    HttpResult last;
    for (int i = 0; i < 40; ++i) {
        last = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)");
        if (last.status != 200) break;
        answers.push_back(*groupsOf(last.body).at(0).value);
    }
    INFO(last.body);
    REQUIRE(answers.size() == 20);  // 2.0 / 0.1
    CHECK(last.status == 403);
    CHECK(ruleOf(last) == "aggregates.budget");
    CHECK(last.body.find("\"epsilon_remaining\":\"0\"") != std::string::npos);
    CHECK(last.body.find("period_end") != std::string::npos);
    // The mean of 20 answers with scale 10 has standard deviation about 10*sqrt(2)/sqrt(20) = 3.2:
    // the average still carries noise of the order the single answers state, and no more queries come.
    double mean = 0;
    for (double a : answers) mean += a / static_cast<double>(answers.size());
    CHECK(std::fabs(mean - 3000) <= 5 * 3.2);
    // The auditor sums the epsilon of the recipient's answers from the log: the whole budget.
    CHECK(w.gatewayScalar("SELECT sum((convert_from(entry, 'UTF8')::jsonb -> 'details' ->> 'epsilon')::numeric) "
                          "FROM audit_entries WHERE action = 'query.answer' AND decision = 'allowed' "
                          "AND actor = 'partner-a'") == "2.0");
    // Another recipient has its own budget.
    auto other = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.1)");
    INFO(other.body);
    CHECK(other.status == 200);
}

TEST_CASE("parallel queries of one recipient cannot overspend its budget", "[integration][queries]") {
    QueryWorld w(500, aggregatesJson(R"({"epsilon": 1.0, "period": "day"})"));
    std::atomic<int> answered{0}, refused{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&] {
            auto r = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.25)");
            (r.status == 200 ? answered : r.status == 403 ? refused : other)++;
        });
    for (auto& t : threads) t.join();
    CHECK(answered == 4);
    CHECK(refused == 12);
    CHECK(other == 0);
    CHECK(w.gatewayScalar("SELECT epsilon_spent FROM privacy_budget WHERE recipient = 'partner-a'") == "1");
    CHECK(w.gatewayScalar("SELECT count(*) FROM privacy_answers") == "4");
}

TEST_CASE("queries the policy does not allow are refused and audited", "[integration][queries]") {
    QueryWorld w;
    auto notMeasure = w.query(w.partnerA, R"("aggregate": "sum", "column": "age", "epsilon": 0.1)");
    CHECK(notMeasure.status == 422);
    CHECK(notMeasure.body.find("its measures are cost") != std::string::npos);
    auto notGroup = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["zip"], "epsilon": 0.1)");
    CHECK(notGroup.status == 422);
    auto tooMuch = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 5)");
    CHECK(tooMuch.status == 422);
    auto noAggregates = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)", "extracts-only");
    CHECK(noAggregates.status == 403);
    CHECK(ruleOf(noAggregates) == "aggregates");
    auto stranger = w.call(
        "POST", "/v1/queries", w.partnerA,
        R"({"dataset": "visits", "policy": "stats", "purpose": "marketing", "aggregate": "count", "epsilon": 0.1})");
    CHECK(stranger.status == 403);
    CHECK(ruleOf(stranger) == "purpose");
    auto malformed = w.query(w.partnerA, R"("aggregate": "median", "epsilon": 0.1)");
    CHECK(malformed.status == 400);
    auto gaussianNoDelta = w.query(w.partnerA, R"("aggregate": "count", "mechanism": "gaussian", "epsilon": 0.1)");
    CHECK(gaussianNoDelta.status == 400);
    auto auditorTries = w.query(w.auditor, R"("aggregate": "count", "epsilon": 0.1)");
    CHECK(auditorTries.status == 403);
    // Nothing was spent, and every refusal left one entry.
    CHECK(w.gatewayScalar("SELECT coalesce(sum(epsilon_spent), 0) FROM privacy_budget") == "0");
    CHECK(w.gatewayScalar("SELECT count(*) FROM audit_entries WHERE action = 'query.answer' AND decision = 'denied'") ==
          "8");
}

TEST_CASE("a gaussian answer spends delta and states its parameters", "[integration][queries]") {
    QueryWorld w;
    auto r = w.query(
        w.partnerA,
        R"("aggregate": "histogram", "group_by": ["sex"], "mechanism": "gaussian", "epsilon": 0.5, "delta": 1e-7)");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.body.find("\"mechanism\":\"gaussian\"") != std::string::npos);
    CHECK(numberAt(r.body, {"budget", "delta_spent"}) == Approx(1e-7));
    const double sigma = numberAt(r.body, {"noise_stddev"});
    for (const auto& g : groupsOf(r.body)) CHECK(std::fabs(*g.value - 1500) <= 8 * sigma);
}

TEST_CASE("nothing the rows hold makes a query fail or bends its figures", "[integration][queries]") {
    QueryWorld w(3000, aggregatesJson(R"({"epsilon": 100, "period": "month"})"));
    // A filter that matches no row, grouped by a level whose hierarchy is built from the values
    // (intervals): an answer like any other, not an error that would say "no such row" for free.
    auto none = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["age"],
        "row_filter": {"and": [{"column": "id", "op": "=", "value": -1}, {"column": "diagnosis", "op": "=", "value": "F32"}]},
        "epsilon": 1)");
    INFO(none.body);
    REQUIRE(none.status == 200);
    CHECK(groupsOf(none.body).size() == 8);
    auto one = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["age"],
        "row_filter": {"column": "id", "op": "=", "value": 7}, "epsilon": 1)");
    CHECK(one.status == 200);
    // A NULL measure is no value: not counted, not summed as the lower bound.
    {
        pqxx::connection conn(w.agency.conninfo());
        pqxx::work tx(conn);
        tx.exec("UPDATE agency.visits SET cost = NULL WHERE id % 3 = 0");
        tx.commit();
    }
    auto mean = w.query(w.partnerA, R"("aggregate": "mean", "column": "cost", "epsilon": 90)");
    INFO(mean.body);
    REQUIRE(mean.status == 200);
    const double truth =
        w.exact("SELECT 'all', avg(LEAST(cost, 5000)) FROM agency.visits WHERE cost IS NOT NULL").at("all");
    CHECK(std::fabs(*groupsOf(mean.body).at(0).value - truth) < 5);  // noise: sum scale 5000/45 over ~2000 rows
}
