#pragma once
// Differentially private aggregate answers (docs/aggregates.md): the second release channel.
//
// A query names a policy whose `aggregates` section declares what may be counted, summed or
// averaged and by which public group domains. planQuery checks the query against that section
// (every refusal names the member at fault) and fixes, before any data is read, everything the
// answer's privacy depends on: the groups (from the policy, never from the data), the contribution
// bound, the clamping bounds and the sensitivity. readFigures runs one GROUP BY in the source
// database over the clamped, contribution-bounded rows (SourceSnapshot::forEachAggregate);
// noisyAnswer adds discrete Laplace or discrete Gaussian noise (dp/samplers.hpp) in the gateway.
//
// Nothing data-dependent changes the shape of an answer: every group of the domain is answered,
// empty or not, values outside the domain are dropped silently, and no error names a value.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/fwd.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "anonymizer/status.hpp"
#include "gateway/release/source.hpp"
#include "policies/policy.hpp"

namespace custodian::dp {
class RandomSource;
}

namespace custodian::release {

enum class AggregateKind { Count, Sum, Mean };
const char* aggregateKindName(AggregateKind kind) noexcept;
enum class NoiseMechanism { Laplace, Gaussian };
const char* noiseMechanismName(NoiseMechanism mechanism) noexcept;

// The body of POST /v1/queries:
//   {"dataset", "policy", "purpose", "aggregate": "count"|"sum"|"mean"|"histogram",
//    "column" (sum, mean), "group_by": [...], "row_filter": {...}, "epsilon": 0.1,
//    "mechanism": "laplace"|"gaussian", "delta" (gaussian)}
// "histogram" is a count grouped by at least one column.
struct QueryRequest {
    std::string dataset;
    std::string policy;
    std::string purpose;
    AggregateKind kind = AggregateKind::Count;
    bool histogram = false;
    std::optional<std::string> column;
    std::vector<std::string> groupBy;
    const rapidjson::Value* rowFilter = nullptr;  // points into the parsed body
    double epsilon = 0;
    NoiseMechanism mechanism = NoiseMechanism::Laplace;
    double delta = 0;
};

// InvalidArgument naming the member at fault. `body` must outlive the request (rowFilter).
Result<QueryRequest> parseQueryRequest(const rapidjson::Value& body);

// One group-by column of a plan: its policy declaration and its domain.
struct PlannedGroup {
    std::string column;
    std::optional<int> level;
    std::vector<std::string> values;  // the public domain, in the policy's order
};

// What an answer's privacy depends on, fixed before any data is read.
struct QueryPlan {
    QueryRequest request;
    std::vector<SourceColumn> columns;  // what the source query selects: person key, groups, measure
    AggregateSql sql;
    std::optional<policies::RowFilter> filter;  // the policy's row filter AND the query's
    std::vector<PlannedGroup> groups;
    size_t cells = 1;  // product of the domain sizes
    uint32_t maxRowsPerPerson = 1;
    // Per noisy figure (counts; sums in grid steps): the L1 (= worst-case L2) sensitivity.
    uint64_t countSensitivity = 1;
    uint64_t sumSensitivity = 0;  // in grid steps
    double granularity = 1;       // the grid of the measure (a power of two)
    double lower = 0, upper = 0;  // the measure's clamping bounds
};

// At most this many groups per answer.
inline constexpr size_t kMaxAnswerGroups = 10000;

// The query against the policy's `aggregates`: InvalidArgument (the query asks for something the
// policy does not allow: a column that is not a measure, a group-by column without a domain, a
// Gaussian query without a delta budget, too many groups). The caller has checked recipient,
// purpose and validity.
Result<QueryPlan> planQuery(const policies::Policy& policy, QueryRequest request);

// The exact per-group figures of a plan, read from the source: one cell per combination of the
// domains (row-major in the order of plan.groups), counts of rows, of rows with a measure value,
// and the measure's sum in grid steps.
struct Figures {
    std::vector<uint64_t> rows;
    std::vector<uint64_t> measured;
    std::vector<int64_t> gridSums;
};
Result<Figures> readFigures(SourceSnapshot& snapshot, const policies::Policy& policy, const std::string& schema,
                            const std::string& table, const QueryPlan& plan);

// One answered figure.
struct NoisyFigure {
    std::optional<double> value;  // unset: a mean whose noisy count is not positive
    double intervalLow = 0, intervalHigh = 0;
};

struct Answer {
    std::vector<NoisyFigure> cells;  // as Figures
    // The mechanism's parameters, per noisy figure: the scale (Laplace t, Gaussian sigma) in the
    // answer's unit, the standard deviation of the noise, the 95 % half-width.
    double noiseScale = 0;
    double noiseStddev = 0;
    double halfWidth95 = 0;
    // A mean's split of epsilon (and delta) between its sum and its count: half each.
    std::optional<double> countNoiseScale;
};

// The noisy answer. Randomness from `random` (libsodium in production).
Result<Answer> noisyAnswer(const QueryPlan& plan, const Figures& figures, dp::RandomSource& random);

// The answer's members, written into the object `w` is in: "aggregate", "column", "mechanism",
// "epsilon", "delta", "contribution_bound", "sensitivity", "noise_scale", "noise_stddev",
// "confidence", "groups": [{"key": {...}, "value": ..., "interval": [lo, hi]}].
void writeAnswerMembers(rapidjson::Writer<rapidjson::StringBuffer>& w, const QueryPlan& plan, const Answer& answer);
// Those members as one JSON object: what privacy_answers keeps and the audit entry hashes.
std::string answerJson(const QueryPlan& plan, const Answer& answer);

}  // namespace custodian::release
