#include "gateway/release/source.hpp"

#include <charconv>

#include <pqxx/pqxx>

#include "gateway/db/pool.hpp"
#include "policies/sql_identifier.hpp"

namespace custodian::release {

namespace {

constexpr const char* kRowCursor = "custodian_release_rows";
constexpr const char* kGroupCursor = "custodian_release_groups";
constexpr size_t kGroupPage = 20000;

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
    } catch (...) {
        return internalError("reading the source (" + during + "): unknown error");
    }
}

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
        q.where_ = " WHERE " + filter->sql;
        q.parameters_ = std::move(filter->parameters);
    }
    return q;
}

std::string SourceQuery::expression(size_t column) const {
    const std::string& c = quoted_[column];
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

std::string SourceQuery::selectSql() const {
    std::string sql = "SELECT ";
    for (size_t i = 0; i < columns_.size(); ++i) {
        if (i) sql += ", ";
        sql += expression(i);
    }
    return sql + " FROM " + table_ + where_;
}

std::string SourceQuery::groupCountSql(const std::vector<size_t>& columns) const {
    std::string sql = "SELECT ";
    for (size_t column : columns) sql += expression(column) + ", ";
    sql += "count(*) FROM " + table_ + where_;
    if (!columns.empty()) {
        sql += " GROUP BY ";
        for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + std::to_string(i + 1);
    }
    return sql;
}

std::string SourceQuery::countSql() const { return "SELECT count(*) FROM " + table_ + where_; }

std::optional<std::string> canonicalSourceValue(anon::ColumnType type, std::string_view text) {
    std::string out;
    switch (type) {
    case anon::ColumnType::Text: return std::string(text);
    case anon::ColumnType::Integer:
        if (auto v = anon::parseInteger(text)) return anon::appendInteger(out, *v), out;
        return std::nullopt;
    case anon::ColumnType::Decimal:
        if (auto v = anon::parseDecimal(text)) return anon::appendDecimal(out, *v), out;
        return std::nullopt;
    case anon::ColumnType::Date:
        if (auto v = anon::parseDate(text)) return anon::appendDate(out, *v), out;
        return std::nullopt;
    case anon::ColumnType::Timestamp:
        if (auto v = anon::parseTimestamp(text)) return anon::appendTimestamp(out, *v), out;
        return std::nullopt;
    }
    return std::nullopt;
}

struct SourceSnapshot::State {
    std::unique_ptr<pqxx::connection> connection;
    std::unique_ptr<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>> tx;
    const SourceQuery* rowQuery = nullptr;
    anon::SchemaPtr schema;
    bool rowsOpen = false;
    bool rowsDone = false;
};

Result<std::unique_ptr<SourceSnapshot>> SourceSnapshot::open(const std::string& conninfo,
                                                             std::chrono::seconds connectTimeout) {
    std::unique_ptr<SourceSnapshot> snapshot(new SourceSnapshot());
    snapshot->state_ = std::make_unique<State>();
    try {
        snapshot->state_->connection =
            std::make_unique<pqxx::connection>(db::withConnectTimeout(conninfo, connectTimeout));
        snapshot->state_->tx = std::make_unique<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>>(
            *snapshot->state_->connection, "custodian-release");
        // The canonical text forms rely on these; SET LOCAL keeps them inside this transaction.
        snapshot->state_->tx->exec("SET LOCAL DateStyle = 'ISO, YMD'");
        snapshot->state_->tx->exec("SET LOCAL TimeZone = 'UTC'");
        snapshot->state_->tx->exec("SET LOCAL extra_float_digits = 1");
    } catch (...) {
        Status s = sourceError(std::current_exception(), "connecting");
        // A source that cannot be reached at all is Unavailable, whatever libpq called it.
        if (s.code() == StatusCode::Internal && !snapshot->state_->tx)
            return Status(StatusCode::Unavailable, s.message());
        return s;
    }
    return snapshot;
}

SourceSnapshot::~SourceSnapshot() { close(); }

void SourceSnapshot::close() noexcept {
    if (!state_) return;
    try {
        state_->tx.reset();  // aborts the read-only transaction
        if (state_->connection) state_->connection->disconnect();
    } catch (...) {
        // Closing a broken connection can throw; nothing is left to release.
    }
    state_.reset();
}

Status SourceSnapshot::forEachGroup(const SourceQuery& query, const std::vector<size_t>& columns,
                                    const GroupVisitor& onGroup) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    auto& tx = *state_->tx;
    try {
        tx.exec_params(std::string("DECLARE ") + kGroupCursor + " NO SCROLL CURSOR FOR " + query.groupCountSql(columns),
                       pqxx::prepare::make_dynamic_params(query.parameters()));
        std::vector<std::string> canonical(columns.size());
        std::vector<SourceValue> values(columns.size());
        const std::string fetch = "FETCH FORWARD " + std::to_string(kGroupPage) + " FROM " + kGroupCursor;
        for (;;) {
            pqxx::result page = tx.exec(fetch);
            if (page.empty()) break;
            for (const auto& row : page) {
                for (size_t i = 0; i < columns.size(); ++i) {
                    const pqxx::field f = row[static_cast<pqxx::row::size_type>(i)];
                    if (f.is_null()) {
                        values[i] = std::nullopt;
                        continue;
                    }
                    const SourceColumn& column = query.columns()[columns[i]];
                    auto text = canonicalSourceValue(column.type, std::string_view(f.c_str(), f.size()));
                    if (!text)
                        return internalError("the source column '" + column.name + "' holds a value that is not " +
                                             typeNoun(column.type) + ", as the dataset declares");
                    canonical[i] = std::move(*text);
                    values[i] = std::string_view(canonical[i]);
                }
                const pqxx::field countField = row[static_cast<pqxx::row::size_type>(columns.size())];
                uint64_t count = 0;
                std::string_view countText(countField.c_str(), countField.size());
                auto [end, ec] = std::from_chars(countText.data(), countText.data() + countText.size(), count);
                if (ec != std::errc() || end != countText.data() + countText.size())
                    return internalError("the source returned a malformed group count");
                if (Status s = onGroup(values, count); !s) return s;
            }
        }
        tx.exec(std::string("CLOSE ") + kGroupCursor);
    } catch (...) {
        return sourceError(std::current_exception(), "counting quasi-identifier combinations");
    }
    return Status::ok();
}

