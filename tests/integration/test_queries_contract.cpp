// POST /v1/queries checked from its documentation alone (docs/aggregates.md, docs/openapi.yaml,
// docs/audit.md "The entries of a query"), as a partner and as an attacker: malformed bodies, the
// policy's limits, the answer's members and their consistency, the budget's accounting across
// queries, policies, versions, recipients and periods, filters that cannot widen the policy, the
// contribution bound, the roles, and exactly one query.answer audit entry for every request.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <rapidjson/document.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "test_extract_fixture.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

const char* const kMonthBudget = R"({"epsilon": 1, "delta": 1e-6, "period": "month"})";

// The aggregates section of the contract policies: counts by sex, diagnosis, age band (level 2 of
// the intervals hierarchy: bands of 10 years) and zip (200 values, 40 of them in the data); sums of
// cost clamped to [0, 5000] and of age clamped to [-100, 50] (so the larger absolute bound is the
// lower one).
std::string contractAggregates(const std::string& budget, const std::string& personKey = "id", int maxRows = 1,
                               bool groupByZip = true) {
    std::string zips;
    for (int z = 10000; z < 10200; ++z) zips += std::string(z == 10000 ? "" : ", ") + "\"" + std::to_string(z) + "\"";
    return R"(, "aggregates": {"person_key": ")" + personKey + R"(", "max_rows_per_person": )" +
           std::to_string(maxRows) + R"(,
      "measures": [{"column": "cost", "lower": 0, "upper": 5000}, {"column": "age", "lower": -100, "upper": 50}],
      "group_by": [{"column": "sex", "values": ["F", "M"]},
                   {"column": "diagnosis", "values": ["I10", "E11", "J45", "M54", "F32"]},
                   {"column": "age", "level": 2, "values": ["[10-20[", "[20-30[", "[30-40[", "[40-50[", "[50-60[", "[60-70[", "[70-80[", "[80-90["]},
                   )" +
           (groupByZip ? R"({"column": "zip", "values": [)" + zips + "]}"
                       : R"({"column": "visit_date", "values": ["2024-01-01"]})") +
           R"(],
      "budget": )" +
           budget + "}";
}

using JsonDoc = std::shared_ptr<rapidjson::Document>;

JsonDoc parsed(const std::string& body) {
    auto doc = std::make_shared<rapidjson::Document>();
    doc->Parse(body.c_str(), body.size());
    if (doc->HasParseError()) return nullptr;
    return doc;
}

// The value at `path` (object members), or nullptr.
const rapidjson::Value* at(const rapidjson::Value& root, std::initializer_list<const char*> path) {
    const rapidjson::Value* v = &root;
    for (const char* name : path) {
        if (!v->IsObject() || !v->HasMember(name)) return nullptr;
        v = &(*v)[name];
    }
    return v;
}

std::string stringAt(const HttpResult& r, std::initializer_list<const char*> path) {
    auto doc = parsed(r.body);
    if (!doc) return "<no json>";
    const auto* v = at(*doc, path);
    if (!v) return "<absent>";
    if (!v->IsString()) return "<not a string>";
    return v->GetString();
}

double numberAt(const HttpResult& r, std::initializer_list<const char*> path) {
    auto doc = parsed(r.body);
    REQUIRE(doc);
    const auto* v = at(*doc, path);
    INFO("path starting " << *path.begin());
    REQUIRE(v);
    REQUIRE(v->IsNumber());
    return v->GetDouble();
}

bool hasMember(const HttpResult& r, std::initializer_list<const char*> path) {
    auto doc = parsed(r.body);
    return doc && at(*doc, path) != nullptr;
}

bool isNullAt(const HttpResult& r, std::initializer_list<const char*> path) {
    auto doc = parsed(r.body);
    if (!doc) return false;
    const auto* v = at(*doc, path);
    return v && v->IsNull();
}

std::string errorCode(const HttpResult& r) { return stringAt(r, {"error", "code"}); }
std::string errorMessage(const HttpResult& r) { return stringAt(r, {"error", "message"}); }
std::string ruleOf(const HttpResult& r) { return stringAt(r, {"error", "details", "rule"}); }

struct Group {
    std::vector<std::pair<std::string, std::string>> key;
    std::string joined;  // the key's values joined with '|'
    std::optional<double> value;
    double low = 0, high = 0;
};

std::vector<Group> groupsOf(const HttpResult& r) {
    auto doc = parsed(r.body);
    REQUIRE(doc);
    const auto* groups = at(*doc, {"groups"});
    REQUIRE(groups);
    REQUIRE(groups->IsArray());
    std::vector<Group> out;
    for (const auto& g : groups->GetArray()) {
        Group one;
        REQUIRE(g.HasMember("key"));
        for (auto m = g["key"].MemberBegin(); m != g["key"].MemberEnd(); ++m) {
            one.key.emplace_back(m->name.GetString(), m->value.GetString());
            one.joined += (one.joined.empty() ? "" : "|") + std::string(m->value.GetString());
        }
        if (g["value"].IsNumber()) one.value = g["value"].GetDouble();
        REQUIRE(g["interval"].IsArray());
        REQUIRE(g["interval"].Size() == 2);
        one.low = g["interval"][0].GetDouble();
        one.high = g["interval"][1].GetDouble();
        out.push_back(std::move(one));
    }
    return out;
}

