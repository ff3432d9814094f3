#include "gateway/release/source.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <cstdio>

#include <pqxx/pqxx>

#include "anonymizer/flat_hash.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/release/copy_text.hpp"
#include "policies/sql_identifier.hpp"

namespace custodian::release {

namespace {

constexpr const char* kFilterStatement = "custodian_release_filter";
constexpr const char* kFilterSetting = "custodian.release_filter_";

const char* typeNoun(anon::ColumnType type) {
    switch (type) {
    case anon::ColumnType::Integer: return "an integer";
    case anon::ColumnType::Decimal: return "a number";
    case anon::ColumnType::Date: return "a date";
    case anon::ColumnType::Timestamp: return "a timestamp";
    case anon::ColumnType::Text: return "a text";
    }
    return "a value";
}

// The canonical text of column i's value as the release's reads select it (readExpression): a date
// read as its day number from that number, anything else from its text. False when it is not of
// the column's type.
bool appendReadAsCanonical(std::string& out, const SourceQuery& query, size_t i, std::string_view text) {
    if (!query.readsDayNumber(i)) return anon::appendCanonicalText(out, query.columns()[i].type, text);
    const std::optional<int32_t> days = sourceDays(text);
    if (!days) return false;
    anon::appendDate(out, *days);
    return true;
}

Status notOfDeclaredType(const SourceColumn& column) {
    return internalError("the source column '" + column.name + "' holds a value that is not " + typeNoun(column.type) +
                         ", as the dataset declares");
}

// Turns a libpqxx exception raised while reading the source into a Status. SQL errors name the
// server's message for the operator's log but the status says what the publisher must look at.
Status sourceError(std::exception_ptr error, const std::string& during) {
    try {
        std::rethrow_exception(error);
    } catch (const pqxx::broken_connection& e) {
        return unavailable("the source database is unavailable (" + during + "): " + e.what());
    } catch (const pqxx::sql_error& e) {
        return internalError("the source database refused the release query (" + during +
                             "); check the dataset definition against the table: " + e.what());
    } catch (const std::exception& e) {
        return internalError("reading the source (" + during + "): " + e.what());
    } catch (...) { return internalError("reading the source (" + during + "): unknown error"); }
}

// libpqxx 6.4 streams COPY output only from a named table (stream_from, tablereader) and keeps the
// libpq handle private, except for classes derived from pqxx::largeobject. The COPY of a SELECT is
// read through that handle, in this file only, with nothing else done on it.
class RawConnection : public pqxx::largeobject {
public:
    static PGconn* of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

std::string copyOf(const std::string& select) { return "COPY (" + select + ") TO STDOUT"; }

constexpr const char* kCountingDuring = "counting quasi-identifier combinations";

// Gateway counting reserves room for at most this many combinations up front (address space).
constexpr uint64_t kMaxReservedGroups = uint64_t{1} << 25;

}  // namespace

Result<SourceQuery> SourceQuery::make(std::string_view schema, std::string_view table,
                                      std::vector<SourceColumn> columns, std::optional<policies::SqlFragment> filter) {
    SourceQuery q;
    if (auto s = policies::validateSqlIdentifier(schema); !s) return s.withContext("schema name");
    if (auto s = policies::validateSqlIdentifier(table); !s) return s.withContext("table name");
    q.table_ = policies::quoteSqlIdentifier(schema) + "." + policies::quoteSqlIdentifier(table);
    if (columns.empty()) return invalidArgument("a release reads at least one column");
    for (const auto& c : columns) {
        if (auto s = policies::validateSqlIdentifier(c.name); !s) return s.withContext("column name");
        q.quoted_.push_back(policies::quoteSqlIdentifier(c.name));
    }
    q.columns_ = std::move(columns);
    if (filter) {
        q.filter_ = std::move(filter->sql);
        q.parameters_ = std::move(filter->parameters);
    }
    return q;
}

void SourceQuery::useSourceTypes(const std::map<std::string, std::string, std::less<>>& types) {
    bare_.assign(columns_.size(), false);
    for (size_t i = 0; i < columns_.size(); ++i) {
        auto it = types.find(columns_[i].name);
        if (it == types.end()) continue;
        const std::string& t = it->second;
        const bool integer = t == "smallint" || t == "integer" || t == "bigint";
        switch (columns_[i].type) {
        case anon::ColumnType::Integer: bare_[i] = integer; break;
        case anon::ColumnType::Decimal: bare_[i] = integer || t == "numeric" || t == "double precision"; break;
        case anon::ColumnType::Date: bare_[i] = t == "date"; break;
        case anon::ColumnType::Text: bare_[i] = t == "text" || t == "character varying"; break;
        case anon::ColumnType::Timestamp: break;  // always formatted in UTC by to_char
        }
    }
}

std::string SourceQuery::expression(size_t column) const {
    const std::string& c = quoted_[column];
    if (column < bare_.size() && bare_[column]) return c;
    switch (columns_[column].type) {
    case anon::ColumnType::Integer: return "(" + c + ")::bigint";
    case anon::ColumnType::Decimal: return "(" + c + ")::float8";
    case anon::ColumnType::Date: return "(" + c + ")::date";
    case anon::ColumnType::Timestamp:
        return "to_char((" + c + ")::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
    case anon::ColumnType::Text: return "(" + c + ")::text";
    }
    return c;
}

std::string SourceQuery::readExpression(size_t column) const {
    const std::string value = expression(column);
    if (!readsDayNumber(column)) return value;
    // date - date is an integer, but fails on infinity: that reads as a day number no date has.
    return "CASE WHEN isfinite(" + value + ") THEN " + value + " - DATE '1970-01-01' WHEN " + value +
           " IS NOT NULL THEN " + std::to_string(kNotADay) + " END";
}

std::optional<int32_t> sourceDays(std::string_view text) noexcept {
    static const int32_t first = anon::daysFromCivil(1, 1, 1), last = anon::daysFromCivil(9999, 12, 31);
    int64_t days = 0;
    const char* end = text.data() + text.size();
    auto [at, ec] = std::from_chars(text.data(), end, days);
    if (ec != std::errc() || at != end || text.empty() || days < first || days > last) return std::nullopt;
    return static_cast<int32_t>(days);
}

Result<std::string> substituteParameters(std::string_view filterSql, const std::vector<std::string>& parameterReads) {
    std::string out;
    out.reserve(filterSql.size());
    char quote = 0;  // '"' inside a quoted identifier, '\'' inside a literal; a doubled quote toggles twice
    for (size_t i = 0; i < filterSql.size();) {
        const char c = filterSql[i];
        if (quote) {
            if (c == quote) quote = 0;
            out.push_back(c);
            ++i;
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = c;
            out.push_back(c);
            ++i;
            continue;
        }
        if (c != '$' || i + 1 >= filterSql.size() || filterSql[i + 1] < '0' || filterSql[i + 1] > '9') {
            out.push_back(c);
            ++i;
            continue;
        }
        size_t number = 0;
        const char* begin = filterSql.data() + i + 1;
        auto [end, ec] = std::from_chars(begin, filterSql.data() + filterSql.size(), number);
        if (ec != std::errc() || number == 0 || number > parameterReads.size())
            return invalidArgument("the row filter uses a parameter that has no value");
        out += parameterReads[number - 1];
        i = static_cast<size_t>(end - filterSql.data());
    }
    if (quote) return invalidArgument("the row filter has an unterminated quote");
    return out;
}

Result<std::string> SourceQuery::selectSql(const std::vector<std::string>& parameterReads) const {
    std::string sql = "SELECT ";
    for (size_t i = 0; i < columns_.size(); ++i) {
        if (i) sql += ", ";
        sql += columns_[i].unread ? std::string("NULL") : readExpression(i);
    }
    auto where = whereClause(parameterReads);
    if (!where) return where.status();
    return sql + " FROM " + table_ + *where;
}

Result<std::string> SourceQuery::whereClause(const std::vector<std::string>& parameterReads) const {
    if (filter_.empty()) return std::string();
    if (parameterReads.empty()) return " WHERE " + filter_;
    auto where = substituteParameters(filter_, parameterReads);
    if (!where) return where.status();
    return " WHERE " + *where;
}

Result<std::string> SourceQuery::groupCountSql(const std::vector<size_t>& columns,
                                               const std::vector<std::string>& parameterReads) const {
    std::string sql = "SELECT ";
    for (size_t column : columns) sql += readExpression(column) + ", ";
    auto where = whereClause(parameterReads);
    if (!where) return where.status();
    sql += "count(*) FROM " + table_ + *where;
    if (!columns.empty()) {
        sql += " GROUP BY ";
        for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + std::to_string(i + 1);
    }
    return sql;
}

Result<std::string> SourceQuery::columnsSql(const std::vector<size_t>& columns,
                                            const std::vector<std::string>& parameterReads) const {
    if (columns.empty()) return invalidArgument("a column list selects at least one column");
    std::string sql = "SELECT ";
    for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + readExpression(columns[i]);
    auto where = whereClause(parameterReads);
    if (!where) return where.status();
    return sql + " FROM " + table_ + *where;
}

Result<std::string> SourceQuery::aggregateSql(const AggregateSql& spec,
                                              const std::vector<std::string>& parameterReads) const {
    auto number = [](double v) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", v);
        return std::string(buffer);
    };
    if (spec.personKey >= columns_.size()) return invalidArgument("the person key is not a selected column");
    std::string inner = "SELECT ";
    for (size_t i = 0; i < spec.groupColumns.size(); ++i) {
        if (spec.groupColumns[i] >= columns_.size()) return invalidArgument("a group column is not a selected column");
        inner += readExpression(spec.groupColumns[i]) + " AS g" + std::to_string(i) + ", ";
    }
    if (spec.measure) {
        if (*spec.measure >= columns_.size()) return invalidArgument("the measure is not a selected column");
        // Clamped in the column's own type first, so no stored value can overflow float8.
        const std::string& x = quoted_[*spec.measure];
        inner += "CASE WHEN " + x + " IS NULL THEN NULL ELSE LEAST(GREATEST(round(LEAST(GREATEST(" + x + ", " +
                 number(spec.lower) + "), " + number(spec.upper) + ")::float8 / " + number(spec.granularity) + "), " +
                 std::to_string(spec.lowerSteps) + "), " + std::to_string(spec.upperSteps) + ")::bigint END AS m";
    } else {
        inner += "NULL::bigint AS m";
    }
    if (spec.maxRowsPerPerson)
        inner += ", row_number() OVER (PARTITION BY " + quoted_[spec.personKey] + " ORDER BY random()) AS rn";
    auto where = whereClause(parameterReads);
    if (!where) return where.status();
    inner += " FROM " + table_ + *where;
    std::string sql = "SELECT ";
    for (size_t i = 0; i < spec.groupColumns.size(); ++i) sql += "g" + std::to_string(i) + ", ";
    sql += "count(*), count(m), coalesce(sum(m), 0) FROM (" + inner + ") AS bounded";
    if (spec.maxRowsPerPerson) sql += " WHERE rn <= " + std::to_string(*spec.maxRowsPerPerson);
    if (!spec.groupColumns.empty()) {
        sql += " GROUP BY ";
        for (size_t i = 0; i < spec.groupColumns.size(); ++i) sql += (i ? ", " : "") + std::to_string(i + 1);
    }
    return sql;
}

std::string SourceQuery::countSql() const {
    return "SELECT count(*) FROM " + table_ + (filter_.empty() ? "" : " WHERE " + filter_);
}

struct SourceSnapshot::State {
    std::unique_ptr<pqxx::connection> connection;
    std::unique_ptr<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>> tx;
    PGconn* raw = nullptr;  // the connection's libpq handle, for reading COPY data
    // The filter's parameterReads for COPY, bound once per snapshot (set when bound).
    std::optional<std::vector<std::string>> parameterReads;
    // The COPY in progress.
    bool copying = false;
    char* line = nullptr;  // the last CopyData row, owned (PQfreemem)
    CopyTextRow row;
    // Rows.
    const SourceQuery* rowQuery = nullptr;
    anon::SchemaPtr schema;
    bool rowsOpen = false;
    bool rowsDone = false;

