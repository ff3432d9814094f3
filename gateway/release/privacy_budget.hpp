#pragma once
// The privacy budget of differentially private queries (docs/aggregates.md), kept in PostgreSQL
// (migrations/0009_privacy_budget.sql): per policy (across its versions), recipient and budget
// period, the epsilon and delta spent.
//
// spend() runs inside the caller's transaction: it locks the period's row, checks the remaining
// budget under the lock and adds the spend. The caller records the query's audit entry and stores
// the answer (storeAnswer) in the same transaction and commits only then, so concurrent queries of
// one recipient are serialized and cannot overspend, and an answer never leaves without its spend.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/transaction_base>

#include "anonymizer/status.hpp"
#include "policies/policy_model.hpp"

namespace custodian::release {

// Budgets count whole units, so that spends add up exactly: epsilon in millionths, delta in
// 10^-12. A query's epsilon and delta are rounded down to units when it is read (parseQueryRequest),
// and the noise is calibrated to exactly what is charged.
inline constexpr uint64_t kEpsilonUnits = 1'000'000;
inline constexpr uint64_t kDeltaUnits = 1'000'000'000'000;
// `value` in units, rounded down to the decimal written (dp::decimalUnitsDown); 0 for values that
// do not fit 2^63 units or are negative.
uint64_t budgetUnits(double value, uint64_t perOne);
// The plain decimal of `value` rounded to units: "0.25", "0.0000001", "2" (never an exponent).
std::string budgetDecimal(double value, uint64_t perOne);

struct BudgetKey {
    std::string dataset;
    std::string policy;
    std::string recipient;  // the principal's name
};

// A recipient's budget in the current period.
struct BudgetState {
    double epsilonTotal = 0;
    double epsilonSpent = 0;
    std::optional<double> deltaTotal;
    double deltaSpent = 0;
    uint64_t queries = 0;
    policies::BudgetPeriod period = policies::BudgetPeriod::Month;
    std::optional<std::string> periodEnd;  // RFC 3339 UTC; unset for a lifetime budget
    // Computed in units: 1 - 0.9 is 0.1 here, not 0.09999999999999998.
    double epsilonRemaining() const;
    std::optional<double> deltaRemaining() const;
    // Whether (epsilon, delta) fit what remains, compared in units.
    bool covers(double epsilon, double delta) const;
};

// The current period's budget, read without a lock (the catalog, the refusal before any work).
Result<BudgetState> readBudget(pqxx::transaction_base& tx, const policies::AggregatesSpec& spec, const BudgetKey& key);

// Locks the current period's row and adds (epsilon, delta) if they fit: the state after the spend,
// or ResourceExhausted (the state before it in `refused`) if they do not.
struct Spend {
    bool granted = false;
    BudgetState state;  // after the spend when granted, else as found
};
Result<Spend> spend(pqxx::transaction_base& tx, const policies::AggregatesSpec& spec, const BudgetKey& key,
                    double epsilon, double delta);

// Keeps the answer with its spend and audit entry.
struct StoredAnswer {
    std::string queryId;
    int32_t policyVersion = 0;
    double epsilon = 0;
    double delta = 0;
    uint64_t auditIndex = 0;
    std::string answer;  // the answer's JSON
};
Status storeAnswer(pqxx::transaction_base& tx, const policies::AggregatesSpec& spec, const BudgetKey& key,
                   const StoredAnswer& answer);

// The budget as a JSON object: "epsilon_total", "epsilon_spent", "epsilon_remaining", "delta_total",
// "delta_spent", "delta_remaining" (null without a delta budget), "period", "period_end", "queries".
std::string budgetJson(const BudgetState& state);
// The same object written by `w` (as a member's value or an array element).
void writeBudget(rapidjson::Writer<rapidjson::StringBuffer>& w, const BudgetState& state);

}  // namespace custodian::release
