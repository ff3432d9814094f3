#pragma once
// Prometheus metrics, rendered in the text exposition format (version 0.0.4). The server counts
//   custodian_http_requests_total{route,method,status}        counter
//   custodian_http_request_duration_seconds{route}            histogram
//   custodian_http_requests_in_flight                         gauge
// and every other family comes from a source another module registers (addSource; the gateway's
// are in gateway/api/metrics_sources.cpp), rendered after these in registration order:
//   custodian_db_pool_connections{state="in_use"|"open"|"max"} gauge
//   custodian_db_pool_waiting, custodian_db_pool_queued_jobs  gauges
//   custodian_db_connect_failures_total                       counter
//   custodian_ready                                           gauge (1 ready, 0 not)
// and, when given their stats, overload protection and the audit appender:
//   custodian_overload_refusals_total{limit}                   counter (429/503 by the limit that refused)
//   custodian_extracts_in_flight, custodian_extracts_in_flight_max  gauges
//   custodian_rate_limit_principals                            gauge (buckets held in memory)
//   custodian_audit_entries_committed_total, custodian_audit_commits_total,
//   custodian_audit_failed_entries_total                       counters
//   custodian_audit_append_queue                               gauge
//   custodian_audit_log_trusted, custodian_audit_integrity_first_bad_index  gauges
//   custodian_audit_integrity_failures_total, custodian_audit_integrity_checks_total,
//   custodian_audit_integrity_checked_entries_total, custodian_audit_integrity_check_errors_total,
//   custodian_audit_tree_head_failures_total                   counters
// Thread-safe. Route labels are route patterns (bounded cardinality), "unmatched" otherwise.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

namespace custodian::http {

class Metrics {
public:
    static constexpr std::array<double, 12> kBuckets{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,   1.0,  2.5,   5.0,  10.0};

    void requestStarted() { inFlight_.fetch_add(1, std::memory_order_relaxed); }
    void requestFinished(const std::string& route, const std::string& method, int status, double seconds);
    int64_t inFlight() const { return inFlight_.load(std::memory_order_relaxed); }

    // Writes sample lines of the exposition format into the text being rendered.
    class Writer {
    public:
        explicit Writer(std::string& out) : out_(out) {}
        // The HELP and TYPE lines of a family; then sample() once per series.
        void family(std::string_view name, std::string_view type, std::string_view help);
        // `labels` is the text between the braces (`state="open"`), empty for none.
        template <typename Number> void sample(std::string_view name, std::string_view labels, Number value) {
            if constexpr (std::is_integral_v<Number>) writeSample(name, labels, std::to_string(value));
            else writeSample(name, labels, number(value));
        }
        // One unlabelled sample with its HELP and TYPE lines.
        template <typename Number>
        void scalar(std::string_view name, std::string_view type, std::string_view help, Number value) {
            family(name, type, help);
            sample(name, "", value);
        }
        static std::string number(double value);

    private:
        void writeSample(std::string_view name, std::string_view labels, const std::string& value);
        std::string& out_;
    };
    using Source = std::function<void(Writer&)>;

    // Registers a source of further families (a pool, the audit log, …); called on every render,
    // on the rendering thread. Register before serving: not synchronized with render().
    void addSource(Source source) { sources_.push_back(std::move(source)); }

    std::string render() const;

private:
    struct Histogram {
        std::array<uint64_t, kBuckets.size()> buckets{};
        uint64_t count = 0;
        double sum = 0;
    };
    std::atomic<int64_t> inFlight_{0};
    mutable std::mutex mutex_;
    std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
    std::vector<Source> sources_;
};

}  // namespace custodian::http