    // Made when the connection opens: cancel() may be called from another thread while this one
    // waits in PQgetCopyData, and PQcancel on a prepared handle is safe to call concurrently.
    PGcancel* cancelHandle = nullptr;

    ~State() {
        freeLine();
        if (cancelHandle) PQfreeCancel(cancelHandle);
    }
    void cancelServerWork() noexcept {
        if (!cancelHandle) return;
        char error[256];
        (void)PQcancel(cancelHandle, error, sizeof error);
    }
    void freeLine() noexcept {
        if (line) PQfreemem(line);
        line = nullptr;
    }

    // One row's values of `columns` (field(i) is the source text of column i) in canonical text,
    // into `values` (valid until the next call).
    std::vector<std::string> canonical;
    std::vector<SourceValue> values;
    template <typename Field>
    Status canonicalize(const SourceQuery& query, const std::vector<size_t>& columns, Field&& field) {
        canonical.resize(columns.size());
        values.resize(columns.size());
        for (size_t i = 0; i < columns.size(); ++i) {
            const SourceValue text = field(i);
            const SourceColumn& column = query.columns()[columns[i]];
            if (!text || column.type == anon::ColumnType::Text) {
                values[i] = text;  // text is its own canonical form
                continue;
            }
            canonical[i].clear();
            if (!appendReadAsCanonical(canonical[i], query, columns[i], *text)) return notOfDeclaredType(column);
            values[i] = std::string_view(canonical[i]);
        }
        return Status::ok();
    }

