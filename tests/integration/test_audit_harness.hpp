#pragma once
// Shared set-up for the audit integration tests: a fresh database with the migrations applied by
// the superuser, a NON-superuser login role for the gateway (so that revoking a privilege bites and
// the append-only triggers are what a normal connection meets), a GatewayRuntime serving HTTP on a
// free port in a background thread, and one principal per role.

#include <pqxx/pqxx>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "gateway/audit/log.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/config/config.hpp"
#include "gateway/db/migrations.hpp"
#include "gateway/db/roles.hpp"
#include "gateway/http/server.hpp"
#include "gateway/api/services.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "test_source_endpoints.hpp"

namespace custodian::testing {

// A database with the schema and a gateway role `<db>_gw` holding exactly the runtime privileges
// `custodian migrate` grants (db::runtimeGrantSql): serve's own start-up check accepts it.
class AuditDatabase {
public:
    AuditDatabase() : db_(TestDatabase::create("custodian_audit")), gatewayRole_(db_.name() + "_gw") {
        auto migrations = db::loadMigrations(std::string(CUSTODIAN_SOURCE_DIR) + "/migrations");
        if (!migrations) throw std::runtime_error(migrations.status().message());
        {
            pqxx::connection conn(db_.conninfo());
            auto applied = db::applyMigrations(conn, *migrations);
            if (!applied) throw std::runtime_error(applied.status().message());
        }
        runPsql(db_.conninfo(), "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + gatewayRole_ +
                                    "') THEN CREATE ROLE \"" + gatewayRole_ + "\" LOGIN; END IF; END $$;\n" +
                                    db::runtimeGrantSql(gatewayRole_));
    }
    ~AuditDatabase() {
        // Roles are cluster-wide: remove this one's privileges here, then the role itself.
        try {
            runPsql(db_.conninfo(), "DROP OWNED BY \"" + gatewayRole_ + "\"; DROP ROLE \"" + gatewayRole_ + "\";");
        } catch (...) {}
    }
    AuditDatabase(const AuditDatabase&) = delete;
    AuditDatabase& operator=(const AuditDatabase&) = delete;

    // Superuser connection (tampering, grants).
    const std::string& adminConninfo() const { return db_.conninfo(); }
    // The gateway's connection: the same database as the non-superuser role (later keywords win).
    std::string gatewayConninfo() const { return db_.conninfo() + " user=" + gatewayRole_; }
    const std::string& gatewayRole() const { return gatewayRole_; }
    const std::string& name() const { return db_.name(); }

private:
    TestDatabase db_;
    std::string gatewayRole_;
};

inline config::GatewayConfig gatewayConfig(const std::string& conninfo, const std::filesystem::path& keyDir) {
    config::GatewayConfig c;
    c.listen.address = "127.0.0.1";
    c.listen.port = 0;
    c.threads = 2;
    c.database.conninfo = conninfo;
    c.database.poolSize = 4;
    c.database.migrationsDir = std::string(CUSTODIAN_SOURCE_DIR) + "/migrations";
    c.signingKeyFile = (keyDir / "gateway-signing.key").string();
    c.masterKeyFile = (keyDir / "gateway-master.key").string();
    c.readinessInterval = std::chrono::milliseconds(200);
    c.accessLog = false;
    allowTestSources(c);
    return c;
}

inline std::filesystem::path freshTempDir(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

// A gateway serving on a free port until destruction.
class AuditGateway {
public:
    explicit AuditGateway(AuditDatabase& db, config::AuditConfig audit = {})
        : keyDir_(freshTempDir("custodian-audit")) {
        auto c = gatewayConfig(db.gatewayConninfo(), keyDir_);
        c.audit = audit;
        api::RuntimeOptions options;
        options.applyMigrationsAtStart = false;  // applied by the superuser; the gateway runs as the runtime role
        auto rt = api::GatewayRuntime::create(std::move(c), std::move(options));
        if (!rt) throw std::runtime_error(rt.status().message());
        runtime_ = std::move(rt).value();
        server_ = std::make_unique<http::Server>(runtime_->serverParts());
        if (Status s = server_->start(); !s) throw std::runtime_error(s.message());
        thread_ = std::thread([this] { server_->run(); });
        pqxx::connection conn(db.gatewayConninfo());
        const auto& tokens = *runtime_->services().tokens;
        auditorToken = mustAdd(conn, tokens, "auditor-ada", auth::Role::Auditor);
        partnerToken = mustAdd(conn, tokens, "partner-pat", auth::Role::Partner);
        publisherToken = mustAdd(conn, tokens, "publisher-pia", auth::Role::Publisher, "health");
        adminToken = mustAdd(conn, tokens, "admin-ava", auth::Role::Admin);
    }
    ~AuditGateway() {
        server_->requestShutdown();
        thread_.join();
        server_.reset();
        runtime_.reset();
        std::error_code ec;
        std::filesystem::remove_all(keyDir_, ec);
    }

    uint16_t port() const { return server_->port(); }
    api::Services& services() { return runtime_->services(); }
    audit::AuditLog& log() { return *runtime_->services().audit; }
    const crypto::SigningKey& signingKey() const { return *runtime_->services().signingKey; }

    HttpResult get(const std::string& target, const std::string& token) const {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
        return httpRequest(port(), "GET", target, headers);
    }

    std::string auditorToken, partnerToken, publisherToken, adminToken;

private:
    static std::string mustAdd(pqxx::connection& conn, const auth::TokenHasher& tokens, const std::string& name,
                               auth::Role role, const std::string& agency = "") {
        auth::NewPrincipal p;
        p.name = name;
        p.role = role;
        p.agency = agency;
        auto token = auth::addPrincipal(conn, tokens, p);
        if (!token) throw std::runtime_error(token.status().message());
        return *token;
    }

    std::filesystem::path keyDir_;
    std::unique_ptr<api::GatewayRuntime> runtime_;
    std::unique_ptr<http::Server> server_;
    std::thread thread_;
};

// A minimal audit entry as a handler would build it.
inline audit::AuditEntry testEntry(const std::string& actor, const std::string& action,
                                   const std::string& dataset = "") {
    audit::AuditEntry e;
    e.actor = actor;
    e.role = "partner";
    e.action = action;
    e.decision = "allowed";
    e.requestId = "test";
    e.clientAddress = "127.0.0.1";
    if (!dataset.empty()) e.target.dataset = dataset;
    return e;
}

}  // namespace custodian::testing
