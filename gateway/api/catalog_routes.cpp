#include "gateway/release/extract_store.hpp"
#include "gateway/api/catalog_routes.hpp"

#include <pqxx/pqxx>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <concepts>
#include <ctime>
#include <map>
#include <set>

#include "gateway/api/record.hpp"
#include "gateway/auth/groups.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/catalog/conninfo.hpp"
#include "gateway/catalog/source_access.hpp"
#include "gateway/catalog/store.hpp"
#include "gateway/crypto/canonical_json.hpp"
#include "gateway/db/guarded.hpp"
#include "gateway/http/errors.hpp"
#include "gateway/api/services.hpp"
#include "policies/json_text.hpp"
#include "policies/policy.hpp"
#include "policies/sql_identifier.hpp"

namespace custodian::api {

using auth::Role;
using http::HttpResponse;

namespace {

// ---- JSON output ----------------------------------------------------------------------------

class JsonOut {
public:
    JsonOut() : w_(buffer_) {}
    JsonOut& key(std::string_view k) {
        w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
        return *this;
    }
    JsonOut& str(std::string_view v) {
        std::string clean = crypto::sanitizeUtf8(v);
        w_.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
        return *this;
    }
    JsonOut& field(std::string_view k, std::string_view v) { return key(k).str(v); }
    // Only a real bool may become a JSON boolean: a `const char*` would otherwise convert to bool
    // (a standard conversion beats the user-defined one to string_view) and write `true`.
    template <typename B>
        requires std::same_as<B, bool>
    JsonOut& field(std::string_view k, B v) {
        key(k);
        w_.Bool(v);
        return *this;
    }
    JsonOut& field(std::string_view k, const char* v) { return field(k, std::string_view(v)); }
    JsonOut& field(std::string_view k, int64_t v) {
        key(k);
        w_.Int64(v);
        return *this;
    }
    JsonOut& optional(std::string_view k, const std::optional<std::string>& v) {
        key(k);
        if (v) str(*v); else w_.Null();
        return *this;
    }
    JsonOut& optional(std::string_view k, const std::optional<uint64_t>& v) {
        key(k);
        if (v) w_.Uint64(*v); else w_.Null();
        return *this;
    }
    JsonOut& number(double v) {
        w_.Double(v);
        return *this;
    }
    JsonOut& raw(std::string_view k, const std::string& json) {
        key(k);
        w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
        return *this;
    }
    JsonOut& beginObject() {
        w_.StartObject();
        return *this;
    }
    JsonOut& endObject() {
        w_.EndObject();
        return *this;
    }
    JsonOut& beginArray(std::string_view k) {
        key(k);
        w_.StartArray();
        return *this;
    }
    JsonOut& endArray() {
        w_.EndArray();
        return *this;
    }
    std::string text() const { return buffer_.GetString(); }

private:
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> w_;
};

// {"error":{"code":..., "message":..., "details":[{"pointer":..., "message":...}]}} with 422.
HttpResponse validationFailure(std::string_view code, std::string_view message,
                               const policies::ValidationErrors& errors) {
    JsonOut out;
    out.beginObject().key("error").beginObject().field("code", code).field("message", message);
    out.beginArray("details");
    for (const auto& e : errors) out.beginObject().field("pointer", e.pointer).field("message", e.message).endObject();
    out.endArray().endObject().endObject();
    return HttpResponse::json(422, out.text());
}

// ---- audit ------------------------------------------------------------------------------------

audit::AuditEntry entryWith(const RequestContext& ctx, const std::string& action, const std::string& decision,
                            const std::optional<std::string>& source, const std::optional<std::string>& dataset,
                            const std::optional<std::string>& policy) {
    audit::AuditEntry e = entryFor(ctx, action, decision);
    e.target.source = source;
    e.target.dataset = dataset;
    e.target.policy = policy;
    return e;
}

// The audit hook of store changes: appends an "allowed" entry; its failure rolls the change back.
BeforeCommit auditChange(RequestContext& ctx) {
    return [&ctx](const ChangeFacts& facts) -> Status {
        audit::AuditEntry e = entryWith(ctx, facts.action, "allowed", facts.source, facts.dataset, facts.policy);
        e.target.policyVersion = facts.policyVersion;
        e.details = crypto::JsonValue(facts.details);
        auto recorded = record(ctx, std::move(e));
        return recorded ? Status::ok() : recorded.status();
    };
}

// Records a scoping refusal as a denied `action`; fails (503) if the log cannot take it.
Status recordDenial(RequestContext& ctx, const std::string& action, const Status& refusal,
                    const std::optional<std::string>& source, const std::optional<std::string>& dataset,
                    const std::optional<std::string>& policy) {
    audit::AuditEntry e = entryWith(ctx, action, "denied", source, dataset, policy);
    e.reason = refusal.message();
    auto recorded = record(ctx, std::move(e));
    return recorded ? Status::ok() : recorded.status();
}

// Records a scoping refusal and returns it — or the audit log's 503 if the refusal cannot be
// recorded (nothing was changed or shown either way).
Status denied(RequestContext& ctx, const std::string& action, Status refusal, const std::optional<std::string>& source,
              const std::optional<std::string>& dataset, const std::optional<std::string>& policy) {
    if (Status s = recordDenial(ctx, action, refusal, source, dataset, policy); !s) return s;
    return refusal;
}

// ---- request helpers ----------------------------------------------------------------------------

Result<const auth::Principal*> principalOf(const RequestContext& ctx) {
    if (!ctx.principal) return Status(StatusCode::Unauthenticated, "authentication required");
    return ctx.principal;
}

Status needServices(const RequestContext& ctx) {
    if (!ctx.services.db) return unavailable("the database is not configured");
    if (!ctx.services.catalog) return unavailable("the catalog is not configured");
    return Status::ok();
}

std::chrono::seconds probeTimeout(const RequestContext& ctx) {
    return ctx.services.config ? ctx.services.config->database.connectTimeout : std::chrono::seconds(5);
}

// How this request reaches agency databases: the configured endpoint rules and the identity of
// the gateway's own database, read now on the gateway's own connection (any role may read it).
Result<SourceAccess> sourceAccessFor(RequestContext& ctx);

// A source rule's refusal (source_access.hpp): 422 {"error":{"code":"source_refused","message":...,
// "details":{"rule":...}}}, audited as a denied `action` like the scope refusals.
Result<HttpResponse> sourceRefused(RequestContext& ctx, const std::string& action, const Status& refusal,
                                   const std::optional<std::string>& source, const std::optional<std::string>& dataset) {
    if (Status s = recordDenial(ctx, action, refusal, source, dataset, {}); !s) return s;
    return http::errorResponse(422, "source_refused", refusal.message(),
                               "{\"rule\":" + http::jsonQuote(refusedRule(refusal)) + "}");
}

Result<rapidjson::Document> parseBody(const RequestContext& ctx) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(ctx.request.body.c_str(), ctx.request.body.size());
    if (doc.HasParseError()) {
        return invalidArgument(std::string("the body is not valid JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) +
                               " (offset " + std::to_string(doc.GetErrorOffset()) + ")");
    }
    if (!doc.IsObject()) return invalidArgument("the body must be a JSON object");
    return doc;
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
    auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

template <typename T>
Result<T> withConnection(RequestContext& ctx, const std::function<Result<T>(pqxx::connection&)>& work) {
    return db::resultOnConnection<T>(*ctx.services.db, work);
}

Result<SourceAccess> sourceAccessFor(RequestContext& ctx) {
    static const config::SourcesConfig kNoSources;  // no configuration: no endpoint is allowed
    SourceAccess access;
    access.rules = ctx.services.config ? &ctx.services.config->sources : &kNoSources;
    access.timeout = probeTimeout(ctx);
    auto identity = withConnection<db::ServerIdentity>(ctx, [](pqxx::connection& conn) { return gatewayIdentity(conn); });
    if (!identity) return identity.status();
    access.gateway = std::move(identity).value();
    return access;
}

std::string nowIso() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

std::optional<std::string> isoFromMicros(const std::optional<int64_t>& micros) {
    if (!micros) return std::nullopt;
    std::time_t t = static_cast<std::time_t>(*micros / 1000000 - (*micros % 1000000 < 0 ? 1 : 0));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buffer);
}

int64_t nowMicros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The non-secret connection facts of a conninfo, for GET responses.
void writeConnection(JsonOut& out, const std::string& conninfo) {
    out.key("connection").beginObject();
    if (auto pairs = parseConninfo(conninfo)) {
        for (const char* k : {"host", "hostaddr", "port", "dbname", "user", "sslmode"}) {
            std::string v = conninfoValue(*pairs, k);
            if (!v.empty()) out.field(k, v);
        }
    }
    out.endObject();
}

Status validateAgency(const std::string& agency) {
    if (agency.empty() || agency.size() > 128) return invalidArgument("agency must be 1 to 128 characters");
    for (unsigned char c : agency)
        if (c < 0x20 || c == 0x7f) return invalidArgument("agency must not contain control characters");
    if (!crypto::isValidUtf8(agency)) return invalidArgument("agency must be valid UTF-8");
    return Status::ok();
}

// ---- sources ------------------------------------------------------------------------------------

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
        auto pairs = parseConninfo(std::string_view(text->GetString(), text->GetStringLength()));
        if (!pairs) return pairs.status();
        return buildConninfo(*pairs);
    }
    if (!structured) return invalidArgument("conninfo (or host, dbname, user, password) is required");
    ConninfoPairs pairs;
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
    if (conninfoValue(pairs, "dbname").empty()) return invalidArgument("dbname is required");
    return buildConninfo(pairs);
}

}  // namespace

