#include "gateway/http/metrics.hpp"

#include <cstdio>

#include "gateway/http/message.hpp"

namespace custodian::http {
namespace {

// Prometheus label values escape backslash, quote and newline; jsonQuote does exactly that (and
// more, harmlessly) for the characters route patterns can contain.
std::string label(const std::string& value) { return jsonQuote(value); }

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

// One unlabelled sample with its HELP and TYPE lines.
template <typename Number>
void scalar(std::string& out, const char* name, const char* type, const char* help, Number value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(value) + "\n";
}

// The method as a label: one of the standard methods, or "other". The method is the client's text,
// so a client inventing method names must not add a series each (unbounded memory and scrape size).
std::string methodLabel(const std::string& method) {
    static const char* const kKnown[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};
    for (const char* known : kKnown)
        if (method == known) return method;
    return "other";
}

}  // namespace

void Metrics::requestFinished(const std::string& route, const std::string& method, int status, double seconds) {
    inFlight_.fetch_sub(1, std::memory_order_relaxed);
    std::string methodKey = methodLabel(method);
    std::lock_guard lock(mutex_);
    ++requests_[{route, std::move(methodKey), status}];
    Histogram& h = latency_[route];
    for (size_t i = 0; i < kBuckets.size(); ++i)
        if (seconds <= kBuckets[i]) ++h.buckets[i];
    ++h.count;
    h.sum += seconds;
}

std::string Metrics::render(const db::PoolStats& pool, bool ready, const OverloadStats* overload,
                            const audit::AuditLogStats* audit) const {
    std::string out;
    out += "# HELP custodian_http_requests_total HTTP requests by route pattern, method and status.\n"
           "# TYPE custodian_http_requests_total counter\n";
    std::lock_guard lock(mutex_);
    for (const auto& [key, count] : requests_) {
        const auto& [route, method, status] = key;
        out += "custodian_http_requests_total{route=" + label(route) + ",method=" + label(method) + ",status=\"" +
               std::to_string(status) + "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP custodian_http_request_duration_seconds Time from the complete request to the last byte sent.\n"
           "# TYPE custodian_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
        for (size_t i = 0; i < kBuckets.size(); ++i)
            out += "custodian_http_request_duration_seconds_bucket{route=" + label(route) + ",le=\"" +
                   number(kBuckets[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
        out += "custodian_http_request_duration_seconds_bucket{route=" + label(route) + ",le=\"+Inf\"} " +
               std::to_string(h.count) + "\n";
        out += "custodian_http_request_duration_seconds_sum{route=" + label(route) + "} " + number(h.sum) + "\n";
        out += "custodian_http_request_duration_seconds_count{route=" + label(route) + "} " +
               std::to_string(h.count) + "\n";
    }
    scalar(out, "custodian_http_requests_in_flight", "gauge", "Requests being handled now.", inFlight());
    out += "# HELP custodian_db_pool_connections Database pool connections by state.\n"
           "# TYPE custodian_db_pool_connections gauge\n"
           "custodian_db_pool_connections{state=\"in_use\"} " + std::to_string(pool.inUse) + "\n"
           "custodian_db_pool_connections{state=\"open\"} " + std::to_string(pool.open) + "\n"
           "custodian_db_pool_connections{state=\"max\"} " + std::to_string(pool.size) + "\n";
    scalar(out, "custodian_db_pool_waiting", "gauge", "Callers waiting for a free database connection.", pool.waiting);
    scalar(out, "custodian_db_pool_queued_jobs", "gauge", "Jobs waiting for a database worker thread.",
           pool.queuedJobs);
    scalar(out, "custodian_db_pool_busy_workers", "gauge", "Database worker threads running a job.",
           pool.busyWorkers);
    scalar(out, "custodian_db_connect_failures_total", "counter", "Failed attempts to open a database connection.",
           pool.connectFailures);
    scalar(out, "custodian_ready", "gauge", "1 when the gateway is ready (database reachable, migrations current, audit log trusted).",
           ready ? 1 : 0);
    if (overload) {
        out += "# HELP custodian_overload_refusals_total Requests refused by overload protection, by the limit that "
               "refused them.\n"
               "# TYPE custodian_overload_refusals_total counter\n";
        for (const auto& [limit, count] : {std::pair{"limits.rate_limit", overload->rateLimited},
                                           {"limits.max_inflight_extracts", overload->refusedExtractsGateway},
                                           {"limits.max_inflight_extracts_per_principal",
                                            overload->refusedExtractsPrincipal}})
            out += "custodian_overload_refusals_total{limit=\"" + std::string(limit) + "\"} " + std::to_string(count) +
                   "\n";
        scalar(out, "custodian_extracts_in_flight", "gauge", "Extracts being produced or sent now.",
               overload->extractsInFlight);
        scalar(out, "custodian_extracts_in_flight_max", "gauge", "The configured limits.max_inflight_extracts.",
               overload->maxInflightExtracts);
        scalar(out, "custodian_rate_limit_principals", "gauge", "Principals with a rate-limit bucket in memory.",
               overload->principalsTracked);
    }
    if (audit) {
        scalar(out, "custodian_audit_entries_committed_total", "counter",
               "Audit entries this process committed durably.", audit->entriesCommitted);
        scalar(out, "custodian_audit_commits_total", "counter", "Group-commit transactions of the audit appender.",
               audit->commits);
        scalar(out, "custodian_audit_failed_entries_total", "counter",
               "Audit entries that could not be committed (their requests failed closed).", audit->failedEntries);
        scalar(out, "custodian_audit_append_queue", "gauge", "Audit entries waiting for the appender.", audit->queued);
        scalar(out, "custodian_audit_log_trusted", "gauge",
               "1 when the audit log passed its start-up integrity check and no check found a mismatch since; 0 "
               "while the start-up check has not passed or after a mismatch.",
               audit->integrity == audit::IntegrityState::Trusted ? 1 : 0);
        scalar(out, "custodian_audit_integrity_failures_total", "counter",
               "Mismatches between the stored audit log and what this gateway appended and signed (any is an "
               "incident: the gateway refuses audited requests until restarted on a log that verifies).",
               audit->integrityFailures);
        if (audit->firstBadIndex)
            scalar(out, "custodian_audit_integrity_first_bad_index", "gauge",
                   "The first audit entry index the integrity checks found bad (start of the range when only a root "
                   "disagrees).",
                   *audit->firstBadIndex);
        scalar(out, "custodian_audit_integrity_checks_total", "counter",
               "Integrity checks of the stored audit log completed (start-up and background).",
               audit->integrityChecks);
        scalar(out, "custodian_audit_integrity_checked_entries_total", "counter",
               "Audit entries re-read and re-hashed by the integrity checks.", audit->integrityCheckedEntries);
        scalar(out, "custodian_audit_integrity_check_errors_total", "counter",
               "Integrity checks that could not run (database unavailable, ...); retried.", audit->integrityCheckErrors);
        scalar(out, "custodian_audit_tree_head_failures_total", "counter",
               "Tree-head signing attempts that failed or were refused.", audit->treeHeadFailures);
    }
    return out;
}

}  // namespace custodian::http
