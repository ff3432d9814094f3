#include "gateway/release/privacy_budget.hpp"

#include <cmath>
#include <stdexcept>

#include <pqxx/pqxx>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "dp/samplers.hpp"
#include "gateway/db/guarded.hpp"

namespace custodian::release {

namespace {

// The start of the current period (UTC) and its end, as SQL expressions.
std::string periodStart(policies::BudgetPeriod period) {
    switch (period) {
    case policies::BudgetPeriod::Day: return "date_trunc('day', now(), 'UTC')";
    case policies::BudgetPeriod::Month: return "date_trunc('month', now(), 'UTC')";
    case policies::BudgetPeriod::Year: return "date_trunc('year', now(), 'UTC')";
    case policies::BudgetPeriod::Lifetime: return "'-infinity'::timestamptz";
    }
    return "'-infinity'::timestamptz";
}

// Computed on UTC wall-clock time (timestamp without time zone), so the session's TimeZone setting
// cannot move it: adding a day or a month to a timestamptz would step in the session's zone.
std::string periodEnd(policies::BudgetPeriod period) {
    const char* unit = period == policies::BudgetPeriod::Day     ? "day"
                       : period == policies::BudgetPeriod::Month ? "month"
                                                                 : "year";
    if (period == policies::BudgetPeriod::Lifetime) return "NULL::text";
    return std::string("to_char(date_trunc('") + unit + "', now() AT TIME ZONE 'UTC') + interval '1 " + unit +
           "', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

BudgetState stateOf(const policies::AggregatesSpec& spec, const pqxx::row& row) {
    BudgetState s;
    s.epsilonTotal = spec.epsilon;
    s.deltaTotal = spec.delta;
    s.period = spec.period;
    s.epsilonSpent = row[0].is_null() ? 0 : row[0].as<double>();
    s.deltaSpent = row[1].is_null() ? 0 : row[1].as<double>();
    s.queries = row[2].is_null() ? 0 : row[2].as<uint64_t>();
    if (!row[3].is_null()) s.periodEnd = row[3].as<std::string>();
    return s;
}

// The units of a sum of spends: each spend is a whole number of units, so the stored double sum
// is within far less than half a unit of a whole number (exact for any realistic count of spends).
uint64_t spentUnits(double spent, uint64_t perOne) {
    const double units = std::round(spent * static_cast<double>(perOne));
    return units > 0 ? static_cast<uint64_t>(units) : 0;
}

double remaining(double total, double spent, uint64_t perOne) {
    const uint64_t t = budgetUnits(total, perOne), u = spentUnits(spent, perOne);
    return t > u ? static_cast<double>(t - u) / static_cast<double>(perOne) : 0;
}

}  // namespace

uint64_t budgetUnits(double value, uint64_t perOne) {
    try {
        return dp::decimalUnitsDown(value, perOne);
    } catch (const std::invalid_argument&) { return 0; }
}

std::string budgetDecimal(double value, uint64_t perOne) {
    const uint64_t units = budgetUnits(value, perOne);
    std::string fraction = std::to_string(units % perOne);
    const size_t places = std::to_string(perOne).size() - 1;
    fraction.insert(0, places - fraction.size(), '0');
    while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
    return std::to_string(units / perOne) + (fraction.empty() ? "" : "." + fraction);
}

double BudgetState::epsilonRemaining() const { return remaining(epsilonTotal, epsilonSpent, kEpsilonUnits); }

std::optional<double> BudgetState::deltaRemaining() const {
    if (!deltaTotal) return std::nullopt;
    return remaining(*deltaTotal, deltaSpent, kDeltaUnits);
}

bool BudgetState::covers(double epsilon, double delta) const {
    const bool epsilonFits = spentUnits(epsilonSpent, kEpsilonUnits) + budgetUnits(epsilon, kEpsilonUnits) <=
                             budgetUnits(epsilonTotal, kEpsilonUnits);
    if (delta == 0) return epsilonFits;
    return epsilonFits && deltaTotal &&
           spentUnits(deltaSpent, kDeltaUnits) + budgetUnits(delta, kDeltaUnits) <=
               budgetUnits(*deltaTotal, kDeltaUnits);
}

Result<BudgetState> readBudget(pqxx::transaction_base& tx, const policies::AggregatesSpec& spec, const BudgetKey& key) {
    return db::guarded<BudgetState>("reading the privacy budget", [&]() -> Result<BudgetState> {
        const pqxx::result r = tx.exec_params(
            "SELECT b.epsilon_spent, b.delta_spent, b.queries, " + periodEnd(spec.period) +
                " FROM (SELECT 1) AS one LEFT JOIN privacy_budget b ON b.dataset = $1 AND b.policy = $2 AND "
                "b.recipient = $3 AND b.period_start = " +
                periodStart(spec.period),
            key.dataset, key.policy, key.recipient);
        return stateOf(spec, r[0]);
    });
}

Result<Spend> spend(pqxx::transaction_base& tx, const policies::AggregatesSpec& spec, const BudgetKey& key,
                    double epsilon, double delta) {
    return db::guarded<Spend>("spending the privacy budget", [&]() -> Result<Spend> {
        tx.exec_params("INSERT INTO privacy_budget (dataset, policy, recipient, period_start) VALUES ($1, $2, $3, " +
                           periodStart(spec.period) + ") ON CONFLICT DO NOTHING",
                       key.dataset, key.policy, key.recipient);
        const pqxx::result r = tx.exec_params(
            "SELECT epsilon_spent, delta_spent, queries, " + periodEnd(spec.period) +
                " FROM privacy_budget WHERE dataset = $1 AND policy = $2 AND recipient = $3 AND period_start = " +
                periodStart(spec.period) + " FOR UPDATE",
            key.dataset, key.policy, key.recipient);
        if (r.size() != 1) return internalError("the privacy budget row is missing");
        Spend out;
        out.state = stateOf(spec, r[0]);
        if (!out.state.covers(epsilon, delta)) return out;
        tx.exec_params(
            "UPDATE privacy_budget SET epsilon_spent = epsilon_spent + $4, delta_spent = delta_spent + $5, "
            "queries = queries + 1 WHERE dataset = $1 AND policy = $2 AND recipient = $3 AND period_start = " +
                periodStart(spec.period),
            key.dataset, key.policy, key.recipient, epsilon, delta);
        out.granted = true;
        out.state.epsilonSpent += epsilon;
        out.state.deltaSpent += delta;
        ++out.state.queries;
        return out;
    });
}

Status storeAnswer(pqxx::transaction_base& tx, const policies::AggregatesSpec& spec, const BudgetKey& key,
                   const StoredAnswer& a) {
    return db::guarded<bool>(
               "storing the answer",
               [&]() -> Result<bool> {
                   tx.exec_params("INSERT INTO privacy_answers (query_id, dataset, policy, policy_version, recipient, "
                                  "period_start, epsilon, delta, audit_index, answer) VALUES ($1, $2, $3, $4, $5, " +
                                      periodStart(spec.period) + ", $6, $7, $8, $9)",
                                  a.queryId, key.dataset, key.policy, a.policyVersion, key.recipient, a.epsilon,
                                  a.delta, static_cast<int64_t>(a.auditIndex), a.answer);
                   return true;
               })
        .status();
}

void writeBudget(rapidjson::Writer<rapidjson::StringBuffer>& w, const BudgetState& s) {
    w.StartObject();
    auto number = [&](const char* name, double v) {
        w.Key(name);
        w.Double(v);
    };
    number("epsilon_total", s.epsilonTotal);
    // The spend as whole units (the stored double sum of ten 0.1 is 0.9999999999999999).
    number("epsilon_spent", static_cast<double>(spentUnits(s.epsilonSpent, kEpsilonUnits)) / kEpsilonUnits);
    number("epsilon_remaining", s.epsilonRemaining());
    w.Key("delta_total");
    if (s.deltaTotal) w.Double(*s.deltaTotal);
    else w.Null();
    number("delta_spent", static_cast<double>(spentUnits(s.deltaSpent, kDeltaUnits)) / kDeltaUnits);
    w.Key("delta_remaining");
    if (auto d = s.deltaRemaining()) w.Double(*d);
    else w.Null();
    w.Key("period");
    w.String(policies::budgetPeriodName(s.period));
    w.Key("period_end");
    if (s.periodEnd) w.String(s.periodEnd->c_str());
    else w.Null();
    w.Key("queries");
    w.Uint64(s.queries);
    w.EndObject();
}

std::string budgetJson(const BudgetState& s) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    writeBudget(w, s);
    return buffer.GetString();
}

}  // namespace custodian::release
