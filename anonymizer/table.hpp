#pragma once
// Columnar data: typed columns, batches of ~2048 rows with a suppression mask, and tables read from
// CSV with a declared type per column.
//
// Ownership: columns are immutable once built and shared (ColumnPtr), so a transform that keeps a
// column, or a batch that selects columns, never copies values. A Batch is per-execution data: its
// suppression mask is the only thing that changes after it is built, and suppressing a row marks it
// rather than copying the others (DuckDB's selection vectors). Not thread-safe while being mutated.
//
// CSV null convention (as PostgreSQL's COPY ... CSV): an empty unquoted field is null; a quoted empty
// field `""` is the empty string in a text column and null in every other type.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "anonymizer/csv.hpp"
#include "anonymizer/flat_hash.hpp"
#include "anonymizer/status.hpp"
#include "anonymizer/value.hpp"

namespace custodian::anon {

class Hierarchy;

class Column {
public:
    explicit Column(ColumnType type) : type_(type) {}

    ColumnType type() const noexcept { return type_; }
    size_t size() const noexcept { return valid_.size(); }
    bool isNull(size_t row) const noexcept { return valid_[row] == 0; }
    size_t nullCount() const noexcept { return nulls_; }

    // Typed access; the accessor must match type() (asserted), and the row must not be null.
    int64_t integer(size_t row) const noexcept;    // Integer
    double decimal(size_t row) const noexcept;     // Decimal
    int32_t date(size_t row) const noexcept;       // Date: days since 1970-01-01
    int64_t timestamp(size_t row) const noexcept;  // Timestamp: microseconds since the epoch, UTC
    std::string_view text(size_t row) const noexcept;
    // Integer, Date and Timestamp share one int64 representation.
    int64_t rawInt(size_t row) const noexcept { return ints_[row]; }
    // Integer and Decimal as a double.
    double number(size_t row) const noexcept;

    void reserve(size_t rows, size_t textBytes = 0);
    void appendNull();
    void appendInteger(int64_t value);
    void appendDecimal(double value);
    void appendDate(int32_t daysSinceEpoch);
    void appendTimestamp(int64_t micros);
    void appendText(std::string_view value);
    // Parses `text` as this column's type and appends it; false (nothing appended) if malformed.
    bool appendParsed(std::string_view text);

    // Canonical text of a non-null value (see value.hpp), appended to `out`.
    void appendCanonical(std::string& out, size_t row) const;
    std::string canonical(size_t row) const;

private:
    ColumnType type_;
    std::vector<uint8_t> valid_;
    std::vector<int64_t> ints_;     // Integer, Date, Timestamp
    std::vector<double> decimals_;  // Decimal
    std::string textBytes_;         // Text: values back to back
    std::vector<size_t> textEnds_;  // Text: end offset of each value
    size_t nulls_ = 0;
};

using ColumnPtr = std::shared_ptr<const Column>;

struct ColumnSpec {
    std::string name;
    ColumnType type = ColumnType::Text;
};

class Schema {
public:
    // Names must be non-empty and unique.
    static Result<Schema> make(std::vector<ColumnSpec> columns);
    // Every column as text, named after a CSV header.
    static Result<Schema> allText(const std::vector<std::string>& names);

    size_t size() const noexcept { return columns_.size(); }
    const ColumnSpec& operator[](size_t i) const noexcept { return columns_[i]; }
    const std::vector<ColumnSpec>& columns() const noexcept { return columns_; }
    std::optional<size_t> indexOf(std::string_view name) const noexcept;

private:
    std::vector<ColumnSpec> columns_;
};

using SchemaPtr = std::shared_ptr<const Schema>;

class Batch {
public:
    // Every column must have the schema's type and the same length; `sourceLines` (CSV line of each
    // row, for error messages) is empty or has one entry per row.
    static Result<Batch> make(SchemaPtr schema, std::vector<ColumnPtr> columns, std::vector<uint64_t> sourceLines = {});

    const Schema& schema() const noexcept { return *schema_; }
    const SchemaPtr& schemaPtr() const noexcept { return schema_; }
    size_t rows() const noexcept { return rows_; }
    size_t columnCount() const noexcept { return columns_.size(); }
    const Column& column(size_t i) const noexcept { return *columns_[i]; }
    const ColumnPtr& columnPtr(size_t i) const noexcept { return columns_[i]; }
    // CSV line the row came from, or 0 when unknown.
    uint64_t sourceLine(size_t row) const noexcept { return sourceLines_.empty() ? 0 : sourceLines_[row]; }
    const std::vector<uint64_t>& sourceLines() const noexcept { return sourceLines_; }

