#pragma once
// The catalog endpoints (docs/openapi.yaml, tag "catalog"):
//   PUT    /v1/sources/{name}                      admin, publisher   create/replace an agency source
//   GET    /v1/sources                             admin, publisher   list (publishers: own agency)
//   GET    /v1/sources/{name}                      admin, publisher   metadata, never the secret
//   PUT    /v1/datasets/{name}                     publisher          create/replace a dataset
//   GET    /v1/datasets                            admin, publisher   list with policies (publishers: own agency)
//   GET    /v1/datasets/{name}                     admin, publisher
//   PUT    /v1/datasets/{d}/policies/{p}           publisher          new policy version
//   GET    /v1/datasets/{d}/policies/{p}           admin, publisher   current version + history
//   GET    /v1/datasets/{d}/policies/{p}/versions/{v}  admin, publisher  one version's document
//   DELETE /v1/datasets/{d}/policies/{p}           admin, publisher   retire
//   GET    /v1/catalog                             partner            what the caller may request now
//
// Every change, and every refusal by agency scoping, is appended to the audit log before the
// response; a change whose audit entry cannot be written is rolled back (503).

#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> catalogRoutes();

Result<http::HttpResponse> handlePutSource(RequestContext& ctx);
Result<http::HttpResponse> handleGetSource(RequestContext& ctx);
Result<http::HttpResponse> handleListSources(RequestContext& ctx);
Result<http::HttpResponse> handlePutDataset(RequestContext& ctx);
Result<http::HttpResponse> handleGetDataset(RequestContext& ctx);
Result<http::HttpResponse> handleListDatasets(RequestContext& ctx);
Result<http::HttpResponse> handlePutPolicy(RequestContext& ctx);
Result<http::HttpResponse> handleGetPolicy(RequestContext& ctx);
Result<http::HttpResponse> handleGetPolicyVersion(RequestContext& ctx);
Result<http::HttpResponse> handleRetirePolicy(RequestContext& ctx);
Result<http::HttpResponse> handleGetCatalog(RequestContext& ctx);

}  // namespace custodian::api
