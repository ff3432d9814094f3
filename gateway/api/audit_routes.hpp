#pragma once
// The auditor API (auditor role only; every call is itself recorded in the log before it is
// answered, and refused with 503 if it cannot be):
//   GET /v1/audit                      entries filtered by actor, role, dataset, action, decision,
//                                      from, to (RFC 3339); cursor pagination by index; limit ≤ 1000
//   GET /v1/audit/export               NDJSON (docs/formats/audit.md): entries and signed tree heads,
//                                      exactly what `custodian audit verify --export` reads
//   GET /v1/audit/tree-head            the latest signed tree head
//   GET /v1/audit/proof/inclusion      ?index=&tree_size=
//   GET /v1/audit/proof/consistency    ?first=&second=

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> auditRoutes();

// RFC 3339 date-time ("2026-11-27T21:00:00Z", "2026-11-27T22:00:00.250+01:00") → Unix ms.
// InvalidArgument naming what is wrong.
Result<int64_t> parseRfc3339Ms(std::string_view text);

}  // namespace custodian::api
