#include "gateway/release/report.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <string_view>

#include "anonymizer/engine.hpp"
#include "json/canonical.hpp"

namespace custodian::release {

namespace {

ReleaseRisk riskOfClasses(const anon::GeneralizationStats& stats, uint64_t threshold) {
    ReleaseRisk r;
    r.risk = anon::releasedRisk(stats, threshold);
    r.suppressed = stats.suppressedRecords;
    r.distinctL = stats.distinctL;
    r.entropyL = stats.entropyL;
    r.t = stats.achievedT;
    return r;
}

}  // namespace

Result<ReleaseReport> reportRelease(const ReleasePlan& plan, const FrequencySink::Finalized& privacy) {
    ReleaseReport report;
    report.records = privacy.records;
    const uint64_t threshold = plan.models().k;
    const PrivacyDecision* decision = privacy.decision ? &*privacy.decision : nullptr;
    const auto& qis = plan.quasiIdentifiers();

    if (privacy.table) {
        // Global recoding. Before: the quasi-identifiers as stored, no model, nothing suppressed.
        anon::OptimalSearchConfig open = privacy.config;
        open.models = anon::PrivacyModels{};
        open.minLevels.clear();
        open.maxLevels.clear();
        auto before = anon::evaluateGeneralization(*privacy.table, open, std::vector<int>(open.hierarchies.size(), 0));
        if (!before) return before.status();
        report.riskBefore = riskOfClasses(*before, threshold);
        report.lossBefore = before->metrics;
        if (decision) {
            // After: the chosen levels under the policy's models, failing classes suppressed.
            auto after = anon::evaluateGeneralization(*privacy.table, privacy.config, decision->levels);
            if (!after) return after.status();
            report.riskAfter = riskOfClasses(*after, threshold);
            report.lossAfter = after->metrics;
            for (size_t i = 0; i < qis.size() && i < decision->levels.size(); ++i)
                report.generalization.push_back(
                    {plan.inputColumns()[qis[i]].name, decision->levels[i], decision->hierarchies[i]->levels()});
            for (size_t i = 0; i < qis.size() && i < after->lossPerAttribute.size(); ++i)
                report.columnLoss.emplace_back(plan.inputColumns()[qis[i]].name, after->lossPerAttribute[i]);
            report.latticeSize = decision->latticeSize;
            report.searchSeconds = decision->searchSeconds;
        }
    } else if (decision && decision->local) {
        // Mondrian: the partitioning's own figures (it never suppresses).
        const LocalRecoding& local = *decision->local;
        report.riskBefore = ReleaseRisk{local.riskBefore, 0, std::nullopt, std::nullopt, std::nullopt};
        report.riskAfter = ReleaseRisk{local.riskAfter, 0, decision->stats.distinctL, decision->stats.entropyL,
                                       decision->stats.achievedT};
        report.lossAfter = decision->stats.metrics;
        ReleasePartitioning p;
        p.algorithm = local.algorithm;
        p.partitions = local.partitions.partitions;
        p.classes = local.partitions.partitionSizes.size();
        p.ncp = local.partitions.ncp;
        for (size_t d = 0; d < qis.size() && d < local.partitions.ncpPerAttribute.size(); ++d)
            p.ncpPerAttribute.emplace_back(plan.inputColumns()[qis[d]].name, local.partitions.ncpPerAttribute[d]);
        report.columnLoss = p.ncpPerAttribute;
        report.partitioning = std::move(p);
        report.searchSeconds = decision->searchSeconds;
    } else if (decision && qis.empty() && report.records > 0) {
        // No quasi-identifier: every selected row is in one class, before and after.
        const uint64_t sizes[] = {report.records};
        ReleaseRisk one{anon::prosecutorRisk(sizes, threshold), 0, std::nullopt, std::nullopt, std::nullopt};
        anon::MetricValues loss;
        loss.discernibility = static_cast<double>(report.records) * static_cast<double>(report.records);
        loss.averageClassSize = static_cast<double>(report.records);
        report.riskBefore = one;
        report.lossBefore = loss;
        report.riskAfter = one;
        report.lossAfter = loss;
        report.searchSeconds = decision->searchSeconds;
    } else if (decision) {
        report.searchSeconds = decision->searchSeconds;
    }
    return report;
}

namespace {

template <typename Writer> void key(Writer& w, std::string_view k) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}

template <typename Writer> void number(Writer& w, std::string_view k, double v) {
    key(w, k);
    if (std::isfinite(v)) w.Double(v);
    else w.Null();
}

template <typename Writer> void integer(Writer& w, std::string_view k, uint64_t v) {
    key(w, k);
    w.Uint64(v);
}

template <typename Writer> void text(Writer& w, std::string_view k, std::string_view v) {
    key(w, k);
    const std::string clean = json::sanitizeUtf8(v);
    w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
}

// RiskSummary of docs/openapi.yaml.
template <typename Writer> void writeRisk(Writer& w, std::string_view name, const ReleaseRisk& r) {
    key(w, name);
    w.StartObject();
    const anon::RiskSummary& risk = r.risk;
    integer(w, "records_released", risk.records);
    integer(w, "records_suppressed", r.suppressed);
    integer(w, "classes", risk.classes);
    integer(w, "smallest_class",
            risk.prosecutorMax > 0 ? static_cast<uint64_t>(std::llround(1.0 / risk.prosecutorMax)) : 0);
    number(w, "prosecutor_risk_max", risk.prosecutorMax);
    number(w, "prosecutor_risk_average", risk.prosecutorAverage);
    integer(w, "risk_threshold", risk.threshold);
    number(w, "share_below_threshold", risk.shareBelowThreshold);
    integer(w, "sample_uniques", risk.sampleUniques);
    number(w, "sample_unique_share", risk.sampleUniqueShare);
    if (r.distinctL) number(w, "distinct_l", *r.distinctL);
    if (r.entropyL) number(w, "entropy_l", *r.entropyL);
    if (r.t) number(w, "t", *r.t);
    key(w, "class_sizes");
    w.StartArray();
    for (size_t i = 0; i < risk.classSizes.size(); ++i) {
        w.StartObject();
        integer(w, "min", anon::kClassSizeBucketLow[i]);
        key(w, "max");
        if (i + 1 < risk.classSizes.size()) w.Uint64(anon::kClassSizeBucketLow[i + 1] - 1);
        else w.Null();
        integer(w, "classes", risk.classSizes[i].classes);
        integer(w, "records", risk.classSizes[i].records);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
}

// InformationLoss of docs/openapi.yaml.
template <typename Writer> void writeLoss(Writer& w, std::string_view name, const anon::MetricValues& m) {
    key(w, name);
    w.StartObject();
    number(w, "loss", m.loss);
    number(w, "discernibility", m.discernibility);
    number(w, "average_class_size", m.averageClassSize);
    number(w, "nonuniform_entropy", m.nonUniformEntropy);
    number(w, "height", m.height);
    w.EndObject();
}

}  // namespace

template <typename Writer> void writeReportMembers(Writer& w, const ReleaseReport& report) {
    if (report.riskBefore) writeRisk(w, "risk_before", *report.riskBefore);
    if (report.lossBefore) writeLoss(w, "information_loss_before", *report.lossBefore);
    if (report.riskAfter) writeRisk(w, "risk_after", *report.riskAfter);
    if (report.lossAfter) writeLoss(w, "information_loss_after", *report.lossAfter);
    if (!report.generalization.empty()) {
        key(w, "generalization");
        w.StartObject();
        for (const auto& g : report.generalization) {
            key(w, g.column);
            w.StartObject();
            integer(w, "level", static_cast<uint64_t>(g.level));
            integer(w, "levels", static_cast<uint64_t>(g.levels));
            w.EndObject();
        }
        w.EndObject();
    }
    if (!report.columnLoss.empty()) {
        key(w, "column_loss");
        w.StartObject();
        for (const auto& [column, loss] : report.columnLoss) number(w, column, loss);
        w.EndObject();
    }
    if (report.latticeSize) integer(w, "lattice_size", *report.latticeSize);
    if (report.partitioning) {
        const ReleasePartitioning& p = *report.partitioning;
        key(w, "partitioning");
        w.StartObject();
        text(w, "algorithm", p.algorithm);
        integer(w, "partitions", p.partitions);
        integer(w, "classes", p.classes);
        key(w, "ncp");
        w.StartObject();
        number(w, "overall", p.ncp);
        key(w, "attributes");
        w.StartObject();
        for (const auto& [column, ncp] : p.ncpPerAttribute) number(w, column, ncp);
        w.EndObject();
        w.EndObject();
        number(w, "search_seconds", report.searchSeconds.value_or(0));
        w.EndObject();
    } else if (report.searchSeconds) {
        number(w, "search_seconds", *report.searchSeconds);
    }
}

template void writeReportMembers(rapidjson::Writer<rapidjson::StringBuffer>&, const ReleaseReport&);
template void writeReportMembers(rapidjson::PrettyWriter<rapidjson::StringBuffer>&, const ReleaseReport&);

}  // namespace custodian::release
