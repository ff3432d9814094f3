#pragma once
// The risk and information-loss report of a release decision: what
// POST /v1/datasets/{d}/policies/{p}/preview answers and what `custodian anonymize --report`
// writes. Both compute it with reportRelease() from the sink's result and write it with
// writeReportMembers(), so the preview and the offline report of the same data under the same
// policy are the same figures (tests/integration/test_release_report.cpp compares them on Adult).
// The members are specified in docs/openapi.yaml (components Preview, RiskSummary,
// InformationLoss) and docs/anonymize.md.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "anonymizer/metrics.hpp"
#include "anonymizer/risk.hpp"
#include "gateway/release/plan.hpp"

namespace custodian::release {

// Prosecutor re-identification risk (anonymizer/risk.hpp) over the classes a release publishes;
// suppressed records are not published.
struct ReleaseRisk {
    anon::RiskSummary risk;
    uint64_t suppressed = 0;
    // Achieved over the published classes, when the policy declares the model.
    std::optional<double> distinctL, entropyL, t;
};

struct ReleasePartitioning {
    std::string algorithm;    // "mondrian-strict" or "mondrian-relaxed"
    uint64_t partitions = 0;  // what the recursion ended with
    uint64_t classes = 0;     // released classes (partitions with equal labels merged)
    double ncp = 0;
    std::vector<std::pair<std::string, double>> ncpPerAttribute;  // quasi-identifier name, NCP
};

struct ReleaseReport {
    uint64_t records = 0;  // rows selected by the policy
    // The quasi-identifiers as stored. Set when rows were selected (under Mondrian: when releasable).
    std::optional<ReleaseRisk> riskBefore;
    std::optional<anon::MetricValues> lossBefore;  // not under Mondrian
    // The release. Set when releasable and rows were selected.
    std::optional<ReleaseRisk> riskAfter;
    std::optional<anon::MetricValues> lossAfter;
    // Global recoding, when releasable with quasi-identifiers: the chosen level of each of them.
    struct Level {
        std::string column;
        int level = 0;
        int levels = 0;
    };
    std::vector<Level> generalization;
    std::optional<uint64_t> latticeSize;
    // When releasable with quasi-identifiers: each one's information loss in [0, 1] (global recoding:
    // the generalized information loss of the column, suppressed cells costing 1; Mondrian: its NCP).
    std::vector<std::pair<std::string, double>> columnLoss;
    // Mondrian, when releasable.
    std::optional<ReleasePartitioning> partitioning;
    std::optional<double> searchSeconds;  // when releasable
};

// The report of `privacy` (FrequencySink::finalize() of `plan`). Global recoding evaluates the
// frequency table at the bottom node (before) and at the chosen levels (after); Mondrian's figures
// come from its partitioning; without quasi-identifiers every selected row is one class.
Result<ReleaseReport> reportRelease(const ReleasePlan& plan, const FrequencySink::Finalized& privacy);

// Writes the report's members into the JSON object `w` is in: risk_before,
// information_loss_before, risk_after, information_loss_after, generalization, column_loss, lattice_size,
// search_seconds (global recoding) or partitioning (Mondrian) — each only when the report has it.
// Writer is rapidjson::Writer<rapidjson::StringBuffer> or rapidjson::PrettyWriter<...>.
template <typename Writer> void writeReportMembers(Writer& w, const ReleaseReport& report);

}  // namespace custodian::release