    // PostgreSQL's estimate of the table's rows (pg_class.reltuples, kept by ANALYZE and VACUUM);
    // 0 when it has none. Only sizes allocations.
    uint64_t estimatedRows(const SourceQuery& query) {
        try {
            const pqxx::result r =
                tx->exec_params("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($1)",
                                query.qualifiedTable());
            return r.empty() || r[0][0].is_null() ? 0 : r[0][0].as<uint64_t>();
        } catch (...) {
            return 0;  // a broken connection is reported by the COPY that follows
        }
    }

    // Starts the COPY that counts the combinations of `columns`: their GROUP BY (Database) or the
    // columns themselves (Gateway), with the row filter bound.
    Status startCounting(const SourceQuery& query, const std::vector<size_t>& columns, GroupCounting counting) {
        auto reads = bindFilter(query);
        if (!reads) return reads.status();
        auto sql = counting == GroupCounting::Database ? query.groupCountSql(columns, *reads)
                                                       : query.columnsSql(columns, *reads);
        if (!sql) return sql.status();
        return startCopy(*sql, kCountingDuring);
    }

    // The parameterReads that carry the filter's values into a COPY (see source.hpp).
    Result<std::vector<std::string>> bindFilter(const SourceQuery& query) {
        if (parameterReads) return *parameterReads;
        std::vector<std::string> out;
        const auto& parameters = query.parameters();
        if (!parameters.empty()) {
            auto select = query.selectSql();
            if (!select) return select.status();
            try {
                // The types PostgreSQL infers for untyped parameters, exactly as for a cursor.
                tx->exec(std::string("PREPARE ") + kFilterStatement + " AS " + *select);
                const pqxx::result types = tx->exec_params(
                    "SELECT t::text FROM pg_prepared_statements, unnest(parameter_types) WITH ORDINALITY AS p(t, n) "
                    "WHERE name = $1 ORDER BY n",
                    kFilterStatement);
                tx->exec(std::string("DEALLOCATE ") + kFilterStatement);
                if (types.size() != parameters.size())
                    return internalError("the source database reported " + std::to_string(types.size()) +
                                         " row filter parameters, expected " + std::to_string(parameters.size()));
                for (size_t i = 0; i < parameters.size(); ++i) {
                    const std::string setting = kFilterSetting + std::to_string(i + 1);
                    tx->exec_params("SELECT set_config($1, $2, true)", setting, parameters[i]);
                    // A regtype's text is a quoted, re-parsable type name; the scalar subquery is
                    // evaluated once per COPY, not per row.
                    out.push_back("(SELECT current_setting('" + setting +
                                  "')::" + types[static_cast<pqxx::result::size_type>(i)][0].c_str() + ")");
                }
            } catch (...) { return sourceError(std::current_exception(), "binding the row filter"); }
        }
        parameterReads = out;
        return out;
    }

