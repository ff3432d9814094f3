#pragma once
// Reading an agency table for one release.
//
// SourceQuery builds the SQL: every name is validated and quoted (policies/sql_identifier.hpp),
// the policy's row filter arrives as a parameterized fragment and its values only ever travel as
// bind parameters. Every column is selected through an expression that makes PostgreSQL print the
// value in the anonymizer's canonical text for the column's declared type (dates as YYYY-MM-DD,
// timestamps in UTC with a 'Z', decimals as float8 shortest round-trip; useSourceTypes() drops
// the casts a source type makes redundant), so what the gateway parses
// is exactly what hierarchies and keyed transforms see. One exception, in the release's own reads
// (readExpression()): a column stored as `date` is read as its day number, which PostgreSQL prints
// faster than the date, and the gateway turns back into the same canonical date.
//
// SourceSnapshot is one read-only REPEATABLE READ transaction on a short-lived connection: the
// GROUP BY that feeds the privacy search and the COPY that streams the rows see the same snapshot,
// so the rows released are the rows the search reasoned about. Both results are read as
// `COPY (SELECT …) TO STDOUT` in text format (gateway/release/copy_text.hpp), the fastest way
// libpq can deliver rows. COPY takes no bind parameters, so the row filter's values are bound
// first, as parameters, into transaction-local settings (set_config(…, true)); the COPY's WHERE
// reads each one back once, cast to the type PostgreSQL inferred for the parameter when the same
// SELECT was prepared. Filter values therefore never appear in SQL text.
//
// Error messages never quote values from the source: they may reach the partner.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/db/server_identity.hpp"
#include "gateway/release/memory_budget.hpp"
#include "anonymizer/table.hpp"
#include "anonymizer/value.hpp"
#include "policies/row_filter.hpp"

namespace custodian::release {

// A date as the release's reads select it (SourceQuery::readExpression): its day number when the
// date is one whose text is the canonical YYYY-MM-DD (years 1 to 9999, as PostgreSQL prints them
// without an era), nullopt otherwise (a BC date, a later year, infinity, anything malformed) — the
// dates a text read would have refused.
inline constexpr int64_t kNotADay = 2147483647;  // beyond any finite date's day number
std::optional<int32_t> sourceDays(std::string_view text) noexcept;

struct SourceColumn {
    std::string name;
    anon::ColumnType type = anon::ColumnType::Text;
    // The release never uses this column's values (it is dropped, and nothing else reads it — see
    // ReleasePlan::make): the rows' SELECT reads NULL in its place, so its values never leave the
    // database, and the gateway's role needs no SELECT privilege on it.
    bool unread = false;
};

// The clamped, contribution-bounded per-group figures of a differentially private aggregate
// (docs/aggregates.md), computed in PostgreSQL: one GROUP BY, no row leaves the database.
struct AggregateSql {
    std::vector<size_t> groupColumns;  // indices into the query's columns
    size_t personKey = 0;              // index of the person key column
    // Rows of one person kept (chosen at random); unset when the person key is unique in the table.
    std::optional<uint32_t> maxRowsPerPerson;
    // The measure: its column index, clamping bounds and the grid its clamped values are rounded to
    // (a power of two), so its sum is an exact integer number of grid steps. A value is clamped to
    // [lower, upper] in its own type, rounded to the grid and clamped again to [lowerSteps,
    // upperSteps] grid steps, so no row counts more than those bounds; NULL stays NULL.
    std::optional<size_t> measure;
    double lower = 0, upper = 0, granularity = 1;
    int64_t lowerSteps = 0, upperSteps = 0;
};

class SourceQuery {
public:
    // `schema` and `table` unquoted (validated here); `filter` is the compiled row filter (its
    // parameters numbered from $1), or nullopt.
    static Result<SourceQuery> make(std::string_view schema, std::string_view table, std::vector<SourceColumn> columns,
                                    std::optional<policies::SqlFragment> filter);

    const std::vector<SourceColumn>& columns() const noexcept { return columns_; }
    const std::vector<std::string>& parameters() const noexcept { return parameters_; }
    const std::string& qualifiedTable() const noexcept { return table_; }