Result<uint64_t> SourceSnapshot::countRows(const SourceQuery& query) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    try {
        pqxx::result r = state_->tx->exec_params(query.countSql(), pqxx::prepare::make_dynamic_params(query.parameters()));
        return static_cast<uint64_t>(r[0][0].as<int64_t>());
    } catch (...) {
        return sourceError(std::current_exception(), "counting rows");
    }
}

Status SourceSnapshot::openRows(const SourceQuery& query, anon::SchemaPtr schema) {
    if (!state_ || !state_->tx) return internalError("the source snapshot is closed");
    if (!schema || schema->size() != query.columns().size())
        return internalError("the row schema does not match the source query");
    for (size_t i = 0; i < schema->size(); ++i)
        if ((*schema)[i].type != query.columns()[i].type) return internalError("the row schema does not match the source query");
    if (state_->rowsOpen) return internalError("the row cursor is already open");
    try {
        state_->tx->exec_params(std::string("DECLARE ") + kRowCursor + " NO SCROLL CURSOR FOR " + query.selectSql(),
                                pqxx::prepare::make_dynamic_params(query.parameters()));
    } catch (...) {
        return sourceError(std::current_exception(), "opening the row cursor");
    }
    state_->rowQuery = &query;
    state_->schema = std::move(schema);
    state_->rowsOpen = true;
    return Status::ok();
}

Result<std::optional<anon::Batch>> SourceSnapshot::nextRows(size_t maxRows) {
    if (!state_ || !state_->tx || !state_->rowsOpen) return internalError("the row cursor is not open");
    if (state_->rowsDone) return std::optional<anon::Batch>();
    const anon::Schema& schema = *state_->schema;
    pqxx::result page;
    try {
        page = state_->tx->exec("FETCH FORWARD " + std::to_string(maxRows) + " FROM " + kRowCursor);
    } catch (...) {
        return sourceError(std::current_exception(), "fetching rows");
    }
    if (page.empty()) {
        state_->rowsDone = true;
        return std::optional<anon::Batch>();
    }
    const size_t rows = page.size();
    std::vector<anon::ColumnPtr> columns;
    columns.reserve(schema.size());
    for (size_t c = 0; c < schema.size(); ++c) {
        auto column = std::make_shared<anon::Column>(schema[c].type);
        column->reserve(rows, schema[c].type == anon::ColumnType::Text ? rows * 16 : 0);
        const auto pc = static_cast<pqxx::row::size_type>(c);
        for (size_t r = 0; r < rows; ++r) {
            const pqxx::field f = page[static_cast<pqxx::result::size_type>(r)][pc];
            if (f.is_null()) {
                column->appendNull();
            } else if (!column->appendParsed(std::string_view(f.c_str(), f.size()))) {
                return internalError("the source column '" + schema[c].name + "' holds a value that is not " +
                                     typeNoun(schema[c].type) + ", as the dataset declares");
            }
        }
        columns.push_back(std::move(column));
    }
    auto batch = anon::Batch::make(state_->schema, std::move(columns));
    if (!batch) return batch.status();
    return std::optional<anon::Batch>(std::move(batch).value());
}

}  // namespace custodian::release