    Status startCopy(const std::string& select, const std::string& during) {
        if (copying) return internalError("a COPY from the source is already running");
        try {
            tx->exec(copyOf(select));  // a COPY OUT result; the rows follow on the connection
        } catch (...) { return sourceError(std::current_exception(), during); }
        copying = true;
        return Status::ok();
    }

    // The next COPY row into `row` (`fields` fields): true, or false after the last one.
    Result<bool> nextCopyRow(size_t fields, const std::string& during) {
        auto text = nextCopyLine(during);
        if (!text) return text.status();
        if (!*text) return false;
        if (Status s = parseRow(**text, fields, during); !s) return s;
        return true;
    }

    Status parseRow(std::string_view text, size_t fields, const std::string& during) {
        if (Status s = row.parse(text, fields); !s)
            return internalError("the source returned a malformed row (" + during + "): " + s.message());
        return Status::ok();
    }

    // The next COPY row's text (valid until the next call), or nullopt after the last one.
    Result<std::optional<std::string_view>> nextCopyLine(const std::string& during) {
        if (!copying) return std::optional<std::string_view>();
        freeLine();
        const int length = PQgetCopyData(raw, &line, 0);
        if (length > 0) return std::optional<std::string_view>(std::string_view(line, static_cast<size_t>(length)));
        copying = false;
        if (length == -1) {
            // The COPY is over: its final result says whether it completed.
            std::string error;
            while (PGresult* result = PQgetResult(raw)) {
                if (PQresultStatus(result) != PGRES_COMMAND_OK && error.empty()) error = PQresultErrorMessage(result);
                PQclear(result);
            }
            if (error.empty()) return std::optional<std::string_view>();
            return internalError("the source database ended the release query with an error (" + during +
                                 "): " + error);
        }
        const std::string message = PQerrorMessage(raw);
        if (PQstatus(raw) == CONNECTION_BAD)
            return unavailable("the source database is unavailable (" + during + "): " + message);
        return internalError("reading the source (" + during + "): " + message);
    }

