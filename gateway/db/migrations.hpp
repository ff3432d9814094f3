#pragma once
// Forward-only schema migrations: migrations/NNNN_description.sql, applied in version order, each
// in its own transaction together with its row in schema_migrations (version, name, SHA-256 of the
// file, applied_at). Applying is idempotent and safe to run from several processes at once: the
// runner holds a PostgreSQL advisory lock while it reads and applies. A migration whose file
// changed after it was applied is reported as an error, never re-applied.

#include <pqxx/connection>

#include <string>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::db {

struct Migration {
    int version = 0;   // NNNN
    std::string name;  // file name, e.g. "0001_core.sql"
    std::string sql;
    std::string checksum;  // lowercase hex SHA-256 of `sql`
};

// Reads `dir`: every `NNNN_[a-z0-9_]+.sql` file, sorted by version. Any other `.sql` file name,
// a duplicate version or version 0 is an error (so a misnamed file is never skipped silently);
// files not ending in .sql are ignored.
Result<std::vector<Migration>> loadMigrations(const std::string& dir);

// Builds a Migration from a file name and its text (exposed for tests).
Result<Migration> parseMigration(const std::string& fileName, std::string sql);

struct MigrationState {
    std::vector<int> applied;  // versions recorded in schema_migrations, ascending
    std::vector<int> pending;  // known versions not applied yet, ascending
    bool current() const { return pending.empty(); }
};

// Reads the applied versions and compares them with `known` (no lock, no changes). Fails if an
// applied migration's checksum differs from its file.
Result<MigrationState> migrationState(pqxx::connection& conn, const std::vector<Migration>& known);

// Applies every pending migration under the advisory lock; returns the versions it applied (empty
// when the schema was already current).
Result<std::vector<int>> applyMigrations(pqxx::connection& conn, const std::vector<Migration>& known);

}  // namespace custodian::db