Result<HttpResponse> handlePutSource(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    const auth::Principal& who = **principal;
    const std::string name = ctx.param("name");
    if (Status s = validateCatalogName("source", name); !s) return s;
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
        if (!refusedRule(conninfo.status()).empty()) return sourceRefused(ctx, "source.put", conninfo.status(), name, {});
        return conninfo.status();
    }

    // Scope first (nothing is probed on behalf of a caller who may not manage the source).
    auto existing = withConnection<std::optional<std::string>>(
        ctx, [&](pqxx::connection& conn) { return sourceAgency(conn, name); });
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
    if (Status s = checkAgencyScope(who, agency); !s) return denied(ctx, "source.put", s, name, {}, {});
    if (*existing) {
        if (Status s = checkAgencyScope(who, **existing); !s) return denied(ctx, "source.put", s, name, {}, {});
    }

    // The endpoint rules and the own-database check, then a query: refused, nothing is stored.
    auto access = sourceAccessFor(ctx);
    if (!access) return access.status();
    if (Status s = testConnection(*conninfo, *access); !s) {
        if (!refusedRule(s).empty()) return sourceRefused(ctx, "source.put", s, name, {});
        return http::errorResponse(422, "source_unreachable", s.message());
    }

    const Catalog& catalog = *ctx.services.catalog;
    Status scopeRefusal;
    auto stored = withConnection<SourcePutResult>(ctx, [&](pqxx::connection& conn) {
        auto r = putSource(conn, catalog.secretKey(), who, name, agency, *conninfo, auditChange(ctx));
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!stored) {
        if (!scopeRefusal.isOk()) return denied(ctx, "source.put", scopeRefusal, name, {}, {});
        return stored.status();
    }
    JsonOut out;
    out.beginObject().field("name", name).field("agency", agency).field("created", stored->created);
    writeConnection(out, *conninfo);
    out.endObject();
    return HttpResponse::json(stored->created ? 201 : 200, out.text());
}

