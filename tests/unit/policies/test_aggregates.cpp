// The policy's `aggregates` section (docs/aggregates.md): the model, and every rule with its pointer.
#include <string>

#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include "policies/policy.hpp"

using namespace custodian::policies;

namespace {

std::string policyWith(const std::string& aggregates) {
    return R"({"dataset": "benefits", "recipients": ["bob"], "purposes": ["statistics"],
      "columns": [
        {"name": "person_id", "type": "integer", "role": "identifier"},
        {"name": "region", "type": "text", "role": "insensitive"},
        {"name": "sex", "type": "text", "role": "quasi_identifier",
         "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
        {"name": "birth_date", "type": "date", "role": "quasi_identifier",
         "hierarchy": {"builder": "dates", "levels": ["month", "year"]}},
        {"name": "household", "type": "integer", "role": "insensitive"},
        {"name": "benefit", "type": "decimal", "role": "sensitive"}
      ],
      "privacy": {"k": 5},
      "aggregates": )" +
           aggregates + "}";
}

std::string errorsOf(const PolicyLoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += e.pointer + " :: " + e.message + "\n";
    return out;
}

bool hasError(const PolicyLoadResult& r, const std::string& pointer, const std::string& fragment) {
    for (const auto& e : r.errors)
        if (e.pointer == pointer && e.message.find(fragment) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("an aggregates section loads into the model", "[policies][aggregates]") {
    auto r = loadPolicy(policyWith(R"({"person_key": "person_id", "max_rows_per_person": 3,
        "measures": [{"column": "benefit", "lower": 0, "upper": 2500.5}],
        "group_by": [{"column": "region", "values": ["north", "south"]},
                     {"column": "sex", "level": 1},
                     {"column": "household", "values": [1, 2, 3]},
                     {"column": "birth_date", "level": 2, "values": ["1970", "1971"]}],
        "budget": {"epsilon": 1.5, "delta": 1e-6, "period": "month"}})"));
    INFO(errorsOf(r));
    REQUIRE(r.ok());
    const auto& a = *r.policy->model().aggregates;
    CHECK(a.personKey == "person_id");
    CHECK(a.maxRowsPerPerson == 3);
    REQUIRE(a.measure("benefit"));
    CHECK(a.measure("benefit")->upper == 2500.5);
    CHECK(a.groupByColumn("region")->values == std::vector<std::string>{"north", "south"});
    // A groups hierarchy's level is enumerable: its domain is every node of that level.
    CHECK(a.groupByColumn("sex")->values == std::vector<std::string>{"*"});
    CHECK(a.groupByColumn("household")->values == std::vector<std::string>{"1", "2", "3"});
    CHECK(a.groupByColumn("birth_date")->level == 2);
    CHECK(a.epsilon == 1.5);
    CHECK(a.delta == 1e-6);
    CHECK(a.period == BudgetPeriod::Month);
}

TEST_CASE("aggregates rules name the member at fault", "[policies][aggregates]") {
    auto r = loadPolicy(policyWith(R"({"person_key": "nobody",
        "measures": [{"column": "region", "lower": 0, "upper": 1}, {"column": "benefit", "lower": 5, "upper": 5}],
        "group_by": [{"column": "region"},
                     {"column": "birth_date", "level": 1},
                     {"column": "household", "values": ["two"]},
                     {"column": "sex", "level": 1, "values": ["nope"]},
                     {"column": "sex", "level": 5}],
        "budget": {"epsilon": 1, "period": "month"}})"));
    INFO(errorsOf(r));
    REQUIRE_FALSE(r.ok());
    CHECK(hasError(r, "/aggregates/person_key", "\"nobody\" is not declared"));
    CHECK(hasError(r, "/aggregates/measures/0/column", "only integer and decimal columns can be summed"));
    CHECK(hasError(r, "/aggregates/measures/1/upper", "lower below upper"));
    CHECK(hasError(r, "/aggregates/group_by/0", "list the groups in \"values\""));
    CHECK(hasError(r, "/aggregates/group_by/1/level", "depend on the data"));
    CHECK(hasError(r, "/aggregates/group_by/2/values/0", "is not a whole number"));
    CHECK(hasError(r, "/aggregates/group_by/3/values/0", "is not a group of level 1"));
    CHECK(hasError(r, "/aggregates/group_by/4/column", "already listed"));
    CHECK(hasError(r, "/aggregates/group_by/4/level", "levels 0 to 1"));
}

TEST_CASE("the aggregates schema refuses a budget without epsilon and an unknown period", "[policies][aggregates]") {
    auto r = loadPolicy(policyWith(R"({"person_key": "person_id", "budget": {"period": "week"}})"));
    REQUIRE_FALSE(r.ok());
    CHECK(errorsOf(r).find("/aggregates/budget") != std::string::npos);
    auto big = loadPolicy(
        policyWith(R"({"person_key": "person_id", "budget": {"epsilon": 1, "delta": 0.5, "period": "year"}})"));
    REQUIRE_FALSE(big.ok());
    CHECK(errorsOf(big).find("/aggregates/budget/delta") != std::string::npos);
}

TEST_CASE("a query's row filter is checked against the policy's columns", "[policies][aggregates]") {
    auto r = loadPolicy(policyWith(R"({"person_key": "person_id", "budget": {"epsilon": 1, "period": "lifetime"}})"));
    REQUIRE(r.ok());
    rapidjson::Document good;
    good.Parse(
        R"({"and": [{"column": "region", "op": "=", "value": "north"}, {"column": "household", "op": ">", "value": 2}]})");
    auto ok = checkRowFilter(good, "/row_filter", r.policy->model());
    CHECK(ok.errors.empty());
    REQUIRE(ok.filter);
    CHECK(ok.filter->children.size() == 2);
    rapidjson::Document bad;
    bad.Parse(
        R"({"or": [{"column": "ghost", "op": "=", "value": "x"}, {"column": "household", "op": "=", "value": "two"}]})");
    auto refused = checkRowFilter(bad, "/row_filter", r.policy->model());
    REQUIRE(refused.errors.size() == 2);
    CHECK(refused.errors[0].pointer == "/row_filter/or/0/column");
    CHECK(refused.errors[1].pointer == "/row_filter/or/1/value");
    rapidjson::Document notAFilter;
    notAFilter.Parse(R"({"column": "region", "op": "like", "value": "n%"})");
    CHECK_FALSE(checkRowFilter(notAFilter, "/row_filter", r.policy->model()).errors.empty());
}