// RFC 3339 UTC of the start of the next calendar day, month or year.
std::string nextPeriodStart(const std::string& period) {
    std::time_t now = std::time(nullptr);
    std::tm t{};
    gmtime_r(&now, &t);
    int year = t.tm_year + 1900, month = t.tm_mon + 1, day = t.tm_mday;
    if (period == "year") {
        year += 1;
        month = 1;
        day = 1;
    } else if (period == "month") {
        month += 1;
        day = 1;
        if (month == 13) {
            month = 1;
            year += 1;
        }
    } else {
        std::tm next = t;
        next.tm_mday += 1;
        next.tm_hour = 12;
        std::time_t later = timegm(&next);
        gmtime_r(&later, &next);
        year = next.tm_year + 1900;
        month = next.tm_mon + 1;
        day = next.tm_mday;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT00:00:00Z", year, month, day);
    return buf;
}

bool isDecimalString(const std::string& s) { return std::regex_match(s, std::regex("^[0-9]+(\\.[0-9]+)?$")); }

struct ContractWorld {
    TestDatabase gatewayDb = TestDatabase::create("qc_gateway");
    TestDatabase agency = TestDatabase::create("qc_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, partnerA, partnerB, partnerC, auditor, admin;

    explicit ContractWorld(const std::string& budget = kMonthBudget, int rows = 3000) {
        createVisitsTable(agency.conninfo(), rows);
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo());
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        partnerA = gw->addPrincipal(auth::Role::Partner, "partner-a");
        partnerB = gw->addPrincipal(auth::Role::Partner, "partner-b");
        partnerC = gw->addPrincipal(auth::Role::Partner, "partner-c");
        auditor = gw->addPrincipal(auth::Role::Auditor, "auditor-1");
        admin = gw->addPrincipal(auth::Role::Admin, "root");
        auto source = call("PUT", "/v1/sources/health-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        REQUIRE(source.status < 300);
        REQUIRE(call("PUT", "/v1/datasets/visits", publisher, visitsDatasetJson("health-db")).status < 300);
        putPolicy("stats", contractAggregates(budget));
        putPolicy("stats-b", contractAggregates(budget));
        putPolicy("extracts-only", "");
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }

    // Stores a policy over visits for partner-a and partner-b with `extra` top-level members.
    void putPolicy(const std::string& name, const std::string& extra,
                   const std::string& recipients = R"(["partner-a", "partner-b"])") {
        auto r = call("PUT", "/v1/datasets/visits/policies/" + name, publisher,
                      visitsPolicyJson(R"({"k": 5})", extra, recipients));
        INFO(r.body);
        REQUIRE(r.status < 300);
    }

    std::string gatewayScalar(const std::string& sql) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        auto r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
    }

    void agencySql(const std::string& sql) {
        pqxx::connection conn(agency.conninfo());
        pqxx::work tx(conn);
        tx.exec(sql);
        tx.commit();
    }

    long queryEntries() {
        return std::stol(gatewayScalar("SELECT count(*) FROM audit_entries WHERE action = 'query.answer'"));
    }

    // POST /v1/queries with a raw body (optionally without a token), checking that the request left
    // exactly one query.answer entry whose decision matches the status (docs/audit.md).
    HttpResult rawPost(const std::optional<std::string>& token, const std::string& body) {
        const long before = queryEntries();
        HttpResult r =
            token ? call("POST", "/v1/queries", *token, body)
                  : httpRequest(gw->port(), "POST", "/v1/queries", {{"Content-Type", "application/json"}}, body);
        INFO("request body: " << body.substr(0, 300));
        INFO("response " << r.status << ": " << r.body.substr(0, 600));
        CHECK(queryEntries() == before + 1);
        const std::string decision = gatewayScalar(
            "SELECT decision FROM audit_entries WHERE action = 'query.answer' ORDER BY entry_index DESC LIMIT 1");
        if (r.status < 400) CHECK(decision == "allowed");
        else if (r.status < 500) CHECK(decision == "denied");
        else if (r.status != 503) CHECK(decision == "failed");
        // Bad input is never an internal error.
        CHECK(r.status != 0);
        return r;
    }

    HttpResult query(const std::string& token, const std::string& members, const std::string& policy = "stats") {
        return rawPost(token, R"({"dataset": "visits", "policy": ")" + policy + R"(", "purpose": "research", )" +
                                  members + "}");
    }

    double spent(const std::string& recipient, const std::string& policy = "stats") {
        auto s = gatewayScalar("SELECT coalesce(sum(epsilon_spent), 0) FROM privacy_budget WHERE recipient = '" +
                               recipient + "' AND policy = '" + policy + "'");
        return std::stod(s);
    }

    double totalSpent() {
        return std::stod(gatewayScalar("SELECT coalesce(sum(epsilon_spent), 0) FROM privacy_budget"));
    }

    // GET /v1/catalog as the holder of `token`.
    HttpResult catalog(const std::string& token) {
        auto r = call("GET", "/v1/catalog", token);
        REQUIRE(r.status == 200);
        return r;
    }
};

// The policy entry `policy` of dataset visits in a catalog response.
const rapidjson::Value* catalogPolicy(const rapidjson::Document& doc, const std::string& policy) {
    const auto* datasets = at(doc, {"datasets"});
    if (!datasets || !datasets->IsArray()) return nullptr;
    for (const auto& d : datasets->GetArray()) {
        if (std::string(d["name"].GetString()) != "visits") continue;
        for (const auto& p : d["policies"].GetArray())
            if (std::string(p["name"].GetString()) == policy) return &p;
    }
    return nullptr;
}

const std::string kBase = R"("dataset": "visits", "policy": "stats", "purpose": "research")";

void checkInvalidArgument(const HttpResult& r, int status, const std::string& mention = "") {
    INFO("response " << r.status << ": " << r.body.substr(0, 600));
    CHECK(r.status == status);
    CHECK(errorCode(r) == "invalid_argument");
    CHECK_FALSE(errorMessage(r).empty());
    if (!mention.empty()) CHECK(errorMessage(r).find(mention) != std::string::npos);
}

}  // namespace

