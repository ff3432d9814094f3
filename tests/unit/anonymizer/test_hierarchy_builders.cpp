#include <catch2/catch.hpp>

#include "anonymizer/hierarchy_builders.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

std::vector<std::string> labelsOf(const Hierarchy& h, const std::string& value) {
    const auto leaf = h.leafCode(value);
    REQUIRE(leaf.has_value());
    std::vector<std::string> labels;
    for (int level = 0; level < h.levels(); ++level) labels.push_back(h.label(level, h.generalize(*leaf, level)));
    return labels;
}

}  // namespace

TEST_CASE("interval builder: widths 5, 10, 20 then *, half-open labels, numeric leaf order", "[builders]") {
    const std::vector<std::string> domain = {"37", "20", "24", "25", "-3", "37", "99"};
    IntervalHierarchySpec spec;
    spec.widths = {5, 10, 20};
    auto rows = intervalHierarchyRows(domain, spec);
    REQUIRE(rows.isOk());
    REQUIRE(rows->size() == 6);  // the duplicate 37 is one leaf
    CHECK((*rows)[0] == std::vector<std::string>{"-3", "[-5-0[", "[-10-0[", "[-20-0[", "*"});
    CHECK((*rows)[1] == std::vector<std::string>{"20", "[20-25[", "[20-30[", "[20-40[", "*"});
    CHECK((*rows)[3] == std::vector<std::string>{"25", "[25-30[", "[20-30[", "[20-40[", "*"});
    CHECK((*rows)[5] == std::vector<std::string>{"99", "[95-100[", "[90-100[", "[80-100[", "*"});
    auto h = buildIntervalHierarchy("age", domain, spec);
    REQUIRE(h.isOk());
    CHECK(h->levels() == 5);
    CHECK(h->nodeCount(3) == 3);
    CHECK(labelsOf(*h, "24") == std::vector<std::string>{"24", "[20-25[", "[20-30[", "[20-40[", "*"});
}

TEST_CASE("interval builder: origin, decimals, and its errors", "[builders]") {
    IntervalHierarchySpec spec;
    spec.widths = {0.5, 1};
    spec.origin = 0.25;
    spec.topLevel = false;
    const std::vector<std::string> decimals = {"1.3", "0.3", "1.0"};
    auto rows = intervalHierarchyRows(decimals, spec);
    REQUIRE(rows.isOk());
    CHECK((*rows)[0] == std::vector<std::string>{"0.3", "[0.25-0.75[", "[0.25-1.25["});
    CHECK((*rows)[1] == std::vector<std::string>{"1.0", "[0.75-1.25[", "[0.25-1.25["});
    CHECK((*rows)[2] == std::vector<std::string>{"1.3", "[1.25-1.75[", "[1.25-2.25["});

    spec.widths = {5, 12};
    auto notMultiple = intervalHierarchyRows(decimals, spec);
    REQUIRE_FALSE(notMultiple.isOk());
    CHECK(notMultiple.status().message() ==
          "interval hierarchy: width of level 2 (12) is not a multiple of the width of level 1 (5)");
    spec.widths = {0};
    CHECK_FALSE(intervalHierarchyRows(decimals, spec).isOk());
    spec.widths = {5};
    const std::vector<std::string> text = {"12", "twelve"};
    auto nan = buildIntervalHierarchy("n", text, spec);
    REQUIRE_FALSE(nan.isOk());
    CHECK(nan.status().message() == "hierarchy 'n': interval hierarchy: value 'twelve' is not a number");
}

TEST_CASE("date builder: day to month, quarter, year, decade, *", "[builders]") {
    const std::vector<std::string> domain = {"2021-03-14", "1999-12-31", "2021-11-02", "2020-01-01"};
    auto h = buildDateHierarchy("visit", domain, DateHierarchySpec{});
    REQUIRE(h.isOk());
    CHECK(h->levels() == 6);
    CHECK(labelsOf(*h, "2021-03-14") ==
          std::vector<std::string>{"2021-03-14", "2021-03", "2021-Q1", "2021", "2020s", "*"});
    CHECK(labelsOf(*h, "1999-12-31") ==
          std::vector<std::string>{"1999-12-31", "1999-12", "1999-Q4", "1999", "1990s", "*"});
    CHECK(h->leafCode("1999-12-31") == 0u);  // chronological leaf order
    CHECK(h->leafCode("2021-11-02") == 3u);
    CHECK(h->nodeCount(4) == 2);

    DateHierarchySpec yearsOnly;
    yearsOnly.levels = {DateGranularity::Day, DateGranularity::Year};
    const std::vector<std::string> stamps = {"2021-03-14T23:30:00Z", "2021-03-14T01:00:00-05:00"};
    auto rows = dateHierarchyRows(stamps, yearsOnly);
    REQUIRE(rows.isOk());
    CHECK((*rows)[0] == std::vector<std::string>{"2021-03-14T01:00:00-05:00", "2021-03-14", "2021", "*"});
    CHECK((*rows)[1] == std::vector<std::string>{"2021-03-14T23:30:00Z", "2021-03-14", "2021", "*"});

    DateHierarchySpec wrongOrder;
    wrongOrder.levels = {DateGranularity::Year, DateGranularity::Month};
    auto bad = dateHierarchyRows(domain, wrongOrder);
    REQUIRE_FALSE(bad.isOk());
    CHECK(bad.status().message() == "date hierarchy: level 2 (month) is not coarser than level 1 (year)");
    const std::vector<std::string> notDates = {"2021-02-30"};
    CHECK_FALSE(dateHierarchyRows(notDates, DateHierarchySpec{}).isOk());
}

