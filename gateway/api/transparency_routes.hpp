#pragma once
// The public transparency register (docs/transparency.md): what left the gateway, derived from the
// audit log and checkable against its signed tree heads, for anyone, without a token.
//   GET /transparency                    the register as an HTML page
//   GET /v1/transparency                 the register as JSON, with an inclusion proof per release
//   GET /v1/transparency/entries/{index} one counted release's proof (404 for an index not counted)
//
// Counted: every `extract.completed` entry covered by the latest signed tree head whose policy
// version declares `transparency` `public` (named, with purposes and recipient organisations) or
// `summary` (counted in its dataset's other releases, unnamed); `private` releases are not shown.
// No row-level data, no principal names, no tokens or keys: recipients appear as their agency.

#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> transparencyRoutes();

}  // namespace custodian::api