Result<HttpResponse> handleGetSource(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    const std::string name = ctx.param("name");
    if (Status s = validateCatalogName("source", name); !s) return s;
    const Catalog& catalog = *ctx.services.catalog;
    auto source = withConnection<Source>(ctx, [&](pqxx::connection& conn) { return catalog.loadSource(conn, name); });
    if (!source) return source.status();
    if (Status s = checkAgencyScope(**principal, source->agency); !s) return denied(ctx, "source.get", s, name, {}, {});
    JsonOut out;
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
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    std::optional<std::string> agency;
    if ((*principal)->role != Role::Admin) agency = (*principal)->agency;
    auto list = withConnection<std::vector<SourceSummary>>(ctx, [&](pqxx::connection& conn) { return listSources(conn, agency); });
    if (!list) return list.status();
    JsonOut out;
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

// ---- datasets -----------------------------------------------------------------------------------

namespace {

// Hierarchies of the dataset whose leaves are known without data (explicit groups), by column.
using KnownLeafHierarchies = std::map<std::string, std::shared_ptr<const anon::Hierarchy>>;

// Parses and checks the dataset body (names, types, roles, hierarchies); errors with pointers.
// Each hierarchy declaration is validated like a policy column's (policies::checkHierarchyDeclaration).
Dataset datasetFromBody(const std::string& name, const rapidjson::Value& body, policies::ValidationErrors& errors,
                        KnownLeafHierarchies& knownLeaves) {
    Dataset d;
    d.name = name;
    auto fail = [&](std::string pointer, std::string message) { errors.push_back({std::move(pointer), std::move(message)}); };
    const rapidjson::Value* source = member(body, "source");
    if (!source || !source->IsString()) {
        fail("/source", "source must name a registered source");
    } else {
        d.source.assign(source->GetString(), source->GetStringLength());
        if (Status s = validateCatalogName("source", d.source); !s) fail("/source", s.message());
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
            DatasetColumn column;
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
                    fail(at, "the column \"" + crypto::sanitizeUtf8(column) + "\" has more than one hierarchy");
                    continue;
                }
                const DatasetColumn* c = d.column(column);
                if (!c) {
                    fail(at, "no column of this dataset has that name");
                    continue;
                }
                // Hierarchy files are refused: the gateway never reads its own file system for a request.
                auto checked = policies::checkHierarchyDeclaration(m->value, at, column, c->type);
                for (auto& e : checked.errors) errors.push_back(std::move(e));
                if (checked.errors.empty() && checked.hierarchy) knownLeaves[column] = checked.hierarchy;
            }
            if (errors.empty()) d.hierarchiesJson = policies::canonicalJson(*h);
        }
    }
    return d;
}