TEST_CASE("contract - malformed query bodies are 400 invalid_argument and never a server error",
          "[integration][queries][contract]") {
    ContractWorld w;
    struct Case {
        std::string label, body, mention;
    };
    const std::vector<Case> strict400{
        {"empty body", "", ""},
        {"JSON array", "[]", ""},
        {"JSON array of a valid body", "[{" + kBase + R"(, "aggregate": "count", "epsilon": 0.1}])", ""},
        {"null", "null", ""},
        {"a number", "42", ""},
        {"truncated JSON", "{" + kBase, ""},
        {"unknown member", "{" + kBase + R"(, "aggregate": "count", "epsilon": 0.1, "extra": 1})", "extra"},
        {"epsilon as a string", "{" + kBase + R"(, "aggregate": "count", "epsilon": "0.1"})", "epsilon"},
        {"epsilon true", "{" + kBase + R"(, "aggregate": "count", "epsilon": true})", "epsilon"},
        {"epsilon null", "{" + kBase + R"(, "aggregate": "count", "epsilon": null})", "epsilon"},
        {"epsilon an object", "{" + kBase + R"(, "aggregate": "count", "epsilon": {"value": 0.1}})", "epsilon"},
        {"epsilon NaN literal", "{" + kBase + R"(, "aggregate": "count", "epsilon": NaN})", ""},
        {"epsilon Infinity literal", "{" + kBase + R"(, "aggregate": "count", "epsilon": Infinity})", ""},
        {"no epsilon", "{" + kBase + R"(, "aggregate": "count"})", "epsilon"},
        {"no dataset", R"({"policy": "stats", "purpose": "research", "aggregate": "count", "epsilon": 0.1})",
         "dataset"},
        {"no purpose", R"({"dataset": "visits", "policy": "stats", "aggregate": "count", "epsilon": 0.1})", "purpose"},
        {"no aggregate", "{" + kBase + R"(, "epsilon": 0.1})", "aggregate"},
        {"aggregate a number", "{" + kBase + R"(, "aggregate": 7, "epsilon": 0.1})", "aggregate"},
        {"aggregate unknown", "{" + kBase + R"(, "aggregate": "median", "epsilon": 0.1})", "aggregate"},
        {"dataset a number", R"({"dataset": 1, "policy": "stats", "purpose": "research", "aggregate": "count",
            "epsilon": 0.1})",
         "dataset"},
        {"group_by a string", "{" + kBase + R"(, "aggregate": "histogram", "group_by": "sex", "epsilon": 0.1})",
         "group_by"},
        {"group_by of numbers", "{" + kBase + R"(, "aggregate": "histogram", "group_by": [1], "epsilon": 0.1})",
         "group_by"},
        {"column a number", "{" + kBase + R"(, "aggregate": "sum", "column": 3, "epsilon": 0.1})", "column"},
        {"mechanism unknown", "{" + kBase + R"(, "aggregate": "count", "mechanism": "exponential", "epsilon": 0.1})",
         "mechanism"},
        {"delta a string",
         "{" + kBase + R"(, "aggregate": "count", "mechanism": "gaussian", "epsilon": 0.1, "delta": "1e-7"})", "delta"},
        {"duplicate epsilon", "{" + kBase + R"(, "aggregate": "count", "epsilon": 0.1, "epsilon": 0.9})", ""},
    };
    for (const auto& c : strict400) {
        INFO(c.label);
        auto r = w.rawPost(w.partnerA, c.body);
        checkInvalidArgument(r, 400, c.mention);
    }
    // Mistyped or out-of-range values the documents describe both as malformed (the request schema:
    // epsilon and delta exclusiveMinimum 0, row_filter an object) and as not allowed by the policy
    // (ε above the budget, too small to calibrate, a malformed row filter): 400 or 422, never more.
    const std::vector<Case> clientError{
        {"epsilon zero", "{" + kBase + R"(, "aggregate": "count", "epsilon": 0})", "epsilon"},
        {"epsilon negative", "{" + kBase + R"(, "aggregate": "count", "epsilon": -0.5})", "epsilon"},
        {"epsilon negative zero", "{" + kBase + R"(, "aggregate": "count", "epsilon": -0.0})", "epsilon"},
        {"epsilon beyond the double range", "{" + kBase + R"(, "aggregate": "count", "epsilon": 1e400})", ""},
        {"delta zero", "{" + kBase + R"(, "aggregate": "count", "mechanism": "gaussian", "epsilon": 0.1, "delta": 0})",
         "delta"},
        {"delta negative",
         "{" + kBase + R"(, "aggregate": "count", "mechanism": "gaussian", "epsilon": 0.1, "delta": -1e-7})", "delta"},
        {"row_filter a SQL string", "{" + kBase + R"(, "aggregate": "count", "row_filter": "1=1", "epsilon": 0.1})",
         "row_filter"},
        {"row_filter an array", "{" + kBase + R"(, "aggregate": "count", "row_filter": [], "epsilon": 0.1})",
         "row_filter"},
    };
    for (const auto& c : clientError) {
        auto r = w.rawPost(w.partnerA, c.body);
        INFO(c.label << " -> " << r.status << ": " << r.body);
        CHECK((r.status == 400 || r.status == 422));
        CHECK(errorCode(r) == "invalid_argument");
        if (!c.mention.empty()) CHECK(errorMessage(r).find(c.mention) != std::string::npos);
    }
    {  // a thousand group-by columns
        std::string list;
        for (int i = 0; i < 1000; ++i) list += std::string(i ? ", " : "") + "\"sex\"";
        auto r = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": [)" + list + R"(], "epsilon": 0.1)");
        INFO(r.status << ": " << r.body.substr(0, 400));
        CHECK((r.status == 400 || r.status == 422));
        CHECK(errorCode(r) == "invalid_argument");
    }
    // Nothing was spent (whatever a body was answered, the log and the budget agree), and the
    // gateway still answers.
    CHECK(w.totalSpent() == 0);
    CHECK(w.gatewayScalar("SELECT coalesce(sum((convert_from(entry, 'UTF8')::jsonb -> 'details' ->> "
                          "'epsilon')::numeric), 0)::float8 FROM audit_entries WHERE action = 'query.answer' AND "
                          "decision = 'allowed'") == w.gatewayScalar("SELECT coalesce(sum(epsilon_spent), 0)::float8 "
                                                                     "FROM privacy_budget"));
    auto ok = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.01)");
    CHECK(ok.status == 200);
}

TEST_CASE("contract - queries the policy does not allow are 422 with rule aggregates and cost nothing",
          "[integration][queries][contract]") {
    ContractWorld w;
    w.putPolicy("laplace-only", contractAggregates(R"({"epsilon": 1, "period": "month"})"));
    struct Case {
        std::string label, members, mention, policy;
    };
    std::string wide;
    for (int i = 0; i < 1000; ++i)
        wide += std::string(i ? ", " : "") + R"({"column": "age", "op": "=", "value": )" + std::to_string(i) + "}";
    std::string deep;
    for (int i = 0; i < 33; ++i) deep += R"({"not": )";
    deep += R"({"column": "sex", "op": "=", "value": "F"})" + std::string(33, '}');
    const std::vector<Case> cases{
        {"sum of a column that is not a measure", R"("aggregate": "sum", "column": "zip", "epsilon": 0.1)", "cost",
         "stats"},
        {"mean of an undeclared column", R"("aggregate": "mean", "column": "nope", "epsilon": 0.1)", "", "stats"},
        {"sum of an identifier", R"("aggregate": "sum", "column": "id", "epsilon": 0.1)", "", "stats"},
        {"group by a policy column it does not declare",
         R"("aggregate": "histogram", "group_by": ["visit_date"], "epsilon": 0.1)", "visit_date", "stats"},
        {"group by a dropped identifier", R"("aggregate": "histogram", "group_by": ["full_name"], "epsilon": 0.1)",
         "full_name", "stats"},
        {"group by a column in another case", R"("aggregate": "histogram", "group_by": ["Sex"], "epsilon": 0.1)", "Sex",
         "stats"},
        {"epsilon just above the whole budget", R"("aggregate": "count", "epsilon": 1.000001)", "", "stats"},
        {"epsilon far above the whole budget", R"("aggregate": "count", "epsilon": 1e300)", "", "stats"},
        {"a mean's half epsilon too small to calibrate",
         R"("aggregate": "mean", "column": "cost", "epsilon": 0.000001)", "", "stats"},
        {"gaussian without a delta budget",
         R"("aggregate": "count", "mechanism": "gaussian", "epsilon": 0.5, "delta": 1e-7)", "", "laplace-only"},
        {"more than 10,000 groups",
         R"("aggregate": "histogram", "group_by": ["sex", "diagnosis", "age", "zip"], "epsilon": 0.1)", "", "stats"},
        {"row filter on an undeclared column",
         R"("aggregate": "count", "row_filter": {"column": "nope", "op": "=", "value": "F"}, "epsilon": 0.1)",
         "/row_filter", "stats"},
        {"row filter column injection",
         R"("aggregate": "count", "row_filter": {"column": "sex\" OR 1=1 --", "op": "=", "value": "F"}, "epsilon": 0.1)",
         "/row_filter", "stats"},
        {"row filter with an unknown operator",
         R"("aggregate": "count", "row_filter": {"column": "sex", "op": "like", "value": "F%"}, "epsilon": 0.1)",
         "/row_filter", "stats"},
        {"row filter value of the wrong type",
         R"("aggregate": "count", "row_filter": {"column": "age", "op": ">", "value": "old"}, "epsilon": 0.1)",
         "/row_filter", "stats"},
        {"row filter with an empty in list",
         R"("aggregate": "count", "row_filter": {"column": "sex", "op": "in", "value": []}, "epsilon": 0.1)",
         "/row_filter", "stats"},
        {"row filter nested 33 levels", R"("aggregate": "count", "row_filter": )" + deep + R"(, "epsilon": 0.1)",
         "/row_filter", "stats"},
        {"row filter of 1001 nodes", R"("aggregate": "count", "row_filter": {"or": [)" + wide + R"(]}, "epsilon": 0.1)",
         "/row_filter", "stats"},
    };
    for (const auto& c : cases) {
        INFO(c.label);
        auto r = w.query(w.partnerA, c.members, c.policy);
        checkInvalidArgument(r, 422, c.mention);
        CHECK(ruleOf(r) == "aggregates");
        CHECK(w.totalSpent() == 0);
    }
    {  // a delta above the whole delta budget is refused
        auto r = w.query(w.partnerA, R"("aggregate": "count", "mechanism": "gaussian", "epsilon": 0.5, "delta": 2e-6)");
        INFO(r.status << ": " << r.body);
        CHECK((r.status == 422 || r.status == 403));
        CHECK(w.totalSpent() == 0);
    }
    {  // up to 10,000 groups are answered
        // diagnosis x age x zip = 5 x 8 x 200 = 8,000 groups, all of them answered.
        auto r = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["diagnosis", "age", "zip"],
            "epsilon": 0.01)");
        REQUIRE(r.status == 200);
        CHECK(groupsOf(r).size() == 8000);
    }
}

