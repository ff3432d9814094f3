#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>

#include "anonymizer/csv.hpp"
#include "unit/anonymizer/adult_fixture.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

// Hands out at most `chunk` bytes per read, to exercise records split across buffer refills.
class TrickleSource final : public ByteSource {
public:
    TrickleSource(std::string bytes, size_t chunk) : bytes_(std::move(bytes)), chunk_(chunk) {}
    Result<size_t> read(char* buffer, size_t capacity) override {
        const size_t n = std::min({capacity, chunk_, bytes_.size() - offset_});
        std::memcpy(buffer, bytes_.data() + offset_, n);
        offset_ += n;
        return n;
    }

private:
    std::string bytes_;
    size_t chunk_;
    size_t offset_ = 0;
};

CsvDialect noHeader(char delimiter = ',') {
    CsvDialect d;
    d.delimiter = delimiter;
    d.header = false;
    return d;
}

using Rows = std::vector<std::vector<std::string>>;

// Reads everything; returns rows or the error message (prefixed "ERROR: ").
Result<Rows> readAll(CsvReader& reader, size_t batchRows = CsvReader::kDefaultBatchRows) {
    Rows rows;
    CsvRecords records;
    while (true) {
        auto n = reader.read(records, batchRows);
        if (!n) return n.status();
        if (*n == 0) break;
        for (size_t r = 0; r < records.rows(); ++r) {
            std::vector<std::string> row;
            for (size_t c = 0; c < records.columns(); ++c) row.emplace_back(records.field(r, c));
            rows.push_back(std::move(row));
        }
    }
    return rows;
}

Result<Rows> parse(const std::string& text, CsvDialect dialect = noHeader()) {
    auto reader = CsvReader::fromString(text, dialect);
    if (!reader) return reader.status();
    return readAll(*reader);
}

std::string errorOf(const std::string& text, CsvDialect dialect = noHeader()) {
    auto rows = parse(text, dialect);
    REQUIRE_FALSE(rows.isOk());
    return rows.status().message();
}

}  // namespace

TEST_CASE("CSV reader splits fields on the delimiter and records on LF", "[csv]") {
    auto rows = parse("a,b,c\n1,2,3\n");
    REQUIRE(rows.isOk());
    CHECK(*rows == Rows{{"a", "b", "c"}, {"1", "2", "3"}});
}

TEST_CASE("CSV reader accepts CRLF and a final line without a line break", "[csv]") {
    auto crlf = parse("a;b\r\n1;2\r\n", noHeader(';'));
    REQUIRE(crlf.isOk());
    CHECK(*crlf == Rows{{"a", "b"}, {"1", "2"}});
    auto noFinal = parse("a;b\r\n1;2", noHeader(';'));
    REQUIRE(noFinal.isOk());
    CHECK(*noFinal == Rows{{"a", "b"}, {"1", "2"}});
    auto emptyLastField = parse("a,b\n1,", noHeader());
    REQUIRE(emptyLastField.isOk());
    CHECK(*emptyLastField == Rows{{"a", "b"}, {"1", ""}});
}

TEST_CASE("CSV reader unquotes RFC 4180 fields: delimiters, doubled quotes, embedded line breaks", "[csv]") {
    auto rows = parse("\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\",\"crlf\r\ninside\"\nplain,\"\",z,\n");
    REQUIRE(rows.isOk());
    CHECK(*rows == Rows{{"x,y", "say \"hi\"", "two\nlines", "crlf\r\ninside"}, {"plain", "", "z", ""}});
}

TEST_CASE("CSV reader tells quoted empty fields from missing ones and reports start lines", "[csv]") {
    auto reader = CsvReader::fromString("a,b\n\"multi\nline\",\"\"\nx,\n", CsvDialect{});
    REQUIRE(reader.isOk());
    CHECK(reader->header() == std::vector<std::string>{"a", "b"});
    CsvRecords records;
    auto n = reader->read(records);
    REQUIRE(n.isOk());
    REQUIRE(*n == 2);
    CHECK(records.line(0) == 2);
    CHECK(records.line(1) == 4);  // the quoted field spans lines 2 and 3
    CHECK(records.quoted(0, 1));
    CHECK(records.field(0, 1).empty());
    CHECK_FALSE(records.quoted(1, 1));
    CHECK(records.field(1, 1).empty());
}

TEST_CASE("CSV reader: empty input and header-only input", "[csv]") {
    auto empty = CsvReader::fromString("", CsvDialect{});
    REQUIRE_FALSE(empty.isOk());
    CHECK(empty.status().message() == "empty input: expected a header row");

    auto emptyNoHeader = parse("");
    REQUIRE(emptyNoHeader.isOk());
    CHECK(emptyNoHeader->empty());

    for (const char* text : {"a;b;c", "a;b;c\n", "a;b;c\r\n"}) {
        CsvDialect d;
        d.delimiter = ';';
        auto reader = CsvReader::fromString(text, d);
        REQUIRE(reader.isOk());
        CHECK(reader->header() == std::vector<std::string>{"a", "b", "c"});
        auto rows = readAll(*reader);
        REQUIRE(rows.isOk());
        CHECK(rows->empty());
    }
}

