#include "gateway/http/metrics.hpp"

#include <cstdio>

#include "gateway/http/message.hpp"
#include "json/writer.hpp"

namespace custodian::http {
namespace {

// Prometheus label values escape backslash, quote and newline; a JSON string literal does exactly
// that (and more, harmlessly) for the characters route patterns can contain.
std::string label(const std::string& value) { return json::quoted(value); }

// The method as a label: one of the standard methods, or "other". The method is the client's text,
// so a client inventing method names must not add a series each (unbounded memory and scrape size).
std::string methodLabel(const std::string& method) {
    static const char* const kKnown[] = {"GET",   "HEAD",    "POST",    "PUT",  "DELETE",
                                         "PATCH", "OPTIONS", "CONNECT", "TRACE"};
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

std::string Metrics::Writer::number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

void Metrics::Writer::family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" ");
    out_.append(type).append("\n");
}

void Metrics::Writer::writeSample(std::string_view name, std::string_view labels, const std::string& value) {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(value).append("\n");
}

std::string Metrics::render() const {
    std::string out;
    Writer w(out);
    w.family("custodian_http_requests_total", "counter", "HTTP requests by route pattern, method and status.");
    {
        std::lock_guard lock(mutex_);
        for (const auto& [key, count] : requests_) {
            const auto& [route, method, status] = key;
            w.sample("custodian_http_requests_total",
                     "route=" + label(route) + ",method=" + label(method) + ",status=\"" + std::to_string(status) +
                         "\"",
                     count);
        }
        w.family("custodian_http_request_duration_seconds", "histogram",
                 "Time from the complete request to the last byte sent.");
        for (const auto& [route, h] : latency_) {
            for (size_t i = 0; i < kBuckets.size(); ++i)
                w.sample("custodian_http_request_duration_seconds_bucket",
                         "route=" + label(route) + ",le=\"" + Writer::number(kBuckets[i]) + "\"", h.buckets[i]);
            w.sample("custodian_http_request_duration_seconds_bucket", "route=" + label(route) + ",le=\"+Inf\"",
                     h.count);
            w.sample("custodian_http_request_duration_seconds_sum", "route=" + label(route), h.sum);
            w.sample("custodian_http_request_duration_seconds_count", "route=" + label(route), h.count);
        }
    }
    w.scalar("custodian_http_requests_in_flight", "gauge", "Requests being handled now.", inFlight());
    for (const Source& source : sources_) source(w);
    return out;
}

}  // namespace custodian::http