TEST_CASE("contract - mechanism, delta, column and group-by combinations the documents constrain",
          "[integration][queries][contract]") {
    ContractWorld w;
    {  // a laplace query with a delta is refused
        auto r = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1, "delta": 1e-7)");
        INFO(r.body);
        CHECK((r.status == 400 || r.status == 422));
        CHECK(errorCode(r) == "invalid_argument");
        CHECK(errorMessage(r).find("delta") != std::string::npos);
    }
    {  // the default mechanism with a delta is refused
        auto r = w.query(w.partnerA, R"("aggregate": "count", "mechanism": "laplace", "epsilon": 0.1, "delta": 1e-7)");
        INFO(r.body);
        CHECK((r.status == 400 || r.status == 422));
        CHECK(errorCode(r) == "invalid_argument");
    }
    {  // a gaussian query without a delta is refused
        auto r = w.query(w.partnerA, R"("aggregate": "count", "mechanism": "gaussian", "epsilon": 0.1)");
        INFO(r.body);
        CHECK((r.status == 400 || r.status == 422));
        CHECK(errorCode(r) == "invalid_argument");
        CHECK(errorMessage(r).find("delta") != std::string::npos);
    }
    {  // a histogram needs at least one group-by column
        auto none = w.query(w.partnerA, R"("aggregate": "histogram", "epsilon": 0.1)");
        INFO(none.body);
        CHECK((none.status == 400 || none.status == 422));
        auto empty = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": [], "epsilon": 0.1)");
        INFO(empty.body);
        CHECK((empty.status == 400 || empty.status == 422));
    }
    {  // sum and mean need a column
        for (const char* aggregate : {"sum", "mean"}) {
            auto r = w.query(w.partnerA, std::string(R"("aggregate": ")") + aggregate + R"(", "epsilon": 0.1)");
            INFO(aggregate << " -> " << r.body);
            CHECK((r.status == 400 || r.status == 422));
            CHECK(errorMessage(r).find("column") != std::string::npos);
        }
    }
    {  // a count or histogram with a column is refused or answers no column
        auto r = w.query(w.partnerA, R"("aggregate": "count", "column": "cost", "epsilon": 0.1)");
        INFO(r.status << ": " << r.body);
        CHECK(r.status < 500);
        if (r.status == 200) CHECK(isNullAt(r, {"column"}));
    }
    {  // a group-by column listed twice is refused
        auto r = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["sex", "sex"], "epsilon": 0.1)");
        INFO(r.status << ": " << r.body);
        CHECK((r.status == 400 || r.status == 422));
        CHECK(errorCode(r) == "invalid_argument");
    }
    CHECK(w.totalSpent() == 0);
    {  // a gaussian answer states and spends its delta
        auto r = w.query(w.partnerA,
                         R"("aggregate": "histogram", "group_by": ["sex"], "mechanism": "gaussian", "epsilon": 0.5,
                            "delta": 1e-7)");
        INFO(r.body);
        REQUIRE(r.status == 200);
        CHECK(stringAt(r, {"mechanism"}) == "gaussian");
        CHECK(numberAt(r, {"delta"}) == Approx(1e-7));
        CHECK(numberAt(r, {"budget", "delta_spent"}) == Approx(1e-7));
        CHECK(numberAt(r, {"budget", "delta_remaining"}) == Approx(9e-7));
        CHECK(numberAt(r, {"budget", "epsilon_remaining"}) == Approx(0.5));
        // The entry's spend is a decimal string (docs/audit.md).
        const auto index = std::to_string(static_cast<long>(numberAt(r, {"audit_index"})));
        const std::string delta = w.gatewayScalar("SELECT convert_from(entry, 'UTF8')::jsonb -> 'details' ->> 'delta' "
                                                  "FROM audit_entries WHERE entry_index = " +
                                                  index);
        INFO("details.delta " << delta);
        CHECK(isDecimalString(delta));
        for (const auto& g : groupsOf(r)) {
            INFO(g.joined);
            REQUIRE(g.value);
            CHECK(g.low <= *g.value);
            CHECK(*g.value <= g.high);
            CHECK(std::fabs(*g.value - 1500) <= 8 * numberAt(r, {"noise_stddev"}));
        }
    }
}