    // `parameterReads` says how the filter's parameters are written: empty for bind parameters
    // ($1, $2, …), otherwise one SQL expression per parameter that replaces $1, $2, … (COPY).
    // SELECT <every column> FROM t [WHERE filter] (NULL for a column marked unread)
    Result<std::string> selectSql(const std::vector<std::string>& parameterReads = {}) const;
    // SELECT <the given columns>, count(*) FROM t [WHERE filter] GROUP BY 1..n
    Result<std::string> groupCountSql(const std::vector<size_t>& columns,
                                      const std::vector<std::string>& parameterReads = {}) const;
    // SELECT <the given columns> FROM t [WHERE filter]
    Result<std::string> columnsSql(const std::vector<size_t>& columns,
                                   const std::vector<std::string>& parameterReads = {}) const;
    // SELECT g…, count(*), count(m), sum(m) FROM (the rows, clamped, at most k per person) GROUP BY g…
    Result<std::string> aggregateSql(const AggregateSql& spec,
                                     const std::vector<std::string>& parameterReads = {}) const;
    // SELECT count(*) FROM t [WHERE filter]
    std::string countSql() const;

    // The SELECT-list expression of column i (canonical text for its type).
    std::string expression(size_t column) const;
    // How the release's reads (selectSql, groupCountSql, columnsSql, aggregateSql's groups) select
    // column i: expression(i), except that a date column stored as `date` (readsDayNumber) is read
    // as its day number (days since 1970-01-01; NULL stays NULL, ±infinity is kNotADay), which
    // PostgreSQL prints faster than the date's text. sourceDays() reads it back. A date stored
    // otherwise keeps its cast to date and is read as text (a second cast would cost more).
    std::string readExpression(size_t column) const;
    bool readsDayNumber(size_t column) const noexcept {
        return columns_[column].type == anon::ColumnType::Date && column < bare_.size() && bare_[column];
    }
    // The source table's column types (name → format of pg_attribute's type, e.g. "numeric"), as
    // SourceSnapshot::columnTypes() reads them. A column whose source type already prints the
    // canonical text of its declared type (an integer column as integer, a decimal column as
    // numeric or double precision, a date as date, text as text or varchar) is then selected bare:
    // PostgreSQL skips a cast per value, and the gateway parses the same number or date as the cast
    // would have printed (numeric → float8 is PostgreSQL's own text round trip). Every other type —
    // real, char(n), domains, anything unknown — keeps its cast.
    void useSourceTypes(const std::map<std::string, std::string, std::less<>>& types);

private:
    // "" or " WHERE <filter>", its parameters written as selectSql() says.
    Result<std::string> whereClause(const std::vector<std::string>& parameterReads) const;

    std::string table_;  // quoted
    std::vector<SourceColumn> columns_;
    std::vector<std::string> quoted_;
    std::vector<bool> bare_;  // per column: selected without a cast (useSourceTypes)
    std::string filter_;      // "" or the compiled filter, with $n parameters
    std::vector<std::string> parameters_;
};

// `filterSql` with every $n outside quoted identifiers and literals replaced by parameterReads[n-1].
// InvalidArgument for a parameter number with no entry in parameterReads.
Result<std::string> substituteParameters(std::string_view filterSql, const std::vector<std::string>& parameterReads);

// A value of a GROUP BY row: nullopt for SQL NULL.
using SourceValue = std::optional<std::string_view>;

// Where the frequency table of quasi-identifier combinations is counted (docs/configuration.md,
// `release.group_counts`). Both give the same table, with memory proportional to the number of
// distinct combinations, never to the number of rows.
//   Database  GROUP BY … count(*) in PostgreSQL; only the distinct combinations travel. Best when
//             the database server has cores to spare (parallel aggregation) or the link is slow.
//   Gateway   COPY of just the grouped columns; the gateway counts the combinations of the
//             columns' source texts in flat hash tables. PostgreSQL only scans: on a table of 1,000,000 rows its hash
//             aggregation took about 3x as long as that COPY, so this is faster end to end and
//             costs the shared database server less CPU.
enum class GroupCounting { Database, Gateway };

class SourceSnapshot {
public:
    // Connects with `conninfo` (connect_timeout added when absent) and begins the transaction.
    // Unavailable when the database cannot be reached. With `notDatabase` (the gateway's own
    // database), the snapshot is refused (FailedPrecondition "sources.own_database: ...") when the
    // connection reached that database, or when it cannot tell, before anything is read.
    static Result<std::unique_ptr<SourceSnapshot>> open(const std::string& conninfo,
                                                        std::chrono::seconds connectTimeout,
                                                        const db::ServerIdentity* notDatabase = nullptr);
    ~SourceSnapshot();
    SourceSnapshot(const SourceSnapshot&) = delete;
    SourceSnapshot& operator=(const SourceSnapshot&) = delete;