TEST_CASE("CSV reader names the line of a ragged row, counting line breaks inside quotes", "[csv]") {
    CHECK(errorOf("a,b\n1,2\n3\n") == "line 3: expected 2 fields, found 1");
    CHECK(errorOf("a,b\n\"x\ny\",2\n1,2,3\n") == "line 4: expected 2 fields, found 3");
    CHECK(errorOf("a,b\n\n1,2\n") == "line 2: expected 2 fields, found 1");
}

TEST_CASE("CSV reader errors name line and column", "[csv]") {
    CHECK(errorOf("a,b,c\n1,2,\"open\n\nnever closed\n") == "line 2, column 3: unterminated quoted field");
    CHECK(errorOf("a,b\n1,x\"y\n") ==
          "line 2, column 2: quote character inside an unquoted field (quote the whole field and double the quote)");
    CHECK(errorOf("a,b\n\"q\"x,1\n") == "line 2, column 1: unexpected 'x' after the closing quote of a quoted field");
    CHECK(errorOf("a,b\r1,2\n") == "line 1, column 2: carriage return not followed by a line feed");
}

TEST_CASE("CSV reader rejects invalid UTF-8 with the exact position", "[csv]") {
    CHECK(errorOf("a,b\nok,ab\xff\n") == "line 2, column 2: invalid UTF-8 (byte 0xff at byte 3 of the field)");
    // overlong encoding of '/', a UTF-16 surrogate, a truncated sequence
    CHECK(errorOf("x,\xc0\xaf\n") == "line 1, column 2: invalid UTF-8 (byte 0xc0 at byte 1 of the field)");
    CHECK(errorOf("\xed\xa0\x80,y\n") == "line 1, column 1: invalid UTF-8 (byte 0xed at byte 1 of the field)");
    CHECK(errorOf("x,\"ab\ncd\xe2\x82\"\n") == "line 2, column 2: invalid UTF-8 (byte 0xe2 at byte 6 of the field)");
    auto ok = parse("caf\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x80\n");
    REQUIRE(ok.isOk());
    CHECK((*ok)[0][1] == "\xe2\x82\xac");
}

TEST_CASE("CSV reader skips a UTF-8 byte-order mark", "[csv]") {
    auto reader = CsvReader::fromString("\xEF\xBB\xBFname,age\nann,3\n", CsvDialect{});
    REQUIRE(reader.isOk());
    CHECK(reader->header()[0] == "name");
}

TEST_CASE("CSV reader gives the same records whatever the read chunk size and batch size", "[csv]") {
    const std::string text =
        "id;note;amount\r\n1;\"semi;colon\";3.5\r\n2;\"multi\r\nline \"\"quoted\"\"\";\r\n3;;-1\r\n4;\"\";7";
    CsvDialect d;
    d.delimiter = ';';
    auto whole = CsvReader::fromString(text, d);
    REQUIRE(whole.isOk());
    auto expected = readAll(*whole);
    REQUIRE(expected.isOk());
    REQUIRE(expected->size() == 4);
    for (size_t chunk : {1u, 2u, 3u, 7u, 64u}) {
        for (size_t batch : {1u, 3u, 2048u}) {
            auto reader = CsvReader::open(std::make_unique<TrickleSource>(text, chunk), d);
            REQUIRE(reader.isOk());
            auto rows = readAll(*reader, batch);
            REQUIRE(rows.isOk());
            CHECK(*rows == *expected);
        }
    }
}

TEST_CASE("CSV reader refuses records longer than the limit", "[csv]") {
    CsvDialect d = noHeader();
    d.maxRecordBytes = 1024;
    const std::string big = "ok\n\"" + std::string(5000, 'x') + "\"\n";
    auto reader = CsvReader::open(std::make_unique<TrickleSource>(big, 4096), d);
    REQUIRE(reader.isOk());
    auto rows = readAll(*reader);
    REQUIRE_FALSE(rows.isOk());
    CHECK(rows.status().code() == StatusCode::ResourceExhausted);
    CHECK(rows.status().message() == "line 2: record longer than 1024 bytes");

    // A record longer than the read buffer: refused while buffering, before it is held whole.
    CsvDialect large = noHeader();
    large.maxRecordBytes = 3u << 19;  // 1.5 MiB
    auto huge =
        CsvReader::open(std::make_unique<TrickleSource>("a\n" + std::string(2u << 20, 'y') + "\n", 1u << 16), large);
    REQUIRE(huge.isOk());
    auto hugeRows = readAll(*huge);
    REQUIRE_FALSE(hugeRows.isOk());
    CHECK(hugeRows.status().message() == "line 2: record longer than 1572864 bytes");
}