    // Ends a COPY that is still sending rows: asks the server to cancel it, then reads what is
    // already on the way, so the connection can take the ROLLBACK.
    void abandonCopy() noexcept {
        if (!copying) return;
        copying = false;
        freeLine();
        cancelServerWork();
        char* data = nullptr;
        while (PQgetCopyData(raw, &data, 0) > 0) {
            PQfreemem(data);
            data = nullptr;
        }
        while (PGresult* result = PQgetResult(raw)) PQclear(result);
    }
};

Result<std::unique_ptr<SourceSnapshot>> SourceSnapshot::open(const std::string& conninfo,
                                                             std::chrono::seconds connectTimeout,
                                                             const db::ServerIdentity* notDatabase) {
    std::unique_ptr<SourceSnapshot> snapshot(new SourceSnapshot());
    snapshot->state_ = std::make_unique<State>();
    try {
        snapshot->state_->connection =
            std::make_unique<pqxx::connection>(db::withConnectTimeout(conninfo, connectTimeout));
        snapshot->state_->tx = std::make_unique<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>>(
            *snapshot->state_->connection, "custodian-release");
        // Before anything else is read: a host name may now lead to the gateway's own database.
        if (notDatabase) {
            if (Status s = db::refuseOwnDatabase(*snapshot->state_->tx, *notDatabase); !s) return s;
        }
        // The canonical text forms rely on these; SET LOCAL keeps them inside this transaction.
        snapshot->state_->tx->exec("SET LOCAL DateStyle = 'ISO, YMD'");
        snapshot->state_->tx->exec("SET LOCAL TimeZone = 'UTC'");
        snapshot->state_->tx->exec("SET LOCAL extra_float_digits = 1");
        // Under PostgreSQL's default work_mem (4 MB) the GROUP BY of a large table spills to disk and
        // takes several times longer; give this transaction 64 MB unless the server allows more.
        snapshot->state_->tx->exec("SELECT set_config('work_mem', '64MB', true) FROM pg_settings WHERE name = "
                                   "'work_mem' AND setting::bigint < 65536");
        snapshot->state_->raw = RawConnection::of(*snapshot->state_->tx);
    } catch (...) {
        Status s = sourceError(std::current_exception(), "connecting");
        // A source that cannot be reached at all is Unavailable, whatever libpq called it.
        if (s.code() == StatusCode::Internal && !snapshot->state_->tx)
            return Status(StatusCode::Unavailable, s.message());
        return s;
    }
    if (!snapshot->state_->raw) return internalError("the source connection has no libpq handle");
    snapshot->state_->cancelHandle = PQgetCancel(snapshot->state_->raw);
    return snapshot;
}

SourceSnapshot::~SourceSnapshot() { close(); }

void SourceSnapshot::cancel() noexcept {
    if (state_) state_->cancelServerWork();
}

void SourceSnapshot::close() noexcept {
    if (!state_) return;
    state_->abandonCopy();
    try {
        state_->tx.reset();  // aborts the read-only transaction
        if (state_->connection) state_->connection->disconnect();
    } catch (...) {
        // Closing a broken connection can throw; nothing is left to release.
    }
    state_.reset();
}

Status SourceSnapshot::forEachGroup(const SourceQuery& query, const std::vector<size_t>& columns,
                                    const GroupVisitor& onGroup, GroupCounting counting, MemoryCharge* memory) {
    if (counting == GroupCounting::Gateway && !columns.empty()) {
        return countGroups(
            query, columns,
            [&](CountedGroups& groups) -> Status {
                std::vector<SourceValue> values(columns.size());
                for (size_t g = 0; g < groups.counts.size(); ++g) {
                    for (size_t i = 0; i < values.size(); ++i) values[i] = groups.values[i][groups.codes[i][g]];
                    if (Status s = onGroup(values, groups.counts[g]); !s) return s;
                }
                return Status::ok();
            },
            memory);
    }
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    State& st = *state_;
    if (Status s = st.startCounting(query, columns, GroupCounting::Database); !s) return s;
    for (;;) {
        auto more = st.nextCopyRow(columns.size() + 1, kCountingDuring);
        if (!more) return more.status();
        if (!*more) break;
        const SourceValue& countText = st.row[columns.size()];
        uint64_t count = 0;
        if (!countText) return internalError("the source returned a malformed group count");
        auto [end, ec] = std::from_chars(countText->data(), countText->data() + countText->size(), count);
        if (ec != std::errc() || end != countText->data() + countText->size())
            return internalError("the source returned a malformed group count");
        if (Status s = st.canonicalize(query, columns, [&](size_t i) { return st.row[i]; }); !s) return s;
        if (Status s = onGroup(st.values, count); !s) return s;
    }
    return Status::ok();
}

Status SourceSnapshot::countGroups(const SourceQuery& query, const std::vector<size_t>& columns,
                                   const GroupsVisitor& onGroups, MemoryCharge* memory) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    if (columns.empty()) return invalidArgument("counting combinations needs at least one column");
    State& st = *state_;
    // Room for as many combinations as the table has rows by PostgreSQL's estimate, so the code
    // columns are not copied as they grow (address space only: untouched pages cost no memory).
    const uint64_t estimate = st.estimatedRows(query);
    if (Status s = st.startCounting(query, columns, GroupCounting::Gateway); !s) return s;

