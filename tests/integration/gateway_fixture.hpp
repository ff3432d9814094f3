#pragma once
// An in-process gateway for integration tests: the real GatewayRuntime and http::Server on
// 127.0.0.1 port 0, its own key files in a temp dir, served by a background thread.
//
//   auto db = custodian::testing::TestDatabase::create();
//   custodian::testing::RunningGateway gw(db.conninfo());
//   auto token = gw.addPrincipal(custodian::auth::Role::Auditor, "alice");
//   auto r = custodian::testing::httpRequest(gw.port(), "GET", "/v1/audit", {{"Authorization", "Bearer " + token}});

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/api/router.hpp"
#include "gateway/http/server.hpp"
#include "gateway/api/services.hpp"

namespace custodian::testing {

struct GatewayOptions {
    std::vector<api::Route> extraRoutes;                       // test-only routes
    std::function<void(config::GatewayConfig&)> adjustConfig;  // e.g. shorter timeouts
};

// A config for tests: port 0, 2 threads, small pool, keys in `keyDir`, 100 ms readiness probes.
config::GatewayConfig testConfig(const std::string& conninfo, const std::string& keyDir);

class RunningGateway {
public:
    explicit RunningGateway(const std::string& conninfo, GatewayOptions options = {});
    ~RunningGateway();  // shuts down (if not already) and deletes the key dir
    RunningGateway(const RunningGateway&) = delete;
    RunningGateway& operator=(const RunningGateway&) = delete;

    uint16_t port() const { return server_->port(); }
    api::Services& services() { return runtime_->services(); }
    const config::GatewayConfig& config() const { return runtime_->config(); }
    const std::string& keyDir() const { return keyDir_; }

    // Creates a principal directly in the database and returns its token. A partner without
    // `publicKey` gets a fixed dummy key (enough for everything but decrypting its extracts).
    std::string addPrincipal(auth::Role role, const std::string& name, const std::string& agency = "",
                             std::optional<crypto::BoxPublicKey> publicKey = std::nullopt);
    void disablePrincipal(const std::string& name);

    // Polls GET /readyz until it returns `status` or `timeout` passes; returns the last status.
    int waitForReadiness(int status, std::chrono::milliseconds timeout);

    void requestShutdown();  // returns at once
    void join();             // waits for the server thread to finish

private:
    std::string keyDir_;
    std::unique_ptr<api::GatewayRuntime> runtime_;
    std::unique_ptr<http::Server> server_;
    std::thread thread_;
};

}  // namespace custodian::testing