// Where the leaves are known and the source's text form of a value is its canonical form (text and
// integer columns), every value of the column must be a leaf: a value outside the hierarchy could
// not be generalized at release time. Appends one error per hierarchy with uncovered values.
Status checkHierarchyCoverage(const Dataset& d, const KnownLeafHierarchies& knownLeaves, const std::string& conninfo,
                              const SourceAccess& access, policies::ValidationErrors& errors) {
    constexpr size_t kShown = 5;
    for (const auto& [column, hierarchy] : knownLeaves) {
        const DatasetColumn* c = d.column(column);
        if (!c || (c->type != anon::ColumnType::Text && c->type != anon::ColumnType::Integer)) continue;
        std::vector<std::string> leaves;
        leaves.reserve(hierarchy->leafCount());
        for (uint32_t leaf = 0; leaf < hierarchy->leafCount(); ++leaf) leaves.push_back(hierarchy->label(0, leaf));
        auto outside = valuesOutside(conninfo, access, d.schema, d.table, column, leaves, kShown + 1);
        if (!outside) {
            // Unavailable, or a source rule that refused the connection (DNS changed since inspectTable).
            if (outside.status().code() == StatusCode::Unavailable || !refusedRule(outside.status()).empty())
                return outside.status();
            errors.push_back({policies::appendPointer("/hierarchies", column), outside.status().message()});
            continue;
        }
        if (outside->empty()) continue;
        std::string shown;
        for (size_t i = 0; i < outside->size() && i < kShown; ++i)
            shown += (i ? ", \"" : "\"") + crypto::sanitizeUtf8((*outside)[i]) + "\"";
        if (outside->size() > kShown) shown += " and more";
        errors.push_back({policies::appendPointer("/hierarchies", column),
                          "the source has values of \"" + column + "\" that the hierarchy does not list: " + shown +
                              "; every value must be a member of a group of the first level"});
    }
    return Status::ok();
}

