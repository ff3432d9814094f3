// CsvGroupCounter: the GROUP BY over a CSV file must agree with grouping the typed table by
// canonical text (an independent path through Table::readCsv), whatever the spelling of the values.

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "anonymizer/csv_group_by.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

using GroupKey = std::vector<std::optional<std::string>>;

SchemaPtr schemaOf(std::vector<ColumnSpec> specs) {
    auto schema = Schema::make(std::move(specs));
    REQUIRE(schema.isOk());
    return std::make_shared<const Schema>(std::move(schema).value());
}

struct Counted {
    std::map<GroupKey, uint64_t> groups;
    std::vector<std::vector<std::string>> domains;
    uint64_t records = 0;
};

Result<Counted> countCsv(const std::string& text, const SchemaPtr& schema, std::vector<size_t> groupColumns,
                         std::vector<size_t> domainColumns, size_t batchRows = 3) {
    auto reader = CsvReader::fromString(text, CsvDialect{});
    if (!reader) return reader.status();
    auto source = csvSourceColumns(*reader, *schema);
    if (!source) return source.status();
    const size_t domainCount = domainColumns.size();
    CsvGroupCounter counter(schema, *source, std::move(groupColumns), std::move(domainColumns));
    CsvRecords records;
    while (true) {
        auto n = reader->read(records, batchRows);
        if (!n) return n.status();
        if (*n == 0) break;
        if (Status s = counter.add(records); !s) return s;
    }
    Counted out;
    out.records = counter.records();
    Status s = counter.forEachGroup([&](std::span<const std::optional<std::string_view>> values, uint64_t count) {
        GroupKey key;
        for (const auto& v : values) key.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
        if (!out.groups.emplace(key, count).second) return internalError("a group was visited twice");
        return Status::ok();
    });
    if (!s) return s;
    for (size_t i = 0; i < domainCount; ++i) {
        auto& d = out.domains.emplace_back();
        for (std::string_view v : counter.domain(i)) d.emplace_back(v);
    }
    return out;
}

// The reference: read the typed table, group by the canonical text of each value.
std::map<GroupKey, uint64_t> referenceGroups(const std::string& text, const SchemaPtr& schema,
                                             const std::vector<size_t>& groupColumns) {
    auto reader = CsvReader::fromString(text, CsvDialect{});
    REQUIRE(reader.isOk());
    auto table = Table::readCsv(std::move(reader).value(), schema);
    INFO((table ? std::string() : table.status().message()));
    REQUIRE(table.isOk());
    std::map<GroupKey, uint64_t> groups;
    for (const Batch& batch : table->batches()) {
        for (size_t row = 0; row < batch.rows(); ++row) {
            GroupKey key;
            for (size_t c : groupColumns) {
                const Column& col = batch.column(c);
                key.push_back(col.isNull(row) ? std::nullopt : std::optional<std::string>(col.canonical(row)));
            }
            ++groups[key];
        }
    }
    return groups;
}

}  // namespace

TEST_CASE("CsvGroupCounter groups by canonical text, with nulls, CRLF and extra columns", "[csv_group_by]") {
    const auto schema =
        schemaOf({{"age", ColumnType::Integer}, {"city", ColumnType::Text}, {"seen", ColumnType::Date}});
    const std::string csv = "name,age,city,seen\r\n"
                            "a,34,Oslo,2020-01-02\r\n"
                            "b,034,Oslo,2020-01-02\r\n"  // same integer as 34
                            "c,,Oslo,2020-01-02\r\n"     // null age
                            "d,35,\"\",2020-01-02\r\n"   // empty string city (not null)
                            "e,35,,2020-01-02\r\n"       // null city
                            "f,-0,Bergen,\r\n"           // -0 is 0; null date
                            "g,0,Bergen,2021-12-31\n";   // LF line end too
    auto counted = countCsv(csv, schema, {0, 1}, {2, 1});
    REQUIRE(counted.isOk());
    CHECK(counted->records == 7);
    const std::map<GroupKey, uint64_t> expected = {{{"34", "Oslo"}, 2},
                                                   {{std::nullopt, "Oslo"}, 1},
                                                   {{"35", ""}, 1},
                                                   {{"35", std::nullopt}, 1},
                                                   {{"0", "Bergen"}, 2}};
    CHECK(counted->groups == expected);
    CHECK(counted->groups == referenceGroups(csv, schema, {0, 1}));
    REQUIRE(counted->domains.size() == 2);
    CHECK(counted->domains[0] == std::vector<std::string>{"2020-01-02", "2021-12-31"});
    CHECK(counted->domains[1] == std::vector<std::string>{"Oslo", "", "Bergen"});
}

