// `custodian migrate --config FILE`: apply pending migrations and report the schema state.
#include <cstdio>

#include "gateway/cli/args.hpp"
#include "gateway/config/config.hpp"
#include "gateway/db/migrations.hpp"
#include "gateway/db/pool.hpp"

namespace custodian::cli {

int runMigrate(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"config", true, true, "gateway configuration (JSON); uses database.conninfo and migrations_dir", "FILE"},
        {"status", false, false, "only report applied and pending migrations, change nothing"},
    };
    const std::string synopsis = "migrate --config FILE [--status]";
    const std::string description =
        "Apply the pending migrations/NNNN_*.sql files to the gateway database, in order, each in its own\n"
        "transaction. Idempotent, and safe to run concurrently (an advisory lock serialises migrators).";
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
    db::PoolOptions options;
    options.conninfo = config->database.conninfo;
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
        return Status::ok();
    });
    if (!s) {
        std::fprintf(stderr, "custodian migrate: %s\n", s.message().c_str());
        return 1;
    }
    return 0;
}

}  // namespace custodian::cli
