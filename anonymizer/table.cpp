#include "anonymizer/table.hpp"

#include <cassert>
#include <unordered_set>

#include "anonymizer/hierarchy.hpp"

namespace custodian::anon {

namespace {

// Quotes a value for an error message, shortened so that a hostile field cannot flood the log.
std::string quoteValue(std::string_view value) {
    constexpr size_t kMax = 60;
    std::string s = "'";
    if (value.size() <= kMax) {
        s.append(value);
    } else {
        size_t cut = kMax;
        while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;  // whole code points
        s.append(value.substr(0, cut));
        s.append("...");
    }
    s.push_back('\'');
    return s;
}

const char* typeNoun(ColumnType type) {
    switch (type) {
    case ColumnType::Integer: return "an integer";
    case ColumnType::Decimal: return "a decimal number";
    case ColumnType::Text: return "text";
    case ColumnType::Date: return "a date (YYYY-MM-DD)";
    case ColumnType::Timestamp: return "a timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM])";
    }
    return "a value";
}

}  // namespace

int64_t Column::integer(size_t row) const noexcept {
    assert(type_ == ColumnType::Integer);
    return ints_[row];
}
double Column::decimal(size_t row) const noexcept {
    assert(type_ == ColumnType::Decimal);
    return decimals_[row];
}
int32_t Column::date(size_t row) const noexcept {
    assert(type_ == ColumnType::Date);
    return static_cast<int32_t>(ints_[row]);
}
int64_t Column::timestamp(size_t row) const noexcept {
    assert(type_ == ColumnType::Timestamp);
    return ints_[row];
}
std::string_view Column::text(size_t row) const noexcept {
    assert(type_ == ColumnType::Text);
    const size_t begin = row == 0 ? 0 : textEnds_[row - 1];
    return {textBytes_.data() + begin, textEnds_[row] - begin};
}
double Column::number(size_t row) const noexcept {
    assert(type_ == ColumnType::Integer || type_ == ColumnType::Decimal);
    return type_ == ColumnType::Decimal ? decimals_[row] : static_cast<double>(ints_[row]);
}

void Column::reserve(size_t rows, size_t textBytes) {
    valid_.reserve(rows);
    switch (type_) {
    case ColumnType::Decimal: decimals_.reserve(rows); break;
    case ColumnType::Text:
        textEnds_.reserve(rows);
        textBytes_.reserve(textBytes);
        break;
    default: ints_.reserve(rows); break;
    }
}

void Column::appendNull() {
    valid_.push_back(0);
    ++nulls_;
    switch (type_) {
    case ColumnType::Decimal: decimals_.push_back(0); break;
    case ColumnType::Text: textEnds_.push_back(textBytes_.size()); break;
    default: ints_.push_back(0); break;
    }
}

void Column::appendInteger(int64_t value) {
    assert(type_ == ColumnType::Integer);
    valid_.push_back(1);
    ints_.push_back(value);
}
void Column::appendDecimal(double value) {
    assert(type_ == ColumnType::Decimal);
    valid_.push_back(1);
    decimals_.push_back(value);
}
void Column::appendDate(int32_t days) {
    assert(type_ == ColumnType::Date);
    valid_.push_back(1);
    ints_.push_back(days);
}
void Column::appendTimestamp(int64_t micros) {
    assert(type_ == ColumnType::Timestamp);
    valid_.push_back(1);
    ints_.push_back(micros);
}
void Column::appendText(std::string_view value) {
    assert(type_ == ColumnType::Text);
    valid_.push_back(1);
    textBytes_.append(value);
    textEnds_.push_back(textBytes_.size());
}

bool Column::appendParsed(std::string_view text) {
    switch (type_) {
    case ColumnType::Text: appendText(text); return true;
    case ColumnType::Integer:
        if (auto v = parseInteger(text)) return appendInteger(*v), true;
        return false;
    case ColumnType::Decimal:
        if (auto v = parseDecimal(text)) return appendDecimal(*v), true;
        return false;
    case ColumnType::Date:
        if (auto v = parseDate(text)) return appendDate(*v), true;
        return false;
    case ColumnType::Timestamp:
        if (auto v = parseTimestamp(text)) return appendTimestamp(*v), true;
        return false;
    }
    return false;
}

void Column::appendCanonical(std::string& out, size_t row) const {
    switch (type_) {
    case ColumnType::Integer: anon::appendInteger(out, ints_[row]); break;
    case ColumnType::Decimal: anon::appendDecimal(out, decimals_[row]); break;
    case ColumnType::Date: anon::appendDate(out, static_cast<int32_t>(ints_[row])); break;
    case ColumnType::Timestamp: anon::appendTimestamp(out, ints_[row]); break;
    case ColumnType::Text: out.append(text(row)); break;
    }
}

std::string Column::canonical(size_t row) const {
    std::string s;
    appendCanonical(s, row);
    return s;
}

Result<Schema> Schema::make(std::vector<ColumnSpec> columns) {
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i].name.empty()) return invalidArgument("column " + std::to_string(i + 1) + " has an empty name");
        if (!seen.insert(columns[i].name).second)
            return invalidArgument("column name '" + columns[i].name + "' appears twice");
    }
    Schema schema;
    schema.columns_ = std::move(columns);
    return schema;
}