void writeDataset(JsonOut& out, const Dataset& d) {
    out.beginObject()
        .field("name", d.name)
        .field("agency", d.agency)
        .field("source", d.source)
        .field("table", d.schema + "." + d.table);
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
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    const auth::Principal& who = **principal;
    const std::string name = ctx.param("name");
    if (Status s = validateCatalogName("dataset", name); !s) return s;
    auto body = parseBody(ctx);
    if (!body) return body.status();
    policies::ValidationErrors errors;
    KnownLeafHierarchies knownLeaves;
    Dataset dataset = datasetFromBody(name, *body, errors, knownLeaves);
    if (!errors.empty()) return validationFailure("invalid_dataset", "the dataset definition is invalid", errors);

    const Catalog& catalog = *ctx.services.catalog;
    struct Lookup {
        Source source;
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
        if (Status s = checkAgencyScope(who, *lookup->existingAgency); !s)
            return denied(ctx, "dataset.put", s, dataset.source, name, {});
    }
    if (Status s = checkAgencyScope(who, dataset.agency); !s) return denied(ctx, "dataset.put", s, dataset.source, name, {});

    // The table and every column must exist on the source, with compatible types.
    auto access = sourceAccessFor(ctx);
    if (!access) return access.status();
    auto columns = inspectTable(lookup->source.conninfo, *access, dataset.schema, dataset.table);
    if (!columns) {
        if (!refusedRule(columns.status()).empty())
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
        } else if (!typeCompatible(c.type, it->second)) {
            errors.push_back({at + "/type", "the source column \"" + c.name + "\" has type " + it->second +
                                                ", which cannot be read as " + anon::columnTypeName(c.type)});
        }
    }
    if (!errors.empty()) return validationFailure("invalid_dataset", "the source does not match the dataset definition", errors);
    if (Status s = checkHierarchyCoverage(dataset, knownLeaves, lookup->source.conninfo, *access, errors); !s)
        return s;
    if (!errors.empty())
        return validationFailure("invalid_dataset", "the hierarchies do not cover the source's values", errors);

    std::vector<std::pair<std::string, policies::ValidationErrors>> broken;
    Status scopeRefusal;
    auto stored = withConnection<DatasetPutResult>(ctx, [&](pqxx::connection& conn) {
        auto r = putDataset(conn, who, dataset, auditChange(ctx), &broken);
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!stored) {
        if (!scopeRefusal.isOk()) return denied(ctx, "dataset.put", scopeRefusal, dataset.source, name, {});
        if (!broken.empty()) {
            policies::ValidationErrors details;
            for (const auto& [policy, errs] : broken)
                for (const auto& e : errs) details.push_back({"/policies/" + policies::escapePointerToken(policy) + e.pointer, e.message});
            return validationFailure("policies_in_force", stored.status().message(), details);
        }
        return stored.status();
    }
    JsonOut out;
    out.beginObject().field("created", stored->created).key("dataset");
    writeDataset(out, dataset);
    out.endObject();
    return HttpResponse::json(stored->created ? 201 : 200, out.text());
}

Result<HttpResponse> handleGetDataset(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    const std::string name = ctx.param("name");
    if (Status s = validateCatalogName("dataset", name); !s) return s;
    const Catalog& catalog = *ctx.services.catalog;
    auto dataset = withConnection<Dataset>(ctx, [&](pqxx::connection& conn) { return catalog.loadDataset(conn, name); });
    if (!dataset) return dataset.status();
    if (Status s = checkAgencyScope(**principal, dataset->agency); !s)
        return denied(ctx, "dataset.get", s, dataset->source, name, {});
    JsonOut out;
    writeDataset(out, *dataset);
    return HttpResponse::json(200, out.text());
}

// ---- policies -----------------------------------------------------------------------------------

namespace {

Status validatePolicyPath(const RequestContext& ctx) {
    if (Status s = validateCatalogName("dataset", ctx.param("dataset")); !s) return s;
    return validateCatalogName("policy", ctx.param("policy"));
}

}  // namespace

