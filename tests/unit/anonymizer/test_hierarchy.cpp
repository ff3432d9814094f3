#include <catch2/catch.hpp>

#include "adult_fixture.hpp"
#include "anonymizer/hierarchy.hpp"

using custodian::StatusCode;
using custodian::anon::Hierarchy;

namespace {
std::vector<std::vector<std::string>> ageRows() {
    return {{"21", "20-24", "20-29", "*"},
            {"23", "20-24", "20-29", "*"},
            {"27", "25-29", "20-29", "*"},
            {"34", "30-34", "30-39", "*"}};
}
}  // namespace

TEST_CASE("hierarchy maps leaves to nodes at every level", "[hierarchy]") {
    auto h = Hierarchy::fromRows("age", ageRows());
    REQUIRE(h.isOk());
    CHECK(h->name() == "age");
    CHECK(h->levels() == 4);
    CHECK(h->leafCount() == 4);
    const auto c23 = h->leafCode("23");
    REQUIRE(c23.has_value());
    CHECK(*c23 == 1);
    CHECK_FALSE(h->leafCode("99").has_value());
    CHECK(h->label(1, h->generalize(*c23, 1)) == "20-24");
    CHECK(h->label(2, h->generalize(*c23, 2)) == "20-29");
    CHECK(h->label(3, h->generalize(*c23, 3)) == "*");
    CHECK(h->generalize(0, 1) == h->generalize(1, 1));
    CHECK(h->generalize(0, 1) != h->generalize(2, 1));
    CHECK(h->nodeCount(0) == 4);
    CHECK(h->nodeCount(1) == 3);
    CHECK(h->nodeCount(2) == 2);
    CHECK(h->nodeCount(3) == 1);
    CHECK(h->leavesUnder(0, 2) == 1);
    CHECK(h->leavesUnder(1, h->generalize(0, 1)) == 2);
    CHECK(h->leavesUnder(2, h->generalize(0, 2)) == 3);
    CHECK(h->leavesUnder(3, 0) == 4);
    CHECK(h->parent(1, h->generalize(2, 1)) == h->generalize(2, 2));
    REQUIRE(h->numericLeaves().has_value());
    CHECK((*h->numericLeaves())[3] == 34.0);
    const uint32_t leaves[] = {0, 2};
    CHECK(h->lowestCommonLevel(leaves, 2) == 2);
}

TEST_CASE("hierarchy rejects rows of different depths", "[hierarchy]") {
    auto rows = ageRows();
    rows[2].pop_back();
    auto h = Hierarchy::fromRows("age", rows);
    REQUIRE_FALSE(h.isOk());
    CHECK(h.status().code() == StatusCode::InvalidArgument);
    CHECK_THAT(h.status().message(), Catch::Contains("row 3") && Catch::Contains("3 levels"));
}

TEST_CASE("hierarchy rejects duplicate leaves", "[hierarchy]") {
    auto rows = ageRows();
    rows[3][0] = "21";
    auto h = Hierarchy::fromRows("age", rows);
    REQUIRE_FALSE(h.isOk());
    CHECK_THAT(h.status().message(), Catch::Contains("'21' appears twice"));
}

TEST_CASE("hierarchy rejects a level that is not a coarsening", "[hierarchy]") {
    auto rows = ageRows();
    rows[1][2] = "10-19";  // 23 shares 20-24 with 21 but goes to another level-2 group
    auto h = Hierarchy::fromRows("age", rows);
    REQUIRE_FALSE(h.isOk());
    CHECK_THAT(h.status().message(), Catch::Contains("not a coarsening") && Catch::Contains("'20-24'"));
}

TEST_CASE("hierarchy rejects no rows and empty rows", "[hierarchy]") {
    CHECK_FALSE(Hierarchy::fromRows("x", {}).isOk());
    CHECK_FALSE(Hierarchy::fromRows("x", {{}}).isOk());
}

TEST_CASE("categorical hierarchies have no numeric leaves", "[hierarchy]") {
    auto h = Hierarchy::fromRows("sex", {{"Male", "*"}, {"Female", "*"}});
    REQUIRE(h.isOk());
    CHECK_FALSE(h->numericLeaves().has_value());
    CHECK(h->leavesUnder(1, 0) == 2);
}

TEST_CASE("the nine Adult hierarchies load and span 12960 nodes", "[hierarchy][adult]") {
    const auto& a = custodian::anon::testing::adult();
    REQUIRE(a.hierarchies.size() == 9);
    size_t nodes = 1;
    for (const auto& h : a.hierarchies) nodes *= static_cast<size_t>(h->levels());
    CHECK(nodes == 12960);
    CHECK(a.rows.size() == 30162);
}
