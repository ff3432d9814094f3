#pragma once
// The gateway's families on /metrics beyond the server's own request counters: the database pool,
// readiness, overload protection and the audit appender and integrity checks.

#include "gateway/http/metrics.hpp"

namespace custodian::api {

struct Services;

// Registers a source for each part `services` has (a null part contributes nothing; readiness is
// always reported). `services` must outlive `metrics`' last render.
void registerMetricsSources(http::Metrics& metrics, const Services& services);

// 1 when the gateway is ready: database reachable, migrations current, audit log trusted.
bool gatewayReady(const Services& services);

}  // namespace custodian::api