TEST_CASE("contract - an answer carries every documented member with consistent figures",
          "[integration][queries][contract]") {
    ContractWorld w;
    const std::string periodEnd = nextPeriodStart("month");

    auto h = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["sex", "diagnosis"], "epsilon": 0.25)");
    INFO(h.body);
    REQUIRE(h.status == 200);
    CHECK(std::regex_match(stringAt(h, {"query_id"}), std::regex("^qry_[0-9a-f]{32}$")));
    CHECK(stringAt(h, {"dataset"}) == "visits");
    CHECK(stringAt(h, {"policy"}) == "stats");
    CHECK(numberAt(h, {"policy_version"}) == 1);
    CHECK(stringAt(h, {"aggregate"}) == "histogram");
    CHECK(isNullAt(h, {"column"}));
    {
        auto doc = parsed(h.body);
        REQUIRE(doc);
        const auto* gb = at(*doc, {"group_by"});
        REQUIRE(gb);
        REQUIRE(gb->IsArray());
        REQUIRE(gb->Size() == 2);
        CHECK(std::string((*gb)[0].GetString()) == "sex");
        CHECK(std::string((*gb)[1].GetString()) == "diagnosis");
    }
    CHECK(stringAt(h, {"mechanism"}) == "laplace");
    CHECK(numberAt(h, {"epsilon"}) == Approx(0.25));
    CHECK(numberAt(h, {"delta"}) == 0);
    CHECK(numberAt(h, {"contribution_bound"}) == 1);
    CHECK(numberAt(h, {"sensitivity"}) == 1);
    const double scale = numberAt(h, {"noise_scale"});
    CHECK(scale >= 1 / 0.25);  // ε rounded down: never less noise than ε calls for
    CHECK(scale <= 1 / 0.25 * 1.001);
    CHECK(numberAt(h, {"noise_stddev"}) == Approx(std::sqrt(2.0) * scale).epsilon(0.05));
    CHECK(numberAt(h, {"confidence"}) == Approx(0.95));
    CHECK_FALSE(hasMember(h, {"split"}));              // a mean only
    CHECK_FALSE(hasMember(h, {"count_noise_scale"}));  // a mean only
    const std::vector<std::string> order{"F|I10", "F|E11", "F|J45", "F|M54", "F|F32",
                                         "M|I10", "M|E11", "M|J45", "M|M54", "M|F32"};
    const auto groups = groupsOf(h);
    REQUIRE(groups.size() == order.size());
    for (size_t i = 0; i < groups.size(); ++i) {
        const auto& g = groups[i];
        INFO(g.joined);
        CHECK(g.joined == order[i]);
        REQUIRE(g.key.size() == 2);
        CHECK(g.key[0].first == "sex");
        CHECK(g.key[1].first == "diagnosis");
        REQUIRE(g.value);
        CHECK(*g.value == std::round(*g.value));
        CHECK(std::fabs(*g.value - 300) <= 10 * scale);  // 3000 rows, 6 of every 10 ids per sex and diagnosis
        CHECK(g.low <= *g.value);
        CHECK(*g.value <= g.high);
        // The noisy value ± the 95 % half-width of the noise (t ln 20 for Laplace).
        CHECK((*g.value - g.low) == Approx(g.high - *g.value).margin(1e-9));
        CHECK((g.high - g.low) / 2 >= 2.5 * scale);
        CHECK((g.high - g.low) / 2 <= 3.5 * scale);
    }
    // The budget after the answer.
    CHECK(numberAt(h, {"budget", "epsilon_total"}) == Approx(1));
    CHECK(numberAt(h, {"budget", "epsilon_spent"}) == Approx(0.25));
    CHECK(numberAt(h, {"budget", "epsilon_remaining"}) == Approx(0.75));
    CHECK(numberAt(h, {"budget", "delta_total"}) == Approx(1e-6));
    CHECK(numberAt(h, {"budget", "delta_spent"}) == 0);
    CHECK(numberAt(h, {"budget", "delta_remaining"}) == Approx(1e-6));
    CHECK(stringAt(h, {"budget", "period"}) == "month");
    CHECK(stringAt(h, {"budget", "period_end"}) == periodEnd);
    CHECK(numberAt(h, {"budget", "queries"}) == 1);
    // audit_index names the answer's query.answer entry, which holds the query id and the spend.
    const auto index = static_cast<long>(numberAt(h, {"audit_index"}));
    const std::string entry =
        "(SELECT convert_from(entry, 'UTF8')::jsonb FROM audit_entries WHERE entry_index = " + std::to_string(index) +
        ")";
    CHECK(w.gatewayScalar("SELECT action || '/' || decision || '/' || actor FROM audit_entries WHERE entry_index = " +
                          std::to_string(index)) == "query.answer/allowed/partner-a");
    CHECK(w.gatewayScalar("SELECT " + entry + " -> 'details' ->> 'query_id'") == stringAt(h, {"query_id"}));
    CHECK(w.gatewayScalar("SELECT " + entry + " -> 'details' ->> 'epsilon'") == "0.25");
    CHECK(w.gatewayScalar("SELECT audit_index FROM privacy_answers WHERE query_id = '" + stringAt(h, {"query_id"}) +
                          "'") == std::to_string(index));

    // A sum: Δ is the bound times the larger absolute clamping bound.
    auto s = w.query(w.partnerA, R"("aggregate": "sum", "column": "cost", "group_by": ["sex"], "epsilon": 0.25)");
    INFO(s.body);
    REQUIRE(s.status == 200);
    CHECK(stringAt(s, {"column"}) == "cost");
    CHECK(numberAt(s, {"sensitivity"}) == Approx(5000));
    CHECK(numberAt(s, {"noise_scale"}) >= 5000 / 0.25);
    CHECK(numberAt(s, {"noise_scale"}) <= 5000 / 0.25 * 1.001);
    for (const auto& g : groupsOf(s)) {
        INFO(g.joined);
        REQUIRE(g.value);
        CHECK(g.low <= *g.value);
        CHECK(*g.value <= g.high);
        CHECK((*g.value - g.low) == Approx(g.high - *g.value).epsilon(1e-9));
    }
    auto a = w.query(w.partnerA, R"("aggregate": "sum", "column": "age", "epsilon": 0.25)");
    INFO(a.body);
    REQUIRE(a.status == 200);
    CHECK(numberAt(a, {"sensitivity"}) == Approx(100));  // max(|-100|, |50|)
    REQUIRE(groupsOf(a).size() == 1);
    CHECK(groupsOf(a)[0].key.empty());
    // Ages 18..87 clamped to at most 50: the sum is that of min(age, 50).
    {
        pqxx::connection conn(w.agency.conninfo());
        pqxx::work tx(conn);
        const double truth = tx.exec("SELECT sum(LEAST(age, 50)) FROM agency.visits")[0][0].as<double>();
        CHECK(std::fabs(*groupsOf(a)[0].value - truth) <= 10 * numberAt(a, {"noise_scale"}));
    }

    // The mean: ε split in half, the count's own scale, the interval holding the value.
    auto m = w.query(w.partnerA, R"("aggregate": "mean", "column": "cost", "epsilon": 0.25)");
    INFO(m.body);
    REQUIRE(m.status == 200);
    CHECK(numberAt(m, {"split", "sum", "epsilon"}) == Approx(0.125));
    CHECK(numberAt(m, {"split", "count", "epsilon"}) == Approx(0.125));
    CHECK(numberAt(m, {"split", "sum", "delta"}) == 0);
    CHECK(numberAt(m, {"split", "count", "delta"}) == 0);
    CHECK(numberAt(m, {"noise_scale"}) == Approx(5000 / 0.125).epsilon(0.001));
    CHECK(numberAt(m, {"count_noise_scale"}) == Approx(1 / 0.125).epsilon(0.001));
    const auto mean = groupsOf(m);
    REQUIRE(mean.size() == 1);
    REQUIRE(mean[0].value);
    CHECK(mean[0].low <= *mean[0].value);
    CHECK(*mean[0].value <= mean[0].high);
    CHECK(numberAt(m, {"budget", "epsilon_remaining"}) == Approx(0).margin(1e-12));
    CHECK(numberAt(m, {"budget", "queries"}) == 4);
}