Result<Schema> Schema::allText(const std::vector<std::string>& names) {
    std::vector<ColumnSpec> columns;
    columns.reserve(names.size());
    for (const auto& name : names) columns.push_back({name, ColumnType::Text});
    return make(std::move(columns));
}

std::optional<size_t> Schema::indexOf(std::string_view name) const noexcept {
    for (size_t i = 0; i < columns_.size(); ++i)
        if (columns_[i].name == name) return i;
    return std::nullopt;
}

Batch::Batch(SchemaPtr schema, std::vector<ColumnPtr> columns, std::vector<uint64_t> sourceLines, size_t rows)
    : schema_(std::move(schema)), columns_(std::move(columns)), sourceLines_(std::move(sourceLines)), rows_(rows) {}

Result<Batch> Batch::make(SchemaPtr schema, std::vector<ColumnPtr> columns, std::vector<uint64_t> sourceLines) {
    if (!schema) return invalidArgument("batch without a schema");
    if (columns.size() != schema->size())
        return invalidArgument("batch has " + std::to_string(columns.size()) + " columns, schema has " +
                               std::to_string(schema->size()));
    size_t rows = columns.empty() ? sourceLines.size() : 0;
    for (size_t i = 0; i < columns.size(); ++i) {
        if (!columns[i]) return invalidArgument("column '" + (*schema)[i].name + "' is missing");
        if (columns[i]->type() != (*schema)[i].type)
            return invalidArgument("column '" + (*schema)[i].name + "' is " + columnTypeName(columns[i]->type()) +
                                   ", schema says " + columnTypeName((*schema)[i].type));
        if (i == 0) rows = columns[i]->size();
        if (columns[i]->size() != rows)
            return invalidArgument("column '" + (*schema)[i].name + "' has " + std::to_string(columns[i]->size()) +
                                   " rows, expected " + std::to_string(rows));
    }
    if (!sourceLines.empty() && sourceLines.size() != rows)
        return invalidArgument("batch has " + std::to_string(sourceLines.size()) + " source lines for " +
                               std::to_string(rows) + " rows");
    return Batch(std::move(schema), std::move(columns), std::move(sourceLines), rows);
}

void Batch::suppress(size_t row) {
    assert(row < rows_);
    if (suppressed_.empty()) suppressed_.assign(rows_, 0);
    if (suppressed_[row] == 0) {
        suppressed_[row] = 1;
        ++suppressedCount_;
    }
}

Status Batch::copySuppression(const Batch& other) {
    if (other.rows_ != rows_)
        return invalidArgument("suppression mask for " + std::to_string(other.rows_) + " rows applied to a batch of " +
                               std::to_string(rows_));
    suppressed_ = other.suppressed_;
    suppressedCount_ = other.suppressedCount_;
    return Status::ok();
}

