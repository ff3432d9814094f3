#include "policies/hierarchy_specs.hpp"

#include "anonymizer/hierarchy_builders.hpp"

namespace custodian::policies {

namespace {

anon::DateGranularity granularity(DateLevel level) {
    switch (level) {
    case DateLevel::Month: return anon::DateGranularity::Month;
    case DateLevel::Quarter: return anon::DateGranularity::Quarter;
    case DateLevel::Year: return anon::DateGranularity::Year;
    case DateLevel::Decade: return anon::DateGranularity::Decade;
    }
    return anon::DateGranularity::Year;
}

Result<std::shared_ptr<const anon::Hierarchy>> shared(Result<anon::Hierarchy> built) {
    if (!built) return built.status();
    return std::shared_ptr<const anon::Hierarchy>(std::make_shared<const anon::Hierarchy>(std::move(built).value()));
}

}  // namespace

Result<std::shared_ptr<const anon::Hierarchy>> buildHierarchyFromValues(const std::string& name, anon::ColumnType type,
                                                                        const HierarchySpec& spec,
                                                                        const std::vector<std::string>& values) {
    (void)type;
    switch (spec.kind) {
    case HierarchySpec::Kind::File:
        return invalidArgument("the hierarchy of '" + name + "' is a file; it is loaded with the policy");
    case HierarchySpec::Kind::Intervals:
        return shared(
            anon::buildIntervalHierarchy(name, values, anon::IntervalHierarchySpec{spec.widths, spec.origin, true}));
    case HierarchySpec::Kind::Dates: {
        anon::DateHierarchySpec dates;
        dates.levels.clear();
        for (DateLevel level : spec.dateLevels) dates.levels.push_back(granularity(level));
        return shared(anon::buildDateHierarchy(name, values, dates));
    }
    case HierarchySpec::Kind::Prefix:
        return shared(anon::buildMaskingHierarchy(name, values, anon::MaskingHierarchySpec{spec.maskChar}));
    case HierarchySpec::Kind::Groups: {
        anon::GroupingHierarchySpec grouping;
        for (const auto& level : spec.groups) {
            std::map<std::string, std::string, std::less<>> parentOf;
            for (const auto& [group, members] : level)
                for (const auto& member : members) parentOf.emplace(member, group);
            grouping.levels.push_back(std::move(parentOf));
        }
        // A last level with a single group is already the top; otherwise "*" joins them all.
        grouping.topLevel = spec.groups.empty() || spec.groups.back().size() != 1;
        return shared(anon::buildGroupingHierarchy(name, values, grouping));
    }
    }
    return internalError("unknown hierarchy kind");
}

}  // namespace custodian::policies
