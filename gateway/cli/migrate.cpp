// `custodian migrate --config FILE`: apply pending migrations and report the schema state.
#include <pqxx/pqxx>

#include <cstdio>

#include "gateway/cli/args.hpp"
#include "gateway/config/config.hpp"
#include "gateway/db/migrations.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/db/roles.hpp"

namespace custodian::cli {

namespace {

// Grants the role that database.conninfo logs in as its runtime privileges (db::runtimeGrantSql).
Status grantRuntime(pqxx::connection& owner, const config::GatewayConfig& config) {
    auto ownerRole = db::currentRole(owner);
    if (!ownerRole) return ownerRole.status();
    Result<std::string> runtimeRole = unavailable("not connected");
    try {
        pqxx::connection runtime(db::withConnectTimeout(config.database.conninfo, config.database.connectTimeout));
        runtimeRole = db::currentRole(runtime);
    } catch (const std::exception& e) {
        return unavailable(std::string("database.conninfo: cannot connect as the runtime role: ") + e.what());
    }
    if (!runtimeRole) return runtimeRole.status().withContext("database.conninfo");
    if (*runtimeRole == *ownerRole)
        return invalidArgument("database.conninfo and database.owner_conninfo both log in as \"" + *ownerRole +
                               "\"; the runtime role must be a different role");
    if (Status s = db::grantRuntimeRole(owner, *runtimeRole); !s) return s;
    std::printf("granted the runtime role \"%s\" its privileges (audit log: SELECT, INSERT)\n", runtimeRole->c_str());
    return Status::ok();
}

}  // namespace

int runMigrate(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"config", true, true,
         "gateway configuration (JSON); uses database.owner_conninfo (or conninfo), conninfo and migrations_dir",
         "FILE"},
        {"status", false, false, "only report applied and pending migrations, change nothing"},
    };
    const std::string synopsis = "migrate --config FILE [--status]";
    const std::string description =
        "Apply the pending migrations/NNNN_*.sql files to the gateway database, in order, each in its own\n"
        "transaction, as the owner role (database.owner_conninfo). Then grant the runtime role that\n"
        "database.conninfo logs in as exactly what `custodian serve` needs: read and append on the audit\n"
        "tables, read and write on the catalog, no ownership, no UPDATE/DELETE/TRUNCATE of the log.\n"
        "Idempotent, and safe to run concurrently (an advisory lock serialises migrators). Without\n"
        "owner_conninfo one role owns everything, and `custodian serve` refuses to run as it.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian migrate: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::fputs(usageText(synopsis, description, specs).c_str(), stdout);
        return 0;
    }
    auto config = config::loadConfig(*args->get("config"));
    if (!config) {
        std::fprintf(stderr, "custodian migrate: %s\n", config.status().message().c_str());
        return 2;
    }
    auto migrations = db::loadMigrations(config->database.migrationsDir);
    if (!migrations) {
        std::fprintf(stderr, "custodian migrate: %s\n", migrations.status().message().c_str());
        return 1;
    }
    const bool twoRoles = !config->database.ownerConninfo.empty();
    db::PoolOptions options;
    options.conninfo = twoRoles ? config->database.ownerConninfo : config->database.conninfo;
    options.size = 1;
    options.connectTimeout = config->database.connectTimeout;
    db::ConnectionPool pool(options);
    Status s = pool.withConnection([&](pqxx::connection& conn) -> Status {
        if (args->has("status")) {
            auto state = db::migrationState(conn, *migrations);
            if (!state) return state.status();
            std::printf("applied: %zu, pending: %zu\n", state->applied.size(), state->pending.size());
            for (int v : state->pending) std::printf("pending %04d\n", v);
            return Status::ok();
        }
        auto applied = db::applyMigrations(conn, *migrations);
        if (!applied) return applied.status();
        if (applied->empty()) std::printf("schema is current (%zu migrations)\n", migrations->size());
        for (int v : *applied) {
            for (const auto& m : *migrations)
                if (m.version == v) std::printf("applied %s\n", m.name.c_str());
        }
        if (!twoRoles) {
            std::fprintf(stderr,
                         "custodian migrate: database.owner_conninfo is not set, so the role of database.conninfo "
                         "owns the schema; custodian serve refuses to run as a role that could rewrite the audit "
                         "log (docs/operations.md, \"Database roles\")\n");
            return Status::ok();
        }
        return grantRuntime(conn, *config);
    });
    if (!s) {
        std::fprintf(stderr, "custodian migrate: %s\n", s.message().c_str());
        return 1;
    }
    return 0;
}

}  // namespace custodian::cli
