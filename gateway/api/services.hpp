#pragma once
// The services a request handler may use, and the assembly of a running gateway from its
// configuration. Services is a plain bundle of non-owning pointers so that tests can assemble one
// from parts and later features add a member without touching every handler; GatewayRuntime owns
// the real objects for `custodian serve` and the integration tests.

#include <memory>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/api/overload.hpp"
#include "gateway/api/router.hpp"
#include "gateway/audit/log.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/config/config.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/db/readiness.hpp"
#include "gateway/http/metrics.hpp"
#include "gateway/http/server.hpp"
#include "gateway/release/live_extracts.hpp"
#include "gateway/release/memory_budget.hpp"

namespace custodian::api {

class ExtractSweeper;
class RouterHandler;

struct Services {
    const config::GatewayConfig* config = nullptr;
    db::ConnectionPool* db = nullptr;
    const auth::TokenHasher* tokens = nullptr;
    const crypto::SigningKey* signingKey = nullptr;  // the gateway's Ed25519 key
    db::ReadinessMonitor* readiness = nullptr;       // null: never ready
    http::Metrics* metrics = nullptr;
    const Router* router = nullptr;             // the API listener's routes
    const catalog::Catalog* catalog = nullptr;  // sources, datasets, versioned policies
    audit::AuditLog* audit = nullptr;           // the audit log; null: audited requests fail with 503
    OverloadGuard* overload = nullptr;          // rate limits and in-flight extracts; null: no limits
    // release.memory_budget_mb (gateway/release/memory_budget.hpp); null: releases only keep accounts.
    release::MemoryBudget* memoryBudget = nullptr;
    // This process among the gateways sharing the database: random, positive, fixed for the
    // process's life; stored with the extracts it streams (gateway/api/extract_sweeper.hpp).
    int32_t instance = 0;
    // The extracts this process is still working on (gateway/release/live_extracts.hpp); null: its
    // own extracts left open by an outage are never closed by its sweeper.
    release::LiveExtracts* liveExtracts = nullptr;
};

struct RuntimeOptions {
    // serve: no — the runtime role cannot change the schema; `custodian migrate` does, as the owner
    // role. In-process tests that run as a superuser turn it on (a failure other than "unreachable"
    // is then fatal).
    bool applyMigrationsAtStart = false;
    // serve: yes — refuse to start (and stay not ready) on a database role that could rewrite the
    // audit log (db::runtimeRoleExcess). Only in-process tests that tamper as a superuser turn it off.
    bool requireLeastPrivilege = true;
    std::vector<Route> extraRoutes;  // tests register their own routes here
};

class GatewayRuntime {
public:
    // Loads the keys (creating them on first start), opens the pool, checks the database role (a
    // role that could rewrite the audit log is a FailedPrecondition; an unreachable database is
    // left to the readiness monitor), optionally applies pending migrations, starts the readiness
    // monitor and builds the routers.
    static Result<std::unique_ptr<GatewayRuntime>> create(config::GatewayConfig config, RuntimeOptions options = {});
    ~GatewayRuntime();  // stops the sweeper, then drains the pool's jobs: they use everything else
    GatewayRuntime(const GatewayRuntime&) = delete;
    GatewayRuntime& operator=(const GatewayRuntime&) = delete;

    Services& services() { return services_; }
    const config::GatewayConfig& config() const { return config_; }
    // The routes served on the metrics listener (healthz, readyz, metrics), or null when /metrics
    // is served on the API listener.
    const Router* metricsRouter() const { return metricsRouter_.get(); }
    // What http::Server needs to serve this gateway: its request handlers, the database workers
    // for blocking work, the metrics.
    http::ServerParts serverParts();

private:
    GatewayRuntime() = default;
    config::GatewayConfig config_;
    std::unique_ptr<auth::TokenHasher> tokens_;
    std::unique_ptr<crypto::SigningKey> signingKey_;
    std::unique_ptr<db::ConnectionPool> pool_;
    std::unique_ptr<catalog::Catalog> catalog_;
    std::unique_ptr<db::ReadinessMonitor> readiness_;
    std::unique_ptr<audit::AuditLog> audit_;
    std::unique_ptr<OverloadGuard> overload_;
    std::unique_ptr<release::MemoryBudget> memoryBudget_;
    std::unique_ptr<release::LiveExtracts> liveExtracts_;
    std::unique_ptr<ExtractSweeper> sweeper_;  // declared after what it uses: stopped first
    http::Metrics metrics_;
    std::unique_ptr<Router> router_;
    std::unique_ptr<Router> metricsRouter_;
    std::unique_ptr<RouterHandler> apiHandler_;
    std::unique_ptr<RouterHandler> metricsHandler_;
    Services services_;
};

}  // namespace custodian::api