    // Suppression: marks the row as not released. Idempotent.
    void suppress(size_t row);
    bool isSuppressed(size_t row) const noexcept { return !suppressed_.empty() && suppressed_[row] != 0; }
    size_t suppressedCount() const noexcept { return suppressedCount_; }
    size_t releasedRows() const noexcept { return rows_ - suppressedCount_; }
    // Copies the mask of `other` (same number of rows), e.g. onto a transformed batch.
    Status copySuppression(const Batch& other);

private:
    Batch(SchemaPtr schema, std::vector<ColumnPtr> columns, std::vector<uint64_t> sourceLines, size_t rows);

    SchemaPtr schema_;
    std::vector<ColumnPtr> columns_;
    std::vector<uint64_t> sourceLines_;
    std::vector<uint8_t> suppressed_;  // empty until the first suppression
    size_t suppressedCount_ = 0;
    size_t rows_ = 0;
};

// Reads a CSV file batch by batch into typed columns. Schema columns are matched to header fields by
// name (a missing one is an error); header fields not in the schema are skipped without parsing.
// Without a header row, the schema gives the columns in file order and the counts must match.
// Type errors name line, column and value: "line 17, column 3 (age): 'abc' is not an integer".
class CsvTableReader {
public:
    static Result<CsvTableReader> open(CsvReader reader, SchemaPtr schema);
    static Result<CsvTableReader> openFile(const std::string& path, const CsvDialect& dialect, SchemaPtr schema);

    const SchemaPtr& schema() const noexcept { return schema_; }
    // The next batch of up to maxRows rows, or nullopt at the end of the input.
    Result<std::optional<Batch>> next(size_t maxRows = CsvReader::kDefaultBatchRows);

private:
    CsvTableReader(CsvReader reader, SchemaPtr schema, std::vector<size_t> sourceColumn)
        : reader_(std::move(reader)), schema_(std::move(schema)), sourceColumn_(std::move(sourceColumn)) {}

    CsvReader reader_;
    SchemaPtr schema_;
    std::vector<size_t> sourceColumn_;  // CSV field index of each schema column
    CsvRecords records_;
};

// Whether a CSV field is null in a column of `type` (the null convention at the top of this file).
inline bool isCsvNull(std::string_view value, bool quoted, ColumnType type) noexcept {
    return value.empty() && (type != ColumnType::Text || !quoted);
}
// The error for a field that is not a value of its column's type (`field` is 0-based):
//   "line 17, column 3 (age): 'abc' is not an integer"
Status csvValueError(uint64_t line, size_t field, const ColumnSpec& spec, std::string_view value);
// The CSV field index of each schema column: matched by header name when the dialect has a header
// (a missing or repeated name is an error), in file order otherwise.
Result<std::vector<size_t>> csvSourceColumns(const CsvReader& reader, const Schema& schema);

// Converts raw CSV records to a typed batch; sourceColumn[i] is the field index of schema column i.
Result<Batch> parseRecords(const CsvRecords& records, const SchemaPtr& schema, const std::vector<size_t>& sourceColumn);

// A whole table in memory, as a list of batches (for tests, Mondrian and small files; releases stream).
class Table {
public:
    static Result<Table> readCsv(const std::string& path, const CsvDialect& dialect, SchemaPtr schema);
    static Result<Table> readCsv(CsvReader reader, SchemaPtr schema);

    const SchemaPtr& schema() const noexcept { return schema_; }
    const std::vector<Batch>& batches() const noexcept { return batches_; }
    std::vector<Batch>& batches() noexcept { return batches_; }
    size_t rows() const noexcept;

private:
    SchemaPtr schema_;
    std::vector<Batch> batches_;
};

// Writes the released rows of `batch` (suppressed rows are skipped); nulls as empty fields, empty
// strings as `""`.
Status writeCsvHeader(const Schema& schema, CsvWriter& writer);
Status writeCsvRows(const Batch& batch, CsvWriter& writer);

// Dictionary-encodes values against a hierarchy's leaves (the canonical text of each value must be a
// leaf; null is looked up as the empty string). Caches integer lookups, so reuse one encoder per
// column across batches. Thread-compatible: one encoder per thread.
class LeafEncoder {
public:
    explicit LeafEncoder(std::shared_ptr<const Hierarchy> hierarchy) : hierarchy_(std::move(hierarchy)) {}

    // Appends the leaf code of every row of batch.column(column) to `codes` (suppressed rows included).
    // The error lists the uncovered values with their lines:
    //   "column 'age': 2 values not covered by hierarchy 'age': '150' (line 17), 'x' (line 30)"
    Status encode(const Batch& batch, size_t column, std::vector<uint32_t>& codes);

private:
    std::shared_ptr<const Hierarchy> hierarchy_;
    // Integer, date and timestamp values seen so far (their raw integer) and their leaf codes, or
    // kUncovered: each distinct value's canonical text is looked up in the hierarchy once.
    static constexpr uint32_t kUncovered = UINT32_MAX;
    detail::DenseIndexer<uint64_t> intIndex_;
    std::vector<uint32_t> intCodes_;
};

}  // namespace custodian::anon
