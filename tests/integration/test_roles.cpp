// Least privilege (docs/security.md; docs/operations.md, "Database roles"): `custodian migrate`
// applies the schema as the owner role and grants the runtime role only reads and appends on the
// audit log; `serve` refuses to start, and is not ready, on a role that could rewrite the log; plain
// HTTP is served on loopback only unless the configuration says a TLS-terminating proxy is in front.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gateway/config/config.hpp"
#include "gateway/http/message.hpp"
#include "gateway/api/services.hpp"
#include "runtime_role.hpp"
#include "serve_process.hpp"
#include "support/pg_cluster.hpp"
#include "json/writer.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/custodian-roles-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::string readText(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

// A configuration file for `custodian migrate` / `serve`.
std::string writeConfig(const TempDir& dir, const std::string& name, const std::string& conninfo,
                        const std::string& ownerConninfo, const std::string& listen) {
    const auto file = dir.path / name;
    std::ofstream(file) << "{\"listen\":" << listen << ",\"database\":{\"conninfo\":" << json::quoted(conninfo)
                        << (ownerConninfo.empty() ? "" : ",\"owner_conninfo\":" + json::quoted(ownerConninfo))
                        << "},\"keys\":{\"signing_key_file\":" << json::quoted((dir.path / "gateway.key").string())
                        << ",\"master_key_file\":" << json::quoted((dir.path / "master.key").string())
                        << "},\"log\":{\"access_log\":false}}";
    return file.string();
}

config::GatewayConfig inProcessConfig(const TempDir& dir, const std::string& conninfo) {
    auto c = config::loadConfig(writeConfig(dir, "inprocess.json", conninfo, "", R"({"port":0})"));
    if (!c) throw std::runtime_error(c.status().message());
    return std::move(c).value();
}

// The SQLSTATE of running `sql` as `conninfo`, or "" when it succeeded.
std::string sqlstateOf(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    try {
        pqxx::work txn(conn);
        txn.exec(sql);
        txn.commit();
        return "";
    } catch (const pqxx::insufficient_privilege&) {
        return "42501";  // libpqxx 6.4 leaves sqlstate() empty on this path; the class says it
    } catch (const pqxx::sql_error& e) {
        return e.sqlstate().empty() ? std::string("error: ") + e.what() : e.sqlstate();
    }
}

// Runs `custodian migrate` as the owner role, granting `runtime`.
void migrateWithTwoRoles(const TempDir& dir, const TestDatabase& db, const RuntimeRole& runtime) {
    const std::string config = writeConfig(dir, "migrate.json", runtime.conninfo(), db.conninfo(), R"({"port":0})");
    const std::string log = (dir.path / "migrate.log").string();
    REQUIRE(runCommand({CUSTODIAN_BINARY, "migrate", "--config", config}, log) == 0);
    INFO(readText(log));
    CHECK(readText(log).find("granted the runtime role \"" + runtime.name() + "\"") != std::string::npos);
}

}  // namespace

