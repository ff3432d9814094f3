#include "anonymizer/hierarchy_io.hpp"

#include <fstream>
#include <sstream>

#include "anonymizer/csv.hpp"

namespace custodian::anon {

namespace {

CsvDialect hierarchyDialect(char delimiter) {
    CsvDialect dialect;
    dialect.delimiter = delimiter;
    dialect.header = false;
    return dialect;
}

std::string quoted(std::string_view value) {
    constexpr size_t kMax = 60;
    if (value.size() <= kMax) return "'" + std::string(value) + "'";
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
    return "'" + std::string(value.substr(0, cut)) + "...'";
}

}  // namespace

Result<HierarchyRows> parseHierarchyRows(std::string_view text, char delimiter) {
    auto reader = CsvReader::fromString(std::string(text), hierarchyDialect(delimiter));
    if (!reader) return reader.status();
    HierarchyRows rows;
    CsvRecords records;
    while (true) {
        auto n = reader->read(records);
        if (!n) return n.status();
        if (*n == 0) break;
        for (size_t r = 0; r < records.rows(); ++r) {
            std::vector<std::string> row;
            row.reserve(records.columns());
            for (size_t c = 0; c < records.columns(); ++c) row.emplace_back(records.field(r, c));
            rows.push_back(std::move(row));
        }
    }
    if (rows.empty()) return invalidArgument("empty file: a hierarchy needs one row per value");
    return rows;
}

Result<Hierarchy> parseHierarchyCsv(std::string name, std::string_view text, char delimiter) {
    auto rows = parseHierarchyRows(text, delimiter);
    if (!rows) return rows.status().withContext("hierarchy '" + name + "'");
    return Hierarchy::fromRows(std::move(name), *rows);
}

Result<Hierarchy> loadHierarchyFile(std::string name, const std::string& path, char delimiter) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return notFound("hierarchy '" + name + "': cannot open '" + path + "'");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) return Status(StatusCode::Unavailable, "hierarchy '" + name + "': cannot read '" + path + "'");
    auto hierarchy = parseHierarchyCsv(std::move(name), buffer.str(), delimiter);
    if (!hierarchy) return hierarchy.status().withContext(path);
    return hierarchy;
}

Status checkCoverage(const Hierarchy& hierarchy, std::span<const std::string> values, std::string_view column) {
    std::vector<std::string_view> missing;
    for (const auto& value : values)
        if (!hierarchy.leafCode(value)) missing.push_back(value);
    if (missing.empty()) return Status::ok();
    std::string message = "column '" + std::string(column) + "': " + std::to_string(missing.size()) +
                          (missing.size() == 1 ? " value is" : " values are") + " not covered by hierarchy '" +
                          hierarchy.name() + "': ";
    for (size_t i = 0; i < missing.size() && i < 5; ++i) message += (i > 0 ? ", " : "") + quoted(missing[i]);
    if (missing.size() > 5) message += ", ...";
    return invalidArgument(message);
}

std::string formatHierarchyRows(const HierarchyRows& rows, char delimiter) {
    const CsvDialect dialect = hierarchyDialect(delimiter);
    std::string out;
    for (const auto& row : rows) {
        for (size_t i = 0; i < row.size(); ++i) {
            if (i > 0) out.push_back(delimiter);
            // A lone empty field would read back as an empty line; quote it so the row survives.
            appendCsvField(out, row[i], dialect, row.size() == 1);
        }
        appendCsvLineEnd(out, dialect);
    }
    return out;
}

}  // namespace custodian::anon
