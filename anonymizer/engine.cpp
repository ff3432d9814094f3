#include "anonymizer/engine.hpp"

#include <algorithm>

namespace custodian::anon {

Status AnonymizationConfig::validate() const {
    if (quasiIdentifiers.empty()) return invalidArgument("no quasi-identifier declared");
    for (size_t i = 0; i < quasiIdentifiers.size(); ++i) {
        const auto& q = quasiIdentifiers[i];
        if (!q.hierarchy) return invalidArgument("quasi-identifier '" + q.name + "' has no hierarchy");
        if (q.numeric && !q.hierarchy->numericLeaves()) {
            return invalidArgument("quasi-identifier '" + q.name + "' is declared numeric but hierarchy '" +
                                   q.hierarchy->name() + "' has non-numeric values");
        }
    }
    for (const auto& s : sensitive) {
        if (!s.dictionary || s.dictionary->values.empty()) {
            return invalidArgument("sensitive attribute '" + s.name + "' has no values");
        }
    }
    return models.validate(sensitive.size());
}

ReleasePlan::ReleasePlan(std::vector<std::shared_ptr<const Hierarchy>> hierarchies, std::vector<int> levels,
                         const GeneralizationStats& stats)
    : hierarchies_(std::move(hierarchies)), levels_(std::move(levels)) {
    const size_t q = levels_.size();
    for (size_t c = 0; c < stats.classSizes.size(); ++c) {
        if (!stats.classSuppressed[c]) continue;
        const uint32_t* codes = stats.classCodes.data() + c * q;
        suppressedHashes_.insert(hashTuple(codes, q));
        suppressedTuples_.emplace_back(codes, codes + q);
    }
    std::sort(suppressedTuples_.begin(), suppressedTuples_.end());
}

uint64_t ReleasePlan::hashTuple(const uint32_t* codes, size_t q) noexcept {
    uint64_t h = 0x51ed270b27b2f1c9ULL;
    for (size_t i = 0; i < q; ++i) h = detail::mixHash(static_cast<uint64_t>(h + codes[i] + 1));
    return h;
}

bool ReleasePlan::isSuppressed(std::span<const uint32_t> leafCodes) const {
    if (suppressedTuples_.empty()) return false;
    const size_t q = levels_.size();
    uint32_t stackCodes[32];
    std::vector<uint32_t> heapCodes;
    uint32_t* nodes = stackCodes;
    if (q > 32) {
        heapCodes.resize(q);
        nodes = heapCodes.data();
    }
    for (size_t d = 0; d < q; ++d) nodes[d] = hierarchies_[d]->generalize(leafCodes[d], levels_[d]);
    if (!suppressedHashes_.count(hashTuple(nodes, q))) return false;
    return std::binary_search(suppressedTuples_.begin(), suppressedTuples_.end(), std::vector<uint32_t>(nodes, nodes + q));
}

bool ReleasePlan::release(std::span<const uint32_t> leafCodes, std::vector<std::string_view>& labels) const {
    if (isSuppressed(leafCodes)) return false;
    labels.clear();
    for (size_t d = 0; d < levels_.size(); ++d) labels.emplace_back(label(d, leafCodes[d]));
    return true;
}

Result<FrequencyTableBuilder> newFrequencyTable(const AnonymizationConfig& config) {
    if (Status s = config.validate(); !s) return s;
    std::vector<uint32_t> qi, sens;
    for (const auto& q : config.quasiIdentifiers) qi.push_back(static_cast<uint32_t>(q.hierarchy->leafCount()));
    for (const auto& s : config.sensitive) sens.push_back(static_cast<uint32_t>(s.dictionary->values.size()));
    return FrequencyTableBuilder::create(std::move(qi), std::move(sens));
}

Result<GlobalRecodingResult> anonymizeGlobal(const AnonymizationConfig& config, const FrequencyTable& table) {
    if (Status s = config.validate(); !s) return s;
    if (table.qiCount() != config.quasiIdentifiers.size() || table.sensitiveCount() != config.sensitive.size()) {
        return invalidArgument("frequency table columns do not match the configuration");
    }
    OptimalSearchConfig search;
    for (const auto& q : config.quasiIdentifiers) {
        search.hierarchies.push_back(q.hierarchy);
        search.numeric.push_back(q.numeric);
        search.minLevels.push_back(q.minLevel);
        search.maxLevels.push_back(q.maxLevel);
    }
    for (const auto& s : config.sensitive) search.sensitiveDistances.push_back(s.distance);
    search.models = config.models;
    search.metric = config.metric;
    search.cacheBytes = config.cacheBytes;
    auto solution = findOptimalGeneralization(table, search);
    if (!solution) return solution.status();
    GlobalRecodingResult r;
    r.solution = std::move(solution.value());
    const uint64_t threshold = config.riskThreshold ? config.riskThreshold : config.models.k;
    std::vector<uint64_t> before(table.size());
    for (size_t c = 0; c < table.size(); ++c) before[c] = table.count(c);
    r.riskBefore = prosecutorRisk(before, threshold);
    std::vector<uint64_t> after;
    const auto& best = r.solution.best;
    for (size_t c = 0; c < best.classSizes.size(); ++c) {
        if (!best.classSuppressed[c]) after.push_back(best.classSizes[c]);
    }
    r.riskAfter = prosecutorRisk(after, threshold);
    r.plan = std::make_shared<const ReleasePlan>(search.hierarchies, best.levels, best);
    return r;
}

Result<LocalRecodingResult> anonymizeMondrian(const AnonymizationConfig& config, const EncodedColumns& columns) {
    if (Status s = config.validate(); !s) return s;
    MondrianConfig m;
    for (const auto& q : config.quasiIdentifiers) {
        m.hierarchies.push_back(q.hierarchy);
        m.numeric.push_back(q.numeric);
    }
    for (const auto& s : config.sensitive) {
        m.sensitiveDistances.push_back(s.distance);
        m.sensitiveCardinalities.push_back(static_cast<uint32_t>(s.dictionary->values.size()));
    }
    m.models = config.models;
    m.mode = config.mondrianMode;
    m.valueSets = config.mondrianValueSets;
    auto result = mondrianPartition(m, columns);
    if (!result) return result.status();
    LocalRecodingResult r;
    r.mondrian = std::move(result.value());
    const uint64_t threshold = config.riskThreshold ? config.riskThreshold : config.models.k;
    // Risk before: classes of identical quasi-identifier combinations.
    std::vector<uint32_t> cards;
    for (const auto& q : config.quasiIdentifiers) cards.push_back(static_cast<uint32_t>(q.hierarchy->leafCount()));
    auto builder = FrequencyTableBuilder::create(cards);
    if (!builder) return builder.status();
    const size_t n = columns.qi.empty() ? 0 : columns.qi[0].size();
    std::vector<uint32_t> row(cards.size());
    for (size_t i = 0; i < n; ++i) {
        for (size_t d = 0; d < cards.size(); ++d) row[d] = columns.qi[d][i];
        builder->addUnchecked(row.data(), nullptr);
    }
    const FrequencyTable before = std::move(builder.value()).finish();
    std::vector<uint64_t> sizes(before.size());
    for (size_t c = 0; c < before.size(); ++c) sizes[c] = before.count(c);
    r.riskBefore = prosecutorRisk(sizes, threshold);
    r.riskAfter = prosecutorRisk(r.mondrian.partitionSizes, threshold);
    return r;
}

namespace {
std::vector<std::string> qiNames(const AnonymizationConfig& config) {
    std::vector<std::string> names;
    for (const auto& q : config.quasiIdentifiers) names.push_back(q.name);
    return names;
}
} // namespace

FinalCheck makeFinalCheck(const AnonymizationConfig& config, uint64_t inputRecords, const FrequencyTable* table) {
    std::vector<FinalCheckSensitive> sens;
    for (size_t s = 0; s < config.sensitive.size(); ++s) {
        FinalCheckSensitive f;
        f.name = config.sensitive[s].name;
        f.distance = config.sensitive[s].distance;
        if (table && s < table->sensitiveCount()) {
            const auto& values = config.sensitive[s].dictionary->values;
            for (size_t c = 0; c < table->size(); ++c) {
                for (const auto& e : table->sensitive(s, c)) f.inputDistribution[values[e.value]] += e.count;
            }
        }
        sens.push_back(std::move(f));
    }
    return FinalCheck(config.models, qiNames(config), std::move(sens), inputRecords);
}

FinalCheck makeFinalCheck(const AnonymizationConfig& config, uint64_t inputRecords, const EncodedColumns& columns) {
    std::vector<FinalCheckSensitive> sens;
    for (size_t s = 0; s < config.sensitive.size(); ++s) {
        FinalCheckSensitive f;
        f.name = config.sensitive[s].name;
        f.distance = config.sensitive[s].distance;
        if (s < columns.sensitive.size()) {
            const auto& values = config.sensitive[s].dictionary->values;
            std::vector<uint64_t> counts(values.size(), 0);
            for (uint32_t v : columns.sensitive[s]) ++counts[v];
            for (size_t v = 0; v < values.size(); ++v) {
                if (counts[v]) f.inputDistribution[values[v]] = counts[v];
            }
        }
        sens.push_back(std::move(f));
    }
    PrivacyModels models = config.models;
    models.suppressionLimit = 0;
    return FinalCheck(models, qiNames(config), std::move(sens), inputRecords);
}

} // namespace custodian::anon