    // Counts the rows of each distinct combination of `columns`, where `counting` says, calling
    // `onGroup` for each combination with the values (canonical text for the column type; nullopt
    // for NULL) and its row count. Two source texts with one canonical form (a decimal written two
    // ways) may arrive as two calls; the caller adds them up. Memory: Database holds one group row
    // at a time, Gateway each column's distinct texts and one code tuple per combination.
    // Gateway counting states the memory of its tables to `memory` (kCountingTable) as they grow,
    // and stops with its ResourceExhausted status when the budget refuses.
    using GroupVisitor = std::function<Status(std::span<const SourceValue> values, uint64_t count)>;
    Status forEachGroup(const SourceQuery& query, const std::vector<size_t>& columns, const GroupVisitor& onGroup,
                        GroupCounting counting = GroupCounting::Database, MemoryCharge* memory = nullptr);

    // Gateway counting handed over whole, column by column (what forEachGroup(…, Gateway) visits one
    // combination at a time): per column its distinct values and one code per combination, and one
    // count per combination. The counting table's index is freed before `onGroups` is called, which
    // may take the code columns and the counts (std::move) instead of copying them.
    struct CountedGroups {
        // Per column: the distinct values, in canonical text for the column type, nullopt for NULL;
        // valid during the call. Two source texts with one canonical form (a decimal written two
        // ways) are two entries with the same text.
        std::vector<std::vector<SourceValue>> values;
        std::vector<std::vector<uint32_t>> codes;  // per column: an index into values[column], per combination
        std::vector<uint64_t> counts;              // per combination
    };
    using GroupsVisitor = std::function<Status(CountedGroups& groups)>;
    Status countGroups(const SourceQuery& query, const std::vector<size_t>& columns, const GroupsVisitor& onGroups,
                       MemoryCharge* memory = nullptr);

    // Whether `column` alone is the key of a valid unique index without predicate or expression and
    // is NOT NULL (then every person has one row, and a person key needs no per-person row limit; a
    // unique index admits many NULLs, and a failed CREATE UNIQUE INDEX CONCURRENTLY leaves an
    // invalid one over duplicates).
    Result<bool> columnIsUnique(const SourceQuery& query, size_t column);
    // Runs query.aggregateSql(spec) and calls `onGroup` per distinct combination of the group
    // columns: their values (canonical text; nullopt for NULL), the rows, the rows with a measure
    // value and the sum of the measure in grid steps (0 without a measure).
    using AggregateVisitor =
        std::function<Status(std::span<const SourceValue> values, uint64_t rows, uint64_t measured, int64_t gridSum)>;
    Status forEachAggregate(const SourceQuery& query, const AggregateSql& spec, const AggregateVisitor& onGroup);

    // Makes every later read of this snapshot return the rows in one order, whichever columns it
    // selects: the physical order of the tuples the snapshot sees, read by sequential scans without
    // parallel workers or synchronized scans (transaction-local planner settings). Mondrian reads
    // the rows twice and matches them by position.
    Status fixRowOrder();
    // Calls `onRow` for every row the query selects with the values of `columns` (canonical text for
    // the column type; nullopt for NULL), in the order openRows() delivers them after fixRowOrder().
    using RowVisitor = std::function<Status(std::span<const SourceValue> values)>;
    Status forEachRow(const SourceQuery& query, const std::vector<size_t>& columns, const RowVisitor& onRow);

    // The column types of the query's table (see SourceQuery::useSourceTypes); empty when the
    // table does not exist (the release query then fails with PostgreSQL's own message).
    Result<std::map<std::string, std::string, std::less<>>> columnTypes(const SourceQuery& query);
    // Number of rows the query selects.
    Result<uint64_t> countRows(const SourceQuery& query);

    // Starts the COPY of query.selectSql(); then nextRows() reads it batch by batch. `query` must
    // outlive the reading.
    Status openRows(const SourceQuery& query, anon::SchemaPtr schema);
    // The next batch of at most `maxRows` typed rows, or nullopt after the last one.
    Result<std::optional<anon::Batch>> nextRows(size_t maxRows);

    // Asks the server to cancel the statement it is running, so that a thread blocked in
    // nextRows() or forEachGroup() returns (with an error) soon. The only member that may be
    // called while another thread uses the snapshot; close() afterwards, from the reading thread
    // or once it has stopped.
    void cancel() noexcept;
    // Ends the transaction and closes the connection (also done by the destructor). A COPY still
    // running is cancelled first; this blocks until the server has acknowledged the cancel.
    void close() noexcept;

private:
    SourceSnapshot() = default;
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace custodian::release
