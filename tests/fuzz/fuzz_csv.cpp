// Fuzz target for the CSV reader. The first byte picks the dialect (delimiter, header row), the
// second the batch size; the rest is the input. Whatever parses must survive a write/read round trip
// unchanged (same fields, same quoted-empty distinction); anything else must be an error value.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "anonymizer/csv.hpp"
#include "anonymizer/table.hpp"

using namespace custodian::anon;

namespace {

// A field with whether it was a quoted empty field (`""`, the empty string rather than null).
using Field = std::pair<std::string, bool>;

struct Parsed {
    std::vector<std::string> header;
    std::vector<std::vector<Field>> rows;
};

bool readAll(const std::string& text, const CsvDialect& dialect, size_t batchRows, Parsed& out) {
    auto reader = CsvReader::fromString(text, dialect);
    if (!reader) return false;
    out.header = reader->header();
    CsvRecords records;
    while (true) {
        auto n = reader->read(records, batchRows);
        if (!n) return false;
        if (*n == 0) return true;
        for (size_t r = 0; r < records.rows(); ++r) {
            std::vector<Field> row;
            for (size_t c = 0; c < records.columns(); ++c)
                row.emplace_back(std::string(records.field(r, c)), records.field(r, c).empty() && records.quoted(r, c));
            out.rows.push_back(std::move(row));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    static constexpr char kDelimiters[] = {',', ';', '\t', '|'};
    CsvDialect dialect;
    dialect.delimiter = kDelimiters[data[0] & 3];
    dialect.header = (data[0] & 4) != 0;
    dialect.lineEnding = (data[0] & 8) != 0 ? LineEnding::CRLF : LineEnding::LF;
    dialect.maxRecordBytes = 4096;
    const size_t batchRows = 1 + data[1] % 16;
    const std::string text(reinterpret_cast<const char*>(data + 2), size - 2);

    Parsed first;
    if (!readAll(text, dialect, batchRows, first)) return 0;

    // Typed parsing of whatever was read must not crash either (errors are fine).
    if (dialect.header) {
        if (auto schema = Schema::allText(first.header)) {
            auto shared = std::make_shared<const Schema>(std::move(schema.value()));
            if (auto reader = CsvReader::fromString(text, dialect))
                (void)Table::readCsv(std::move(reader.value()), shared);
        }
    }

    std::string written;
    const auto writeRow = [&](const std::vector<Field>& row) {
        for (size_t i = 0; i < row.size(); ++i) {
            if (i > 0) written.push_back(dialect.delimiter);
            // Quoted empties stay quoted; a lone empty field is quoted too (see normalise below).
            appendCsvField(written, row[i].first, dialect, /*quoteIfEmpty=*/row[i].second || row.size() == 1);
        }
        appendCsvLineEnd(written, dialect);
    };
    if (dialect.header) {
        std::vector<Field> header;
        for (const auto& name : first.header) header.emplace_back(name, false);
        writeRow(header);
    }
    for (const auto& row : first.rows) writeRow(row);

    // A lone empty field is written quoted; count it as quoted on both sides.
    const auto normalise = [](Parsed& parsed) {
        for (auto& row : parsed.rows)
            if (row.size() == 1 && row[0].first.empty()) row[0].second = true;
    };
    normalise(first);
    Parsed second;
    if (!readAll(written, dialect, batchRows, second)) __builtin_trap();
    normalise(second);
    if (second.rows != first.rows || second.header != first.header) __builtin_trap();
    return 0;
}
