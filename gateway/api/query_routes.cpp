#include "gateway/api/query_routes.hpp"

#include "json/writer.hpp"

#include <sodium.h>

#include <pqxx/pqxx>

#include <chrono>

#include "dp/random.hpp"
#include "gateway/api/catalog_request.hpp"
#include "gateway/api/record.hpp"
#include "gateway/api/release_lookup.hpp"
#include "gateway/api/services.hpp"
#include "gateway/crypto/digest.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/http/errors.hpp"
#include "gateway/release/aggregate.hpp"
#include "gateway/release/authorization.hpp"
#include "gateway/release/privacy_budget.hpp"
#include "policies/json_text.hpp"

namespace custodian::api {

using auth::Role;
using http::HttpResponse;

namespace {

constexpr const char* kAction = "query.answer";

// Spends as audit entries and refusals state them: plain decimals of whole budget units.
std::string epsilonText(double v) { return release::budgetDecimal(v, release::kEpsilonUnits); }
std::string deltaText(double v) { return release::budgetDecimal(v, release::kDeltaUnits); }

std::string newQueryId() {
    (void)crypto::ensureSodium();
    uint8_t bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    return "qry_" + crypto::toHex(crypto::ByteView(bytes, sizeof bytes));
}

// What a query's entries say of it (the answer's entry adds its id and digest).
json::JsonValue::Object queryDetails(const release::QueryRequest& q) {
    json::JsonValue::Array groupBy;
    for (const auto& g : q.groupBy) groupBy.emplace_back(g);
    json::JsonValue::Object d{{"aggregate", q.histogram ? "histogram" : release::aggregateKindName(q.kind)},
                              {"group_by", std::move(groupBy)},
                              {"mechanism", release::noiseMechanismName(q.mechanism)},
                              {"epsilon", epsilonText(q.epsilon)},
                              {"delta", deltaText(q.delta)},
                              {"row_filter", q.rowFilter != nullptr}};
    if (q.column) d.emplace("column", *q.column);
    return d;
}

}  // namespace

std::vector<Route> queryRoutes() {
    return {
        {"POST", "/v1/queries", Access::only({Role::Partner}), handleCreateQuery, false, kAction},
    };
}

Result<HttpResponse> handleCreateQuery(RequestContext& ctx) {
    Services& services = ctx.services;
    const auth::Principal& who = *ctx.principal;
    auto body = parseBody(ctx);
    if (!body) return body.status();
    auto request = release::parseQueryRequest(*body);
    if (!request) return request.status();

    // Every refusal after this point is recorded with what the query named; a failure to record
    // it is the 503 (nothing was answered either way).
    // `told`, when set, is what the caller reads instead of `why` (which the entry records).
    auto refuse = [&](const std::string& decision, const Status& why, int httpStatus, json::JsonValue::Object details,
                      std::optional<int32_t> version,
                      const std::optional<Status>& told = std::nullopt) -> Result<HttpResponse> {
        audit::AuditEntry e = entryFor(ctx, kAction, decision);
        e.target.dataset = request->dataset;
        e.target.policy = request->policy;
        if (version) e.target.policyVersion = *version;
        e.purpose = request->purpose;
        e.reason = json::sanitizeUtf8(why.message());
        json::JsonValue::Object recorded = queryDetails(*request);
        for (const auto& [k, v] : details) recorded.insert_or_assign(k, v);
        e.details = std::move(recorded);
        if (auto r = record(ctx, std::move(e)); !r) return r.status();
        const Status& shown = told ? *told : why;
        if (details.empty()) return http::errorResponse(httpStatus, http::errorCodeFor(shown), shown.message());
        auto json = json::canonicalJson(details);
        return http::errorResponse(httpStatus, http::errorCodeFor(shown), shown.message(), json ? *json : "");
    };

    auto found = lookup(services, request->dataset, request->policy, who.name);
    if (!found) {
        const Status& s = found.status();
        if (s.code() != StatusCode::NotFound && s.code() != StatusCode::FailedPrecondition) return s;
        return refuse("denied", s, http::httpStatusFor(s.code()), {}, std::nullopt);
    }
    const int32_t version = found->policy.version;
    const policies::PolicyModel& model = found->policy.policy->model();

    // 1. The rules every channel shares, then the policy's aggregates and the query against them.
    release::AuthorizationFacts af;
    af.principal = who.name;
    af.groups = found->recipientGroups;
    af.policyRetired = found->policy.retired;
    af.nowMicros = nowMicros();
    if (auto refusal = release::authorizeAccess(model, request->purpose, af))
        return refuse("denied", permissionDenied(refusal->message), 403, {{"rule", refusal->rule}}, version);
    if (!model.aggregates)
        return refuse("denied", permissionDenied("the policy declares no aggregates; it answers no queries"), 403,
                      {{"rule", release::kRuleAggregates}}, version);
    const policies::AggregatesSpec& spec = *model.aggregates;
    auto plan = release::planQuery(*found->policy.policy, *request);
    if (!plan) return refuse("denied", plan.status(), 422, {{"rule", release::kRuleAggregates}}, version);

    // 2. The budget, before any data is read (checked again under the lock below).
    const release::BudgetKey key{request->dataset, request->policy, who.name};
    auto exhausted = [&](const release::BudgetState& state) -> Result<HttpResponse> {
        json::JsonValue::Object details{{"rule", release::kRuleBudget},
                                        {"epsilon_remaining", epsilonText(state.epsilonRemaining())},
                                        {"period", policies::budgetPeriodName(state.period)}};
        if (state.periodEnd) details.emplace("period_end", *state.periodEnd);
        if (auto d = state.deltaRemaining()) details.emplace("delta_remaining", deltaText(*d));
        const std::string when = state.periodEnd ? "; it renews at " + *state.periodEnd : "; it does not renew";
        return refuse("denied",
                      permissionDenied("the privacy budget does not cover this query: epsilon " +
                                       epsilonText(request->epsilon) + " asked, " +
                                       epsilonText(state.epsilonRemaining()) + " remaining" + when),
                      403, std::move(details), version);
    };
    auto before = db::resultOnConnection<release::BudgetState>(*services.db, [&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return release::readBudget(tx, spec, key);
    });
    if (!before) return before.status();
    if (!before->covers(request->epsilon, request->delta)) return exhausted(*before);

    // 3. The exact figures, computed in the source database, then the noise.
    auto failed = [&](const Status& s) -> Result<HttpResponse> {
        json::JsonValue::Object details;
        if (std::string rule = catalog::refusedRule(s); !rule.empty()) details.emplace("rule", rule);
        return refuse("failed", s, http::httpStatusFor(s.code()), std::move(details), version);
    };
    auto location = sourceOf(services, found->source.conninfo, found->dataset.schema, found->dataset.table);
    if (!location) return failed(location.status());
    auto snapshot = release::SourceSnapshot::open(location->conninfo, location->connectTimeout,
                                                  location->notDatabase ? &*location->notDatabase : nullptr);
    if (!snapshot) return failed(snapshot.status());
    // Once rows are read, a failure's text may quote them (a database error names the value it
    // could not convert): the caller learns only that the query failed, the entry records why.
    // A source that went away is still named as such.
    auto failedOnData = [&](const Status& s) -> Result<HttpResponse> {
        if (s.code() == StatusCode::Unavailable) return failed(s);
        return refuse("failed", s, 500, {}, version,
                      internalError("the query could not be computed on the source; the audit entry records why"));
    };
    auto figures =
        release::readFigures(**snapshot, *found->policy.policy, found->dataset.schema, found->dataset.table, *plan);
    (*snapshot)->close();
    if (!figures) return failedOnData(figures.status());
    dp::SystemRandom random;
    auto answer = release::noisyAnswer(*plan, *figures, random);
    if (!answer) return failedOnData(answer.status());
    const std::string queryId = newQueryId();
    const std::string answerJson = release::answerJson(*plan, *answer);

    // 4. Spend, entry and answer in one transaction: the entry commits before the spend does, and
    // the answer leaves only after both.
    struct Outcome {
        release::Spend spent;
        uint64_t auditIndex = 0;
    };
    auto outcome = db::resultOnConnection<Outcome>(*services.db, [&](pqxx::connection& conn) -> Result<Outcome> {
        return db::guarded<Outcome>("answering the query", [&]() -> Result<Outcome> {
            pqxx::work tx(conn);
            Outcome out;
            auto s = release::spend(tx, spec, key, request->epsilon, request->delta);
            if (!s) return s.status();
            out.spent = std::move(s).value();
            if (!out.spent.granted) return out;  // rolled back
            audit::AuditEntry e = entryFor(ctx, kAction, "allowed");
            e.target.source = found->dataset.source;
            e.target.dataset = request->dataset;
            e.target.policy = request->policy;
            e.target.policyVersion = version;
            e.purpose = request->purpose;
            json::JsonValue::Object details = queryDetails(*request);
            details.emplace("query_id", queryId);
            details.emplace("answer_sha256", policies::sha256Hex(answerJson));
            e.details = std::move(details);
            auto index = record(ctx, std::move(e));
            if (!index) return index.status();
            out.auditIndex = *index;
            release::StoredAnswer stored{queryId,        version,        request->epsilon,
                                         request->delta, out.auditIndex, answerJson};
            if (Status st = release::storeAnswer(tx, spec, key, stored); !st) return st;
            tx.commit();
            return out;
        });
    });
    if (!outcome) {
        // Recorded already when the entry went in: the failure is the commit's.
        if (ctx.entriesRecorded > 0) return outcome.status();
        return failed(outcome.status());
    }
    if (!outcome->spent.granted) return exhausted(outcome->spent.state);

    json::JsonOut out;
    out.beginObject()
        .field("query_id", queryId)
        .field("dataset", request->dataset)
        .field("policy", request->policy)
        .field("policy_version", static_cast<int64_t>(version));
    release::writeAnswerMembers(out.w(), *plan, *answer);
    release::writeBudget(out.key("budget").w(), outcome->spent.state);
    out.key("audit_index").uint(outcome->auditIndex).endObject();
    HttpResponse response = HttpResponse::json(200, out.text());
    response.setHeader("Cache-Control", "no-store");
    return response;
}

}  // namespace custodian::api
