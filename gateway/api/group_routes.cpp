#include "gateway/api/group_routes.hpp"

#include <pqxx/pqxx>

#include <utility>

#include "gateway/api/record.hpp"
#include "gateway/auth/groups.hpp"
#include "json/canonical.hpp"
#include "gateway/db/guarded.hpp"
#include "gateway/api/services.hpp"

namespace custodian::api {

using http::HttpResponse;

namespace {

Status needDatabase(const RequestContext& ctx) {
    if (!ctx.services.db) return unavailable("the database is not configured");
    if (!ctx.principal) return Status(StatusCode::Unauthenticated, "authentication required");
    return Status::ok();
}

template <typename T, typename F> Result<T> onConnection(RequestContext& ctx, F&& work) {
    return db::resultOnConnection<T>(*ctx.services.db, std::forward<F>(work));
}

// The database, and valid names in /v1/groups/{group}/members/{principal}.
Status needMemberPath(const RequestContext& ctx) {
    if (Status s = needDatabase(ctx); !s) return s;
    if (Status s = auth::validateGroupName(ctx.param("group")); !s) return s;
    return auth::validatePrincipalName(ctx.param("principal"));
}

// The audit hook of group changes: an "allowed" entry naming the group (and member) in its
// details; its failure rolls the change back.
auth::GroupChangeHook auditChange(RequestContext& ctx) {
    return [&ctx](const auth::GroupChange& change) -> Status {
        audit::AuditEntry e = entryFor(ctx, change.action, "allowed");
        // Members are assigned one by one: brace-initialised JsonValue maps trip g++ 12's
        // -Wmaybe-uninitialized inside std::variant.
        json::JsonValue::Object details;
        details["group"] = change.group;
        details["changed"] = change.changed;
        if (change.member) details["member"] = *change.member;
        if (change.action == "group.put") details["created"] = change.created;
        e.details = json::JsonValue(std::move(details));
        auto recorded = record(ctx, std::move(e));
        return recorded ? Status::ok() : recorded.status();
    };
}

json::JsonValue groupJson(const auth::Group& g) {
    json::JsonValue::Array members;
    for (const auto& m : g.members) {
        json::JsonValue::Object member;
        member["name"] = m.name;
        member["disabled"] = m.disabled;
        member["added_by"] = m.addedBy;
        member["added_at"] = m.addedAt;
        members.emplace_back(std::move(member));
    }
    json::JsonValue::Object out;
    out["name"] = g.name;
    out["description"] = g.description;
    out["created_by"] = g.createdBy;
    out["created_at"] = g.createdAt;
    out["updated_at"] = g.updatedAt;
    out["members"] = std::move(members);
    return out;
}

Result<HttpResponse> jsonResponse(int status, const json::JsonValue& body) {
    auto text = json::canonicalJson(body);
    if (!text) return internalError("cannot encode the response: " + text.status().message());
    return HttpResponse::json(status, std::move(text).value());
}

// The description from an optional body {"description": "..."}; an empty body means "".
Result<std::string> descriptionFromBody(const std::string& body) {
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::string();
    auto json = json::parseJson(body);
    if (!json) return invalidArgument("the body is not valid JSON: " + json.status().message());
    if (!json->isObject()) return invalidArgument("the body must be a JSON object {\"description\": \"...\"}");
    for (const auto& [name, value] : json->asObject()) {
        (void)value;
        if (name != "description")
            return invalidArgument("unknown member \"" + json::sanitizeUtf8(name) +
                                   "\"; a group has only a description (members are added with "
                                   "PUT /v1/groups/{group}/members/{principal})");
    }
    const json::JsonValue* d = json->find("description");
    if (!d) return std::string();
    if (!d->isString()) return invalidArgument("\"description\" must be a string");
    if (Status s = auth::validateGroupDescription(d->asString()); !s) return s;
    return d->asString();
}

}  // namespace

std::vector<Route> groupRoutes() {
    const auto admins = Access::only({auth::Role::Admin});
    // method  pattern  who may call  handler  inline  audit action
    return {
        {"GET", "/v1/groups", admins, handleListGroups, false, "group.list"},
        {"GET", "/v1/groups/{group}", admins, handleGetGroup, false, "group.get"},
        {"PUT", "/v1/groups/{group}", admins, handlePutGroup, false, "group.put"},
        {"DELETE", "/v1/groups/{group}", admins, handleDeleteGroup, false, "group.delete"},
        {"PUT", "/v1/groups/{group}/members/{principal}", admins, handlePutGroupMember, false, "group.member.add"},
        {"DELETE", "/v1/groups/{group}/members/{principal}", admins, handleDeleteGroupMember, false,
         "group.member.remove"},
    };
}

Result<HttpResponse> handleListGroups(RequestContext& ctx) {
    if (Status s = needDatabase(ctx); !s) return s;
    auto groups =
        onConnection<std::vector<auth::Group>>(ctx, [](pqxx::connection& conn) { return auth::listGroups(conn); });
    if (!groups) return groups.status();
    json::JsonValue::Array list;
    for (const auto& g : *groups) list.push_back(groupJson(g));
    json::JsonValue::Object out;
    out["groups"] = std::move(list);
    return jsonResponse(200, out);
}

Result<HttpResponse> handleGetGroup(RequestContext& ctx) {
    if (Status s = needDatabase(ctx); !s) return s;
    const std::string name = ctx.param("group");
    if (Status s = auth::validateGroupName(name); !s) return s;
    auto group = onConnection<auth::Group>(ctx, [&](pqxx::connection& conn) { return auth::findGroup(conn, name); });
    if (!group) return group.status();
    return jsonResponse(200, groupJson(*group));
}

Result<HttpResponse> handlePutGroup(RequestContext& ctx) {
    if (Status s = needDatabase(ctx); !s) return s;
    const std::string name = ctx.param("group");
    if (Status s = auth::validateGroupName(name); !s) return s;
    auto description = descriptionFromBody(ctx.request.body);
    if (!description) return description.status();
    auto created = onConnection<bool>(ctx, [&](pqxx::connection& conn) {
        return auth::putGroup(conn, name, *description, ctx.principal->name, auditChange(ctx));
    });
    if (!created) return created.status();
    json::JsonValue::Object out;
    out["name"] = name;
    out["description"] = *description;
    out["created"] = *created;
    return jsonResponse(*created ? 201 : 200, out);
}

Result<HttpResponse> handleDeleteGroup(RequestContext& ctx) {
    if (Status s = needDatabase(ctx); !s) return s;
    const std::string name = ctx.param("group");
    if (Status s = auth::validateGroupName(name); !s) return s;
    auto deleted = onConnection<bool>(ctx, [&](pqxx::connection& conn) -> Result<bool> {
        if (Status s = auth::deleteGroup(conn, name, auditChange(ctx)); !s) return s;
        return true;
    });
    if (!deleted) return deleted.status();
    json::JsonValue::Object out;
    out["name"] = name;
    out["deleted"] = true;
    return jsonResponse(200, out);
}

Result<HttpResponse> handlePutGroupMember(RequestContext& ctx) {
    if (Status s = needMemberPath(ctx); !s) return s;
    const std::string group = ctx.param("group");
    const std::string principal = ctx.param("principal");
    auto added = onConnection<bool>(ctx, [&](pqxx::connection& conn) {
        return auth::addGroupMember(conn, group, principal, ctx.principal->name, auditChange(ctx));
    });
    if (!added) return added.status();
    json::JsonValue::Object out;
    out["group"] = group;
    out["member"] = principal;
    out["added"] = *added;
    return jsonResponse(*added ? 201 : 200, out);
}

Result<HttpResponse> handleDeleteGroupMember(RequestContext& ctx) {
    if (Status s = needMemberPath(ctx); !s) return s;
    const std::string group = ctx.param("group");
    const std::string principal = ctx.param("principal");
    auto removed = onConnection<bool>(ctx, [&](pqxx::connection& conn) -> Result<bool> {
        if (Status s = auth::removeGroupMember(conn, group, principal, auditChange(ctx)); !s) return s;
        return true;
    });
    if (!removed) return removed.status();
    json::JsonValue::Object out;
    out["group"] = group;
    out["member"] = principal;
    out["removed"] = true;
    return jsonResponse(200, out);
}

}  // namespace custodian::api