Result<HttpResponse> handlePutPolicy(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    const auth::Principal& who = **principal;
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    const Catalog& catalog = *ctx.services.catalog;

    struct Context {
        Dataset dataset;
        std::set<std::string, std::less<>> recipients;
    };
    auto context = withConnection<Context>(ctx, [&](pqxx::connection& conn) -> Result<Context> {
        auto d = catalog.loadDataset(conn, datasetName);
        if (!d) return d.status();
        auto recipients = recipientNames(conn);
        if (!recipients) return recipients.status();
        return Context{std::move(d).value(), std::move(recipients).value()};
    });
    if (!context) return context.status();
    if (Status s = checkAgencyScope(who, context->dataset.agency); !s)
        return denied(ctx, "policy.put", s, context->dataset.source, datasetName, policyName);

    policies::DatasetDescription description = context->dataset.description();
    policies::PolicyLoadOptions options;
    options.dataset = &description;
    options.knownRecipients = &context->recipients;
    if (!crypto::isValidUtf8(ctx.request.body)) {
        return validationFailure("invalid_policy", "the policy has 1 error(s)",
                                 {{"", "the document is not valid UTF-8 text"}});
    }
    policies::PolicyLoadResult loaded = policies::loadPolicy(ctx.request.body, options);
    if (!loaded.ok()) {
        return validationFailure("invalid_policy",
                                 "the policy has " + std::to_string(loaded.errors.size()) + " error(s)", loaded.errors);
    }
    const std::string hash = loaded.policy->contentHash();

    Status scopeRefusal;
    auto stored = withConnection<PolicyPutResult>(ctx, [&](pqxx::connection& conn) {
        auto r = putPolicyVersion(conn, who, datasetName, policyName, ctx.request.body, hash, auditChange(ctx));
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!stored) {
        if (!scopeRefusal.isOk()) return denied(ctx, "policy.put", scopeRefusal, context->dataset.source, datasetName, policyName);
        return stored.status();
    }
    if (!stored->created) {
        // Nothing changed, but the request is still on record.
        audit::AuditEntry e = entryWith(ctx, "policy.put", "allowed", context->dataset.source, datasetName, policyName);
        e.target.policyVersion = stored->version;
        crypto::JsonValue::Object details;
        details["content_hash"] = hash;
        details["version"] = static_cast<int64_t>(stored->version);
        details["unchanged"] = true;
        e.details = crypto::JsonValue(std::move(details));
        auto recorded = record(ctx, std::move(e));
        if (!recorded) return recorded.status();
    }
    JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(stored->version))
        .field("content_hash", stored->contentHash)
        .field("created", stored->created)
        .field("message", stored->created ? "version " + std::to_string(stored->version) + " stored"
                                          : "identical to the current version " + std::to_string(stored->version) +
                                                "; no new version was created");
    out.endObject();
    return HttpResponse::json(stored->created ? 201 : 200, out.text());
}

Result<HttpResponse> handleGetPolicy(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    const Catalog& catalog = *ctx.services.catalog;
    struct View {
        Dataset dataset;
        std::optional<LoadedPolicy> current;
        std::vector<PolicyVersionInfo> history;
    };
    auto view = withConnection<View>(ctx, [&](pqxx::connection& conn) -> Result<View> {
        auto d = catalog.loadDataset(conn, datasetName);
        if (!d) return d.status();
        View v{std::move(d).value(), std::nullopt, {}};
        if (!checkAgencyScope(**principal, v.dataset.agency).isOk()) return v;  // refused below, nothing read
        auto p = catalog.loadCurrentPolicy(conn, datasetName, policyName);
        if (!p) return p.status();
        v.current = std::move(p).value();
        auto h = policyHistory(conn, datasetName, policyName);
        if (!h) return h.status();
        v.history = std::move(h).value();
        return v;
    });
    if (!view) return view.status();
    if (Status s = checkAgencyScope(**principal, view->dataset.agency); !s)
        return denied(ctx, "policy.get", s, view->dataset.source, datasetName, policyName);
    const LoadedPolicy& p = *view->current;
    JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(p.version))
        .field("content_hash", p.contentHash)
        .field("retired", p.retired)
        .optional("retired_at", p.retiredAt)
        .raw("document", p.document);
    out.beginArray("history");
    for (const auto& h : view->history) {
        out.beginObject()
            .field("version", static_cast<int64_t>(h.version))
            .field("content_hash", h.contentHash)
            .field("created_by", h.createdBy)
            .field("created_at", h.createdAt)
            .endObject();
    }
    out.endArray().endObject();
    return HttpResponse::json(200, out.text());
}

