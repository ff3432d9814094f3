#pragma once
// The gateway's route table. Every endpoint is one entry in builtinRoutes(): method, pattern,
// who may call it, handler. Feature areas declare their handlers in their own headers and add one
// line each to the table in routes.cpp.

#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

// All API routes, including the operational ones below.
std::vector<Route> builtinRoutes();

// GET /healthz, GET /readyz, GET /metrics: served on the metrics listener when one is configured
// (and then /metrics is not served on the API listener).
std::vector<Route> operationalRoutes();

// Handlers of the core endpoints (exposed for unit tests).
Result<HttpResponse> handleHealthz(RequestContext& ctx);
Result<HttpResponse> handleReadyz(RequestContext& ctx);
Result<HttpResponse> handleMetrics(RequestContext& ctx);
Result<HttpResponse> handleKeys(RequestContext& ctx);

}  // namespace custodian::api
