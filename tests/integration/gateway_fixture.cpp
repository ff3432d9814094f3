#include "gateway_fixture.hpp"

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

#include "support/http_client.hpp"
#include "test_source_endpoints.hpp"

namespace custodian::testing {

config::GatewayConfig testConfig(const std::string& conninfo, const std::string& keyDir) {
    config::GatewayConfig c;
    c.listen.address = "127.0.0.1";
    c.listen.port = 0;
    c.threads = 2;
    c.database.conninfo = conninfo;
    c.database.poolSize = 3;
    c.database.connectTimeout = std::chrono::seconds(2);
    c.database.acquireTimeout = std::chrono::milliseconds(3000);
    c.database.migrationsDir = CUSTODIAN_SOURCE_DIR "/migrations";
    c.signingKeyFile = keyDir + "/gateway.key";
    c.masterKeyFile = keyDir + "/master.key";
    c.readinessInterval = std::chrono::milliseconds(100);
    c.shutdownDeadline = std::chrono::milliseconds(10000);
    c.accessLog = false;
    // Many tests drive one principal hard on purpose; the per-principal rate limit is tested on its
    // own (test_overload.cpp sets it), so it must not turn their requests into 429s.
    c.overload.requestsPerSecond = 0;
    // Agency databases live on the test cluster (127.0.0.1 or its socket directory).
    allowTestSources(c);
    return c;
}

RunningGateway::RunningGateway(const std::string& conninfo, GatewayOptions options) {
    char tmpl[] = "/tmp/custodian-gw-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    keyDir_ = tmpl;
    // A constructor that throws runs no destructor: the key directory (with the keys the runtime
    // wrote) is removed here then.
    try {
        config::GatewayConfig c = testConfig(conninfo, keyDir_);
        if (options.adjustConfig) options.adjustConfig(c);
        api::RuntimeOptions runtimeOptions;
        // The in-process gateway runs as the test cluster's superuser (tests tamper with its tables
        // directly); the two-role set-up serve insists on is covered by test_roles.cpp and the audit
        // harness.
        runtimeOptions.applyMigrationsAtStart = true;
        runtimeOptions.requireLeastPrivilege = false;
        runtimeOptions.extraRoutes = std::move(options.extraRoutes);
        auto rt = api::GatewayRuntime::create(std::move(c), std::move(runtimeOptions));
        if (!rt) throw std::runtime_error("gateway runtime: " + rt.status().message());
        runtime_ = std::move(rt).value();
        server_ = std::make_unique<http::Server>(runtime_->serverParts());
        if (Status s = server_->start(); !s) throw std::runtime_error("server start: " + s.message());
        thread_ = std::thread([this] { server_->run(); });
    } catch (...) {
        server_.reset();
        runtime_.reset();
        std::error_code ec;
        std::filesystem::remove_all(keyDir_, ec);
        throw;
    }
}

RunningGateway::~RunningGateway() {
    if (thread_.joinable()) {
        requestShutdown();
        join();
    }
    server_.reset();
    runtime_.reset();
    std::error_code ec;
    std::filesystem::remove_all(keyDir_, ec);
}

void RunningGateway::requestShutdown() { server_->requestShutdown(); }

void RunningGateway::join() {
    if (thread_.joinable()) thread_.join();
}

std::string RunningGateway::addPrincipal(auth::Role role, const std::string& name, const std::string& agency,
                                         std::optional<crypto::BoxPublicKey> publicKey) {
    std::string token;
    auth::NewPrincipal p;
    p.name = name;
    p.role = role;
    p.agency = agency;
    p.publicKey = publicKey;
    if (role == auth::Role::Partner && !p.publicKey) {
        crypto::BoxPublicKey key;
        key.bytes.fill(7);
        p.publicKey = key;
    }
    Status s = services().db->withConnection([&](pqxx::connection& conn) -> Status {
        auto t = auth::addPrincipal(conn, *services().tokens, p);
        if (!t) return t.status();
        token = *t;
        return Status::ok();
    });
    if (!s) throw std::runtime_error("addPrincipal: " + s.message());
    return token;
}

void RunningGateway::disablePrincipal(const std::string& name) {
    Status s =
        services().db->withConnection([&](pqxx::connection& conn) { return auth::disablePrincipal(conn, name); });
    if (!s) throw std::runtime_error("disablePrincipal: " + s.message());
}

int RunningGateway::waitForReadiness(int status, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    int last = 0;
    for (;;) {
        last = httpRequest(port(), "GET", "/readyz").status;
        if (last == status || std::chrono::steady_clock::now() > until) return last;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace custodian::testing
