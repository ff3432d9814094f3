#include <catch2/catch.hpp>

#include "anonymizer/hierarchy_io.hpp"
#include "unit/anonymizer/adult_fixture.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

std::string adultFile(const std::string& column) {
    return std::string(CUSTODIAN_ADULT_DIR) + "/adult_hierarchy_" + column + ".csv";
}

}  // namespace

TEST_CASE("all nine Adult hierarchies parse with the expected depth and leaf count", "[hierarchy_io][adult]") {
    struct Expected {
        const char* column;
        int levels;
        size_t leaves;
    };
    // levels include level 0; leaf counts are the files' rows (native-country ends without a line break).
    const Expected expected[] = {{"age", 5, 100},           {"education", 4, 16},  {"marital-status", 3, 7},
                                 {"native-country", 3, 41}, {"occupation", 3, 14}, {"race", 2, 5},
                                 {"salary-class", 2, 2},    {"sex", 2, 2},         {"workclass", 3, 8}};
    for (const auto& e : expected) {
        INFO(e.column);
        auto h = loadHierarchyFile(e.column, adultFile(e.column));
        REQUIRE(h.isOk());
        CHECK(h->name() == e.column);
        CHECK(h->levels() == e.levels);
        CHECK(h->leafCount() == e.leaves);
        // Every row of the file, read independently, is the path of its leaf.
        const auto rows = custodian::anon::testing::readSemicolonFile(adultFile(e.column));
        REQUIRE(rows.size() == e.leaves);
        for (const auto& row : rows) {
            const auto leaf = h->leafCode(row[0]);
            REQUIRE(leaf.has_value());
            for (int level = 0; level < h->levels(); ++level)
                CHECK(h->label(level, h->generalize(*leaf, level)) == row[static_cast<size_t>(level)]);
        }
        CHECK(h->nodeCount(h->levels() - 1) == 1);
    }
}

TEST_CASE("hierarchy files: CRLF, quoting, final line without a line break, custom delimiter", "[hierarchy_io]") {
    auto crlf = parseHierarchyCsv("c", "a;x;*\r\nb;x;*\r\n\"c;d\";\"y \"\"z\"\"\";*");
    REQUIRE(crlf.isOk());
    CHECK(crlf->leafCount() == 3);
    REQUIRE(crlf->leafCode("c;d").has_value());
    CHECK(crlf->label(1, crlf->generalize(*crlf->leafCode("c;d"), 1)) == "y \"z\"");
    auto comma = parseHierarchyCsv("c", "1,low\n2,low\n3,high\n", ',');
    REQUIRE(comma.isOk());
    CHECK(comma->nodeCount(1) == 2);
}

TEST_CASE("hierarchy files: errors name the hierarchy and the line", "[hierarchy_io]") {
    auto ragged = parseHierarchyCsv("age", "1;a;*\n2;a;*\n3;b\n");
    REQUIRE_FALSE(ragged.isOk());
    CHECK(ragged.status().message() == "hierarchy 'age': line 3: expected 3 fields, found 2");

    auto empty = parseHierarchyCsv("age", "");
    REQUIRE_FALSE(empty.isOk());
    CHECK(empty.status().message() == "hierarchy 'age': empty file: a hierarchy needs one row per value");

    auto badUtf8 = parseHierarchyCsv("age", "1;a;*\n\xfe;a;*\n");
    REQUIRE_FALSE(badUtf8.isOk());
    CHECK(badUtf8.status().message() ==
          "hierarchy 'age': line 2, column 1: invalid UTF-8 (byte 0xfe at byte 1 of the field)");

    auto unterminated = parseHierarchyCsv("age", "1;a;*\n2;\"a;*\n");
    REQUIRE_FALSE(unterminated.isOk());
    CHECK(unterminated.status().message() == "hierarchy 'age': line 2, column 2: unterminated quoted field");

    // Semantic checks come from Hierarchy::fromRows.
    auto duplicate = parseHierarchyCsv("sex", "M;*\nF;*\nM;*\n");
    REQUIRE_FALSE(duplicate.isOk());
    CHECK(duplicate.status().message().find("'M'") != std::string::npos);
    auto notCoarsening = parseHierarchyCsv("x", "1;a;p\n2;a;q\n");
    REQUIRE_FALSE(notCoarsening.isOk());
    CHECK(notCoarsening.status().message().rfind("hierarchy 'x'", 0) == 0);

    auto missing = loadHierarchyFile("x", "/nonexistent/h.csv");
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().code() == StatusCode::NotFound);
}

TEST_CASE("coverage check lists the values a hierarchy does not cover", "[hierarchy_io]") {
    auto h = parseHierarchyCsv("sex", "Male;*\nFemale;*\n");
    REQUIRE(h.isOk());
    const std::vector<std::string> covered = {"Male", "Female", "Male"};
    CHECK(checkCoverage(*h, covered, "sex").isOk());
    const std::vector<std::string> values = {"Male", "male", "F", "Female"};
    const Status s = checkCoverage(*h, values, "sex");
    REQUIRE_FALSE(s.isOk());
    CHECK(s.message() == "column 'sex': 2 values are not covered by hierarchy 'sex': 'male', 'F'");
}

TEST_CASE("formatted hierarchy rows read back identically", "[hierarchy_io]") {
    const HierarchyRows rows = {{"a;b", "x", "*"}, {"", "x", "*"}, {"q\"uote", "line\nbreak", "*"}};
    auto back = parseHierarchyRows(formatHierarchyRows(rows));
    REQUIRE(back.isOk());
    CHECK(*back == rows);
    const HierarchyRows single = {{"a"}, {""}};
    auto singleBack = parseHierarchyRows(formatHierarchyRows(single));
    REQUIRE(singleBack.isOk());
    CHECK(*singleBack == single);
}