Result<Batch> parseRecords(const CsvRecords& records, const SchemaPtr& schema,
                           const std::vector<size_t>& sourceColumn) {
    const size_t rows = records.rows();
    std::vector<ColumnPtr> columns;
    columns.reserve(schema->size());
    for (size_t c = 0; c < schema->size(); ++c) {
        const ColumnSpec& spec = (*schema)[c];
        const size_t field = sourceColumn[c];
        auto column = std::make_shared<Column>(spec.type);
        column->reserve(rows, spec.type == ColumnType::Text ? rows * 16 : 0);
        for (size_t r = 0; r < rows; ++r) {
            const std::string_view value = records.field(r, field);
            if (isCsvNull(value, records.quoted(r, field), spec.type)) {
                column->appendNull();
            } else if (!column->appendParsed(value)) {
                return csvValueError(records.line(r), field, spec, value);
            }
        }
        columns.push_back(std::move(column));
    }
    std::vector<uint64_t> lines(rows);
    for (size_t r = 0; r < rows; ++r) lines[r] = records.line(r);
    return Batch::make(schema, std::move(columns), std::move(lines));
}

Status csvValueError(uint64_t line, size_t field, const ColumnSpec& spec, std::string_view value) {
    return invalidArgument("line " + std::to_string(line) + ", column " + std::to_string(field + 1) + " (" + spec.name +
                           "): " + quoteValue(value) + " is not " + typeNoun(spec.type));
}

Result<std::vector<size_t>> csvSourceColumns(const CsvReader& reader, const Schema& schema) {
    std::vector<size_t> sourceColumn(schema.size());
    if (!reader.dialect().header) {
        for (size_t c = 0; c < schema.size(); ++c) sourceColumn[c] = c;
        return sourceColumn;
    }
    const auto& header = reader.header();
    for (size_t c = 0; c < schema.size(); ++c) {
        const std::string& name = schema[c].name;
        size_t found = header.size();
        for (size_t h = 0; h < header.size(); ++h) {
            if (header[h] != name) continue;
            if (found != header.size())
                return invalidArgument("line 1: column '" + name + "' appears twice in the header");
            found = h;
        }
        if (found == header.size()) return invalidArgument("line 1: the header has no column '" + name + "'");
        sourceColumn[c] = found;
    }
    return sourceColumn;
}

Result<CsvTableReader> CsvTableReader::open(CsvReader reader, SchemaPtr schema) {
    if (!schema) return invalidArgument("CSV table reader without a schema");
    auto sourceColumn = csvSourceColumns(reader, *schema);
    if (!sourceColumn) return sourceColumn.status();
    return CsvTableReader(std::move(reader), std::move(schema), std::move(sourceColumn).value());
}

Result<CsvTableReader> CsvTableReader::openFile(const std::string& path, const CsvDialect& dialect, SchemaPtr schema) {
    auto reader = CsvReader::openFile(path, dialect);
    if (!reader) return reader.status();
    auto table = open(std::move(reader.value()), std::move(schema));
    if (!table) return table.status().withContext(path);
    return table;
}

Result<std::optional<Batch>> CsvTableReader::next(size_t maxRows) {
    auto n = reader_.read(records_, maxRows);
    if (!n) return n.status();
    if (*n == 0) return std::optional<Batch>();
    if (!reader_.dialect().header && records_.columns() != schema_->size())
        return invalidArgument("line " + std::to_string(records_.line(0)) + ": expected " +
                               std::to_string(schema_->size()) + " fields, found " +
                               std::to_string(records_.columns()));
    auto batch = parseRecords(records_, schema_, sourceColumn_);
    if (!batch) return batch.status();
    return std::optional<Batch>(std::move(batch.value()));
}

Result<Table> Table::readCsv(CsvReader reader, SchemaPtr schema) {
    auto tableReader = CsvTableReader::open(std::move(reader), std::move(schema));
    if (!tableReader) return tableReader.status();
    Table table;
    table.schema_ = tableReader->schema();
    while (true) {
        auto batch = tableReader->next();
        if (!batch) return batch.status();
        if (!batch->has_value()) break;
        table.batches_.push_back(std::move(**batch));
    }
    return table;
}

Result<Table> Table::readCsv(const std::string& path, const CsvDialect& dialect, SchemaPtr schema) {
    auto reader = CsvReader::openFile(path, dialect);
    if (!reader) return reader.status();
    auto table = readCsv(std::move(reader.value()), std::move(schema));
    if (!table) return table.status().withContext(path);
    return table;
}

