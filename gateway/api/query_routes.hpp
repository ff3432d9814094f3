#pragma once
// The differentially private aggregates channel (docs/aggregates.md):
//   POST /v1/queries   partner   a noisy count, histogram, sum or mean, paid from its privacy budget

#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> queryRoutes();

Result<http::HttpResponse> handleCreateQuery(RequestContext& ctx);

}  // namespace custodian::api
