#pragma once
// The privacy budget of differentially private queries (docs/aggregates.md), kept in PostgreSQL
// (migrations/0009_privacy_budget.sql): per policy (across its versions), recipient and budget
// period, the epsilon and delta spent.
//
// spend() runs inside the caller's transaction: it locks the period's row, checks the remaining
// budget under the lock and adds the spend. The caller records the query's audit entry and stores
// the answer (storeAnswer) in the same transaction and commits only then, so concurrent queries of
// one recipient are serialized and cannot overspend, and an answer never leaves without its spend.

#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/transaction_base>

#include "anonymizer/status.hpp"
#include "policies/policy_model.hpp"

namespace custodian::release {

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
    double epsilonRemaining() const { return epsilonTotal > epsilonSpent ? epsilonTotal - epsilonSpent : 0; }
    std::optional<double> deltaRemaining() const {
        if (!deltaTotal) return std::nullopt;
        return *deltaTotal > deltaSpent ? *deltaTotal - deltaSpent : 0;
    }
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

}  // namespace custodian::release
