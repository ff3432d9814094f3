#pragma once
// The recipient-group endpoints (docs/openapi.yaml, tag "groups"), admin only:
//   GET    /v1/groups                              list groups with their members
//   GET    /v1/groups/{group}                      one group
//   PUT    /v1/groups/{group}                      create, or update the description ({"description": "..."})
//   DELETE /v1/groups/{group}                      delete (409 while a policy in force names it)
//   PUT    /v1/groups/{group}/members/{principal}  add a partner (201 added, 200 already a member)
//   DELETE /v1/groups/{group}/members/{principal}  remove a partner
//
// Every change is appended to the audit log (actions group.put, group.delete, group.member.add,
// group.member.remove, with the group and member in the entry's details) before it commits; a
// change whose entry cannot be written is rolled back (503). Role refusals are recorded by the
// router (the routes are `audited`).

#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> groupRoutes();

Result<http::HttpResponse> handleListGroups(RequestContext& ctx);
Result<http::HttpResponse> handleGetGroup(RequestContext& ctx);
Result<http::HttpResponse> handlePutGroup(RequestContext& ctx);
Result<http::HttpResponse> handleDeleteGroup(RequestContext& ctx);
Result<http::HttpResponse> handlePutGroupMember(RequestContext& ctx);
Result<http::HttpResponse> handleDeleteGroupMember(RequestContext& ctx);

}  // namespace custodian::api
