// The COPY text decoder (gateway/release/copy_text.hpp) and the filter parameter substitution that
// lets a COPY carry the row filter (gateway/release/source.hpp).
#include <catch2/catch.hpp>

#include <random>

#include "gateway/release/copy_text.hpp"
#include "gateway/release/source.hpp"

using namespace custodian;
using custodian::release::CopyTextRow;

namespace {

using Field = std::optional<std::string>;

std::vector<Field> decode(std::string_view line, size_t fields) {
    CopyTextRow row;
    Status s = row.parse(line, fields);
    INFO(s.message());
    REQUIRE(s);
    std::vector<Field> out;
    for (const auto& v : row.values()) out.push_back(v ? Field(std::string(*v)) : std::nullopt);
    return out;
}

// A field as PostgreSQL's COPY TO writes it in text format (CopyAttributeOutText): backslash,
// the delimiter and the control characters with a letter escape are escaped; every other byte,
// including the rest of the control characters and all of UTF-8, is written as is.
std::string pgCopyEscape(const std::string& value) {
    std::string out;
    for (char c : value) {
        switch (c) {
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        case '\\': out += "\\\\"; break;
        default: out.push_back(c);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("COPY text rows split on tabs and end at the newline", "[copy_text]") {
    CHECK(decode("a\tbc\t\n", 3) == std::vector<Field>{"a", "bc", ""});
    CHECK(decode("a\tbc\t", 3) == std::vector<Field>{"a", "bc", ""});
    CHECK(decode("\n", 1) == std::vector<Field>{""});
    CHECK(decode("42\t2024-01-31\t-0.5\n", 3) == std::vector<Field>{"42", "2024-01-31", "-0.5"});
}

TEST_CASE("COPY text tells NULL from the empty string and from the text backslash-N", "[copy_text]") {
    CHECK(decode("\\N\t\t\\N\n", 3) == std::vector<Field>{std::nullopt, "", std::nullopt});
    // An escaped backslash followed by N is the two characters \N, not NULL.
    CHECK(decode("\\\\N\n", 1) == std::vector<Field>{"\\N"});
    // \N inside a longer field is an escaped N, as PostgreSQL reads it.
    CHECK(decode("a\\Nb\t\\Nx\n", 2) == std::vector<Field>{"aNb", "Nx"});
}

TEST_CASE("COPY text escapes of tabs, newlines, carriage returns and backslashes are data", "[copy_text]") {
    CHECK(decode("x\\ty\tline1\\nline2\\r\tback\\\\slash\n", 3) ==
          std::vector<Field>{"x\ty", "line1\nline2\r", "back\\slash"});
    CHECK(decode("\\b\\f\\v\\q\\.\n", 1) == std::vector<Field>{"\b\f\vq."});
    // A backslash takes the byte after it along, so an escaped real tab does not split the field.
    CHECK(decode("a\\\tb\tc\n", 2) == std::vector<Field>{"a\tb", "c"});
    // Escaped and plain fields side by side: plain ones are views into the line, escaped ones into
    // the decoder's buffer, which grows while the row is decoded.
    std::string longEscaped;
    for (int i = 0; i < 200; ++i) longEscaped += "\\\\";
    const auto fields = decode("plain\t" + longEscaped + "\tp2\tx\\ty\n", 4);
    CHECK(fields[0] == "plain");
    CHECK(fields[1] == std::string(200, '\\'));
    CHECK(fields[2] == "p2");
    CHECK(fields[3] == "x\ty");
}

TEST_CASE("COPY text octal and hex escapes give bytes", "[copy_text]") {
    CHECK(decode("\\101\\x42\\x4a\\7\n", 1) == std::vector<Field>{std::string("ABJ\x07")});
    // At most three octal digits and two hex digits; \x without a hex digit is the letter x.
    CHECK(decode("\\1011\\x4142\\xg\n", 1) == std::vector<Field>{"A1A42xg"});
    CHECK(decode("\\08\n", 1) == std::vector<Field>{std::string("\0"
                                                                "8",
                                                                2)});
    // UTF-8 written as octal escapes decodes to the same bytes as UTF-8 written as is.
    CHECK(decode("Z\\303\\274rich\tZürich\t東京 🙂\n", 3) ==
          std::vector<Field>{"Zürich", "Zürich", "東京 🙂"});
}

TEST_CASE("malformed COPY text rows are errors that do not quote the row", "[copy_text]") {
    CopyTextRow row;
    Status fewer = row.parse("secret-a\tsecret-b\n", 3);
    CHECK(fewer.code() == StatusCode::InvalidArgument);
    CHECK(fewer.message().find("secret") == std::string::npos);
    CHECK(row.size() == 0);
    Status more = row.parse("secret-a\tsecret-b\tc\td\n", 3);
    CHECK(more.code() == StatusCode::InvalidArgument);
    CHECK(more.message().find("secret") == std::string::npos);
    Status lone = row.parse("secret\\", 1);
    CHECK(lone.code() == StatusCode::InvalidArgument);
    CHECK(lone.message().find("secret") == std::string::npos);
    CHECK(row.parse("ok\tfine\n", 2));
    CHECK(row.size() == 2);
}

TEST_CASE("every value PostgreSQL can write in COPY text decodes back exactly", "[copy_text]") {
    // Random values over every byte but NUL (text cannot hold it), biased towards the bytes that
    // need escapes; rows of them, decoded with one reused decoder.
    std::mt19937 random(20261128);
    const std::string special = "\t\n\r\\\b\f\vN.x0";
    // Short values dense with escapes, and long runs with few (the decoder scans 16 bytes a step).
    bool longRuns = false;
    auto value = [&] {
        std::string v;
        const size_t length = random() % (longRuns ? 60 : 12);
        for (size_t i = 0; i < length; ++i) {
            if (random() % (longRuns ? 23 : 2) == 0) v.push_back(special[random() % special.size()]);
            else v.push_back(static_cast<char>(1 + random() % 255));
        }
        return v;
    };
    CopyTextRow row;
    for (int i = 0; i < 4000; ++i) {
        longRuns = i % 2 == 1;
        std::vector<Field> expected;
        std::string line;
        const size_t width = 1 + random() % 5;
        for (size_t c = 0; c < width; ++c) {
            if (c) line.push_back('\t');
            if (random() % 7 == 0) {
                expected.emplace_back(std::nullopt);
                line += "\\N";
            } else {
                expected.emplace_back(value());
                line += pgCopyEscape(*expected.back());
            }
        }
        line.push_back('\n');
        REQUIRE(row.parse(line, width));
        std::vector<Field> got;
        for (const auto& v : row.values()) got.push_back(v ? Field(std::string(*v)) : std::nullopt);
        REQUIRE(got == expected);
    }
}

TEST_CASE("a COPY's row filter reads its values from parameterReads, never from SQL text", "[copy_text]") {
    const std::vector<std::string> parameterReads{"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10"};
    auto sql = release::substituteParameters(R"(("age" >= $1 AND "region" IN ($2, $3)))", parameterReads);
    REQUIRE(sql);
    CHECK(*sql == R"(("age" >= P1 AND "region" IN (P2, P3)))");
    // Quoted identifiers and literals are left alone; $10 is the tenth parameter, not $1 and a 0.
    sql = release::substituteParameters(R"(("we$1rd" = $10 AND "a""$2" = '$3' AND "b" = $2))", parameterReads);
    REQUIRE(sql);
    CHECK(*sql == R"(("we$1rd" = P10 AND "a""$2" = '$3' AND "b" = P2))");
    CHECK(release::substituteParameters("\"x\" = $4", {"P1"}).status().code() == StatusCode::InvalidArgument);
    CHECK(release::substituteParameters("\"x\" = $0", {"P1"}).status().code() == StatusCode::InvalidArgument);
    CHECK(release::substituteParameters("\"x = $1", {"P1"}).status().code() == StatusCode::InvalidArgument);
}
