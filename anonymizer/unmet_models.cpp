#include "anonymizer/unmet_models.hpp"

#include <algorithm>
#include <cstdio>

#include "anonymizer/fixed_decimal.hpp"

namespace custodian::anon {

namespace {

std::string percent(double share) { return fixedDecimal(share * 100.0, 2) + "%"; }

std::string kRequirement(uint64_t k) { return "k-anonymity with k = " + std::to_string(k); }

std::string lRequirement(const LDiversity& l) {
    const char* variant = l.variant == LDiversityVariant::Entropy     ? "entropy"
                          : l.variant == LDiversityVariant::Recursive ? "recursive"
                                                                      : "distinct";
    std::string s = std::string(variant) + " l-diversity with l = " + fixedDecimal(l.l, 2);
    if (l.variant == LDiversityVariant::Recursive) s += " and c = " + fixedDecimal(l.c, 2);
    return s;
}

std::string tRequirement(const TCloseness& t) { return "t-closeness with t = " + fixedDecimal(t.t, 3); }

}  // namespace

Result<UnmetModels> explainUnmetGlobal(const FrequencyTable& table, const OptimalSearchConfig& config) {
    const uint64_t records = table.totalRecords();
    std::vector<int> top;
    for (size_t d = 0; d < config.hierarchies.size(); ++d) {
        const bool bounded = d < config.maxLevels.size() && config.maxLevels[d] >= 0;
        top.push_back(bounded ? config.maxLevels[d] : config.hierarchies[d]->levels() - 1);
    }
    auto evaluateWith = [&](PrivacyModels models) -> Result<GeneralizationStats> {
        OptimalSearchConfig c = config;
        c.models = models;
        return evaluateGeneralization(table, c, top);
    };
    auto open = evaluateWith(PrivacyModels{});
    if (!open) return open.status();
    const PrivacyModels& m = config.models;
    UnmetModels u;
    u.bestAchievable.push_back({"rows", records});
    u.bestAchievable.push_back({"k", open->achievedK});
    if (open->distinctL) u.bestAchievable.push_back({"distinct_l", fixedDecimal(*open->distinctL, 0)});
    if (open->entropyL) u.bestAchievable.push_back({"entropy_l", fixedDecimal(*open->entropyL, 2)});
    if (open->achievedT) u.bestAchievable.push_back({"t", fixedDecimal(*open->achievedT, 3)});
    // The share of records k-anonymity alone would have to suppress at the top node.
    uint64_t small = 0;
    for (size_t c = 0; c < open->classSizes.size(); ++c)
        if (open->classSizes[c] < m.k) small += open->classSizes[c];
    u.bestAchievable.push_back(
        {"suppression_needed_for_k", fixedDecimal(static_cast<double>(small) / static_cast<double>(records), 4)});

    PrivacyModels only;
    only.suppressionLimit = m.suppressionLimit;
    only.k = m.k;
    auto kOnly = evaluateWith(only);
    if (!kOnly) return kOnly.status();
    const std::string limit = "within the suppression limit of " + percent(m.suppressionLimit);
    if (!kOnly->satisfies) {
        u.requirement = kRequirement(m.k);
        u.message = u.requirement + " cannot be met " + limit +
                    ": the most generalized release has a smallest group of " + std::to_string(open->achievedK) +
                    " rows (" + std::to_string(records) + " rows selected)";
    } else if (m.lDiversity) {
        only.lDiversity = m.lDiversity;
        auto lOnly = evaluateWith(only);
        if (!lOnly) return lOnly.status();
        if (!lOnly->satisfies) {
            u.requirement = lRequirement(*m.lDiversity);
            const bool distinct = m.lDiversity->variant == LDiversityVariant::Distinct;
            const auto reached = distinct ? open->distinctL : open->entropyL;
            u.message = u.requirement + " cannot be met " + limit + ": the most generalized release reaches " +
                        (distinct ? "distinct l = " : "entropy l = ") +
                        (reached ? fixedDecimal(*reached, distinct ? 0 : 2) : std::string("n/a"));
        }
    }
    if (u.requirement.empty() && m.tCloseness) {
        u.requirement = tRequirement(*m.tCloseness);
        u.message = u.requirement + " cannot be met " + limit + " together with the other models";
        if (open->achievedT)
            u.message += "; the most generalized release reaches t = " + fixedDecimal(*open->achievedT, 3);
    }
    if (u.requirement.empty()) {
        u.requirement = m.describe();
        u.message = "the privacy models (" + m.describe() + ") cannot be met together " + limit;
    }
    return u;
}

UnmetModels explainUnmetMondrian(const PrivacyModels& models, uint64_t records,
                                 const std::vector<uint64_t>& distinctSensitive, const Status& failure) {
    UnmetModels u;
    if (records < models.k) u.requirement = kRequirement(models.k);
    else if (models.lDiversity) u.requirement = lRequirement(*models.lDiversity);
    else if (models.tCloseness) u.requirement = tRequirement(*models.tCloseness);
    else u.requirement = models.describe();
    u.message = u.requirement + " cannot be met: " + failure.message();
    u.bestAchievable.push_back({"rows", records});
    u.bestAchievable.push_back({"k", records});
    if (!distinctSensitive.empty())
        u.bestAchievable.push_back(
            {"distinct_l", *std::min_element(distinctSensitive.begin(), distinctSensitive.end())});
    return u;
}

std::optional<UnmetModels> unmetInOneClass(const PrivacyModels& models, uint64_t records) {
    if (records >= models.k) return std::nullopt;
    UnmetModels u;
    u.requirement = kRequirement(models.k);
    u.message = u.requirement + " cannot be met: the policy selects only " + std::to_string(records) + " rows";
    u.bestAchievable.push_back({"k", records});
    u.bestAchievable.push_back({"rows", records});
    return u;
}

}  // namespace custodian::anon
