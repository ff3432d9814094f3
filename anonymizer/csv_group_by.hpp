#pragma once
// `SELECT <columns>, count(*) ... GROUP BY <columns>` over a CSV file: the frequency table of
// quasi-identifier combinations that a database computes for the optimal search, for offline
// releases (`custodian anonymize`).
//
// Values are grouped by their canonical text (value.hpp), so `034` and `34` in an integer column
// are one value, exactly as PostgreSQL's GROUP BY on a typed column would see them. Each column is
// dictionary-encoded as the file streams by: a field's bytes are hashed once per row, but parsed,
// validated and canonicalized only on their first occurrence, and a row is counted through a tuple
// of small integer codes. Memory is proportional to the distinct values per column and the
// distinct combinations, never to the number of rows.
//
// Type errors name the first line on which a malformed value occurs (csvValueError). Not
// thread-safe; one counter per input.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anonymizer/csv.hpp"
#include "anonymizer/flat_hash.hpp"
#include "anonymizer/status.hpp"
#include "anonymizer/table.hpp"

namespace custodian::anon {

// One CSV column dictionary-encoded as the file streams by: each row's field is hashed, but a
// distinct spelling is parsed, validated and canonicalized only once, and equal canonical values
// share one dense code (0, 1, 2, ... in order of first occurrence).
class CsvColumnDictionary {
public:
    static constexpr uint32_t kNull = UINT32_MAX;

    // `field` is the CSV field index of the column described by `spec`.
    CsvColumnDictionary(ColumnSpec spec, size_t field) : spec_(std::move(spec)), field_(field) {}

    // kNull, or the code of the row's canonical value; a malformed value fails with csvValueError.
    Result<uint32_t> code(const CsvRecords& records, size_t row);

    const ColumnSpec& spec() const noexcept { return spec_; }
    size_t field() const noexcept { return field_; }
    size_t size() const noexcept { return canonical_.size(); }  // distinct non-null values
    std::string_view value(uint32_t code) const noexcept { return canonical_.value(code); }

private:
    ColumnSpec spec_;
    size_t field_;
    detail::StringInterner raw_;            // field bytes as written
    std::vector<uint32_t> canonicalOfRaw_;  // raw id -> code
    detail::StringInterner canonical_;      // canonical text -> code
    std::string scratch_;
};

class CsvGroupCounter {
public:
    // `groupColumns` (the GROUP BY list) and `domainColumns` (columns whose distinct values are
    // wanted on their own) index `schema`; sourceColumn[i] is the CSV field of schema column i
    // (csvSourceColumns).
    CsvGroupCounter(const SchemaPtr& schema, const std::vector<size_t>& sourceColumn,
                    const std::vector<size_t>& groupColumns, const std::vector<size_t>& domainColumns);

    // Counts one batch of records. After an error the counter must not be used again.
    Status add(const CsvRecords& records);

    uint64_t records() const noexcept { return records_; }
    size_t groups() const noexcept { return counts_.size(); }

    // A group's values in groupColumns order (nullopt = null) and its count, in order of first
    // occurrence; stops at the first error `visit` returns.
    using GroupVisitor = std::function<Status(std::span<const std::optional<std::string_view>>, uint64_t)>;
    Status forEachGroup(const GroupVisitor& visit) const;

    // The distinct non-null canonical values of domainColumns[i], in order of first occurrence.
    std::vector<std::string_view> domain(size_t i) const;

private:
    std::vector<CsvColumnDictionary> dictionaries_;  // one per distinct schema column
    std::vector<size_t> schemaColumn_;               // per dictionary
    std::vector<size_t> groupDictionary_;            // per group column: index into dictionaries_
    std::vector<size_t> domainDictionary_;           // per domain column
    std::vector<size_t> domainOnly_;                 // dictionaries not in the GROUP BY
    detail::TupleIndexer groups_;
    detail::GroupCounts counts_;
    std::vector<uint32_t> codes_;   // per batch: rows x group columns
    std::vector<uint64_t> hashes_;  // per batch: hash of each row's tuple
    uint64_t records_ = 0;
};

}  // namespace custodian::anon
