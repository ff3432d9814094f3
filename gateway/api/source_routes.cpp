// The agency sources: PUT, GET one, GET the list (/v1/sources).
#include "gateway/api/catalog_routes.hpp"

#include "gateway/catalog/conninfo.hpp"

#include "gateway/api/catalog_request.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/http/errors.hpp"
#include "json/writer.hpp"

namespace custodian::api {

using auth::Role;

namespace {

// The conninfo from either {"conninfo": "..."} or structured fields; rebuilt from parsed pairs so
// only allowed keywords are ever stored.
Result<std::string> conninfoFromBody(const rapidjson::Value& body) {
    static const char* const kStructured[] = {"host", "hostaddr", "port", "dbname", "user", "password", "sslmode"};
    const rapidjson::Value* text = member(body, "conninfo");
    bool structured = false;
    for (const char* k : kStructured) structured = structured || member(body, k) != nullptr;
    if (text && structured) return invalidArgument("give either conninfo or the connection fields, not both");
    if (text) {
        if (!text->IsString()) return invalidArgument("conninfo must be a string");
        auto pairs = catalog::parseConninfo(std::string_view(text->GetString(), text->GetStringLength()));
        if (!pairs) return pairs.status();
        return catalog::buildConninfo(*pairs);
    }
    if (!structured) return invalidArgument("conninfo (or host, dbname, user, password) is required");
    catalog::ConninfoPairs pairs;
    for (const char* k : kStructured) {
        const rapidjson::Value* v = member(body, k);
        if (!v) continue;
        if (v->IsString()) {
            std::string value(v->GetString(), v->GetStringLength());
            if (value.find('\0') != std::string::npos) return invalidArgument(std::string(k) + " contains a NUL byte");
            pairs.emplace_back(k, std::move(value));
        } else if (std::string_view(k) == "port" && v->IsUint() && v->GetUint() <= 65535) {
            pairs.emplace_back(k, std::to_string(v->GetUint()));
        } else {
            return invalidArgument(std::string(k) + " must be a string");
        }
    }
    if (catalog::conninfoValue(pairs, "dbname").empty()) return invalidArgument("dbname is required");
    return catalog::buildConninfo(pairs);
}

// The non-secret connection facts of a conninfo, for GET responses.
void writeConnection(json::JsonOut& out, const std::string& conninfo) {
    out.key("connection").beginObject();
    if (auto pairs = catalog::parseConninfo(conninfo)) {
        for (const char* k : {"host", "hostaddr", "port", "dbname", "user", "sslmode"}) {
            std::string v = catalog::conninfoValue(*pairs, k);
            if (!v.empty()) out.field(k, v);
        }
    }
    out.endObject();
}

}  // namespace

Result<HttpResponse> handlePutSource(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    const std::string name = ctx.param("name");
    if (Status s = catalog::validateCatalogName("source", name); !s) return s;
    auto body = parseBody(ctx);
    if (!body) return body.status();

    std::optional<std::string> requestedAgency;
    if (const rapidjson::Value* a = member(*body, "agency")) {
        if (!a->IsString()) return invalidArgument("agency must be a string");
        requestedAgency = std::string(a->GetString(), a->GetStringLength());
        if (Status s = validateAgency(*requestedAgency); !s) return s;
    }
    auto conninfo = conninfoFromBody(*body);
    if (!conninfo) {
        if (!catalog::refusedRule(conninfo.status()).empty())
            return sourceRefused(ctx, "source.put", conninfo.status(), name, {});
        return conninfo.status();
    }

    // Scope first (nothing is probed on behalf of a caller who may not manage the source).
    auto existing = withConnection<std::optional<std::string>>(
        ctx, [&](pqxx::connection& conn) { return catalog::sourceAgency(conn, name); });
    if (!existing) return existing.status();
    std::string agency;
    if (requestedAgency) {
        agency = *requestedAgency;
    } else if (who.role == Role::Publisher) {
        agency = who.agency;
    } else if (*existing) {
        agency = **existing;
    } else {
        return invalidArgument("agency is required when an admin creates a source");
    }
    if (Status s = catalog::checkAgencyScope(who, agency); !s) return denied(ctx, "source.put", s, name, {}, {});
    if (*existing) {
        if (Status s = catalog::checkAgencyScope(who, **existing); !s)
            return denied(ctx, "source.put", s, name, {}, {});
    }

    // The endpoint rules and the own-database check, then a query: refused, nothing is stored.
    auto access = sourceAccessFor(ctx);
    if (!access) return access.status();
    if (Status s = catalog::testConnection(*conninfo, *access); !s) {
        if (!catalog::refusedRule(s).empty()) return sourceRefused(ctx, "source.put", s, name, {});
        return http::errorResponse(422, "source_unreachable", s.message());
    }

    const catalog::Catalog& catalog = call->catalog;
    Status scopeRefusal;
    auto stored = withConnection<catalog::SourcePutResult>(ctx, [&](pqxx::connection& conn) {
        auto r = catalog::putSource(conn, catalog.secretKey(), who, name, agency, *conninfo, auditChange(ctx));
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!stored) {
        if (!scopeRefusal.isOk()) return denied(ctx, "source.put", scopeRefusal, name, {}, {});
        return stored.status();
    }
    json::JsonOut out;
    out.beginObject().field("name", name).field("agency", agency).field("created", stored->created);
    writeConnection(out, *conninfo);
    out.endObject();
    return HttpResponse::json(stored->created ? 201 : 200, out.text());
}

Result<HttpResponse> handleGetSource(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    const std::string name = ctx.param("name");
    if (Status s = catalog::validateCatalogName("source", name); !s) return s;
    const catalog::Catalog& catalog = call->catalog;
    auto source =
        withConnection<catalog::Source>(ctx, [&](pqxx::connection& conn) { return catalog.loadSource(conn, name); });
    if (!source) return source.status();
    if (Status s = catalog::checkAgencyScope(who, source->agency); !s)
        return denied(ctx, "source.get", s, name, {}, {});
    json::JsonOut out;
    out.beginObject()
        .field("name", source->name)
        .field("agency", source->agency)
        .field("created_by", source->createdBy)
        .field("created_at", source->createdAt)
        .field("updated_at", source->updatedAt);
    writeConnection(out, source->conninfo);
    out.endObject();
    return HttpResponse::json(200, out.text());
}

Result<HttpResponse> handleListSources(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    std::optional<std::string> agency;
    if (who.role != Role::Admin) agency = who.agency;
    auto list = withConnection<std::vector<catalog::SourceSummary>>(
        ctx, [&](pqxx::connection& conn) { return catalog::listSources(conn, agency); });
    if (!list) return list.status();
    json::JsonOut out;
    out.beginObject().beginArray("sources");
    for (const auto& s : *list) {
        out.beginObject()
            .field("name", s.name)
            .field("agency", s.agency)
            .field("created_by", s.createdBy)
            .field("created_at", s.createdAt)
            .field("updated_at", s.updatedAt)
            .endObject();
    }
    out.endArray().endObject();
    return HttpResponse::json(200, out.text());
}

}  // namespace custodian::api