Result<HttpResponse> handleRetirePolicy(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    if (Status s = validatePolicyPath(ctx); !s) return s;
    const std::string datasetName = ctx.param("dataset");
    const std::string policyName = ctx.param("policy");
    Status scopeRefusal;
    auto retired = withConnection<PolicyRetireResult>(ctx, [&](pqxx::connection& conn) {
        auto r = retirePolicy(conn, **principal, datasetName, policyName, auditChange(ctx));
        if (!r && r.status().code() == StatusCode::PermissionDenied) scopeRefusal = r.status();
        return r;
    });
    if (!retired) {
        if (!scopeRefusal.isOk()) return denied(ctx, "policy.retire", scopeRefusal, {}, datasetName, policyName);
        return retired.status();
    }
    JsonOut out;
    out.beginObject()
        .field("dataset", datasetName)
        .field("policy", policyName)
        .field("version", static_cast<int64_t>(retired->version))
        .field("content_hash", retired->contentHash)
        .field("retired", true)
        .field("retired_at", retired->retiredAt)
        .field("already_retired", retired->alreadyRetired)
        .endObject();
    return HttpResponse::json(200, out.text());
}

// ---- catalog ------------------------------------------------------------------------------------

namespace {

const char* formatName(policies::OutputFormat f) { return f == policies::OutputFormat::Csv ? "csv" : "ndjson"; }

// `admittedAs`: the recipient entry that admits the caller (its name, or "group:NAME").
// `extractsToday`: the partner's extracts under the policy since 00:00 UTC, when it has a daily limit.
void writeCatalogPolicy(JsonOut& out, const LoadedPolicy& p, const std::string& admittedAs,
                        std::optional<uint64_t> extractsToday) {
    const policies::PolicyModel& m = p.policy->model();
    out.beginObject()
        .field("name", p.name)
        .field("version", static_cast<int64_t>(p.version))
        .field("content_hash", p.contentHash)
        .field("description", m.description)
        .field("recipient", admittedAs);
    out.beginArray("purposes");
    for (const auto& purpose : m.purposes) out.str(purpose);
    out.endArray();
    out.key("validity").beginObject()
        .optional("not_before", isoFromMicros(m.validity.notBefore))
        .optional("expires", isoFromMicros(m.validity.expires))
        .endObject();
    out.key("output").beginObject();
    out.beginArray("formats");
    for (auto f : m.output.formats) out.str(formatName(f));
    out.endArray();
    out.field("encryption_required", m.output.encryptionRequired).optional("max_rows", m.output.maxRows).endObject();
    out.optional("extracts_per_day", m.extractsPerDayPerRecipient
                                         ? std::optional<uint64_t>(*m.extractsPerDayPerRecipient)
                                         : std::nullopt);
    if (m.extractsPerDayPerRecipient && extractsToday) {
        // What is left today, so that a partner does not ask for an extract the limit refuses.
        const uint64_t limit = *m.extractsPerDayPerRecipient;
        out.optional("extracts_today", extractsToday)
            .optional("extracts_left_today", std::optional<uint64_t>(*extractsToday >= limit ? 0 : limit - *extractsToday));
    }
    out.key("privacy").beginObject().optional("k", m.privacy.k);
    out.key("suppression_limit").number(m.privacy.suppressionLimit);
    out.field("l_diversity", m.privacy.lDiversity.has_value()).field("t_closeness", m.privacy.tCloseness.has_value());
    out.endObject();
    // Columns as released: dropped ones are omitted; generalized ones name their hierarchy.
    out.beginArray("columns");
    for (const auto& c : m.columns) {
        if (c.transform.name == "drop") continue;
        out.beginObject()
            .field("name", c.name)
            .field("type", anon::columnTypeName(c.type))
            .field("role", policies::columnRoleName(c.role))
            .field("transform", c.transform.name);
        if (c.hierarchy) out.field("generalization", policies::hierarchyKindName(c.hierarchy->kind));
        out.endObject();
    }
    out.endArray();
    out.field("row_filter", m.rowFilter.has_value());
    out.endObject();
}

}  // namespace