    // Each column's distinct source texts get small codes (a small table per column, in cache),
    // and a row is counted through its tuple of codes, with the group table's slots prefetched
    // a few rows ahead: this is the GROUP BY, done before any value is parsed.
    constexpr uint32_t kNull = UINT32_MAX;
    constexpr size_t kBatchRows = 1024, kPrefetchDistance = 8;
    const size_t width = columns.size();
    std::vector<anon::detail::StringInterner> texts(width);
    anon::detail::TupleIndexer groups(width);
    const auto reserved = static_cast<size_t>(std::min<uint64_t>(estimate, kMaxReservedGroups));
    groups.reserve(reserved);
    anon::detail::GroupCounts counts;
    counts.reserve(reserved);
    std::vector<uint32_t> codes;
    std::vector<uint64_t> hashes;
    codes.reserve(kBatchRows * width);
    hashes.reserve(kBatchRows);
    // The memory of these tables, stated to the release's charge after every batch (what is
    // written, not the address space reserved); given back when they are freed, on every return.
    struct Freed {
        MemoryCharge* memory;
        ~Freed() {
            if (memory) (void)memory->set(kCountingTable, 0);
        }
    } freed{memory};
    auto account = [&]() -> Status {
        if (!memory) return Status::ok();
        size_t bytes = groups.memoryBytes() + counts.memoryBytes() + hashes.capacity() * sizeof(uint64_t) +
                       codes.capacity() * sizeof(uint32_t);
        for (const auto& t : texts) bytes += t.memoryBytes();
        return memory->set(kCountingTable, bytes);
    };
    for (bool more = true; more;) {
        codes.clear();
        while (codes.size() < kBatchRows * width) {
            auto text = st.nextCopyLine(kCountingDuring);
            if (!text) return text.status();
            if (!*text) {
                more = false;
                break;
            }
            if (Status s = st.parseRow(**text, width, kCountingDuring); !s) return s;
            for (size_t i = 0; i < width; ++i) codes.push_back(st.row[i] ? texts[i].intern(*st.row[i]).first : kNull);
        }
        const size_t rows = codes.size() / width;
        hashes.resize(rows);
        for (size_t r = 0; r < rows; ++r) hashes[r] = groups.hashOf(codes.data() + r * width);
        for (size_t r = 0; r < rows; ++r) {
            if (r + kPrefetchDistance < rows) groups.prefetch(hashes[r + kPrefetchDistance]);
            const uint32_t group = groups.indexOf(codes.data() + r * width, hashes[r]);
            counts.add(group);
        }
        if (Status s = account(); !s) return s;
    }

