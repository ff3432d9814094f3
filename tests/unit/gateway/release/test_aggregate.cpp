// Planning a differentially private query (docs/aggregates.md): the sensitivity of a sum on the
// grid holds for every value the database can produce, the noise is calibrated before any data is
// read, and the SQL leaves a NULL measure out.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "gateway/release/aggregate.hpp"
#include "gateway/release/privacy_budget.hpp"
#include "policies/policy.hpp"

using namespace custodian;
using namespace custodian::release;

namespace {

std::shared_ptr<const policies::Policy> policyWith(double lower, double upper, int maxRows) {
    const std::string json = R"({"dataset": "benefits", "recipients": ["bob"], "purposes": ["statistics"],
      "columns": [{"name": "person_id", "type": "integer", "role": "identifier"},
                  {"name": "amount", "type": "decimal", "role": "sensitive"}],
      "aggregates": {"person_key": "person_id", "max_rows_per_person": )" +
                             std::to_string(maxRows) + R"(, "measures": [{"column": "amount", "lower": )" +
                             std::to_string(lower) + R"(, "upper": )" + std::to_string(upper) + R"(}],
        "budget": {"epsilon": 10, "period": "lifetime"}}})";
    auto r = policies::loadPolicy(json);
    std::string errors;
    for (const auto& e : r.errors) errors += e.pointer + " " + e.message + "\n";
    INFO(errors);
    REQUIRE(r.ok());
    return r.policy;
}

Result<QueryPlan> plan(const policies::Policy& policy, const std::string& members) {
    rapidjson::Document body;
    body.Parse((R"({"dataset": "benefits", "policy": "p", "purpose": "statistics", )" + members + "}").c_str());
    REQUIRE_FALSE(body.HasParseError());
    auto request = parseQueryRequest(body);
    REQUIRE(request.isOk());
    return planQuery(policy, std::move(request).value());
}

}  // namespace

TEST_CASE("a sum's sensitivity bounds every person's grid steps, whatever the rounding", "[unit][aggregates]") {
    // Bounds whose grid quotient has a fractional part at or above one half: rounding each value to
    // the nearest step could exceed ceil(k * upper / step) were the steps not clamped again.
    for (auto [upper, rows] : {std::pair{99.9, 10}, {0.7, 5}, {12.34, 3}, {5000.0, 1}, {123456.789, 7}}) {
        INFO(upper << " x " << rows);
        auto p = policyWith(0, upper, rows);
        auto planned = plan(*p, R"("aggregate": "sum", "column": "amount", "epsilon": 1)");
        REQUIRE(planned.isOk());
        const AggregateSql& sql = planned->sql;
        CHECK(sql.lowerSteps == 0);
        CHECK(static_cast<double>(sql.upperSteps) * planned->granularity <= upper);
        CHECK(planned->sumSensitivity ==
              static_cast<uint64_t>(std::max(std::llabs(sql.lowerSteps), std::llabs(sql.upperSteps))) * rows);
        CHECK(static_cast<double>(planned->sumSensitivity) * planned->granularity <= upper * rows);
    }
    auto negative = policyWith(-250.5, 100, 2);
    auto planned = plan(*negative, R"("aggregate": "mean", "column": "amount", "epsilon": 1)");
    REQUIRE(planned.isOk());
    CHECK(planned->sql.lowerSteps < 0);
    CHECK(planned->sumSensitivity == static_cast<uint64_t>(std::llabs(planned->sql.lowerSteps)) * 2);
}

TEST_CASE("an epsilon too small to calibrate is refused before the source is read", "[unit][aggregates]") {
    auto p = policyWith(0, 5000, 3);
    auto tiny = plan(*p, R"("aggregate": "mean", "column": "amount", "epsilon": 0.0000015)");
    REQUIRE_FALSE(tiny.isOk());
    CHECK(tiny.status().code() == StatusCode::InvalidArgument);
    CHECK_THAT(tiny.status().message(), Catch::Contains("the noise cannot be calibrated"));
    CHECK(plan(*p, R"("aggregate": "count", "epsilon": 0.00001)").isOk());
}

TEST_CASE("budgets count whole units, so spends add up exactly and read as plain decimals", "[unit][aggregates]") {
    CHECK(budgetUnits(0.1, kEpsilonUnits) == 100000);
    CHECK(budgetUnits(0.3, kEpsilonUnits) == 300000);  // the double 0.3 is a little below 3/10
    CHECK(budgetUnits(0.1234567, kEpsilonUnits) == 123456);
    CHECK(budgetUnits(1e-7, kDeltaUnits) == 100000);
    CHECK(budgetDecimal(0.25, kEpsilonUnits) == "0.25");
    CHECK(budgetDecimal(2, kEpsilonUnits) == "2");
    CHECK(budgetDecimal(1e-7, kDeltaUnits) == "0.0000001");
    CHECK(budgetDecimal(1e-6, kDeltaUnits) == "0.000001");
    BudgetState s;
    s.epsilonTotal = 1;
    for (int i = 0; i < 10; ++i) {
        INFO(i);
        REQUIRE(s.covers(0.1, 0));
        s.epsilonSpent += 0.1;  // as the database adds them: 0.9999999999999999 after ten
    }
    CHECK_FALSE(s.covers(0.000001, 0));
    CHECK(s.epsilonRemaining() == 0);
    CHECK(budgetJson(s).find("\"epsilon_spent\":1.0,") != std::string::npos);
    s.epsilonSpent = 0.9;
    CHECK(s.epsilonRemaining() == 0.1);  // not 0.09999999999999998
    CHECK_FALSE(s.covers(0.1, 1e-7));    // no delta budget
    s.deltaTotal = 1e-6;
    CHECK(s.covers(0.1, 1e-6));
    CHECK_FALSE(s.covers(0.1, 1.000001e-6));
}
