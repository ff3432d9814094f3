#pragma once
// The catalog endpoints (docs/openapi.yaml, tag "catalog"):
//   PUT    /v1/sources/{name}                      admin, publisher   create/replace an agency source
//   GET    /v1/sources                             admin, publisher   list (publishers: own agency)
//   GET    /v1/sources/{name}                      admin, publisher   metadata, never the secret
//   PUT    /v1/datasets/{name}                     publisher          create/replace a dataset
//   GET    /v1/datasets/{name}                     admin, publisher
//   PUT    /v1/datasets/{d}/policies/{p}           publisher          new policy version
//   GET    /v1/datasets/{d}/policies/{p}           admin, publisher   current version + history
//   DELETE /v1/datasets/{d}/policies/{p}           admin, publisher   retire
//   GET    /v1/catalog                             partner            what the caller may request now
//
// Every change, and every refusal by agency scoping, is appended to the audit log before the
// response; a change whose audit entry cannot be written is rolled back (503).

#include <vector>

#include "gateway/http/router.hpp"

namespace custodian::catalog {

std::vector<http::Route> catalogRoutes();

Result<http::HttpResponse> handlePutSource(http::RequestContext& ctx);
Result<http::HttpResponse> handleGetSource(http::RequestContext& ctx);
Result<http::HttpResponse> handleListSources(http::RequestContext& ctx);
Result<http::HttpResponse> handlePutDataset(http::RequestContext& ctx);
Result<http::HttpResponse> handleGetDataset(http::RequestContext& ctx);
Result<http::HttpResponse> handlePutPolicy(http::RequestContext& ctx);
Result<http::HttpResponse> handleGetPolicy(http::RequestContext& ctx);
Result<http::HttpResponse> handleRetirePolicy(http::RequestContext& ctx);
Result<http::HttpResponse> handleGetCatalog(http::RequestContext& ctx);

}  // namespace custodian::catalog
