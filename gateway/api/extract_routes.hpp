#pragma once
// The release endpoints:
//   POST /v1/extracts                                   partner   streamed, encrypted extract
//   GET  /v1/extracts/{id}/manifest                     partner (its own), auditor   signed manifest
//   POST /v1/datasets/{dataset}/policies/{policy}/preview  publisher (own agency)   risk report
// docs/extracts.md is the partner's guide; docs/openapi.yaml the reference.

#include <cstdint>
#include <string_view>
#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> releaseRoutes();

Result<http::HttpResponse> handleCreateExtract(RequestContext& ctx);
Result<http::HttpResponse> handleGetManifest(RequestContext& ctx);
Result<http::HttpResponse> handlePreview(RequestContext& ctx);

}  // namespace custodian::api