Result<HttpResponse> handleGetCatalog(RequestContext& ctx) {
    if (Status s = needServices(ctx); !s) return s;
    auto principal = principalOf(ctx);
    if (!principal) return principal.status();
    const auth::Principal& who = **principal;
    const Catalog& catalog = *ctx.services.catalog;
    const int64_t now = nowMicros();
    struct Visible {
        LoadedPolicy policy;
        std::string admittedAs;              // the admitting recipient entry
        std::optional<uint64_t> extractsToday;  // when the policy has a daily limit
    };
    struct Entry {
        Dataset dataset;
        std::vector<Visible> policies;
    };
    auto visible = withConnection<std::vector<Entry>>(ctx, [&](pqxx::connection& conn) -> Result<std::vector<Entry>> {
        // Memberships as of now: a partner added to a group sees the group's policies at once.
        auto groups = auth::groupsOfPrincipal(conn, who.name);
        if (!groups) return groups.status();
        auto refs = activePolicies(conn);
        if (!refs) return refs.status();
        std::vector<Entry> out;
        for (const auto& ref : *refs) {
            auto p = catalog.loadCurrentPolicy(conn, ref.dataset, ref.policy);
            if (!p) {
                // A policy that no longer loads is not requestable; the others still are.
                if (p.status().code() == StatusCode::FailedPrecondition || p.status().code() == StatusCode::NotFound)
                    continue;
                return p.status();
            }
            const auto& model = p->policy->model();
            auto admittedAs = model.admittingRecipient(who.name, *groups);
            if (p->retired || !admittedAs || !model.validity.contains(now)) continue;
            if (out.empty() || out.back().dataset.name != ref.dataset) {
                auto d = catalog.loadDataset(conn, ref.dataset);
                if (!d) return d.status();
                out.push_back({std::move(d).value(), {}});
            }
            std::optional<uint64_t> today;
            if (model.extractsPerDayPerRecipient) {
                auto counted = release::countExtractsToday(conn, who.name, ref.dataset, ref.policy);
                if (!counted) return counted.status();
                today = *counted;
            }
            out.back().policies.push_back({std::move(p).value(), std::move(*admittedAs), today});
        }
        return out;
    });
    if (!visible) return visible.status();
    JsonOut out;
    out.beginObject().field("as_of", nowIso()).field("principal", who.name);
    out.beginArray("datasets");
    for (const auto& e : *visible) {
        out.beginObject().field("name", e.dataset.name).field("agency", e.dataset.agency);
        out.beginArray("policies");
        for (const auto& v : e.policies) writeCatalogPolicy(out, v.policy, v.admittedAs, v.extractsToday);
        out.endArray().endObject();
    }
    out.endArray().endObject();
    return HttpResponse::json(200, out.text());
}

std::vector<Route> catalogRoutes() {
    const auto publishers = Access::only({Role::Admin, Role::Publisher});
    // method  pattern  who may call  handler  inline  audit action
    return {
        {"PUT", "/v1/sources/{name}", publishers, handlePutSource, false, "source.put"},
        {"GET", "/v1/sources", publishers, handleListSources, false, "source.list"},
        {"GET", "/v1/sources/{name}", publishers, handleGetSource, false, "source.get"},
        {"PUT", "/v1/datasets/{name}", Access::only({Role::Publisher}), handlePutDataset, false,
         "dataset.put"},
        {"GET", "/v1/datasets/{name}", publishers, handleGetDataset, false, "dataset.get"},
        {"PUT", "/v1/datasets/{dataset}/policies/{policy}", Access::only({Role::Publisher}), handlePutPolicy,
         false, "policy.put"},
        {"GET", "/v1/datasets/{dataset}/policies/{policy}", publishers, handleGetPolicy, false,
         "policy.get"},
        {"DELETE", "/v1/datasets/{dataset}/policies/{policy}", publishers, handleRetirePolicy, false,
         "policy.retire"},
        {"GET", "/v1/catalog", Access::only({Role::Partner}), handleGetCatalog, false, "catalog.get"},
    };
}

}  // namespace custodian::api
