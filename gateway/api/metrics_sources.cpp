#include "gateway/api/metrics_sources.hpp"

#include <utility>

#include "gateway/api/overload.hpp"
#include "gateway/api/services.hpp"
#include "gateway/audit/log.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/db/readiness.hpp"
#include "gateway/release/memory_budget.hpp"

namespace custodian::api {
namespace {

using Writer = http::Metrics::Writer;

void writePool(Writer& w, const db::PoolStats& pool) {
    w.family("custodian_db_pool_connections", "gauge", "Database pool connections by state.");
    w.sample("custodian_db_pool_connections", "state=\"in_use\"", pool.inUse);
    w.sample("custodian_db_pool_connections", "state=\"open\"", pool.open);
    w.sample("custodian_db_pool_connections", "state=\"max\"", pool.size);
    w.scalar("custodian_db_pool_waiting", "gauge", "Callers waiting for a free database connection.", pool.waiting);
    w.scalar("custodian_db_pool_queued_jobs", "gauge", "Jobs waiting for a database worker thread.", pool.queuedJobs);
    w.scalar("custodian_db_pool_busy_workers", "gauge", "Database worker threads running a job.", pool.busyWorkers);
    w.scalar("custodian_db_connect_failures_total", "counter", "Failed attempts to open a database connection.",
             pool.connectFailures);
}

void writeOverload(Writer& w, const OverloadStats& overload) {
    w.family("custodian_overload_refusals_total", "counter",
             "Requests refused by overload protection, by the limit that refused them.");
    for (const auto& [limit, count] :
         {std::pair{"limits.rate_limit", overload.rateLimited},
          {"limits.max_inflight_extracts", overload.refusedExtractsGateway},
          {"limits.max_inflight_extracts_per_principal", overload.refusedExtractsPrincipal}})
        w.sample("custodian_overload_refusals_total", "limit=\"" + std::string(limit) + "\"", count);
    w.scalar("custodian_extracts_in_flight", "gauge", "Extracts being produced or sent now.",
             overload.extractsInFlight);
    w.scalar("custodian_extracts_in_flight_max", "gauge", "The configured limits.max_inflight_extracts.",
             overload.maxInflightExtracts);
    w.scalar("custodian_rate_limit_principals", "gauge", "Principals with a rate-limit bucket in memory.",
             overload.principalsTracked);
}

void writeMemoryBudget(Writer& w, const release::MemoryBudgetStats& m) {
    w.scalar("custodian_release_memory_bytes", "gauge",
             "Memory the releases in progress hold by their own account (release.memory_budget_mb).", m.heldBytes);
    w.scalar("custodian_release_memory_peak_bytes", "gauge", "The most the releases held at once since start.",
             m.peakBytes);
    w.scalar("custodian_release_memory_budget_bytes", "gauge", "The configured release.memory_budget_mb, in bytes.",
             m.limitBytes);
    w.family("custodian_release_memory_refusals_total", "counter",
             "Releases refused because their memory did not fit, by the limit that refused them.");
    w.sample("custodian_release_memory_refusals_total", "limit=\"release.memory_budget_mb\"", m.refusedGateway);
    w.sample("custodian_release_memory_refusals_total", "limit=\"release.extract_memory_budget_mb\"", m.refusedExtract);
    w.scalar("custodian_release_memory_waits_total", "counter",
             "Release memory growths that had to wait for other releases (release.memory_wait_ms).", m.waits);
}

void writeAudit(Writer& w, const audit::AuditLogStats& audit) {
    w.scalar("custodian_audit_entries_committed_total", "counter", "Audit entries this process committed durably.",
             audit.entriesCommitted);
    w.scalar("custodian_audit_commits_total", "counter", "Group-commit transactions of the audit appender.",
             audit.commits);
    w.scalar("custodian_audit_failed_entries_total", "counter",
             "Audit entries that could not be committed (their requests failed closed).", audit.failedEntries);
    w.scalar("custodian_audit_append_queue", "gauge", "Audit entries waiting for the appender.", audit.queued);
    w.scalar("custodian_audit_log_trusted", "gauge",
             "1 when the audit log passed its start-up integrity check and no check found a mismatch since; 0 "
             "while the start-up check has not passed or after a mismatch.",
             audit.integrity == audit::IntegrityState::Trusted ? 1 : 0);
    w.scalar("custodian_audit_integrity_failures_total", "counter",
             "Mismatches between the stored audit log and what this gateway appended and signed (any is an "
             "incident: the gateway refuses audited requests until restarted on a log that verifies).",
             audit.integrityFailures);
    if (audit.firstBadIndex)
        w.scalar("custodian_audit_integrity_first_bad_index", "gauge",
                 "The first audit entry index the integrity checks found bad (start of the range when only a root "
                 "disagrees).",
                 *audit.firstBadIndex);
    w.scalar("custodian_audit_integrity_checks_total", "counter",
             "Integrity checks of the stored audit log completed (start-up and background).", audit.integrityChecks);
    w.scalar("custodian_audit_integrity_checked_entries_total", "counter",
             "Audit entries re-read and re-hashed by the integrity checks.", audit.integrityCheckedEntries);
    w.scalar("custodian_audit_integrity_check_errors_total", "counter",
             "Integrity checks that could not run (database unavailable, ...); retried.", audit.integrityCheckErrors);
    w.scalar("custodian_audit_tree_head_failures_total", "counter",
             "Tree-head signing attempts that failed or were refused.", audit.treeHeadFailures);
}

}  // namespace

bool gatewayReady(const Services& services) {
    return services.readiness && services.readiness->ready() &&
           (!services.audit || services.audit->integrity().state == audit::IntegrityState::Trusted);
}

void registerMetricsSources(http::Metrics& metrics, const Services& services) {
    const Services* s = &services;
    metrics.addSource([s](Writer& w) { writePool(w, s->db ? s->db->stats() : db::PoolStats{}); });
    metrics.addSource([s](Writer& w) {
        w.scalar("custodian_ready", "gauge",
                 "1 when the gateway is ready (database reachable, migrations current, audit log trusted).",
                 gatewayReady(*s) ? 1 : 0);
    });
    if (services.overload) metrics.addSource([s](Writer& w) { writeOverload(w, s->overload->stats()); });
    if (services.memoryBudget) metrics.addSource([s](Writer& w) { writeMemoryBudget(w, s->memoryBudget->stats()); });
    if (services.audit) metrics.addSource([s](Writer& w) { writeAudit(w, s->audit->stats()); });
}

}  // namespace custodian::api