TEST_CASE("as the runtime role custodian migrate grants, UPDATE, DELETE, TRUNCATE and ALTER TABLE on the audit "
          "tables all fail",
          "[integration][roles][security]") {
    auto db = TestDatabase::create("custodian_roles");
    RuntimeRole runtime(db);
    TempDir dir;
    migrateWithTwoRoles(dir, db, runtime);

    // serve accepts the role, and an audit append goes through as it.
    {
        auto rt = api::GatewayRuntime::create(inProcessConfig(dir, runtime.conninfo()));
        REQUIRE(rt.isOk());
        (*rt)->services().readiness->probeNow();
        INFO((*rt)->services().readiness->reason());
        CHECK((*rt)->services().readiness->ready());
    }
    CHECK(sqlstateOf(runtime.conninfo(),
                     "INSERT INTO audit_entries (entry_index, entry, leaf_hash, recorded_at, actor, "
                     "role, action, decision) VALUES (0, '\\x00'::bytea, decode(repeat('00', 32), "
                     "'hex'), now(), 'a', 'system', 'test', 'allowed')")
              .empty());
    CHECK(sqlstateOf(runtime.conninfo(), "UPDATE audit_log_head SET next_index = next_index + 1").empty());

    // 42501 insufficient_privilege: refused by the privilege system, before any trigger runs.
    const char* refused[] = {
        "UPDATE audit_entries SET actor = 'x'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
        "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
        "ALTER TABLE audit_entries DISABLE TRIGGER ALL",
        "DROP TABLE audit_entries",
        "UPDATE audit_tree_heads SET timestamp_ms = 0",
        "DELETE FROM audit_tree_heads",
        "TRUNCATE audit_tree_heads",
        "ALTER TABLE audit_tree_heads DISABLE TRIGGER audit_tree_heads_append_only",
        "DELETE FROM audit_log_head",
        "TRUNCATE audit_log_head",
        "ALTER TABLE audit_log_head DISABLE TRIGGER audit_log_head_forward_only",
        "CREATE OR REPLACE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER sneaky BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_reject_change()",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
        "CREATE TABLE public.runtime_cannot_create (x int)",
    };
    for (const char* sql : refused) {
        INFO(sql);
        CHECK(sqlstateOf(runtime.conninfo(), sql) == "42501");
    }
}