TEST_CASE("masking builder: one more character masked per level, code points not bytes", "[builders]") {
    const std::vector<std::string> domain = {"12345", "12399", "987", "Zürich"};
    auto h = buildMaskingHierarchy("zip", domain, MaskingHierarchySpec{});
    REQUIRE(h.isOk());
    CHECK(h->levels() == 7);  // longest value has 6 characters
    CHECK(labelsOf(*h, "12345") == std::vector<std::string>{"12345", "1234*", "123**", "12***", "1****", "*****", "*"});
    CHECK(labelsOf(*h, "987") == std::vector<std::string>{"987", "98*", "9**", "***", "***", "***", "*"});
    CHECK(labelsOf(*h, "Zürich")[2] == "Züri**");
    CHECK(h->generalize(*h->leafCode("12345"), 2) == h->generalize(*h->leafCode("12399"), 2));
    CHECK(h->generalize(*h->leafCode("12345"), 1) != h->generalize(*h->leafCode("12399"), 1));
    MaskingHierarchySpec hash;
    hash.maskChar = "#";
    const std::vector<std::string> one = {"ab"};
    auto rows = maskingHierarchyRows(one, hash);
    REQUIRE(rows.isOk());
    CHECK((*rows)[0] == std::vector<std::string>{"ab", "a#", "#"});
    hash.maskChar = "##";
    CHECK_FALSE(maskingHierarchyRows(one, hash).isOk());
    const std::vector<std::string> tooLong = {std::string(65, 'x')};
    auto refused = maskingHierarchyRows(tooLong, MaskingHierarchySpec{});
    REQUIRE_FALSE(refused.isOk());
    CHECK(refused.status().message().find("has 65 characters, more than the 64 supported") != std::string::npos);
}

TEST_CASE("grouping builder: explicit groups per level, contiguous leaves, precise errors", "[builders]") {
    GroupingHierarchySpec spec;
    spec.levels = {{{"Paris", "France"}, {"Lyon", "France"}, {"Bonn", "Germany"}, {"Unused", "Nowhere"}},
                   {{"France", "Europe"}, {"Germany", "Europe"}}};
    const std::vector<std::string> domain = {"Lyon", "Bonn", "Paris"};
    auto h = buildGroupingHierarchy("city", domain, spec);
    REQUIRE(h.isOk());
    CHECK(h->levels() == 4);
    CHECK(labelsOf(*h, "Lyon") == std::vector<std::string>{"Lyon", "France", "Europe", "*"});
    // Leaves ordered by ancestor path: the two French cities are adjacent.
    const auto lyon = *h->leafCode("Lyon");
    const auto paris = *h->leafCode("Paris");
    CHECK((lyon > paris ? lyon - paris : paris - lyon) == 1u);

    const std::vector<std::string> withUnknown = {"Lyon", "Rome"};
    auto missing = buildGroupingHierarchy("city", withUnknown, spec);
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().message() == "hierarchy 'city': grouping hierarchy: value 'Rome' has no group at level 1");
    spec.levels[1].erase("Germany");
    auto missingGroup = groupingHierarchyRows(domain, spec);
    REQUIRE_FALSE(missingGroup.isOk());
    CHECK(missingGroup.status().message() == "grouping hierarchy: group 'Germany' (level 1) has no group at level 2");

    GroupingHierarchySpec noTop;
    noTop.levels = {{{"a", "g"}, {"b", "g"}}};
    noTop.topLevel = false;
    const std::vector<std::string> ab = {"b", "a"};
    auto rows = groupingHierarchyRows(ab, noTop);
    REQUIRE(rows.isOk());
    CHECK(*rows == HierarchyRows{{"a", "g"}, {"b", "g"}});
}

TEST_CASE("domain collector gathers distinct canonical values of a column across batches", "[builders]") {
    auto schema = std::make_shared<const Schema>(Schema::make({{"n", ColumnType::Integer}}).value());
    DomainCollector domain;
    for (const char* text : {"n\n3\n1\n3\n", "n\n\n1\n2\n"}) {
        auto reader = CsvReader::fromString(text, CsvDialect{});
        REQUIRE(reader.isOk());
        auto table = Table::readCsv(std::move(reader.value()), schema);
        REQUIRE(table.isOk());
        domain.add(table->batches()[0], 0);
    }
    CHECK(domain.values() == std::vector<std::string>{"3", "1", "2"});
    CHECK(domain.sawNull());
    IntervalHierarchySpec spec;
    spec.widths = {2};
    auto h = buildIntervalHierarchy("n", domain.values(), spec);
    REQUIRE(h.isOk());
    CHECK(labelsOf(*h, "3")[1] == "[2-4[");
}
