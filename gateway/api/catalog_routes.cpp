// The partner catalog (GET /v1/catalog) and the route table of the catalog: sources, datasets,
// policies (their handlers are in source_routes.cpp, dataset_routes.cpp, policy_routes.cpp).
#include "gateway/api/catalog_routes.hpp"

#include <pqxx/pqxx>

#include "gateway/api/catalog_request.hpp"
#include "gateway/api/record.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/catalog/store.hpp"
#include "gateway/release/privacy_budget.hpp"
#include "json/writer.hpp"

namespace custodian::api {

using auth::Role;

namespace {

const char* formatName(policies::OutputFormat f) { return f == policies::OutputFormat::Csv ? "csv" : "ndjson"; }

// `admittedAs`: the recipient entry that admits the caller (its name, or "group:NAME").
// `extractsToday`: the partner's extracts under the policy since 00:00 UTC, when it has a daily limit.
// `budget`: the caller's privacy budget in the current period, when the policy declares aggregates.
void writeCatalogPolicy(json::JsonOut& out, const catalog::LoadedPolicy& p, const std::string& admittedAs,
                        std::optional<uint64_t> extractsToday, const std::optional<release::BudgetState>& budget) {
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
    out.key("validity")
        .beginObject()
        .optional("not_before", isoFromMicros(m.validity.notBefore))
        .optional("expires", isoFromMicros(m.validity.expires))
        .endObject();
    out.key("output").beginObject();
    out.beginArray("formats");
    for (auto f : m.output.formats) out.str(formatName(f));
    out.endArray();
    out.field("encryption_required", m.output.encryptionRequired).optional("max_rows", m.output.maxRows).endObject();
    out.optional("extracts_per_day",
                 m.extractsPerDayPerRecipient ? std::optional<uint64_t>(*m.extractsPerDayPerRecipient) : std::nullopt);
    if (m.extractsPerDayPerRecipient && extractsToday) {
        // What is left today, so that a partner does not ask for an extract the limit refuses.
        const uint64_t limit = *m.extractsPerDayPerRecipient;
        out.optional("extracts_today", extractsToday)
            .optional("extracts_left_today",
                      std::optional<uint64_t>(*extractsToday >= limit ? 0 : limit - *extractsToday));
    }
    out.key("privacy").beginObject().optional("k", m.privacy.k);
    out.key("suppression_limit").number(m.privacy.suppressionLimit);
    out.field("l_diversity", m.privacy.lDiversity.has_value()).field("t_closeness", m.privacy.tCloseness.has_value());
    out.endObject();
    // Columns as released: dropped ones are omitted; generalized ones name their hierarchy.
    out.beginArray("columns");
    for (const auto& c : m.columns) {
        if (anon::builtinTraits(c.transform.name).removesColumn) continue;
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
    // What POST /v1/queries may ask (docs/aggregates.md), with the caller's remaining budget.
    out.key("aggregates");
    if (!m.aggregates || !budget) {
        out.null();
    } else {
        out.beginObject();
        out.beginArray("measures");
        for (const auto& measure : m.aggregates->measures) {
            out.beginObject().field("column", measure.column);
            out.key("lower").number(measure.lower);
            out.key("upper").number(measure.upper);
            out.endObject();
        }
        out.endArray();
        out.beginArray("group_by");
        for (const auto& g : m.aggregates->groupBy) {
            out.beginObject().field("column", g.column);
            out.optional("level", g.level ? std::optional<uint64_t>(static_cast<uint64_t>(*g.level)) : std::nullopt);
            out.beginArray("values");
            for (const auto& v : g.values) out.str(v);
            out.endArray().endObject();
        }
        out.endArray();
        out.field("max_rows_per_person", static_cast<int64_t>(m.aggregates->maxRowsPerPerson));
        out.raw("budget", release::budgetJson(*budget));
        out.endObject();
    }
    out.endObject();
}

}  // namespace

Result<HttpResponse> handleGetCatalog(RequestContext& ctx) {
    auto call = openCatalogCall(ctx);
    if (!call) return call.status();
    const auth::Principal& who = call->who;
    const catalog::Catalog& catalog = call->catalog;
    const int64_t now = nowMicros();
    struct Visible {
        const catalog::LoadedPolicy* policy;         // in `listing`
        std::string admittedAs;                      // the admitting recipient entry
        std::optional<uint64_t> extractsToday;       // when the policy has a daily limit
        std::optional<release::BudgetState> budget;  // when the policy declares aggregates
    };
    struct Entry {
        const catalog::Dataset* dataset;  // in `listing`
        std::vector<Visible> policies;
    };
    std::shared_ptr<const catalog::CatalogListing> listing;
    auto visible = withConnection<std::vector<Entry>>(ctx, [&](pqxx::connection& conn) -> Result<std::vector<Entry>> {
        // One statement for what is the caller's (memberships as of now, so a partner added to a
        // group sees the group's policies at once; today's extract counts) and the catalog
        // generation; the datasets and parsed policies come from memory unless that changed.
        auto state = catalog::partnerCatalogState(conn, who.name);
        if (!state) return state.status();
        auto read = catalog.listing(conn, state->generation);
        if (!read) return read.status();
        listing = std::move(read).value();
        std::vector<Entry> out;
        for (const auto& d : listing->datasets) {
            Entry e{&d.dataset, {}};
            for (const auto& p : d.policies) {
                const auto& model = p.policy->model();
                auto admittedAs = model.admittingRecipient(who.name, state->groups);
                if (!admittedAs || !model.validity.contains(now)) continue;
                std::optional<uint64_t> today;
                if (model.extractsPerDayPerRecipient) today = state->countToday(p.dataset, p.name);
                std::optional<release::BudgetState> budget;
                if (model.aggregates) {
                    pqxx::read_transaction tx(conn);
                    auto b = release::readBudget(tx, *model.aggregates, {p.dataset, p.name, who.name});
                    if (!b) return b.status();
                    budget = std::move(b).value();
                }
                e.policies.push_back({&p, std::move(*admittedAs), today, std::move(budget)});
            }
            if (!e.policies.empty()) out.push_back(std::move(e));
        }
        return out;
    });
    if (!visible) return visible.status();
    json::JsonOut out;
    out.beginObject().field("as_of", nowIso()).field("principal", who.name);
    out.beginArray("datasets");
    for (const auto& e : *visible) {
        out.beginObject().field("name", e.dataset->name).field("agency", e.dataset->agency);
        out.beginArray("policies");
        for (const auto& v : e.policies) writeCatalogPolicy(out, *v.policy, v.admittedAs, v.extractsToday, v.budget);
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
        {"PUT", "/v1/datasets/{name}", Access::only({Role::Publisher}), handlePutDataset, false, "dataset.put"},
        {"GET", "/v1/datasets", publishers, handleListDatasets, false, "dataset.list"},
        {"GET", "/v1/datasets/{name}", publishers, handleGetDataset, false, "dataset.get"},
        {"PUT", "/v1/datasets/{dataset}/policies/{policy}", Access::only({Role::Publisher}), handlePutPolicy, false,
         "policy.put"},
        {"GET", "/v1/datasets/{dataset}/policies/{policy}", publishers, handleGetPolicy, false, "policy.get"},
        {"GET", "/v1/datasets/{dataset}/policies/{policy}/versions/{version}", publishers, handleGetPolicyVersion,
         false, "policy.version.get"},
        {"DELETE", "/v1/datasets/{dataset}/policies/{policy}", publishers, handleRetirePolicy, false, "policy.retire"},
        {"GET", "/v1/catalog", Access::only({Role::Partner}), handleGetCatalog, false, "catalog.get"},
    };
}

}  // namespace custodian::api