    // Each distinct text in canonical form once; NULL, when a column has it, is its last value.
    CountedGroups out;
    out.values.resize(width);
    std::vector<std::vector<std::string>> canonical(width);
    for (size_t i = 0; i < width; ++i) {
        const SourceColumn& column = query.columns()[columns[i]];
        const size_t distinct = texts[i].size();
        out.values[i].reserve(distinct + 1);
        if (column.type != anon::ColumnType::Text) canonical[i].resize(distinct);
        for (uint32_t code = 0; code < distinct; ++code) {
            const std::string_view text = texts[i].value(code);
            if (column.type == anon::ColumnType::Text) {
                out.values[i].emplace_back(text);  // text is its own canonical form
                continue;
            }
            if (!appendReadAsCanonical(canonical[i][code], query, columns[i], text)) return notOfDeclaredType(column);
            out.values[i].emplace_back(canonical[i][code]);
        }
    }
    out.codes = std::move(groups).takeColumns();
    // The reserve was PostgreSQL's row estimate; a row filter may have selected far fewer
    // combinations. Whoever takes the columns over accounts their capacity: fit it to what is held.
    for (auto& column : out.codes) {
        if (column.capacity() - column.size() > column.size() / 8 + 4096) column.shrink_to_fit();
    }
    for (size_t i = 0; i < width; ++i) {
        const auto nullCode = static_cast<uint32_t>(out.values[i].size());
        bool hasNull = false;
        for (uint32_t& code : out.codes[i]) {
            if (code != kNull) continue;
            code = nullCode;
            hasNull = true;
        }
        if (hasNull) out.values[i].emplace_back(std::nullopt);
    }
    out.counts = std::move(counts).take();  // after the index is freed: room for the wider counts
    if (memory) {
        size_t bytes = out.counts.capacity() * sizeof(uint64_t);
        for (const auto& column : out.codes) bytes += column.size() * sizeof(uint32_t);
        for (const auto& t : texts) bytes += t.memoryBytes();
        if (Status s = memory->set(kCountingTable, bytes); !s) return s;
    }
    return onGroups(out);
}

Result<bool> SourceSnapshot::columnIsUnique(const SourceQuery& query, size_t column) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    if (column >= query.columns().size()) return invalidArgument("no such column");
    try {
        const pqxx::result r = state_->tx->exec_params(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1 "
            "AND i.indisvalid AND a.attnotnull AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $2)",
            query.qualifiedTable(), query.columns()[column].name);
        return r[0][0].as<bool>();
    } catch (...) { return sourceError(std::current_exception(), "reading the table's unique indexes"); }
}

Status SourceSnapshot::forEachAggregate(const SourceQuery& query, const AggregateSql& spec,
                                        const AggregateVisitor& onGroup) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    State& st = *state_;
    constexpr const char* kDuring = "computing the aggregate";
    auto parameterReads = st.bindFilter(query);
    if (!parameterReads) return parameterReads.status();
    auto sql = query.aggregateSql(spec, *parameterReads);
    if (!sql) return sql.status();
    if (Status s = st.startCopy(*sql, kDuring); !s) return s;
    const size_t width = spec.groupColumns.size();
    auto integer = [](const SourceValue& text, auto& out) -> bool {
        if (!text) return false;
        auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), out);
        return ec == std::errc() && end == text->data() + text->size();
    };
    for (;;) {
        auto more = st.nextCopyRow(width + 3, kDuring);
        if (!more) return more.status();
        if (!*more) return Status::ok();
        uint64_t rows = 0, measured = 0;
        int64_t gridSum = 0;
        if (!integer(st.row[width], rows) || !integer(st.row[width + 1], measured) ||
            !integer(st.row[width + 2], gridSum))
            return internalError("the source returned a malformed aggregate");
        if (Status s = st.canonicalize(query, spec.groupColumns, [&](size_t i) { return st.row[i]; }); !s) return s;
        if (Status s = onGroup(st.values, rows, measured, gridSum); !s) return s;
    }
}

Status SourceSnapshot::fixRowOrder() {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    try {
        // Sequential scans only, from the table's first block, by this process alone: the physical
        // order of the tuples this snapshot sees, whichever columns a query reads.
        for (const char* setting : {"enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan", "enable_tidscan",
                                    "synchronize_seqscans"})
            state_->tx->exec(std::string("SET LOCAL ") + setting + " = off");
        state_->tx->exec("SET LOCAL max_parallel_workers_per_gather = 0");
    } catch (...) { return sourceError(std::current_exception(), "fixing the row order"); }
    return Status::ok();
}

