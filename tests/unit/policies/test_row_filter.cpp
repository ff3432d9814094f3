// Row filters compile to parameterized SQL: names are quoted identifiers, values only parameters.
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "policies/policy.hpp"
#include "policies/row_filter.hpp"

using namespace custodian::policies;

namespace {

RowFilter compare(std::string column, FilterOp op, std::vector<std::string> values) {
    RowFilter f;
    f.kind = RowFilter::Kind::Comparison;
    f.column = std::move(column);
    f.op = op;
    f.values = std::move(values);
    return f;
}

RowFilter logical(RowFilter::Kind kind, std::vector<RowFilter> children) {
    RowFilter f;
    f.kind = kind;
    f.children = std::move(children);
    return f;
}

std::string policyWithFilter(const std::string& filterJson) {
    return R"({"dataset": "visits", "recipients": ["bob"], "purposes": ["research"],
      "columns": [{"name": "age", "type": "integer", "role": "insensitive"},
                  {"name": "ward", "type": "text", "role": "insensitive"},
                  {"name": "x; DROP TABLE visits; --", "type": "text", "role": "insensitive"}],
      "row_filter": )" +
           filterJson + "}";
}

}  // namespace

TEST_CASE("a comparison compiles to a quoted column and one parameter", "[policies][row_filter]") {
    auto sql = compileRowFilter(compare("age", FilterOp::GreaterOrEqual, {"18"}));
    REQUIRE(sql.isOk());
    CHECK(sql->sql == R"(("age" >= $1))");
    CHECK(sql->parameters == std::vector<std::string>{"18"});
}

TEST_CASE("every operator has its SQL form", "[policies][row_filter]") {
    struct Case {
        FilterOp op;
        std::vector<std::string> values;
        std::string sql;
    };
    const Case cases[] = {
        {FilterOp::Equal, {"a"}, R"(("c" = $1))"},
        {FilterOp::NotEqual, {"a"}, R"(("c" <> $1))"},
        {FilterOp::Less, {"1"}, R"(("c" < $1))"},
        {FilterOp::LessOrEqual, {"1"}, R"(("c" <= $1))"},
        {FilterOp::Greater, {"1"}, R"(("c" > $1))"},
        {FilterOp::GreaterOrEqual, {"1"}, R"(("c" >= $1))"},
        {FilterOp::In, {"a", "b", "c"}, R"(("c" IN ($1, $2, $3)))"},
        {FilterOp::NotIn, {"a"}, R"(("c" NOT IN ($1)))"},
        {FilterOp::IsNull, {}, R"(("c" IS NULL))"},
        {FilterOp::IsNotNull, {}, R"(("c" IS NOT NULL))"},
    };
    for (const auto& c : cases) {
        INFO(filterOpName(c.op));
        auto sql = compileRowFilter(compare("c", c.op, c.values));
        REQUIRE(sql.isOk());
        CHECK(sql->sql == c.sql);
        CHECK(sql->parameters == c.values);
        FilterOp parsed = FilterOp::Equal;
        CHECK(parseFilterOp(filterOpName(c.op), parsed));
        CHECK(parsed == c.op);
    }
}

TEST_CASE("and/or/not nest with parameters numbered in order from the first parameter", "[policies][row_filter]") {
    const RowFilter f =
        logical(RowFilter::Kind::And, {compare("age", FilterOp::Greater, {"17"}),
                                       logical(RowFilter::Kind::Or, {compare("ward", FilterOp::In, {"a", "b"}),
                                                                     compare("ward", FilterOp::IsNull, {})}),
                                       logical(RowFilter::Kind::Not, {compare("region", FilterOp::Equal, {"north"})})});
    auto sql = compileRowFilter(f, 4);
    REQUIRE(sql.isOk());
    CHECK(sql->sql == R"((("age" > $4) AND (("ward" IN ($5, $6)) OR ("ward" IS NULL)) AND (NOT ("region" = $7))))");
    CHECK(sql->parameters == std::vector<std::string>{"17", "a", "b", "north"});
}

