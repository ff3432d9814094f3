#include "gateway/api/services.hpp"

#include <cstdio>

#include <sodium.h>

#include "gateway/db/guarded.hpp"
#include "gateway/db/migrations.hpp"
#include "gateway/db/roles.hpp"
#include "gateway/api/handler.hpp"
#include "gateway/api/metrics_sources.hpp"
#include "gateway/api/routes.hpp"
#include "gateway/api/extract_sweeper.hpp"
#include "gateway/release/live_extracts.hpp"

namespace custodian::api {

Result<std::unique_ptr<GatewayRuntime>> GatewayRuntime::create(config::GatewayConfig config, RuntimeOptions options) {
    std::unique_ptr<GatewayRuntime> rt(new GatewayRuntime());
    rt->config_ = std::move(config);
    const auto& c = rt->config_;

    auto tokens = auth::TokenHasher::loadOrCreate(c.masterKeyFile);
    if (!tokens) return tokens.status().withContext("keys.master_key_file");
    rt->tokens_ = std::make_unique<auth::TokenHasher>(std::move(tokens).value());

    auto sourceKey = catalog::SourceSecretKey::derive(*rt->tokens_);
    if (!sourceKey) return sourceKey.status().withContext("source secret key");
    rt->catalog_ = std::make_unique<catalog::Catalog>(std::move(sourceKey).value());

    auto signingKey = crypto::SigningKey::loadOrCreate(c.signingKeyFile);
    if (!signingKey) return signingKey.status().withContext("keys.signing_key_file");
    rt->signingKey_ = std::make_unique<crypto::SigningKey>(std::move(signingKey).value());

    auto migrations = db::loadMigrations(c.database.migrationsDir);
    if (!migrations) return migrations.status().withContext("database.migrations_dir");

    db::PoolOptions pool;
    pool.conninfo = c.database.conninfo;
    pool.size = static_cast<size_t>(c.database.poolSize);
    pool.connectTimeout = c.database.connectTimeout;
    pool.acquireTimeout = c.database.acquireTimeout;
    rt->pool_ = std::make_unique<db::ConnectionPool>(pool);

    if (options.applyMigrationsAtStart) {
        Status s = rt->pool_->withConnection([&](pqxx::connection& conn) {
            auto applied = db::applyMigrations(conn, *migrations);
            if (!applied) return applied.status();
            for (int v : *applied) std::fprintf(stderr, "custodian: applied migration %04d\n", v);
            return Status::ok();
        });
        if (s.code() == StatusCode::Unavailable) {
            std::fprintf(stderr, "custodian: database unreachable at start (%s); not ready until it is\n",
                         s.message().c_str());
        } else if (!s) {
            return s;
        }
    }

    if (options.requireLeastPrivilege) {
        auto excess = db::resultOnConnection<std::string>(
            *rt->pool_, [](pqxx::connection& conn) { return db::runtimeRoleExcess(conn); });
        if (!excess && excess.status().code() != StatusCode::Unavailable) return excess.status();
        if (excess && !excess->empty())
            return failedPrecondition("database.conninfo: " + *excess +
                                      "; serve must run as the runtime role that `custodian migrate` grants "
                                      "(database.owner_conninfo for migrate, docs/operations.md \"Database roles\")");
    }

    // A random instance number in [1, 2^31 - 1]: the second key of this process's lease lock.
    const auto instance = static_cast<int32_t>(randombytes_uniform(0x7fffffffu - 1u) + 1u);

    db::ReadinessOptions readiness;
    readiness.instanceLease = instance;
    readiness.lockTimeout = c.audit.lockTimeout;
    readiness.conninfo = db::withConnectTimeout(c.database.conninfo, c.database.connectTimeout);
    readiness.interval = c.readinessInterval;
    readiness.migrations = std::move(migrations).value();
    readiness.applyPending = options.applyMigrationsAtStart;
    readiness.requireLeastPrivilege = options.requireLeastPrivilege;
    rt->readiness_ = std::make_unique<db::ReadinessMonitor>(std::move(readiness));

    audit::AuditLogOptions auditOptions;
    auditOptions.conninfo = db::withConnectTimeout(c.database.conninfo, c.database.connectTimeout);
    auditOptions.treeHeadEveryEntries = c.audit.treeHeadEveryEntries;
    auditOptions.treeHeadInterval = c.audit.treeHeadInterval;
    auditOptions.maxBatch = static_cast<size_t>(c.audit.maxBatch);
    auditOptions.lockTimeout = c.audit.lockTimeout;
    auditOptions.integrityCheckInterval = c.audit.integrityCheckInterval;
    auditOptions.integrityRecheckBlocks = c.audit.integrityRecheckBlocks;
    rt->audit_ = std::make_unique<audit::AuditLog>(std::move(auditOptions), *rt->signingKey_);

    rt->overload_ = std::make_unique<OverloadGuard>(c.overload);
    rt->memoryBudget_ = std::make_unique<release::MemoryBudget>(
        c.release.memoryBudgetMiB << 20, c.release.extractMemoryBudgetMiB << 20, c.release.memoryWait);

    std::vector<Route> routes = builtinRoutes();
    if (c.metricsListen) {
        std::erase_if(routes, [](const Route& r) { return r.pattern == "/metrics"; });
        rt->metricsRouter_ = std::make_unique<Router>(operationalRoutes());
    }
    for (auto& r : options.extraRoutes) routes.push_back(std::move(r));
    rt->router_ = std::make_unique<Router>(std::move(routes));
    if (Status s = rt->router_->validate(); !s) return s;

    rt->services_.config = &rt->config_;
    rt->services_.db = rt->pool_.get();
    rt->services_.tokens = rt->tokens_.get();
    rt->services_.signingKey = rt->signingKey_.get();
    rt->services_.readiness = rt->readiness_.get();
    rt->services_.metrics = &rt->metrics_;
    rt->services_.router = rt->router_.get();
    rt->services_.catalog = rt->catalog_.get();
    rt->services_.audit = rt->audit_.get();
    rt->services_.overload = rt->overload_.get();
    rt->services_.memoryBudget = rt->memoryBudget_.get();
    rt->services_.instance = instance;
    registerMetricsSources(rt->metrics_, rt->services_);
    rt->apiHandler_ = std::make_unique<RouterHandler>(rt->services_, *rt->router_);
    if (rt->metricsRouter_) rt->metricsHandler_ = std::make_unique<RouterHandler>(rt->services_, *rt->metricsRouter_);
    rt->liveExtracts_ = std::make_unique<release::LiveExtracts>();
    rt->services_.liveExtracts = rt->liveExtracts_.get();
    rt->sweeper_ = std::make_unique<ExtractSweeper>(rt->services_, instance, c.release.sweepInterval);
    rt->sweeper_->start();
    return rt;
}

GatewayRuntime::~GatewayRuntime() {
    sweeper_.reset();
    // Request jobs still queued or running on the pool's workers use the audit log, the catalog,
    // the memory budget and the live-extract registry: they finish before any of those is
    // destroyed (members are destroyed in reverse order, the pool last). A worker that finished an
    // extract after the registry was gone locked a destroyed mutex and hung the process.
    if (pool_) pool_->stopWorkers();
}

http::ServerParts GatewayRuntime::serverParts() {
    db::ConnectionPool* pool = pool_.get();
    return http::ServerParts{config_, *apiHandler_, metricsHandler_.get(),
                             [pool](std::function<void()> job) { pool->post(std::move(job)); }, &metrics_};
}

}  // namespace custodian::api