Status SourceSnapshot::forEachRow(const SourceQuery& query, const std::vector<size_t>& columns,
                                  const RowVisitor& onRow) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    State& st = *state_;
    constexpr const char* kDuring = "reading the quasi-identifiers";
    auto parameterReads = st.bindFilter(query);
    if (!parameterReads) return parameterReads.status();
    auto sql = query.columnsSql(columns, *parameterReads);
    if (!sql) return sql.status();
    if (Status s = st.startCopy(*sql, kDuring); !s) return s;
    for (;;) {
        auto more = st.nextCopyRow(columns.size(), kDuring);
        if (!more) return more.status();
        if (!*more) return Status::ok();
        if (Status s = st.canonicalize(query, columns, [&](size_t i) { return st.row[i]; }); !s) return s;
        if (Status s = onRow(st.values); !s) return s;
    }
}

Result<std::map<std::string, std::string, std::less<>>> SourceSnapshot::columnTypes(const SourceQuery& query) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    std::map<std::string, std::string, std::less<>> types;
    try {
        const pqxx::result r =
            state_->tx->exec_params("SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_attribute a "
                                    "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                                    query.qualifiedTable());
        for (const auto& row : r) types.emplace(row[0].c_str(), row[1].c_str());
    } catch (...) { return sourceError(std::current_exception(), "reading the table's column types"); }
    return types;
}

Result<uint64_t> SourceSnapshot::countRows(const SourceQuery& query) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    try {
        pqxx::result r =
            state_->tx->exec_params(query.countSql(), pqxx::prepare::make_dynamic_params(query.parameters()));
        return static_cast<uint64_t>(r[0][0].as<int64_t>());
    } catch (...) { return sourceError(std::current_exception(), "counting rows"); }
}

Status SourceSnapshot::openRows(const SourceQuery& query, anon::SchemaPtr schema) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    if (!schema || schema->size() != query.columns().size())
        return internalError("the row schema does not match the source query");
    for (size_t i = 0; i < schema->size(); ++i)
        if ((*schema)[i].type != query.columns()[i].type)
            return internalError("the row schema does not match the source query");
    if (state_->rowsOpen) return internalError("the rows are already being read");
    auto parameterReads = state_->bindFilter(query);
    if (!parameterReads) return parameterReads.status();
    auto sql = query.selectSql(*parameterReads);
    if (!sql) return sql.status();
    if (Status s = state_->startCopy(*sql, "starting to read rows"); !s) return s;
    state_->rowQuery = &query;
    state_->schema = std::move(schema);
    state_->rowsOpen = true;
    return Status::ok();
}

Result<std::optional<anon::Batch>> SourceSnapshot::nextRows(size_t maxRows) {
    if (!state_ || !state_->tx || !state_->rowsOpen) return internalError("the rows are not being read");
    State& st = *state_;
    if (st.rowsDone) return std::optional<anon::Batch>();
    const anon::Schema& schema = *st.schema;
    const size_t width = schema.size();
    // Columns are appended row by row; ColumnPtr is const, so build through these pointers.
    std::vector<std::shared_ptr<anon::Column>> building;
    building.reserve(width);
    std::vector<char> dayNumber(width);  // per column: read as a day number (readExpression)
    for (size_t c = 0; c < width; ++c) {
        dayNumber[c] = st.rowQuery->readsDayNumber(c);
        building.push_back(std::make_shared<anon::Column>(schema[c].type));
        building.back()->reserve(maxRows, schema[c].type == anon::ColumnType::Text ? maxRows * 16 : 0);
    }
    size_t rows = 0;
    while (rows < maxRows) {
        auto more = st.nextCopyRow(width, "reading rows");
        if (!more) return more.status();
        if (!*more) {
            st.rowsDone = true;
            break;
        }
        for (size_t c = 0; c < width; ++c) {
            const SourceValue& field = st.row[c];
            if (!field) {
                building[c]->appendNull();
            } else if (dayNumber[c]) {
                const std::optional<int32_t> days = sourceDays(*field);
                if (!days) return notOfDeclaredType(st.rowQuery->columns()[c]);
                building[c]->appendDate(*days);
            } else if (!building[c]->appendParsed(*field)) {
                return notOfDeclaredType(st.rowQuery->columns()[c]);
            }
        }
        ++rows;
    }
    if (rows == 0) return std::optional<anon::Batch>();
    std::vector<anon::ColumnPtr> columns(building.begin(), building.end());
    auto batch = anon::Batch::make(st.schema, std::move(columns));
    if (!batch) return batch.status();
    return std::optional<anon::Batch>(std::move(batch).value());
}

}  // namespace custodian::release