TEST_CASE("contract - spend accumulates, exhaustion is 403 with its details, and budgets are separate",
          "[integration][queries][contract]") {
    ContractWorld w;
    const std::string periodEnd = nextPeriodStart("month");
    auto first = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.3)");
    REQUIRE(first.status == 200);
    CHECK(numberAt(first, {"budget", "epsilon_spent"}) == Approx(0.3));
    CHECK(numberAt(first, {"budget", "queries"}) == 1);
    auto second = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["sex"], "epsilon": 0.2)");
    REQUIRE(second.status == 200);
    CHECK(numberAt(second, {"budget", "epsilon_spent"}) == Approx(0.5));
    CHECK(numberAt(second, {"budget", "epsilon_remaining"}) == Approx(0.5));
    CHECK(numberAt(second, {"budget", "queries"}) == 2);

    // More than what remains: 403 aggregates.budget with the remaining figures as decimal strings.
    auto over = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.6)");
    INFO(over.body);
    CHECK(over.status == 403);
    CHECK(errorCode(over) == "permission_denied");
    CHECK(ruleOf(over) == "aggregates.budget");
    CHECK(stringAt(over, {"error", "details", "epsilon_remaining"}) == "0.5");
    const std::string deltaRemaining = stringAt(over, {"error", "details", "delta_remaining"});
    CHECK(isDecimalString(deltaRemaining));
    if (isDecimalString(deltaRemaining)) CHECK(std::stod(deltaRemaining) == Approx(1e-6));
    CHECK(stringAt(over, {"error", "details", "period"}) == "month");
    CHECK(stringAt(over, {"error", "details", "period_end"}) == periodEnd);
    CHECK(w.spent("partner-a") == Approx(0.5));

    // Exactly what remains is answered; then nothing more.
    auto rest = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.5)");
    INFO(rest.body);
    REQUIRE(rest.status == 200);
    CHECK(numberAt(rest, {"budget", "epsilon_remaining"}) == Approx(0).margin(1e-12));
    auto exhausted = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.01)");
    INFO(exhausted.body);
    CHECK(exhausted.status == 403);
    CHECK(ruleOf(exhausted) == "aggregates.budget");
    CHECK(stringAt(exhausted, {"error", "details", "epsilon_remaining"}) == "0");
    CHECK(w.spent("partner-a") == Approx(1));

    // Another recipient, and another policy of the same dataset, have budgets of their own.
    auto other = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.1)");
    INFO(other.body);
    REQUIRE(other.status == 200);
    CHECK(numberAt(other, {"budget", "epsilon_spent"}) == Approx(0.1));
    CHECK(numberAt(other, {"budget", "queries"}) == 1);
    auto otherPolicy = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)", "stats-b");
    INFO(otherPolicy.body);
    REQUIRE(otherPolicy.status == 200);
    CHECK(numberAt(otherPolicy, {"budget", "epsilon_spent"}) == Approx(0.1));

    // The catalog shows each policy's aggregates with the caller's budget.
    {
        auto c = w.catalog(w.partnerA);
        auto doc = parsed(c.body);
        REQUIRE(doc);
        const auto* stats = catalogPolicy(*doc, "stats");
        REQUIRE(stats);
        const auto* budget = at(*stats, {"aggregates", "budget"});
        REQUIRE(budget);
        CHECK((*budget)["epsilon_total"].GetDouble() == Approx(1));
        CHECK((*budget)["epsilon_spent"].GetDouble() == Approx(1));
        CHECK((*budget)["epsilon_remaining"].GetDouble() == Approx(0).margin(1e-12));
        CHECK((*budget)["queries"].GetInt64() == 3);
        CHECK(std::string((*budget)["period_end"].GetString()) == periodEnd);
        CHECK((*stats)["aggregates"]["max_rows_per_person"].GetInt() == 1);
        REQUIRE((*stats)["aggregates"]["measures"].Size() == 2);
        CHECK(std::string((*stats)["aggregates"]["measures"][0]["column"].GetString()) == "cost");
        CHECK((*stats)["aggregates"]["measures"][1]["lower"].GetDouble() == -100);
        const auto& groupBy = (*stats)["aggregates"]["group_by"];
        REQUIRE(groupBy.Size() == 4);
        CHECK(groupBy[2]["level"].GetInt() == 2);
        CHECK(groupBy[2]["values"].Size() == 8);
        CHECK(groupBy[0]["level"].IsNull());
        CHECK(groupBy[3]["values"].Size() == 200);
        const auto* statsB = catalogPolicy(*doc, "stats-b");
        REQUIRE(statsB);
        CHECK((*statsB)["aggregates"]["budget"]["epsilon_spent"].GetDouble() == Approx(0.1));
        const auto* extractsOnly = catalogPolicy(*doc, "extracts-only");
        REQUIRE(extractsOnly);
        CHECK((*extractsOnly)["aggregates"].IsNull());
    }
    {
        auto c = w.catalog(w.partnerB);
        auto doc = parsed(c.body);
        REQUIRE(doc);
        const auto* stats = catalogPolicy(*doc, "stats");
        REQUIRE(stats);
        CHECK((*stats)["aggregates"]["budget"]["epsilon_spent"].GetDouble() == Approx(0.1));
        CHECK((*stats)["aggregates"]["budget"]["epsilon_remaining"].GetDouble() == Approx(0.9));
        CHECK((*stats)["aggregates"]["budget"]["queries"].GetInt64() == 1);
    }

    // The budget belongs to the policy across its versions: a new version with a larger budget
    // keeps what was spent.
    w.putPolicy("stats", contractAggregates(R"({"epsilon": 2, "delta": 1e-6, "period": "month"})"));
    auto v2 = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.5)");
    INFO(v2.body);
    REQUIRE(v2.status == 200);
    CHECK(numberAt(v2, {"policy_version"}) == 2);
    CHECK(numberAt(v2, {"budget", "epsilon_total"}) == Approx(2));
    CHECK(numberAt(v2, {"budget", "epsilon_spent"}) == Approx(1.5));
    CHECK(numberAt(v2, {"budget", "queries"}) == 4);

    // A spend is rounded down to whole millionths and the noise calibrated to it: the smallest
    // double above what remains is charged exactly what remains, and the budget is spent to the
    // unit, never beyond (partner-b under stats-b).
    REQUIRE(w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.5)", "stats-b").status == 200);
    auto rounding = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.5000000000000001)", "stats-b");
    INFO(rounding.body);
    REQUIRE(rounding.status == 200);
    CHECK(rounding.body.find("\"epsilon\":0.5,") != std::string::npos);
    CHECK(numberAt(rounding, {"noise_scale"}) == 2.0);
    CHECK(numberAt(rounding, {"budget", "epsilon_remaining"}) == 0.0);
    auto beyond = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.000001)", "stats-b");
    CHECK(beyond.status == 403);
    CHECK(ruleOf(beyond) == "aggregates.budget");
    CHECK(w.gatewayScalar("SELECT sum((convert_from(entry, 'UTF8')::jsonb -> 'details' ->> 'epsilon')::numeric) "
                          "FROM audit_entries WHERE action = 'query.answer' AND decision = 'allowed' "
                          "AND actor = 'partner-b' AND convert_from(entry, 'UTF8')::jsonb -> 'target' ->> 'policy' = "
                          "'stats-b'") == "1.0");
    // Below one unit is no spend at all: refused as malformed.
    auto tiny = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 1e-300)", "stats-b");
    CHECK(tiny.status == 400);
    CHECK(tiny.body.find("at least 0.000001") != std::string::npos);

    // The auditor's recomputation from the log: the allowed entries' epsilon.
    CHECK(w.gatewayScalar("SELECT sum((convert_from(entry, 'UTF8')::jsonb -> 'details' ->> 'epsilon')::numeric) "
                          "FROM audit_entries WHERE action = 'query.answer' AND decision = 'allowed' "
                          "AND actor = 'partner-a'") == "1.6");
}

