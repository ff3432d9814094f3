#include "policies/policy_model.hpp"

#include <algorithm>

namespace custodian::policies {

const char* columnRoleName(ColumnRole role) noexcept {
    switch (role) {
    case ColumnRole::Identifier: return "identifier";
    case ColumnRole::QuasiIdentifier: return "quasi_identifier";
    case ColumnRole::Sensitive: return "sensitive";
    case ColumnRole::Insensitive: return "insensitive";
    }
    return "?";
}

std::optional<ColumnRole> columnRoleFromName(std::string_view name) noexcept {
    for (ColumnRole r :
         {ColumnRole::Identifier, ColumnRole::QuasiIdentifier, ColumnRole::Sensitive, ColumnRole::Insensitive})
        if (name == columnRoleName(r)) return r;
    return std::nullopt;
}

const char* transparencyName(PolicyModel::Transparency t) noexcept {
    switch (t) {
    case PolicyModel::Transparency::Public: return "public";
    case PolicyModel::Transparency::Summary: return "summary";
    case PolicyModel::Transparency::Private: return "private";
    }
    return "?";
}

std::optional<PolicyModel::Transparency> transparencyFromName(std::string_view name) noexcept {
    using T = PolicyModel::Transparency;
    for (T t : {T::Public, T::Summary, T::Private})
        if (name == transparencyName(t)) return t;
    return std::nullopt;
}

const char* dateLevelName(DateLevel level) noexcept {
    switch (level) {
    case DateLevel::Month: return "month";
    case DateLevel::Quarter: return "quarter";
    case DateLevel::Year: return "year";
    case DateLevel::Decade: return "decade";
    }
    return "?";
}

const char* hierarchyKindName(HierarchySpec::Kind kind) noexcept {
    switch (kind) {
    case HierarchySpec::Kind::File: return "file";
    case HierarchySpec::Kind::Intervals: return "intervals";
    case HierarchySpec::Kind::Dates: return "dates";
    case HierarchySpec::Kind::Prefix: return "prefix";
    case HierarchySpec::Kind::Groups: return "groups";
    }
    return "?";
}

const char* policyMetricName(anon::Metric metric) noexcept {
    switch (metric) {
    case anon::Metric::Discernibility: return "discernibility";
    case anon::Metric::AverageClassSize: return "aecs";
    case anon::Metric::NonUniformEntropy: return "nonuniform_entropy";
    case anon::Metric::Loss: return "loss";
    case anon::Metric::Height: return "height";
    }
    return "?";
}

std::optional<anon::Metric> policyMetricFromName(std::string_view name) noexcept {
    for (anon::Metric m : {anon::Metric::Discernibility, anon::Metric::AverageClassSize,
                           anon::Metric::NonUniformEntropy, anon::Metric::Loss, anon::Metric::Height})
        if (name == policyMetricName(m)) return m;
    return std::nullopt;
}

anon::TClosenessDistance PolicyModel::tClosenessDistance(const ColumnPolicy& column) const {
    if (privacy.tClosenessDistance) return *privacy.tClosenessDistance;
    return column.type == anon::ColumnType::Text ? anon::TClosenessDistance::Equal : anon::TClosenessDistance::Ordered;
}

const char* budgetPeriodName(BudgetPeriod period) noexcept {
    switch (period) {
    case BudgetPeriod::Day: return "day";
    case BudgetPeriod::Month: return "month";
    case BudgetPeriod::Year: return "year";
    case BudgetPeriod::Lifetime: return "lifetime";
    }
    return "?";
}

const AggregateMeasure* AggregatesSpec::measure(std::string_view name) const {
    auto it =
        std::find_if(measures.begin(), measures.end(), [&](const AggregateMeasure& m) { return m.column == name; });
    return it == measures.end() ? nullptr : &*it;
}

const AggregateGroupBy* AggregatesSpec::groupByColumn(std::string_view name) const {
    auto it = std::find_if(groupBy.begin(), groupBy.end(), [&](const AggregateGroupBy& g) { return g.column == name; });
    return it == groupBy.end() ? nullptr : &*it;
}

const ColumnPolicy* PolicyModel::column(std::string_view name) const {
    auto it = std::find_if(columns.begin(), columns.end(), [&](const ColumnPolicy& c) { return c.name == name; });
    return it == columns.end() ? nullptr : &*it;
}

std::optional<std::string> PolicyModel::admittingRecipient(std::string_view principal,
                                                           const std::vector<std::string>& principalGroups) const {
    constexpr std::string_view kGroup = "group:";
    auto isGroup = [&](const std::string& r) { return r.compare(0, kGroup.size(), kGroup) == 0; };
    // A principal named "group:x" cannot exist (names have no ':'), but never let one match a group.
    for (const auto& r : recipients)
        if (!isGroup(r) && r == principal) return r;
    for (const auto& r : recipients) {
        if (!isGroup(r)) continue;
        const std::string_view group = std::string_view(r).substr(kGroup.size());
        if (std::find(principalGroups.begin(), principalGroups.end(), group) != principalGroups.end()) return r;
    }
    return std::nullopt;
}

bool PolicyModel::allowsPurpose(std::string_view purpose) const {
    return std::find(purposes.begin(), purposes.end(), purpose) != purposes.end();
}

}  // namespace custodian::policies