size_t Table::rows() const noexcept {
    size_t n = 0;
    for (const auto& b : batches_) n += b.rows();
    return n;
}

Status writeCsvHeader(const Schema& schema, CsvWriter& writer) {
    std::string& out = writer.buffer();
    for (size_t c = 0; c < schema.size(); ++c) {
        if (c > 0) out.push_back(writer.dialect().delimiter);
        appendCsvField(out, schema[c].name, writer.dialect());
    }
    return writer.endRecord();
}

Status writeCsvRows(const Batch& batch, CsvWriter& writer) {
    const CsvDialect& dialect = writer.dialect();
    std::string scratch;
    for (size_t r = 0; r < batch.rows(); ++r) {
        if (batch.isSuppressed(r)) continue;
        std::string& out = writer.buffer();
        for (size_t c = 0; c < batch.columnCount(); ++c) {
            if (c > 0) out.push_back(dialect.delimiter);
            const Column& column = batch.column(c);
            if (column.isNull(r)) continue;
            if (column.type() == ColumnType::Text) {
                appendCsvField(out, column.text(r), dialect, /*quoteIfEmpty=*/true);
            } else {
                // Numbers, dates and timestamps never contain CR, LF or quotes; the delimiter could
                // only clash if someone chose '-', ':' or '.', so check anyway.
                scratch.clear();
                column.appendCanonical(scratch, r);
                appendCsvField(out, scratch, dialect);
            }
        }
        if (Status s = writer.endRecord(); !s) return s;
    }
    return Status::ok();
}

Status LeafEncoder::encode(const Batch& batch, size_t column, std::vector<uint32_t>& codes) {
    const Column& col = batch.column(column);
    const Hierarchy& hierarchy = *hierarchy_;
    const bool intKeyed =
        col.type() == ColumnType::Integer || col.type() == ColumnType::Date || col.type() == ColumnType::Timestamp;
    struct Miss {
        std::string value;
        bool null;
        uint64_t line;
    };
    std::vector<Miss> misses;
    std::unordered_set<std::string> missed;
    std::string scratch;
    codes.reserve(codes.size() + col.size());
    for (size_t r = 0; r < col.size(); ++r) {
        std::optional<uint32_t> code;
        if (col.isNull(r)) {
            code = hierarchy.leafCode("");
        } else if (intKeyed) {
            const uint32_t at = intIndex_.indexOf(static_cast<uint64_t>(col.rawInt(r)));
            if (at == intCodes_.size()) {
                scratch.clear();
                col.appendCanonical(scratch, r);
                intCodes_.push_back(hierarchy.leafCode(scratch).value_or(kUncovered));
            }
            if (intCodes_[at] != kUncovered) code = intCodes_[at];
        } else if (col.type() == ColumnType::Text) {
            code = hierarchy.leafCode(col.text(r));
        } else {
            scratch.clear();
            col.appendCanonical(scratch, r);
            code = hierarchy.leafCode(scratch);
        }
        if (code) {
            codes.push_back(*code);
            continue;
        }
        const bool null = col.isNull(r);
        std::string value = null ? std::string() : col.canonical(r);
        // Keys distinguish null ("n") from every value ("v...").
        if (missed.insert((null ? "n" : "v") + value).second)
            misses.push_back({std::move(value), null, batch.sourceLine(r)});
        codes.push_back(0);  // filler so indices stay aligned; the call fails below
    }
    if (misses.empty()) return Status::ok();
    codes.resize(codes.size() - col.size());
    std::string message = "column '" + batch.schema()[column].name + "': " + std::to_string(misses.size()) +
                          (misses.size() == 1 ? " value is" : " values are") + " not covered by hierarchy '" +
                          hierarchy.name() + "': ";
    for (size_t i = 0; i < misses.size() && i < 5; ++i) {
        if (i > 0) message += ", ";
        message += misses[i].null ? std::string("null") : quoteValue(misses[i].value);
        if (misses[i].line != 0) message += " (line " + std::to_string(misses[i].line) + ")";
    }
    if (misses.size() > 5) message += ", ...";
    return invalidArgument(message);
}

}  // namespace custodian::anon