TEST_CASE("contract - an exhausted budget is refused before the source is read, a source failure spends nothing",
          "[integration][queries][contract]") {
    ContractWorld w;
    auto spend = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 1)");
    REQUIRE(spend.status == 200);
    auto part = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.7)");
    REQUIRE(part.status == 200);
    // The source can no longer compute anything.
    w.agencySql("ALTER TABLE agency.visits RENAME TO visits_gone");

    auto exhausted = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)");
    INFO(exhausted.body);
    CHECK(exhausted.status == 403);
    CHECK(ruleOf(exhausted) == "aggregates.budget");
    auto insufficient = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.5)");
    INFO(insufficient.body);
    CHECK(insufficient.status == 403);
    CHECK(ruleOf(insufficient) == "aggregates.budget");
    CHECK(stringAt(insufficient, {"error", "details", "epsilon_remaining"}).rfind("0.3", 0) == 0);

    // With budget left, the failure is 500 internal, says nothing of the source, and spends nothing.
    auto failed = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.1)", "stats-b");
    INFO(failed.body);
    CHECK(failed.status == 500);
    CHECK(errorCode(failed) == "internal");
    CHECK(failed.body.find("visits") == std::string::npos);
    CHECK(failed.body.find("relation") == std::string::npos);
    CHECK(w.spent("partner-b", "stats-b") == 0);
    CHECK(w.gatewayScalar("SELECT count(*) FROM privacy_answers WHERE policy = 'stats-b'") == "0");
    CHECK(w.gatewayScalar("SELECT decision FROM audit_entries WHERE action = 'query.answer' "
                          "ORDER BY entry_index DESC LIMIT 1") == "failed");
    w.agencySql("ALTER TABLE agency.visits_gone RENAME TO visits");
    auto back = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.1)", "stats-b");
    CHECK(back.status == 200);
}

TEST_CASE("contract - daily and lifetime budgets state when they renew", "[integration][queries][contract]") {
    ContractWorld w;
    w.putPolicy("daily", contractAggregates(R"({"epsilon": 0.5, "period": "day"})"));
    w.putPolicy("yearly", contractAggregates(R"({"epsilon": 0.5, "period": "year"})"));
    w.putPolicy("forever", contractAggregates(R"({"epsilon": 0.2, "period": "lifetime"})"));

    auto d = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)", "daily");
    INFO(d.body);
    REQUIRE(d.status == 200);
    CHECK(stringAt(d, {"budget", "period"}) == "day");
    CHECK(stringAt(d, {"budget", "period_end"}) == nextPeriodStart("day"));
    auto y = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)", "yearly");
    INFO(y.body);
    REQUIRE(y.status == 200);
    CHECK(stringAt(y, {"budget", "period_end"}) == nextPeriodStart("year"));

    auto l = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.2)", "forever");
    INFO(l.body);
    REQUIRE(l.status == 200);
    CHECK(stringAt(l, {"budget", "period"}) == "lifetime");
    CHECK(isNullAt(l, {"budget", "period_end"}));
    auto refused = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.01)", "forever");
    INFO(refused.body);
    CHECK(refused.status == 403);
    CHECK(ruleOf(refused) == "aggregates.budget");
    CHECK(stringAt(refused, {"error", "details", "epsilon_remaining"}) == "0");
    CHECK(stringAt(refused, {"error", "details", "period"}) == "lifetime");
    // "period_end when it renews": a lifetime budget never does.
    CHECK((!hasMember(refused, {"error", "details", "period_end"}) ||
           isNullAt(refused, {"error", "details", "period_end"})));
    // "delta_remaining with a delta budget": this one has none.
    CHECK_FALSE(hasMember(refused, {"error", "details", "delta_remaining"}));
}

TEST_CASE("contract - filters that match nothing answer every group and cannot widen the policy",
          "[integration][queries][contract]") {
    ContractWorld w(R"({"epsilon": 100, "period": "month"})");
    w.putPolicy("women", R"(, "row_filter": {"column": "sex", "op": "=", "value": "F"})" +
                             contractAggregates(R"({"epsilon": 100, "period": "month"})"));
    const std::string nothing = R"("row_filter": {"column": "id", "op": "=", "value": -1})";

    auto ages =
        w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["age"], )" + nothing + R"(, "epsilon": 1)");
    INFO(ages.body);
    REQUIRE(ages.status == 200);
    const auto bands = groupsOf(ages);
    REQUIRE(bands.size() == 8);
    CHECK(bands.front().joined == "[10-20[");
    CHECK(bands.back().joined == "[80-90[");
    for (const auto& g : bands) {
        INFO(g.joined);
        REQUIRE(g.value);
        CHECK(std::fabs(*g.value) <= 10 * numberAt(ages, {"noise_scale"}));
    }
    auto cross = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["diagnosis", "sex"], )" + nothing +
                                         R"(, "epsilon": 1)");
    INFO(cross.body);
    REQUIRE(cross.status == 200);
    CHECK(groupsOf(cross).size() == 10);
    // Zips that no row holds are answered like the others.
    auto zips = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["zip"], "epsilon": 1)");
    INFO(zips.body.substr(0, 400));
    REQUIRE(zips.status == 200);
    const auto zipGroups = groupsOf(zips);
    REQUIRE(zipGroups.size() == 200);
    CHECK(zipGroups.back().joined == "10199");
    CHECK(std::fabs(*zipGroups.back().value) <= 10 * numberAt(zips, {"noise_scale"}));
    auto sum = w.query(w.partnerA, R"("aggregate": "sum", "column": "cost", "group_by": ["sex"], )" + nothing +
                                       R"(, "epsilon": 1)");
    INFO(sum.body);
    REQUIRE(sum.status == 200);
    CHECK(groupsOf(sum).size() == 2);
    // A mean of nothing: when its value is null, the noisy count was not positive and the interval
    // is the measure's bounds.
    for (int i = 0; i < 3; ++i) {
        auto mean = w.query(w.partnerA, R"("aggregate": "mean", "column": "cost", )" + nothing + R"(, "epsilon": 1)");
        INFO(mean.body);
        REQUIRE(mean.status == 200);
        const auto g = groupsOf(mean);
        REQUIRE(g.size() == 1);
        if (!g[0].value) {
            CHECK(g[0].low == 0);
            CHECK(g[0].high == 5000);
        } else if (!(g[0].low == 0 && g[0].high == 5000)) {
            CHECK(g[0].low <= *g[0].value);
            CHECK(*g[0].value <= g[0].high);
        }
    }
    // A value carrying SQL is a parameter, nothing more.
    auto injected = w.query(
        w.partnerA, R"("aggregate": "count", "row_filter": {"column": "sex", "op": "=", "value": "F' OR '1'='1"},
                       "epsilon": 20)");
    INFO(injected.body);
    REQUIRE(injected.status == 200);
    CHECK(std::fabs(*groupsOf(injected).at(0).value) <= 10 * numberAt(injected, {"noise_scale"}));

    // The policy admits women only: a query's filter asking for men as well is ANDed with it.
    auto widened = w.query(w.partnerA, R"("aggregate": "histogram", "group_by": ["sex"],
        "row_filter": {"or": [{"column": "sex", "op": "=", "value": "M"}, {"column": "sex", "op": "is_not_null"}]},
        "epsilon": 20)",
                           "women");
    INFO(widened.body);
    REQUIRE(widened.status == 200);
    const auto bySex = groupsOf(widened);
    REQUIRE(bySex.size() == 2);
    const double t = numberAt(widened, {"noise_scale"});
    CHECK(std::fabs(*bySex[0].value - 1500) <= 10 * t + 1);  // F
    CHECK(std::fabs(*bySex[1].value) <= 10 * t + 1);         // M: none
}