TEST_CASE("malformed filter trees are refused", "[policies][row_filter]") {
    CHECK_FALSE(compileRowFilter(compare("c", FilterOp::Equal, {})).isOk());
    CHECK_FALSE(compileRowFilter(compare("c", FilterOp::Equal, {"a", "b"})).isOk());
    CHECK_FALSE(compileRowFilter(compare("c", FilterOp::IsNull, {"a"})).isOk());
    CHECK_FALSE(compileRowFilter(compare("c", FilterOp::In, {})).isOk());
    CHECK_FALSE(compileRowFilter(logical(RowFilter::Kind::And, {})).isOk());
    CHECK_FALSE(compileRowFilter(logical(RowFilter::Kind::Not, {})).isOk());
    CHECK_FALSE(compileRowFilter(compare("c", FilterOp::Equal, {"a"}), 0).isOk());
    RowFilter deep = compare("c", FilterOp::Equal, {"a"});
    for (int i = 0; i < 100; ++i) deep = logical(RowFilter::Kind::Not, {deep});
    CHECK_FALSE(compileRowFilter(deep).isOk());
}

TEST_CASE("column names that try to break out of the quoted identifier are refused",
          "[policies][row_filter][injection]") {
    for (const std::string& column :
         {std::string("age\" OR 1=1 --"), std::string("a\"; DROP TABLE visits; --"), std::string("line\nbreak"),
          std::string(""), std::string(70, 'a'), std::string("caf\xc3\xa9")}) {
        INFO(column);
        CHECK_FALSE(compileRowFilter(compare(column, FilterOp::Equal, {"1"})).isOk());
    }
    // A strange but quotable name stays inside one quoted identifier.
    auto sql = compileRowFilter(compare("x; DROP TABLE visits; --", FilterOp::IsNull, {}));
    REQUIRE(sql.isOk());
    CHECK(sql->sql == R"(("x; DROP TABLE visits; --" IS NULL))");
}

TEST_CASE("values never become SQL text, whatever they contain", "[policies][row_filter][injection]") {
    const std::vector<std::string> hostile = {"' OR '1'='1",
                                              "1; DROP TABLE visits; --",
                                              "$1",
                                              "\"age\"",
                                              "') OR ('a'='a",
                                              "\\'; --",
                                              std::string("nul\0byte", 8),
                                              "E'\\x27'",
                                              "$$ || pg_sleep(10) || $$"};
    auto sql = compileRowFilter(compare("ward", FilterOp::In, hostile));
    REQUIRE(sql.isOk());
    CHECK(sql->parameters == hostile);
    CHECK(sql->sql == R"(("ward" IN ($1, $2, $3, $4, $5, $6, $7, $8, $9)))");

    // Property: for random values the SQL text only ever depends on the tree's shape.
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> byte(0, 255), length(0, 40);
    for (int round = 0; round < 500; ++round) {
        std::string value;
        for (int i = length(rng); i > 0; --i) value.push_back(static_cast<char>(byte(rng)));
        auto r = compileRowFilter(compare("ward", FilterOp::NotEqual, {value}));
        REQUIRE(r.isOk());
        CHECK(r->sql == R"(("ward" <> $1))");
        CHECK(r->parameters == std::vector<std::string>{value});
    }
}

TEST_CASE("a policy's row filter loads into parameters with canonical value text", "[policies][row_filter]") {
    const auto result = loadPolicy(policyWithFilter(R"({"and": [
        {"column": "age", "op": ">=", "value": 18},
        {"column": "ward", "op": "in", "value": ["icu'; DROP TABLE visits; --", "$1"]},
        {"not": {"column": "x; DROP TABLE visits; --", "op": "is_not_null"}}]})"));
    INFO((result.errors.empty() ? std::string() : result.errors[0].pointer + " " + result.errors[0].message));
    REQUIRE(result.ok());
    auto sql = result.policy->rowFilterSql();
    REQUIRE(sql.isOk());
    REQUIRE(sql->has_value());
    CHECK((*sql)->sql ==
          R"((("age" >= $1) AND ("ward" IN ($2, $3)) AND (NOT ("x; DROP TABLE visits; --" IS NOT NULL))))");
    CHECK((*sql)->parameters == std::vector<std::string>{"18", "icu'; DROP TABLE visits; --", "$1"});
}

TEST_CASE("a row filter on an undeclared or unquotable column is a validation error",
          "[policies][row_filter][injection]") {
    const auto undeclared = loadPolicy(policyWithFilter(R"({"column": "age\" OR 1=1 --", "op": "is_null"})"));
    REQUIRE_FALSE(undeclared.ok());
    REQUIRE(undeclared.errors.size() == 1);
    CHECK(undeclared.errors[0].pointer == "/row_filter/column");

    const auto noFilter = loadPolicy(policyWithFilter("null"));
    REQUIRE_FALSE(noFilter.ok());
    CHECK(noFilter.errors[0].pointer == "/row_filter");
}
