// Datasets over agency tables: PUT and GET /v1/datasets/{name}.
#include "gateway/api/catalog_routes.hpp"

#include <map>
#include <set>

#include "json/canonical.hpp"
#include "policies/json_text.hpp"
#include "policies/sql_identifier.hpp"

#include "gateway/api/catalog_request.hpp"
#include "gateway/api/record.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/http/errors.hpp"
#include "json/writer.hpp"

namespace custodian::api {

using auth::Role;

namespace {

// Hierarchies of the dataset whose leaves are known without data (explicit groups), by column.
using KnownLeafHierarchies = std::map<std::string, std::shared_ptr<const anon::Hierarchy>>;

// Parses and checks the dataset body (names, types, roles, hierarchies); errors with pointers.
// Each hierarchy declaration is validated like a policy column's (policies::checkHierarchyDeclaration).
catalog::Dataset datasetFromBody(const std::string& name, const rapidjson::Value& body,
                                 policies::ValidationErrors& errors, KnownLeafHierarchies& knownLeaves) {
    catalog::Dataset d;
    d.name = name;
    auto fail = [&](std::string pointer, std::string message) {
        errors.push_back({std::move(pointer), std::move(message)});
    };
    const rapidjson::Value* source = member(body, "source");
    if (!source || !source->IsString()) {
        fail("/source", "source must name a registered source");
    } else {
        d.source.assign(source->GetString(), source->GetStringLength());
        if (Status s = catalog::validateCatalogName("source", d.source); !s) fail("/source", s.message());
    }
    if (const rapidjson::Value* description = member(body, "description")) {
        constexpr size_t kLongest = 4000;
        if (!description->IsString()) fail("/description", "description must be a string");
        else if (description->GetStringLength() > kLongest)
            fail("/description", "description must be at most " + std::to_string(kLongest) + " bytes");
        else d.descriptionText = json::sanitizeUtf8({description->GetString(), description->GetStringLength()});
    }
    const rapidjson::Value* table = member(body, "table");
    if (!table || !table->IsString()) {
        fail("/table", "table must be \"schema.table\" (or \"table\" in schema public)");
    } else {
        std::string qualified(table->GetString(), table->GetStringLength());
        size_t dot = qualified.find('.');
        d.schema = dot == std::string::npos ? "public" : qualified.substr(0, dot);
        d.table = dot == std::string::npos ? qualified : qualified.substr(dot + 1);
        if (d.table.find('.') != std::string::npos) {
            fail("/table", "table must have the form schema.table with exactly one '.'");
        } else {
            if (Status s = policies::validateSqlIdentifier(d.schema); !s) fail("/table", "schema: " + s.message());
            if (Status s = policies::validateSqlIdentifier(d.table); !s) fail("/table", "table: " + s.message());
        }
    }
    const rapidjson::Value* columns = member(body, "columns");
    if (!columns || !columns->IsArray() || columns->Empty()) {
        fail("/columns", "columns must be a non-empty array of {name, type, role}");
    } else if (columns->Size() > 1600) {
        fail("/columns", "a dataset has at most 1600 columns");
    } else {
        for (rapidjson::SizeType i = 0; i < columns->Size(); ++i) {
            const auto& c = (*columns)[i];
            const std::string at = "/columns/" + std::to_string(i);
            if (!c.IsObject()) {
                fail(at, "each column must be an object {name, type, role}");
                continue;
            }
            catalog::DatasetColumn column;
            bool ok = true;
            const rapidjson::Value* n = member(c, "name");
            if (!n || !n->IsString()) {
                fail(at + "/name", "name must be a string");
                ok = false;
            } else {
                column.name.assign(n->GetString(), n->GetStringLength());
                if (Status s = policies::validateSqlIdentifier(column.name); !s) {
                    fail(at + "/name", s.message());
                    ok = false;
                } else if (d.column(column.name)) {
                    fail(at + "/name", "column \"" + column.name + "\" is listed twice");
                    ok = false;
                }
            }
            const rapidjson::Value* t = member(c, "type");
            auto type = t && t->IsString() ? anon::columnTypeFromName(t->GetString()) : std::nullopt;
            if (!type) {
                fail(at + "/type", "type must be one of integer, decimal, text, date, timestamp");
                ok = false;
            } else {
                column.type = *type;
            }
            const rapidjson::Value* r = member(c, "role");
            auto role = r && r->IsString() ? policies::columnRoleFromName(r->GetString()) : std::nullopt;
            if (!role) {
                fail(at + "/role", "role must be one of identifier, quasi_identifier, sensitive, insensitive");
                ok = false;
            } else {
                column.role = *role;
            }
            if (ok) d.columns.push_back(std::move(column));
        }
    }
    if (const rapidjson::Value* h = member(body, "hierarchies")) {
        if (!h->IsObject()) {
            fail("/hierarchies", "hierarchies must be an object {column: hierarchy declaration}");
        } else {
            std::set<std::string, std::less<>> seen;
            for (auto m = h->MemberBegin(); m != h->MemberEnd(); ++m) {
                std::string column(m->name.GetString(), m->name.GetStringLength());
                const std::string at = policies::appendPointer("/hierarchies", column);
                if (!seen.insert(column).second) {
                    fail(at, "the column \"" + json::sanitizeUtf8(column) + "\" has more than one hierarchy");
                    continue;
                }
                const catalog::DatasetColumn* c = d.column(column);
                if (!c) {
                    fail(at, "no column of this dataset has that name");
                    continue;
                }
                // Hierarchy files are refused: the gateway never reads its own file system for a request.
                auto checked = policies::checkHierarchyDeclaration(m->value, at, column, c->type);
                for (auto& e : checked.errors) errors.push_back(std::move(e));
                if (checked.errors.empty() && checked.hierarchy) knownLeaves[column] = checked.hierarchy;
            }
            if (errors.empty()) {
                auto canonical = json::canonicalJson(*h, json::Numbers::Decimal);
                if (canonical) d.hierarchiesJson = std::move(canonical).value();
                else errors.push_back({"/hierarchies", canonical.status().message()});
            }
        }
    }
    return d;
}

// Where the leaves are known and the source's text form of a value is its canonical form (text and
// integer columns), every value of the column must be a leaf: a value outside the hierarchy could
// not be generalized at release time. Appends one error per hierarchy with uncovered values.
Status checkHierarchyCoverage(const catalog::Dataset& d, const KnownLeafHierarchies& knownLeaves,
                              const std::string& conninfo, const catalog::SourceAccess& access,
                              policies::ValidationErrors& errors) {
    constexpr size_t kShown = 5;
    for (const auto& [column, hierarchy] : knownLeaves) {
        const catalog::DatasetColumn* c = d.column(column);
        if (!c || (c->type != anon::ColumnType::Text && c->type != anon::ColumnType::Integer)) continue;
        std::vector<std::string> leaves;
        leaves.reserve(hierarchy->leafCount());
        for (uint32_t leaf = 0; leaf < hierarchy->leafCount(); ++leaf) leaves.push_back(hierarchy->label(0, leaf));
        auto outside = catalog::valuesOutside(conninfo, access, d.schema, d.table, column, leaves, kShown + 1);
        if (!outside) {
            // Unavailable, or a source rule that refused the connection (DNS changed since inspectTable).
            if (outside.status().code() == StatusCode::Unavailable || !catalog::refusedRule(outside.status()).empty())
                return outside.status();
            errors.push_back({policies::appendPointer("/hierarchies", column), outside.status().message()});
            continue;
        }
        if (outside->empty()) continue;
        std::string shown;
        for (size_t i = 0; i < outside->size() && i < kShown; ++i)
            shown += (i ? ", \"" : "\"") + json::sanitizeUtf8((*outside)[i]) + "\"";
        if (outside->size() > kShown) shown += " and more";
        errors.push_back({policies::appendPointer("/hierarchies", column),
                          "the source has values of \"" + column + "\" that the hierarchy does not list: " + shown +
                              "; every value must be a member of a group of the first level"});
    }
    return Status::ok();
}

// The members a dataset's view and its listing share; leaves the object open.
void writeDatasetHead(json::JsonOut& out, const catalog::Dataset& d) {
    out.beginObject()
        .field("name", d.name)
        .field("agency", d.agency)
        .field("description", d.descriptionText)
        .field("source", d.source)
        .field("table", d.schema + "." + d.table);
}

void writeDataset(json::JsonOut& out, const catalog::Dataset& d) {
    writeDatasetHead(out, d);
    out.beginArray("columns");
    for (const auto& c : d.columns) {
        out.beginObject()
            .field("name", c.name)
            .field("type", anon::columnTypeName(c.type))
            .field("role", policies::columnRoleName(c.role))
            .endObject();
    }
    out.endArray();
    out.raw("hierarchies", d.hierarchiesJson);
    if (!d.createdBy.empty()) {
        out.field("created_by", d.createdBy).field("created_at", d.createdAt).field("updated_at", d.updatedAt);
    }
    out.endObject();
}

}  // namespace

Result<HttpResponse> handlePutDataset(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    const std::string name = ctx.param("name");
    if (Status s = catalog::validateCatalogName("dataset", name); !s) return s;
    auto body = parseBody(ctx);
    if (!body) return body.status();
    policies::ValidationErrors errors;
    KnownLeafHierarchies knownLeaves;
    catalog::Dataset dataset = datasetFromBody(name, *body, errors, knownLeaves);
    if (!errors.empty()) return validationFailure("invalid_dataset", "the dataset definition is invalid", errors);

    const catalog::Catalog& catalog = call->catalog;
    struct Lookup {
        catalog::Source source;
        std::optional<std::string> existingAgency;
    };
    auto lookup = withConnection<Lookup>(ctx, [&](pqxx::connection& conn) -> Result<Lookup> {
        auto source = catalog.loadSource(conn, dataset.source);
        if (!source) return source.status();
        Lookup l{std::move(source).value(), std::nullopt};
        auto existing = catalog.loadDataset(conn, name);
        if (existing) l.existingAgency = existing->agency;
        else if (existing.status().code() != StatusCode::NotFound) return existing.status();
        return l;
    });
    if (!lookup) {
        if (lookup.status().code() == StatusCode::NotFound) {
            return validationFailure("invalid_dataset", "the dataset definition is invalid",
                                     {{"/source", "no source named \"" + dataset.source + "\""}});
        }
        return lookup.status();
    }
    dataset.agency = lookup->source.agency;
    if (lookup->existingAgency) {
        if (Status s = catalog::checkAgencyScope(who, *lookup->existingAgency); !s)
            return denied(ctx, "dataset.put", s, dataset.source, name, {});
    }
    if (Status s = catalog::checkAgencyScope(who, dataset.agency); !s)
        return denied(ctx, "dataset.put", s, dataset.source, name, {});

    // The table and every column must exist on the source, with compatible types.
    auto access = sourceAccessFor(ctx);
    if (!access) return access.status();
    auto columns = catalog::inspectTable(lookup->source.conninfo, *access, dataset.schema, dataset.table);
    if (!columns) {
        if (!catalog::refusedRule(columns.status()).empty())
            return sourceRefused(ctx, "dataset.put", columns.status(), dataset.source, name);
        // Problems of the agency database are the request's problem (422), never the caller's
        // permission (403) or the gateway's availability (503).
        return validationFailure("invalid_dataset", "the source does not match the dataset definition",
                                 {{"/table", columns.status().message()}});
    }
    std::map<std::string, std::string> actual;
    for (const auto& c : *columns) actual.emplace(c.name, c.dataType);
    for (size_t i = 0; i < dataset.columns.size(); ++i) {
        const auto& c = dataset.columns[i];
        const std::string at = "/columns/" + std::to_string(i);
        auto it = actual.find(c.name);
        if (it == actual.end()) {
            errors.push_back({at + "/name", "the source table has no column \"" + c.name + "\""});
        } else if (!catalog::typeCompatible(c.type, it->second)) {
            errors.push_back({at + "/type", "the source column \"" + c.name + "\" has type " + it->second +
                                                ", which cannot be read as " + anon::columnTypeName(c.type)});
        }
    }
    if (!errors.empty())
        return validationFailure("invalid_dataset", "the source does not match the dataset definition", errors);
    if (Status s = checkHierarchyCoverage(dataset, knownLeaves, lookup->source.conninfo, *access, errors); !s) return s;
    if (!errors.empty())
        return validationFailure("invalid_dataset", "the hierarchies do not cover the source's values", errors);

    std::vector<std::pair<std::string, policies::ValidationErrors>> broken;
    Status scopeRefusal;
    auto stored = withConnection<catalog::DatasetPutResult>(ctx, [&](pqxx::connection& conn) {
        auto r = catalog::putDataset(conn, who, dataset, auditChange(ctx), &broken);
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!stored) {
        if (!scopeRefusal.isOk()) return denied(ctx, "dataset.put", scopeRefusal, dataset.source, name, {});
        if (!broken.empty()) {
            policies::ValidationErrors details;
            for (const auto& [policy, errs] : broken)
                for (const auto& e : errs)
                    details.push_back({"/policies/" + policies::escapePointerToken(policy) + e.pointer, e.message});
            return validationFailure("policies_in_force", stored.status().message(), details);
        }
        return stored.status();
    }
    json::JsonOut out;
    out.beginObject().field("created", stored->created).key("dataset");
    writeDataset(out, dataset);
    out.endObject();
    return HttpResponse::json(stored->created ? 201 : 200, out.text());
}

Result<HttpResponse> handleGetDataset(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    const std::string name = ctx.param("name");
    if (Status s = catalog::validateCatalogName("dataset", name); !s) return s;
    const catalog::Catalog& catalog = call->catalog;
    auto dataset =
        withConnection<catalog::Dataset>(ctx, [&](pqxx::connection& conn) { return catalog.loadDataset(conn, name); });
    if (!dataset) return dataset.status();
    if (Status s = catalog::checkAgencyScope(who, dataset->agency); !s)
        return denied(ctx, "dataset.get", s, dataset->source, name, {});
    json::JsonOut out;
    writeDataset(out, *dataset);
    return HttpResponse::json(200, out.text());
}

Result<HttpResponse> handleListDatasets(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    std::optional<std::string> agency;
    if (who.role != Role::Admin) agency = who.agency;
    const catalog::Catalog& catalog = call->catalog;
    struct Listed {
        catalog::Dataset dataset;
        // Each policy's current version; an error when it no longer loads against the dataset.
        std::vector<std::pair<std::string, Result<catalog::LoadedPolicy>>> policies;
    };
    auto listed = withConnection<std::vector<Listed>>(ctx, [&](pqxx::connection& conn) -> Result<std::vector<Listed>> {
        auto names = catalog::listDatasetPolicies(conn, agency);
        if (!names) return names.status();
        std::vector<Listed> out;
        for (const auto& entry : *names) {
            auto d = catalog.loadDataset(conn, entry.dataset);
            if (!d) {
                if (d.status().code() == StatusCode::NotFound) continue;  // removed meanwhile
                return d.status();
            }
            Listed l{std::move(d).value(), {}};
            for (const auto& policy : entry.policies) {
                auto p = catalog.loadCurrentPolicy(conn, entry.dataset, policy);
                if (!p && p.status().code() == StatusCode::Unavailable) return p.status();
                l.policies.emplace_back(policy, std::move(p));
            }
            out.push_back(std::move(l));
        }
        return out;
    });
    if (!listed) return listed.status();
    json::JsonOut out;
    out.beginObject().beginArray("datasets");
    for (const auto& l : *listed) {
        writeDatasetHead(out, l.dataset);
        out.beginArray("policies");
        for (const auto& [name, policy] : l.policies) {
            out.beginObject().field("name", name);
            if (policy) {
                out.field("version", static_cast<int64_t>(policy->version))
                    .field("retired", policy->retired)
                    .field("transparency", policies::transparencyName(policy->policy->model().transparency));
            } else {
                out.field("error", policy.status().message());
            }
            out.endObject();
        }
        out.endArray().endObject();
    }
    out.endArray().endObject();
    return HttpResponse::json(200, out.text());
}

}  // namespace custodian::api