TEST_CASE("serve refuses to start on a role that owns or may alter the audit tables, and says why",
          "[integration][roles][security]") {
    auto db = TestDatabase::create("custodian_roles");
    RuntimeRole runtime(db);
    TempDir dir;
    migrateWithTwoRoles(dir, db, runtime);
    const std::string r = "\"" + runtime.name() + "\"";

    auto refusal = [&](const std::string& conninfo) {
        auto rt = api::GatewayRuntime::create(inProcessConfig(dir, conninfo));
        REQUIRE_FALSE(rt.isOk());
        CHECK(rt.status().code() == StatusCode::FailedPrecondition);
        return rt.status().message();
    };
    // Each excess privilege, granted and then taken back, is refused with its own reason.
    struct Case {
        std::string grant, revoke, reason;
    };
    const std::vector<Case> cases = {
        {"GRANT UPDATE ON audit_entries TO " + r, "REVOKE UPDATE ON audit_entries FROM " + r,
         "holds UPDATE on audit_entries"},
        {"GRANT DELETE ON audit_tree_heads TO " + r, "REVOKE DELETE ON audit_tree_heads FROM " + r,
         "holds DELETE on audit_tree_heads"},
        {"GRANT TRUNCATE ON audit_log_head TO " + r, "REVOKE TRUNCATE ON audit_log_head FROM " + r,
         "holds TRUNCATE on audit_log_head"},
        {"GRANT TRIGGER ON audit_entries TO " + r, "REVOKE TRIGGER ON audit_entries FROM " + r,
         "holds TRIGGER on audit_entries"},
        {"ALTER TABLE audit_tree_heads OWNER TO " + r, "ALTER TABLE audit_tree_heads OWNER TO CURRENT_USER",
         "owns audit_tree_heads"},
        {"ALTER SCHEMA public OWNER TO " + r, "ALTER SCHEMA public OWNER TO pg_database_owner",
         "owns the schema public that holds audit_entries"},
        {"ALTER FUNCTION audit_reject_change() OWNER TO " + r,
         "ALTER FUNCTION audit_reject_change() OWNER TO CURRENT_USER", "owns the trigger function audit_reject_change"},
    };
    for (const auto& c : cases) {
        INFO(c.grant);
        runPsql(db.conninfo(), c.grant);
        const std::string message = refusal(runtime.conninfo());
        CHECK(message.rfind("database.conninfo: the database role " + r + " " + c.reason, 0) == 0);
        CHECK(message.find("custodian migrate") != std::string::npos);
        runPsql(db.conninfo(), c.revoke);
    }
    CHECK(refusal(db.conninfo()).find("is a superuser") != std::string::npos);

    // A grant made while the gateway runs takes it out of rotation at the next readiness probe.
    {
        auto rt = api::GatewayRuntime::create(inProcessConfig(dir, runtime.conninfo()));
        REQUIRE(rt.isOk());
        auto* readiness = (*rt)->services().readiness;
        readiness->probeNow();
        CHECK(readiness->ready());
        runPsql(db.conninfo(), "GRANT UPDATE ON audit_entries TO " + r);
        readiness->probeNow();
        CHECK_FALSE(readiness->ready());
        CHECK(readiness->reason().find("may rewrite the audit log: the database role " + r +
                                       " holds UPDATE on audit_entries") != std::string::npos);
        runPsql(db.conninfo(), "REVOKE UPDATE ON audit_entries FROM " + r);
        readiness->probeNow();
        CHECK(readiness->ready());
    }

    // The executable: exits with the reason instead of serving.
    const std::string config =
        writeConfig(dir, "superuser.json", db.conninfo(), "", "{\"port\":" + std::to_string(freeTcpPort()) + "}");
    const std::string log = (dir.path / "serve.log").string();
    ServeProcess serve(config, log);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (serve.alive() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(serve.alive());
    INFO(readText(log));
    CHECK(readText(log).find("custodian serve: database.conninfo: the database role") != std::string::npos);
    CHECK(readText(log).find("is a superuser") != std::string::npos);
}

TEST_CASE("serve listens on loopback by default and serves plain HTTP elsewhere only behind a declared TLS proxy",
          "[integration][roles][security]") {
    auto db = TestDatabase::create("custodian_roles");
    RuntimeRole runtime(db);
    TempDir dir;
    migrateWithTwoRoles(dir, db, runtime);

    // No address: 127.0.0.1.
    {
        const int port = freeTcpPort();
        const std::string config =
            writeConfig(dir, "default.json", runtime.conninfo(), "", "{\"port\":" + std::to_string(port) + "}");
        ServeProcess serve(config, (dir.path / "default.log").string());
        REQUIRE(waitReady(static_cast<uint16_t>(port), std::chrono::seconds(60)));
        INFO(readText(dir.path / "default.log"));
        CHECK(readText(dir.path / "default.log").find("listening on http://127.0.0.1:") != std::string::npos);
    }
    // Every interface over plain HTTP: refused at start, with the way out named.
    {
        const std::string config =
            writeConfig(dir, "open.json", runtime.conninfo(), "",
                        "{\"address\":\"0.0.0.0\",\"port\":" + std::to_string(freeTcpPort()) + "}");
        const std::string log = (dir.path / "open.log").string();
        CHECK(runCommand({CUSTODIAN_BINARY, "serve", "--config", config}, log) == 2);
        INFO(readText(log));
        CHECK(readText(log).find("listen.address: 0.0.0.0 is reachable from other hosts and no tls section is "
                                 "configured") != std::string::npos);
        CHECK(readText(log).find("listen.behind_tls_proxy") != std::string::npos);
    }
    // Declared behind a TLS-terminating proxy: served, and said so at start.
    {
        const int port = freeTcpPort();
        const std::string config =
            writeConfig(dir, "proxied.json", runtime.conninfo(), "",
                        "{\"address\":\"0.0.0.0\",\"port\":" + std::to_string(port) + ",\"behind_tls_proxy\":true}");
        const std::string log = (dir.path / "proxied.log").string();
        ServeProcess serve(config, log);
        REQUIRE(waitReady(static_cast<uint16_t>(port), std::chrono::seconds(60)));
        INFO(readText(log));
        CHECK(readText(log).find("plain HTTP on 0.0.0.0, reachable from other hosts: listen.behind_tls_proxy") !=
              std::string::npos);
    }
}
