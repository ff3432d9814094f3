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

}  // namespace

void Metrics::requestFinished(const std::string& route, const std::string& method, int status, double seconds) {
    inFlight_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    ++requests_[{route, method, status}];
    Histogram& h = latency_[route];
    for (size_t i = 0; i < kBuckets.size(); ++i)
        if (seconds <= kBuckets[i]) ++h.buckets[i];
    ++h.count;
    h.sum += seconds;
}

std::string Metrics::render(const db::PoolStats& pool, bool ready) const {
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
    out += "# HELP custodian_http_requests_in_flight Requests being handled now.\n"
           "# TYPE custodian_http_requests_in_flight gauge\n"
           "custodian_http_requests_in_flight " + std::to_string(inFlight()) + "\n";
    out += "# HELP custodian_db_pool_connections Database pool connections by state.\n"
           "# TYPE custodian_db_pool_connections gauge\n"
           "custodian_db_pool_connections{state=\"in_use\"} " + std::to_string(pool.inUse) + "\n"
           "custodian_db_pool_connections{state=\"open\"} " + std::to_string(pool.open) + "\n"
           "custodian_db_pool_connections{state=\"max\"} " + std::to_string(pool.size) + "\n";
    out += "# HELP custodian_db_pool_waiting Callers waiting for a free database connection.\n"
           "# TYPE custodian_db_pool_waiting gauge\n"
           "custodian_db_pool_waiting " + std::to_string(pool.waiting) + "\n";
    out += "# HELP custodian_db_pool_queued_jobs Jobs waiting for a database worker thread.\n"
           "# TYPE custodian_db_pool_queued_jobs gauge\n"
           "custodian_db_pool_queued_jobs " + std::to_string(pool.queuedJobs) + "\n";
    out += "# HELP custodian_db_pool_busy_workers Database worker threads running a job.\n"
           "# TYPE custodian_db_pool_busy_workers gauge\n"
           "custodian_db_pool_busy_workers " + std::to_string(pool.busyWorkers) + "\n";
    out += "# HELP custodian_db_connect_failures_total Failed attempts to open a database connection.\n"
           "# TYPE custodian_db_connect_failures_total counter\n"
           "custodian_db_connect_failures_total " + std::to_string(pool.connectFailures) + "\n";
    out += "# HELP custodian_ready 1 when the gateway is ready (database reachable, migrations current).\n"
           "# TYPE custodian_ready gauge\n"
           "custodian_ready " + std::string(ready ? "1" : "0") + "\n";
    return out;
}

}  // namespace custodian::http
