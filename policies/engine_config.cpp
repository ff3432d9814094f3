#include "policies/engine_config.hpp"

#include <algorithm>

#include "anonymizer/hierarchy_io.hpp"
#include "anonymizer/value.hpp"
#include "policies/hierarchy_specs.hpp"

namespace custodian::policies {

namespace {

bool isNumber(anon::ColumnType t) { return t == anon::ColumnType::Integer || t == anon::ColumnType::Decimal; }
bool isTime(anon::ColumnType t) { return t == anon::ColumnType::Date || t == anon::ColumnType::Timestamp; }

const std::vector<std::string>* domainOf(const ColumnDomains& domains, const std::string& column) {
    auto it = domains.find(column);
    return it == domains.end() ? nullptr : &it->second;
}

// Integer/decimal values under one "*": Mondrian orders them by value and releases ranges.
Result<std::shared_ptr<const anon::Hierarchy>> flatNumericHierarchy(const std::string& name,
                                                                    const std::vector<std::string>& values) {
    std::vector<std::pair<double, std::string>> sorted;
    sorted.reserve(values.size());
    for (const auto& v : values) {
        auto n = anon::parseDecimal(v);
        if (!n) return invalidArgument("column '" + name + "': the value '" + v + "' is not a number");
        sorted.emplace_back(*n, v);
    }
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(
        std::unique(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second == b.second; }),
        sorted.end());
    std::vector<std::vector<std::string>> rows;
    rows.reserve(sorted.size());
    for (auto& [number, text] : sorted) rows.push_back({std::move(text), "*"});
    auto h = anon::Hierarchy::fromRows(name, rows);
    if (!h) return h.status();
    return std::shared_ptr<const anon::Hierarchy>(std::make_shared<const anon::Hierarchy>(std::move(h).value()));
}

Result<std::shared_ptr<const anon::Hierarchy>> quasiIdentifierHierarchy(const Policy& policy, const ColumnPolicy& c,
                                                                        const ColumnDomains& domains) {
    const auto* values = domainOf(domains, c.name);
    if (auto loaded = policy.hierarchy(c.name)) {
        if (values)
            if (auto s = anon::checkCoverage(*loaded, *values, c.name); !s) return s;
        return loaded;
    }
    if (!values)
        return invalidArgument("the quasi-identifier '" + c.name +
                               "' needs the distinct values of the data to build its hierarchy");
    if (c.hierarchy) return buildHierarchyFromValues(c.name, c.type, *c.hierarchy, *values);
    // Only Mondrian accepts a quasi-identifier without hierarchy (checked when loading).
    if (isNumber(c.type)) return flatNumericHierarchy(c.name, *values);
    if (isTime(c.type)) {
        HierarchySpec dates;
        dates.kind = HierarchySpec::Kind::Dates;
        dates.dateLevels = {DateLevel::Month, DateLevel::Quarter, DateLevel::Year, DateLevel::Decade};
        return buildHierarchyFromValues(c.name, c.type, dates, *values);
    }
    return invalidArgument("the quasi-identifier '" + c.name + "' has no hierarchy");
}

}  // namespace

Result<anon::AnonymizationConfig> makeEngineConfig(const Policy& policy, const ColumnDomains& domains) {
    const PolicyModel& m = policy.model();
    anon::AnonymizationConfig config;
    config.algorithm = m.algorithm == SearchAlgorithm::Mondrian ? anon::Algorithm::Mondrian : anon::Algorithm::Optimal;
    config.mondrianMode =
        m.mondrianMode == MondrianMode::Relaxed ? anon::MondrianMode::Relaxed : anon::MondrianMode::Strict;
    config.mondrianValueSets = m.mondrianValueSets;
    config.metric = m.metric;
    config.models.k = m.privacy.k.value_or(1);
    config.models.lDiversity = m.privacy.lDiversity;
    config.models.tCloseness = m.privacy.tCloseness;
    config.models.suppressionLimit = m.privacy.suppressionLimit;

    for (const ColumnPolicy& c : m.columns) {
        if (c.role != ColumnRole::QuasiIdentifier) continue;
        auto hierarchy = quasiIdentifierHierarchy(policy, c, domains);
        if (!hierarchy) return hierarchy.status();
        anon::QuasiIdentifier qi;
        qi.name = c.name;
        qi.hierarchy = std::move(hierarchy).value();
        qi.numeric = isNumber(c.type) && qi.hierarchy->numericLeaves().has_value();
        config.quasiIdentifiers.push_back(std::move(qi));
    }
    if (m.privacy.lDiversity || m.privacy.tCloseness) {
        for (const ColumnPolicy& c : m.columns) {
            if (c.role != ColumnRole::Sensitive) continue;
            const auto* values = domainOf(domains, c.name);
            if (!values || values->empty())
                return invalidArgument("the sensitive column '" + c.name +
                                       "' needs the distinct values of the data for l-diversity/t-closeness");
            anon::SensitiveAttribute s;
            s.name = c.name;
            s.distance = m.tClosenessDistance(c);
            s.dictionary = std::make_shared<const anon::SensitiveDictionary>(
                anon::SensitiveDictionary::build(*values, s.distance == anon::TClosenessDistance::Ordered));
            config.sensitive.push_back(std::move(s));
        }
    }
    if (auto s = config.validate(); !s) return s;
    return config;
}

}  // namespace custodian::policies
