#include <catch2/catch.hpp>

#include <sstream>

#include "anonymizer/hierarchy_io.hpp"
#include "anonymizer/table.hpp"
#include "anonymizer/value.hpp"
#include "unit/anonymizer/adult_fixture.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

SchemaPtr schemaOf(std::vector<ColumnSpec> columns) {
    auto schema = Schema::make(std::move(columns));
    REQUIRE(schema.isOk());
    return std::make_shared<const Schema>(std::move(schema.value()));
}

Result<Table> tableFrom(const std::string& text, SchemaPtr schema) {
    auto reader = CsvReader::fromString(text, CsvDialect{});
    if (!reader) return reader.status();
    return Table::readCsv(std::move(reader.value()), std::move(schema));
}

}  // namespace

TEST_CASE("values parse strictly and format canonically", "[value]") {
    CHECK(parseInteger("-42") == -42);
    CHECK_FALSE(parseInteger("+1"));
    CHECK_FALSE(parseInteger("1.0"));
    CHECK_FALSE(parseInteger(" 1"));
    CHECK_FALSE(parseInteger("99999999999999999999"));
    CHECK(parseDecimal("2.5e3") == 2500.0);
    CHECK_FALSE(parseDecimal("inf"));
    CHECK_FALSE(parseDecimal("nan"));
    CHECK_FALSE(parseDecimal("1,5"));
    CHECK(parseDate("1970-01-01") == 0);
    CHECK(parseDate("2000-03-01") == 11017);
    CHECK(parseDate("2024-02-29").has_value());
    CHECK_FALSE(parseDate("2023-02-29"));
    CHECK_FALSE(parseDate("2023-13-01"));
    CHECK_FALSE(parseDate("2023-1-01"));
    CHECK(formatDate(-1) == "1969-12-31");
    CHECK(parseTimestamp("1970-01-02T00:00:01Z") == 86'401'000'000LL);
    CHECK(parseTimestamp("1970-01-01 01:00:00+01:00") == 0);
    CHECK(parseTimestamp("1970-01-01T00:00:00.25") == 250'000);
    CHECK_FALSE(parseTimestamp("1970-01-01T24:00:00"));
    std::string s;
    appendTimestamp(s, -1);
    CHECK(s == "1969-12-31T23:59:59.999999Z");
    s.clear();
    appendDecimal(s, 0.1 + 0.2);
    CHECK(parseDecimal(s) == 0.1 + 0.2);  // shortest text that round-trips
    for (int32_t d : {-719468, -1, 0, 59, 365, 11016, 19000, 2932896}) {
        const CivilDate c = civilFromDays(d);
        CHECK(daysFromCivil(c.year, c.month, c.day) == d);
    }
    // Over 200,000 days spread across every year from 0 to 9999 (alternately the next day and 31
    // days on) print as YYYY-MM-DD and parse back; outside those years the year keeps its sign and
    // at least four digits.
    for (int32_t d = daysFromCivil(0, 1, 1); d <= daysFromCivil(9999, 12, 31); d += 1 + (d & 1) * 30) {
        const std::string text = formatDate(d);
        REQUIRE(text.size() == 10);
        REQUIRE(parseDate(text) == d);
    }
    CHECK(formatDate(daysFromCivil(9999, 12, 31)) == "9999-12-31");
    CHECK(formatDate(daysFromCivil(0, 1, 1)) == "0000-01-01");
    CHECK(formatDate(daysFromCivil(10000, 1, 1)) == "10000-01-01");
    CHECK(formatDate(daysFromCivil(-1, 12, 31)) == "-0001-12-31");
}

TEST_CASE("table parses declared types with nulls, quoted empty text and line numbers", "[table]") {
    auto schema = schemaOf({{"id", ColumnType::Integer},
                            {"name", ColumnType::Text},
                            {"score", ColumnType::Decimal},
                            {"born", ColumnType::Date},
                            {"seen", ColumnType::Timestamp}});
    auto table = tableFrom("id,name,score,born,seen\n"
                           "1,ann,2.5,1990-05-17,2021-03-14T10:00:00Z\n"
                           "2,\"\",,,\n"
                           "3,,-1e2,2000-02-29,2021-03-14 10:00:00.5+02:00\n",
                           schema);
    REQUIRE(table.isOk());
    REQUIRE(table->batches().size() == 1);
    const Batch& b = table->batches()[0];
    REQUIRE(b.rows() == 3);
    CHECK(b.column(0).integer(2) == 3);
    CHECK(b.column(1).text(0) == "ann");
    CHECK_FALSE(b.column(1).isNull(1));  // "" is the empty string
    CHECK(b.column(1).text(1).empty());
    CHECK(b.column(1).isNull(2));  // an empty unquoted field is null
    CHECK(b.column(2).isNull(1));
    CHECK(b.column(2).decimal(2) == -100.0);
    CHECK(b.column(3).canonical(0) == "1990-05-17");
    CHECK(b.column(3).isNull(1));
    CHECK(b.column(4).canonical(2) == "2021-03-14T08:00:00.500000Z");
    CHECK(b.column(1).nullCount() == 1);
    CHECK(b.sourceLine(2) == 4);
}

TEST_CASE("table type errors name line, column, name and value", "[table]") {
    auto schema = schemaOf({{"age", ColumnType::Integer}, {"when", ColumnType::Date}});
    auto bad = tableFrom("age,when\n30,2020-01-01\n\"multi\nline\",2020-01-01\n", schema);
    REQUIRE_FALSE(bad.isOk());
    CHECK(bad.status().message() == "line 3, column 1 (age): 'multi\nline' is not an integer");
    auto badDate = tableFrom("when,age\n2020-02-30,1\n", schema);
    REQUIRE_FALSE(badDate.isOk());
    CHECK(badDate.status().message() == "line 2, column 1 (when): '2020-02-30' is not a date (YYYY-MM-DD)");
}

TEST_CASE("table matches schema columns to the header by name and skips undeclared ones", "[table]") {
    auto schema = schemaOf({{"b", ColumnType::Integer}});
    auto table = tableFrom("a,b,c\nx,7,y\n", schema);
    REQUIRE(table.isOk());
    CHECK(table->batches()[0].columnCount() == 1);
    CHECK(table->batches()[0].column(0).integer(0) == 7);
    auto missing = tableFrom("a,c\nx,y\n", schema);
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().message() == "line 1: the header has no column 'b'");
    CHECK_FALSE(Schema::make({{"a", ColumnType::Text}, {"a", ColumnType::Integer}}).isOk());
}

TEST_CASE("suppression marks rows without copying, the writer skips them", "[table]") {
    auto schema = schemaOf({{"n", ColumnType::Integer}, {"t", ColumnType::Text}});
    auto table = tableFrom("n,t\n1,a\n2,\"b,c\"\n3,\"\"\n4,\n", schema);
    REQUIRE(table.isOk());
    Batch& b = table->batches()[0];
    const Column* before = &b.column(1);
    b.suppress(1);
    b.suppress(1);
    CHECK(b.suppressedCount() == 1);
    CHECK(b.releasedRows() == 3);
    CHECK(b.isSuppressed(1));
    CHECK_FALSE(b.isSuppressed(0));
    CHECK(&b.column(1) == before);
    std::ostringstream out;
    CsvWriter writer(out, CsvDialect{});
    REQUIRE(writeCsvHeader(b.schema(), writer).isOk());
    REQUIRE(writeCsvRows(b, writer).isOk());
    REQUIRE(writer.flush().isOk());
    CHECK(out.str() == "n,t\n1,a\n3,\"\"\n4,\n");
}

TEST_CASE("table reads Adult in batches of 2048 with age as an integer", "[table][adult]") {
    std::vector<ColumnSpec> columns = {{"sex", ColumnType::Text},         {"age", ColumnType::Integer},
                                       {"race", ColumnType::Text},        {"marital-status", ColumnType::Text},
                                       {"education", ColumnType::Text},   {"native-country", ColumnType::Text},
                                       {"workclass", ColumnType::Text},   {"occupation", ColumnType::Text},
                                       {"salary-class", ColumnType::Text}};
    CsvDialect d;
    d.delimiter = ';';
    auto table = Table::readCsv(std::string(CUSTODIAN_ADULT_DIR) + "/adult.csv", d, schemaOf(columns));
    REQUIRE(table.isOk());
    CHECK(table->rows() == 30162);
    CHECK(table->schema()->size() == 9);
    CHECK(table->batches().size() == 15);
    CHECK(table->batches()[0].rows() == 2048);
    CHECK(table->batches()[0].column(1).integer(0) == 39);
    CHECK(table->batches()[0].sourceLine(0) == 2);
}

TEST_CASE("leaf encoding maps values to hierarchy leaf codes and names uncovered values", "[table][hierarchy]") {
    auto hierarchy = parseHierarchyCsv("age", "20;[20-30[;*\n25;[20-30[;*\n31;[30-40[;*\n");
    REQUIRE(hierarchy.isOk());
    auto shared = std::make_shared<const Hierarchy>(std::move(hierarchy.value()));
    auto schema = schemaOf({{"age", ColumnType::Integer}});

    auto good = tableFrom("age\n31\n20\n31\n25\n", schema);
    REQUIRE(good.isOk());
    LeafEncoder encoder(shared);
    std::vector<uint32_t> codes;
    REQUIRE(encoder.encode(good->batches()[0], 0, codes).isOk());
    CHECK(codes == std::vector<uint32_t>{2, 0, 2, 1});

    auto bad = tableFrom("age\n20\n99\n\n99\n-1\n", schema);
    REQUIRE(bad.isOk());
    std::vector<uint32_t> badCodes = {7};
    const Status s = encoder.encode(bad->batches()[0], 0, badCodes);
    REQUIRE_FALSE(s.isOk());
    CHECK(s.message() == "column 'age': 3 values are not covered by hierarchy 'age': '99' (line 3), null (line 4), "
                         "'-1' (line 6)");
    CHECK(badCodes == std::vector<uint32_t>{7});  // nothing appended on failure
}

TEST_CASE("leaf encoding of Adult matches an independent lookup", "[table][adult]") {
    const auto adult = custodian::anon::testing::readSemicolonFile(std::string(CUSTODIAN_ADULT_DIR) + "/adult.csv");
    auto hierarchy =
        loadHierarchyFile("education", std::string(CUSTODIAN_ADULT_DIR) + "/adult_hierarchy_education.csv");
    REQUIRE(hierarchy.isOk());
    const auto hierarchyRows = custodian::anon::testing::readSemicolonFile(std::string(CUSTODIAN_ADULT_DIR) +
                                                                           "/adult_hierarchy_education.csv");
    auto shared = std::make_shared<const Hierarchy>(std::move(hierarchy.value()));
    CsvDialect d;
    d.delimiter = ';';
    auto table =
        Table::readCsv(std::string(CUSTODIAN_ADULT_DIR) + "/adult.csv", d, schemaOf({{"education", ColumnType::Text}}));
    REQUIRE(table.isOk());
    LeafEncoder encoder(shared);
    std::vector<uint32_t> codes;
    for (const auto& batch : table->batches()) REQUIRE(encoder.encode(batch, 0, codes).isOk());
    REQUIRE(codes.size() == 30162);
    for (size_t i = 0; i < codes.size(); i += 997) CHECK(hierarchyRows[codes[i]][0] == adult[i + 1][4]);
}