TEST_CASE("CsvGroupCounter without group columns counts every record once", "[csv_group_by]") {
    const auto schema = schemaOf({{"x", ColumnType::Text}});
    auto counted = countCsv("x\n1\n2\n3\n", schema, {}, {});
    REQUIRE(counted.isOk());
    CHECK(counted->records == 3);
    CHECK(counted->groups == std::map<GroupKey, uint64_t>{{GroupKey{}, 3}});
    auto empty = countCsv("x\n", schema, {}, {});
    REQUIRE(empty.isOk());
    CHECK(empty->records == 0);
    CHECK(empty->groups.empty());
}

TEST_CASE("CsvGroupCounter names the first line of a malformed value", "[csv_group_by]") {
    const auto schema = schemaOf({{"age", ColumnType::Integer}, {"when", ColumnType::Date}});
    auto counted = countCsv("age,when\n1,2020-01-01\n2,2020-02-30\n3,2020-02-30\n", schema, {0}, {1});
    REQUIRE_FALSE(counted.isOk());
    CHECK(counted.status().message() == "line 3, column 2 (when): '2020-02-30' is not a date (YYYY-MM-DD)");
    auto missing = countCsv("age\n1\n", schemaOf({{"agee", ColumnType::Integer}}), {0}, {});
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().message() == "line 1: the header has no column 'agee'");
}

TEST_CASE("CsvGroupCounter agrees with grouping the typed table on random files", "[csv_group_by]") {
    std::mt19937_64 rng(20261128);
    const auto schema = schemaOf({{"i", ColumnType::Integer},
                                  {"d", ColumnType::Decimal},
                                  {"t", ColumnType::Text},
                                  {"day", ColumnType::Date},
                                  {"ts", ColumnType::Timestamp}});
    const std::vector<std::string> ints = {"1", "01", "-1", "", "007", "7"};
    const std::vector<std::string> decimals = {"1.5", "1.50", "15e-1", "", "2", "2.0", "-0.0", "0"};
    const std::vector<std::string> texts = {"a", "\"a\"", "\"\"", "", "\"x,y\"", "b"};
    const std::vector<std::string> days = {"2020-01-01", "", "1999-12-31"};
    const std::vector<std::string> stamps = {"2020-01-01T00:00:00Z", "2020-01-01 01:00:00+01:00", "",
                                             "2020-01-01T00:00:00.000000Z"};
    for (int round = 0; round < 50; ++round) {
        std::string csv = "i,d,t,day,ts\n";
        const size_t rows = rng() % 200;
        for (size_t r = 0; r < rows; ++r) {
            csv += ints[rng() % ints.size()] + "," + decimals[rng() % decimals.size()] + "," +
                   texts[rng() % texts.size()] + "," + days[rng() % days.size()] + "," + stamps[rng() % stamps.size()] +
                   (rng() % 2 ? "\r\n" : "\n");
        }
        std::vector<size_t> group;
        for (size_t c = 0; c < schema->size(); ++c)
            if (rng() % 2) group.push_back(c);
        auto counted = countCsv(csv, schema, group, {}, 1 + rng() % 50);
        REQUIRE(counted.isOk());
        CHECK(counted->records == rows);
        CHECK(counted->groups == referenceGroups(csv, schema, group));
    }
}
