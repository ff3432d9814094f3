// Migrations against a real PostgreSQL: idempotent, safe when run concurrently, forward-only.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <filesystem>
#include <fstream>
#include <future>

#include "gateway/db/migrations.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::db;
using namespace custodian::testing;

TEST_CASE("migrations apply once, re-running is a no-op", "[integration][migrations]") {
    auto db = TestDatabase::create();
    auto migrations = loadMigrations(CUSTODIAN_SOURCE_DIR "/migrations");
    REQUIRE(migrations.isOk());
    pqxx::connection conn(db.conninfo());

    auto before = migrationState(conn, *migrations);
    REQUIRE(before.isOk());
    CHECK(before->applied.empty());
    CHECK(before->pending.size() == migrations->size());

    auto first = applyMigrations(conn, *migrations);
    REQUIRE(first.isOk());
    CHECK(first->size() == migrations->size());
    auto second = applyMigrations(conn, *migrations);
    REQUIRE(second.isOk());
    CHECK(second->empty());

    auto after = migrationState(conn, *migrations);
    REQUIRE(after.isOk());
    CHECK(after->current());
    pqxx::work txn(conn);
    CHECK(txn.exec("SELECT count(*) FROM schema_migrations")[0][0].as<size_t>() == migrations->size());
    CHECK(txn.exec("SELECT to_regclass('principals') IS NOT NULL")[0][0].as<bool>());
}

TEST_CASE("concurrent migrators apply each migration exactly once", "[integration][migrations]") {
    auto db = TestDatabase::create();
    auto migrations = loadMigrations(CUSTODIAN_SOURCE_DIR "/migrations");
    REQUIRE(migrations.isOk());
    auto run = [&] {
        pqxx::connection conn(db.conninfo());
        return applyMigrations(conn, *migrations);
    };
    std::vector<std::future<Result<std::vector<int>>>> runs;
    for (int i = 0; i < 4; ++i) runs.push_back(std::async(std::launch::async, run));
    size_t total = 0;
    for (auto& f : runs) {
        auto r = f.get();
        REQUIRE(r.isOk());
        total += r->size();
    }
    CHECK(total == migrations->size());
}

TEST_CASE("a failing migration rolls back and a changed one is refused", "[integration][migrations]") {
    auto db = TestDatabase::create();
    pqxx::connection conn(db.conninfo());
    auto good = parseMigration("0001_table.sql", "CREATE TABLE t (x int);");
    auto bad = parseMigration("0002_bad.sql", "CREATE TABLE u (x int); SELECT no_such_function();");
    REQUIRE(good.isOk());
    REQUIRE(bad.isOk());

    auto r = applyMigrations(conn, {*good, *bad});
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("0002_bad.sql") != std::string::npos);
    {
        pqxx::work txn(conn);
        CHECK(txn.exec("SELECT to_regclass('t') IS NOT NULL")[0][0].as<bool>());
        CHECK_FALSE(txn.exec("SELECT to_regclass('u') IS NOT NULL")[0][0].as<bool>());  // rolled back
    }
    auto state = migrationState(conn, {*good, *bad});
    REQUIRE(state.isOk());
    CHECK(state->pending == std::vector<int>{2});

    auto changed = parseMigration("0001_table.sql", "CREATE TABLE t (x bigint);");
    REQUIRE(changed.isOk());
    auto refused = applyMigrations(conn, {*changed});
    CHECK(refused.status().code() == StatusCode::FailedPrecondition);
    CHECK(refused.status().message().find("changed after it was applied") != std::string::npos);
}

TEST_CASE("migration 0007 marks every earlier extract as keyed with derivation 1 and requires it of new ones",
          "[integration][migrations]") {
    auto db = TestDatabase::create();
    auto migrations = loadMigrations(CUSTODIAN_SOURCE_DIR "/migrations");
    REQUIRE(migrations.isOk());
    std::vector<Migration> before, all = *migrations;
    for (const auto& m : all)
        if (m.version < 7) before.push_back(m);
    REQUIRE(before.size() == 6);
    pqxx::connection conn(db.conninfo());
    REQUIRE(applyMigrations(conn, before).isOk());
    {
        pqxx::work tx(conn);
        for (const char* status : {"completed", "aborted", "not_released"})
            tx.exec_params0(
                "INSERT INTO extracts (id, dataset, policy, policy_version, policy_hash, recipient, purpose, "
                "format, status, requested_entry_index) VALUES ($1, 'visits', 'research', 1, 'ab', "
                "'partner-a', 'research', 'csv', $2, 0)",
                std::string("ext_") + status, status);
        tx.commit();
    }
    REQUIRE(applyMigrations(conn, all).isOk());
    auto insertNew = [&](const std::string& derivationColumn, const std::string& derivationValue) {
        pqxx::work tx(conn);
        tx.exec0("INSERT INTO extracts (id, dataset, policy, policy_version, policy_hash, recipient, purpose, format, "
                 "status, requested_entry_index" +
                 derivationColumn +
                 ") VALUES ('ext_new', 'visits', 'research', 1, "
                 "'ab', 'partner-a', 'research', 'csv', 'preparing', 0" +
                 derivationValue + ")");
        tx.commit();
    };
    CHECK_THROWS_AS(insertNew("", ""), pqxx::not_null_violation);
    CHECK_THROWS_AS(insertNew(", key_derivation", ", 3"), pqxx::check_violation);
    insertNew(", key_derivation", ", 2");
    pqxx::work tx(conn);
    CHECK(tx.exec("SELECT count(*) FROM extracts WHERE key_derivation = 1")[0][0].as<int>() == 3);
    CHECK(tx.exec("SELECT key_derivation FROM extracts WHERE id = 'ext_new'")[0][0].as<int>() == 2);
}
