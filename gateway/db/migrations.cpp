#include "gateway/db/migrations.hpp"

#include <pqxx/pqxx>
#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "gateway/db/pool.hpp"

namespace custodian::db {
namespace {

// Arbitrary constant shared by every Custodian process: "cust" "migr" in ASCII.
constexpr long long kMigrationLockKey = 0x637573746d696772LL;

std::string sha256Hex(const std::string& text) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    static const char* kHex = "0123456789abcdef";
    std::string out;
    out.reserve(sizeof digest * 2);
    for (unsigned char b : digest) {
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
    }
    return out;
}

std::string ensureTableSql() {
    return "CREATE TABLE IF NOT EXISTS schema_migrations ("
           " version integer PRIMARY KEY,"
           " name text NOT NULL,"
           " checksum text NOT NULL,"
           " applied_at timestamptz NOT NULL DEFAULT now())";
}

struct AppliedRow {
    std::string name;
    std::string checksum;
};

// Reads schema_migrations, or nothing if the table does not exist yet.
std::map<int, AppliedRow> readApplied(pqxx::transaction_base& txn) {
    std::map<int, AppliedRow> applied;
    auto exists = txn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists[0][0].as<bool>()) return applied;
    for (const auto& row : txn.exec("SELECT version, name, checksum FROM schema_migrations ORDER BY version"))
        applied[row[0].as<int>()] = AppliedRow{row[1].as<std::string>(), row[2].as<std::string>()};
    return applied;
}

Result<MigrationState> compare(const std::map<int, AppliedRow>& applied, const std::vector<Migration>& known) {
    MigrationState state;
    for (const auto& [version, row] : applied) state.applied.push_back(version);
    for (const auto& m : known) {
        auto it = applied.find(m.version);
        if (it == applied.end()) {
            state.pending.push_back(m.version);
        } else if (it->second.checksum != m.checksum) {
            return failedPrecondition("migration " + m.name + " was changed after it was applied (applied as " +
                                      it->second.name + "); migrations are forward-only: add a new one");
        }
    }
    return state;
}

}  // namespace

Result<Migration> parseMigration(const std::string& fileName, std::string sql) {
    static const std::regex kName(R"(^([0-9]{4})_[a-z0-9_]+\.sql$)");
    std::smatch match;
    if (!std::regex_match(fileName, match, kName))
        return invalidArgument(fileName + ": migration files must be named NNNN_description.sql "
                                          "(four digits, lowercase letters, digits, underscores)");
    Migration m;
    m.version = std::stoi(match[1].str());
    if (m.version == 0) return invalidArgument(fileName + ": migration versions start at 0001");
    m.name = fileName;
    if (sodium_init() < 0) return internalError("libsodium failed to initialise");
    m.checksum = sha256Hex(sql);
    m.sql = std::move(sql);
    return m;
}

Result<std::vector<Migration>> loadMigrations(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return notFound(dir + ": migrations directory does not exist");
    std::vector<Migration> out;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (!entry.is_regular_file() || entry.path().extension() != ".sql") continue;
        std::ifstream in(entry.path(), std::ios::binary);
        if (!in) return internalError(entry.path().string() + ": cannot read");
        std::stringstream text;
        text << in.rdbuf();
        auto m = parseMigration(entry.path().filename().string(), text.str());
        if (!m) return m.status();
        out.push_back(std::move(m).value());
    }
    if (ec) return internalError(dir + ": " + ec.message());
    std::sort(out.begin(), out.end(), [](const Migration& a, const Migration& b) { return a.version < b.version; });
    for (size_t i = 1; i < out.size(); ++i) {
        if (out[i].version == out[i - 1].version)
            return invalidArgument("migrations " + out[i - 1].name + " and " + out[i].name + " share version " +
                                   std::to_string(out[i].version));
    }
    return out;
}

Result<MigrationState> migrationState(pqxx::connection& conn, const std::vector<Migration>& known) {
    try {
        pqxx::read_transaction txn(conn);
        auto applied = readApplied(txn);
        txn.commit();
        return compare(applied, known);
    } catch (...) { return statusFromException(std::current_exception(), "reading schema_migrations"); }
}

Result<std::vector<int>> applyMigrations(pqxx::connection& conn, const std::vector<Migration>& known) {
    std::vector<int> appliedNow;
    try {
        {
            pqxx::nontransaction lock(conn);
            lock.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
            // Only when missing: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the
            // table exists, and a role without it (the runtime role) may still find nothing to do.
            if (lock.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0].as<bool>())
                lock.exec(ensureTableSql());
        }
        std::map<int, AppliedRow> applied;
        {
            pqxx::read_transaction txn(conn);
            applied = readApplied(txn);
            txn.commit();
        }
        auto state = compare(applied, known);
        if (!state) {
            pqxx::nontransaction unlock(conn);
            unlock.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
            return state.status();
        }
        for (const auto& m : known) {
            if (applied.count(m.version)) continue;
            try {
                pqxx::work txn(conn);
                txn.exec(m.sql);
                txn.exec("INSERT INTO schema_migrations (version, name, checksum) VALUES (" + txn.quote(m.version) +
                         ", " + txn.quote(m.name) + ", " + txn.quote(m.checksum) + ")");
                txn.commit();
            } catch (...) {
                Status s = statusFromException(std::current_exception(), "applying " + m.name);
                if (s.code() != StatusCode::Unavailable) {
                    pqxx::nontransaction unlock(conn);
                    unlock.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
                }
                return s;
            }
            appliedNow.push_back(m.version);
        }
        pqxx::nontransaction unlock(conn);
        unlock.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
        return appliedNow;
    } catch (...) {
        // A broken connection releases the session-level lock by itself.
        return statusFromException(std::current_exception(), "migrating");
    }
}

}  // namespace custodian::db
