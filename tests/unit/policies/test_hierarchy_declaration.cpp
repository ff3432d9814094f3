// A lone hierarchy declaration (a dataset's default hierarchy) is checked exactly like a policy
// column's: schema first, then the semantic rules, each error with its JSON pointer.
#include <string>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "policies/policy.hpp"

using namespace custodian::policies;
using custodian::anon::ColumnType;

namespace {

HierarchyDeclarationCheck check(const std::string& json, ColumnType type, const std::string& column = "age") {
    rapidjson::Document d;
    d.Parse(json.c_str());
    REQUIRE_FALSE(d.HasParseError());
    return checkHierarchyDeclaration(d, "/hierarchies/" + column, column, type);
}

std::string errorsOf(const HierarchyDeclarationCheck& c) {
    std::string out;
    for (const auto& e : c.errors) out += e.pointer + " :: " + e.message + "\n";
    return out;
}

bool hasError(const HierarchyDeclarationCheck& c, const std::string& pointer, const std::string& fragment) {
    for (const auto& e : c.errors)
        if (e.pointer == pointer && e.message.find(fragment) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("valid builder declarations pass and keep their spec", "[policies][hierarchy_declaration]") {
    auto intervals = check(R"({"builder": "intervals", "widths": [5, 10, 20]})", ColumnType::Integer);
    INFO(errorsOf(intervals));
    REQUIRE(intervals.errors.empty());
    REQUIRE(intervals.spec);
    CHECK(intervals.spec->kind == HierarchySpec::Kind::Intervals);
    CHECK(intervals.spec->widths == std::vector<double>{5, 10, 20});
    CHECK_FALSE(intervals.hierarchy);  // built from the data at release time

    CHECK(check(R"({"builder": "dates", "levels": ["year", "decade"]})", ColumnType::Date, "birth").errors.empty());
    CHECK(check(R"({"builder": "prefix"})", ColumnType::Text, "zip").errors.empty());

    auto groups = check(R"({"builder": "groups", "levels": [{"F-or-M": ["F", "M"]}, {"*": ["F-or-M"]}]})",
                        ColumnType::Text, "sex");
    INFO(errorsOf(groups));
    REQUIRE(groups.errors.empty());
    REQUIRE(groups.hierarchy);  // leaves known now: the gateway checks them against the source
    CHECK(groups.hierarchy->leafCount() == 2);
    CHECK(groups.hierarchy->levels() == 3);
}

TEST_CASE("a declaration that is not a hierarchy gets schema errors with pointers",
          "[policies][hierarchy_declaration]") {
    auto notObject = check(R"("intervals")", ColumnType::Integer);
    REQUIRE(notObject.errors.size() == 1);
    CHECK(notObject.errors[0].pointer == "/hierarchies/age");
    CHECK_FALSE(notObject.spec);

    auto unknownBuilder = check(R"({"builder": "buckets", "widths": [5]})", ColumnType::Integer);
    INFO(errorsOf(unknownBuilder));
    CHECK_FALSE(unknownBuilder.errors.empty());
    CHECK(unknownBuilder.errors[0].pointer.rfind("/hierarchies/age", 0) == 0);

    auto negative = check(R"({"builder": "intervals", "widths": [5, -10]})", ColumnType::Integer);
    INFO(errorsOf(negative));
    CHECK(hasError(negative, "/hierarchies/age/widths/1", "greater than 0"));

    auto duplicate = check(R"({"builder": "prefix", "builder": "prefix"})", ColumnType::Text);
    CHECK(hasError(duplicate, "/hierarchies/age/builder", "more than once"));
}

TEST_CASE("semantic rules: type fit, coarsening levels, one group per value, typed leaves",
          "[policies][hierarchy_declaration]") {
    auto wrongType = check(R"({"builder": "intervals", "widths": [5]})", ColumnType::Text);
    INFO(errorsOf(wrongType));
    CHECK(hasError(wrongType, "/hierarchies/age/builder", "intervals apply to integer and decimal columns"));

    auto notMultiple = check(R"({"builder": "intervals", "widths": [5, 12]})", ColumnType::Integer);
    INFO(errorsOf(notMultiple));
    CHECK(hasError(notMultiple, "/hierarchies/age/widths/1", "is not a multiple of the width before it"));

    auto finerLater = check(R"({"builder": "dates", "levels": ["year", "month"]})", ColumnType::Date);
    INFO(errorsOf(finerLater));
    CHECK(hasError(finerLater, "/hierarchies/age/levels/1", "must come before"));

    auto twice = check(R"({"builder": "groups", "levels": [{"a": ["F", "M"], "b": ["M"]}]})", ColumnType::Text);
    INFO(errorsOf(twice));
    CHECK(hasError(twice, "/hierarchies/age/levels/0/b/0", "is already in the group"));

    auto orphan =
        check(R"({"builder": "groups", "levels": [{"a": ["F"], "b": ["M"]}, {"*": ["a"]}]})", ColumnType::Text);
    INFO(errorsOf(orphan));
    CHECK(hasError(orphan, "/hierarchies/age/levels/1", "is in no group of this level"));

    auto untyped = check(R"({"builder": "groups", "levels": [{"young": ["1", "two"]}]})", ColumnType::Integer);
    INFO(errorsOf(untyped));
    CHECK(hasError(untyped, "/hierarchies/age/levels/0", "\"two\""));
}

TEST_CASE("hierarchy files are refused where the file system is not the caller's",
          "[policies][hierarchy_declaration]") {
    auto file = check(R"({"file": "/etc/passwd"})", ColumnType::Text);
    REQUIRE(file.errors.size() == 1);
    CHECK(file.errors[0].pointer == "/hierarchies/age/file");
    CHECK(file.errors[0].message.find("cannot be used here") != std::string::npos);
}

TEST_CASE("a deeply nested declaration is an error, not a crash", "[policies][hierarchy_declaration][robustness]") {
    std::string deep = R"({"builder": "groups", "levels": [)";
    for (int i = 0; i < 5000; ++i) deep += "[";
    for (int i = 0; i < 5000; ++i) deep += "]";
    deep += "]}";
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(deep.c_str());
    REQUIRE_FALSE(d.HasParseError());
    auto c = checkHierarchyDeclaration(d, "/hierarchies/x", "x", ColumnType::Text);
    REQUIRE(c.errors.size() == 1);
    CHECK(c.errors[0].message.find("deeper than") != std::string::npos);
}