TEST_CASE("contract - the contribution bound limits each person's rows", "[integration][queries][contract]") {
    ContractWorld w;
    // zip as the person key: 40 persons of 75 rows each; at most 3 rows of each enter an answer.
    w.putPolicy("capped", contractAggregates(R"({"epsilon": 100, "period": "month"})", "zip", 3, false));
    auto c = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 50)", "capped");
    INFO(c.body);
    REQUIRE(c.status == 200);
    CHECK(numberAt(c, {"contribution_bound"}) == 3);
    CHECK(numberAt(c, {"sensitivity"}) == 3);
    CHECK(numberAt(c, {"noise_scale"}) == Approx(3.0 / 50).epsilon(0.01));
    CHECK(std::fabs(*groupsOf(c).at(0).value - 120) <= 2);
    auto s = w.query(w.partnerA, R"("aggregate": "sum", "column": "cost", "epsilon": 5)", "capped");
    INFO(s.body);
    REQUIRE(s.status == 200);
    CHECK(numberAt(s, {"sensitivity"}) == Approx(15000));
    // Rows whose person key is NULL count as one person.
    w.agencySql("UPDATE agency.visits SET zip = NULL WHERE id <= 200");
    auto n = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 40)", "capped");
    INFO(n.body);
    REQUIRE(n.status == 200);
    CHECK(std::fabs(*groupsOf(n).at(0).value - 123) <= 2);
}

TEST_CASE("contract - only recipients with a partner token may query, and every refusal is audited",
          "[integration][queries][contract]") {
    ContractWorld w;
    w.putPolicy("future", R"(, "validity": {"not_before": "2099-01-01T00:00:00Z"})" + contractAggregates(kMonthBudget));
    w.putPolicy("expired",
                R"(, "validity": {"not_before": "2000-01-01T00:00:00Z", "expires": "2001-01-01T00:00:00Z"})" +
                    contractAggregates(kMonthBudget));
    w.putPolicy("retired", contractAggregates(kMonthBudget));
    REQUIRE(w.call("DELETE", "/v1/datasets/visits/policies/retired", w.publisher).status == 200);
    const std::string count = R"("aggregate": "count", "epsilon": 0.1)";

    for (const auto* token : {&w.publisher, &w.auditor, &w.admin}) {
        auto r = w.query(*token, count);
        INFO(r.body);
        CHECK(r.status == 403);
        CHECK(errorCode(r) == "permission_denied");
    }
    auto none = w.rawPost(std::nullopt, "{" + kBase + ", " + count + "}");
    CHECK(none.status == 401);
    CHECK(errorCode(none) == "unauthenticated");
    CHECK(w.gatewayScalar("SELECT actor FROM audit_entries WHERE action = 'query.answer' "
                          "ORDER BY entry_index DESC LIMIT 1") == "anonymous");
    auto forged = w.query("cst_not_a_real_token_at_all", count);
    CHECK(forged.status == 401);
    auto stranger = w.query(w.partnerC, count);
    INFO(stranger.body);
    CHECK(stranger.status == 403);
    CHECK(ruleOf(stranger) == "recipient");
    auto purpose =
        w.rawPost(w.partnerA, R"({"dataset": "visits", "policy": "stats", "purpose": "marketing", )" + count + "}");
    CHECK(purpose.status == 403);
    CHECK(ruleOf(purpose) == "purpose");
    auto noDataset =
        w.rawPost(w.partnerA, R"({"dataset": "nope", "policy": "stats", "purpose": "research", )" + count + "}");
    CHECK(noDataset.status == 404);
    CHECK(errorCode(noDataset) == "not_found");
    auto noPolicy = w.query(w.partnerA, count, "nope");
    CHECK(noPolicy.status == 404);
    CHECK(errorCode(noPolicy) == "not_found");
    auto future = w.query(w.partnerA, count, "future");
    INFO(future.body);
    CHECK(future.status == 403);
    CHECK(ruleOf(future) == "validity.not_before");
    auto expired = w.query(w.partnerA, count, "expired");
    INFO(expired.body);
    CHECK(expired.status == 403);
    CHECK(ruleOf(expired) == "validity.expires");
    auto retired = w.query(w.partnerA, count, "retired");
    INFO(retired.body);
    CHECK(retired.status == 403);
    CHECK(ruleOf(retired) == "retired");
    auto noAggregates = w.query(w.partnerA, count, "extracts-only");
    CHECK(noAggregates.status == 403);
    CHECK(ruleOf(noAggregates) == "aggregates");
    w.gw->disablePrincipal("partner-b");
    auto disabled = w.query(w.partnerB, count);
    CHECK(disabled.status == 401);

    CHECK(w.totalSpent() == 0);
    CHECK(w.gatewayScalar(
              "SELECT count(*) FROM audit_entries WHERE action = 'query.answer' AND decision <> 'denied'") == "0");
    CHECK(w.gatewayScalar("SELECT count(*) FROM audit_entries WHERE action = 'query.answer'") == "14");
}

TEST_CASE("contract - each member of a recipient group has a budget of its own", "[integration][queries][contract]") {
    ContractWorld w;
    REQUIRE(w.call("PUT", "/v1/groups/analysts", w.admin, R"({"description": "analysts"})").status == 201);
    REQUIRE(w.call("PUT", "/v1/groups/analysts/members/partner-a", w.admin).status == 201);
    REQUIRE(w.call("PUT", "/v1/groups/analysts/members/partner-b", w.admin).status == 201);
    w.putPolicy("pooled", contractAggregates(R"({"epsilon": 0.5, "period": "month"})"), R"(["group:analysts"])");
    auto a = w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.5)", "pooled");
    INFO(a.body);
    REQUIRE(a.status == 200);
    CHECK(w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.1)", "pooled").status == 403);
    auto b = w.query(w.partnerB, R"("aggregate": "count", "epsilon": 0.5)", "pooled");
    INFO(b.body);
    CHECK(b.status == 200);
    CHECK(numberAt(b, {"budget", "epsilon_spent"}) == Approx(0.5));
    auto outsider = w.query(w.partnerC, R"("aggregate": "count", "epsilon": 0.1)", "pooled");
    CHECK(outsider.status == 403);
    CHECK(ruleOf(outsider) == "recipient");
    auto c = w.catalog(w.partnerB);
    auto doc = parsed(c.body);
    REQUIRE(doc);
    const auto* pooled = catalogPolicy(*doc, "pooled");
    REQUIRE(pooled);
    CHECK(std::string((*pooled)["recipient"].GetString()) == "group:analysts");
    CHECK((*pooled)["aggregates"]["budget"]["epsilon_remaining"].GetDouble() == Approx(0).margin(1e-12));
}

// Last in the file: a parser that recurses on nesting could take the process down with it.
TEST_CASE("contract - a row filter nested 20,000 levels deep is refused, not a crash",
          "[integration][queries][contract]") {
    ContractWorld w;
    std::string filter;
    for (int i = 0; i < 20000; ++i) filter += R"({"not": )";
    filter += R"({"column": "sex", "op": "=", "value": "F"})";
    filter += std::string(20000, '}');
    auto r = w.query(w.partnerA, R"("aggregate": "count", "row_filter": )" + filter + R"(, "epsilon": 0.1)");
    INFO(r.status << ": " << r.body.substr(0, 400));
    CHECK((r.status == 400 || r.status == 422));
    CHECK(errorCode(r) == "invalid_argument");
    CHECK(w.totalSpent() == 0);
    CHECK(w.query(w.partnerA, R"("aggregate": "count", "epsilon": 0.01)").status == 200);
}