TEST_CASE("CSV reader streams a large input in bounded batches", "[csv]") {
    std::string text = "k,v\n";
    for (int i = 0; i < 100000; ++i) text += std::to_string(i) + ",\"v" + std::to_string(i) + "\"\n";
    auto reader = CsvReader::fromString(text, CsvDialect{});
    REQUIRE(reader.isOk());
    CsvRecords records;
    size_t total = 0;
    size_t batches = 0;
    while (true) {
        auto n = reader->read(records);
        REQUIRE(n.isOk());
        if (*n == 0) break;
        CHECK(*n <= CsvReader::kDefaultBatchRows);
        CHECK(records.field(0, 0) == std::to_string(total));
        CHECK(records.line(0) == total + 2);
        total += *n;
        ++batches;
    }
    CHECK(total == 100000);
    CHECK(batches == (100000 + CsvReader::kDefaultBatchRows - 1) / CsvReader::kDefaultBatchRows);
}

TEST_CASE("CSV dialects: the delimiter and quote must differ and not be line breaks", "[csv]") {
    CsvDialect d;
    d.delimiter = '"';
    CHECK_FALSE(CsvReader::fromString("a", d).isOk());
    d.delimiter = '\n';
    CHECK_FALSE(CsvReader::fromString("a", d).isOk());
    auto tabs = parse("a\tb\n1\t2\n", noHeader('\t'));
    REQUIRE(tabs.isOk());
    CHECK((*tabs)[1] == std::vector<std::string>{"1", "2"});
}

TEST_CASE("CSV writer quotes only when needed and round-trips through the reader", "[csv]") {
    std::ostringstream out;
    CsvWriter writer(out, CsvDialect{});
    const std::vector<std::string> fields = {"plain", "with,comma", "with \"quote\"", "two\nlines", "", "cr\r"};
    REQUIRE(writer.writeRecord(std::span<const std::string>(fields)).isOk());
    REQUIRE(writer.flush().isOk());
    CHECK(out.str() == "plain,\"with,comma\",\"with \"\"quote\"\"\",\"two\nlines\",,\"cr\r\"\n");
    auto back = parse(out.str());
    REQUIRE(back.isOk());
    CHECK((*back)[0] == fields);

    std::string crlf;
    CsvDialect d;
    d.delimiter = ';';
    d.lineEnding = LineEnding::CRLF;
    appendCsvField(crlf, "a,b", d);
    appendCsvLineEnd(crlf, d);
    CHECK(crlf == "a,b\r\n");  // ',' is not special with ';' as delimiter
    std::string empty;
    appendCsvField(empty, "", d, /*quoteIfEmpty=*/true);
    CHECK(empty == "\"\"");
    // A value starting with U+FEFF is quoted, or it would be dropped as a byte-order mark on reading.
    std::string bom;
    appendCsvField(bom, "\xEF\xBB\xBFx", noHeader());
    appendCsvLineEnd(bom, noHeader());
    CHECK(bom == "\"\xEF\xBB\xBFx\"\n");
    auto bomBack = parse(bom);
    REQUIRE(bomBack.isOk());
    CHECK((*bomBack)[0][0] == "\xEF\xBB\xBFx");
}

TEST_CASE("a field is quoted exactly when it holds the delimiter, the quote, a line feed or a carriage return",
          "[csv][writer]") {
    // Long values with at most one special byte at every position (the writer scans 16 bytes a step),
    // under two dialects; each field is read back whole.
    for (const char delimiter : {',', ';'}) {
        const CsvDialect d = noHeader(delimiter);
        for (const char special : {delimiter, '"', '\n', '\r', delimiter == ',' ? ';' : ','}) {
            const bool isSpecial = special != (delimiter == ',' ? ';' : ',');
            for (size_t length = 1; length <= 70; length += 3) {
                for (size_t at = 0; at < length; ++at) {
                    std::string value(length, 'x');
                    value[at] = special;
                    std::string out;
                    appendCsvField(out, value, d);
                    INFO("delimiter " << delimiter << ", special byte " << int(special) << " at " << at << " of "
                                      << length);
                    REQUIRE((out.front() == '"') == isSpecial);
                    appendCsvLineEnd(out, d);
                    auto back = parse(out, d);
                    REQUIRE(back.isOk());
                    REQUIRE((*back)[0][0] == value);
                }
            }
        }
    }
}

TEST_CASE("CSV reader loads Adult: 30,162 rows of 9 columns, as a plain splitter sees them", "[csv][adult]") {
    const std::string path = std::string(CUSTODIAN_ADULT_DIR) + "/adult.csv";
    CsvDialect d;
    d.delimiter = ';';
    auto reader = CsvReader::openFile(path, d);
    REQUIRE(reader.isOk());
    CHECK(reader->header() == std::vector<std::string>{"sex", "age", "race", "marital-status", "education",
                                                       "native-country", "workclass", "occupation", "salary-class"});
    auto rows = readAll(*reader);
    REQUIRE(rows.isOk());
    CHECK(rows->size() == 30162);
    const auto independent = custodian::anon::testing::readSemicolonFile(path);
    REQUIRE(independent.size() == 30163);
    CHECK(std::equal(rows->begin(), rows->end(), independent.begin() + 1));
}

TEST_CASE("CSV openFile reports a missing file as NotFound", "[csv]") {
    auto reader = CsvReader::openFile("/nonexistent/custodian.csv", CsvDialect{});
    REQUIRE_FALSE(reader.isOk());
    CHECK(reader.status().code() == StatusCode::NotFound);
}
