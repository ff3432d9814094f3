#include "anonymizer/engine.hpp"

#include <algorithm>
#include <bit>
#include <utility>

#include "anonymizer/heap_bytes.hpp"

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

OptimalSearchConfig optimalSearchConfig(const AnonymizationConfig& config) {
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
    search.memory = config.searchMemory;
    return search;
}

// ---- SuppressedClasses -------------------------------------------------------------------------

SuppressedClasses::SuppressedClasses(const GeneralizationStats& stats,
                                     const std::vector<std::shared_ptr<const Hierarchy>>& hierarchies)
    : width_(stats.levels.size()) {
    const size_t q = width_;
    for (size_t c = 0; c < stats.classSuppressed.size(); ++c) {
        if (!stats.classSuppressed[c]) continue;
        const uint32_t* codes = stats.classCodes.data() + c * q;
        codes_.insert(codes_.end(), codes, codes + q);
    }
    keyBits_.assign(q, 0);
    unsigned total = 0;
    for (size_t d = 0; d < q; ++d) {
        const size_t nodes = hierarchies[d]->nodeCount(stats.levels[d]);
        keyBits_[d] = std::max(1u, static_cast<unsigned>(std::bit_width(nodes > 0 ? nodes - 1 : 0)));
        total += keyBits_[d];
    }
    packed_ = total <= 64;
    if (q == 0) return;
    if (packed_) packedKeys_.reset(codes_.size() / q);
    for (size_t c = 0; c * q < codes_.size(); ++c) {
        const uint32_t* codes = codes_.data() + c * q;
        if (packed_) {
            uint64_t key = 0;
            for (size_t d = 0; d < q; ++d) key = (key << keyBits_[d]) | codes[d];
            (void)packedKeys_.indexOf(key);
        } else {
            wideKeys_.insert(wideKey(codes));
        }
    }
}

std::string SuppressedClasses::wideKey(const uint32_t* nodeCodes) const {
    return std::string(reinterpret_cast<const char*>(nodeCodes), width_ * sizeof(uint32_t));
}

bool SuppressedClasses::contains(const uint32_t* nodeCodes) const {
    if (codes_.empty()) return false;
    if (packed_) {
        uint64_t key = 0;
        for (size_t d = 0; d < width_; ++d) key = (key << keyBits_[d]) | nodeCodes[d];
        return packedKeys_.find(key) != UINT32_MAX;
    }
    return wideKeys_.count(wideKey(nodeCodes)) != 0;
}

uint64_t SuppressedClasses::memoryBytes() const {
    return codes_.capacity() * sizeof(uint32_t) + packedKeys_.memoryBytes() +
           wideKeys_.size() * heap::hashNode(sizeof(std::string)) + wideKeys_.bucket_count() * sizeof(void*);
}

// ---- GlobalRecoding ----------------------------------------------------------------------------

bool GlobalRecoding::release(std::span<const uint32_t> leafCodes, std::vector<std::string_view>& labels) const {
    const auto& chosen = levels();
    const size_t q = chosen.size();
    uint32_t stackCodes[32] = {};  // zeroed: contains() reads width_ codes, which the analyzer cannot tie to q
    std::vector<uint32_t> heapCodes;
    uint32_t* nodes = stackCodes;
    if (q > 32) {
        heapCodes.resize(q);
        nodes = heapCodes.data();
    }
    for (size_t d = 0; d < q; ++d) nodes[d] = hierarchies[d]->generalize(leafCodes[d], chosen[d]);
    if (suppressed.contains(nodes)) return false;
    labels.clear();
    for (size_t d = 0; d < q; ++d) labels.emplace_back(hierarchies[d]->label(chosen[d], nodes[d]));
    return true;
}

// ---- Entry points ------------------------------------------------------------------------------

Result<FrequencyTableBuilder> newFrequencyTable(const AnonymizationConfig& config) {
    if (Status s = config.validate(); !s) return s;
    std::vector<uint32_t> qi, sens;
    for (const auto& q : config.quasiIdentifiers) qi.push_back(static_cast<uint32_t>(q.hierarchy->leafCount()));
    for (const auto& s : config.sensitive) sens.push_back(static_cast<uint32_t>(s.dictionary->values.size()));
    return FrequencyTableBuilder::create(std::move(qi), std::move(sens));
}

Result<GlobalRecoding> anonymizeGlobal(const AnonymizationConfig& config, const FrequencyTable& table,
                                       UnmetModels* unmet) {
    if (Status s = config.validate(); !s) return s;
    if (table.qiCount() != config.quasiIdentifiers.size() || table.sensitiveCount() != config.sensitive.size()) {
        return invalidArgument("frequency table columns do not match the configuration");
    }
    if (table.totalRecords() == 0)
        return invalidArgument("the frequency table has no records: there is nothing to search");
    const OptimalSearchConfig search = optimalSearchConfig(config);
    auto solution = findOptimalGeneralization(table, search);
    if (!solution) {
        if (solution.status().code() != StatusCode::FailedPrecondition) return solution.status();
        auto why = explainUnmetGlobal(table, search);
        if (!why) return why.status();
        Status failed = failedPrecondition(why->message);
        if (unmet) *unmet = std::move(why).value();
        return failed;
    }
    GlobalRecoding r;
    r.hierarchies = search.hierarchies;
    r.solution = std::move(solution).value();
    r.suppressed = SuppressedClasses(r.solution.best, r.hierarchies);
    heap::release(r.solution.best.classCodes);
    heap::release(r.solution.best.classSizes);
    heap::release(r.solution.best.classSuppressed);
    return r;
}

namespace {

// The rows' combinations as mixed-radix keys over the leaf codes, sorted (LSD radix, 11 bits a
// pass) so that equal combinations are adjacent; the run lengths are the class sizes. Two arrays
// of one key per row: 4 or 8 bytes each, instead of a frequency table with its hash index.
template <typename Key>
std::vector<uint64_t> sortedRunLengths(const EncodedColumns& columns, const std::vector<uint32_t>& cards,
                                       uint64_t space) {
    const size_t n = columns.qi[0].size();
    std::vector<Key> keys(n, 0), sorted(n);
    for (size_t d = 0; d < cards.size(); ++d) {
        const Key radix = cards[d];
        const CodeView codes = columns.qi[d];
        for (size_t i = 0; i < n; ++i) keys[i] = static_cast<Key>(keys[i] * radix + codes[i]);
    }
    constexpr unsigned kDigit = 11;
    constexpr Key kMask = (Key{1} << kDigit) - 1;
    const unsigned bits = space <= 1 ? 0 : static_cast<unsigned>(std::bit_width(space - 1));
    std::vector<size_t> start(size_t{1} << kDigit);
    for (unsigned shift = 0; shift < bits; shift += kDigit) {
        std::fill(start.begin(), start.end(), 0);
        for (Key k : keys) ++start[(k >> shift) & kMask];
        size_t sum = 0;
        for (size_t& s : start) sum += std::exchange(s, sum);
        for (Key k : keys) sorted[start[(k >> shift) & kMask]++] = k;
        keys.swap(sorted);
    }
    heap::release(sorted);
    std::vector<uint64_t> sizes;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && keys[j] == keys[i]) ++j;
        sizes.push_back(j - i);
        i = j;
    }
    return sizes;
}

}  // namespace

Result<std::vector<uint64_t>> combinationSizes(const EncodedColumns& columns, const std::vector<uint32_t>& cards) {
    if (cards.size() != columns.qi.size()) return invalidArgument("one cardinality per quasi-identifier expected");
    if (columns.qi.empty() || columns.qi[0].empty()) return std::vector<uint64_t>{};
    uint64_t space = 1;
    bool fits = true;
    for (uint32_t c : cards) fits = fits && !__builtin_mul_overflow(space, std::max<uint64_t>(c, 1), &space);
    if (fits && space <= (uint64_t{1} << 32)) return sortedRunLengths<uint32_t>(columns, cards, space);
    if (fits) return sortedRunLengths<uint64_t>(columns, cards, space);
    // Too many combinations for a 64-bit key: a frequency table.
    auto builder = FrequencyTableBuilder::create(cards);
    if (!builder) return builder.status();
    std::vector<uint32_t> row(cards.size());
    for (size_t i = 0; i < columns.qi[0].size(); ++i) {
        for (size_t d = 0; d < cards.size(); ++d) row[d] = columns.qi[d][i];
        builder->addUnchecked(row.data(), nullptr);
    }
    const FrequencyTable table = std::move(builder.value()).finish();
    std::vector<uint64_t> sizes(table.size());
    for (size_t c = 0; c < table.size(); ++c) sizes[c] = table.count(c);
    return sizes;
}

Result<LocalRecodingResult> anonymizeMondrian(const AnonymizationConfig& config, const EncodedColumns& columns,
                                              UnmetModels* unmet) {
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
    const size_t n = columns.qi.empty() ? 0 : columns.qi[0].size();
    auto result = mondrianPartition(m, columns);
    if (!result) {
        if (result.status().code() != StatusCode::FailedPrecondition) return result.status();
        std::vector<uint64_t> distinct;
        for (size_t s = 0; s < columns.sensitive.size(); ++s) {
            std::vector<bool> seen(m.sensitiveCardinalities[s], false);
            for (uint32_t v : columns.sensitive[s]) seen[v] = true;
            distinct.push_back(static_cast<uint64_t>(std::count(seen.begin(), seen.end(), true)));
        }
        UnmetModels why = explainUnmetMondrian(config.models, n, distinct, result.status());
        Status failed = failedPrecondition(why.message);
        if (unmet) *unmet = std::move(why);
        return failed;
    }
    LocalRecodingResult r;
    r.mondrian = std::move(result.value());
    const uint64_t threshold = config.riskThreshold ? config.riskThreshold : config.models.k;
    // Risk before: classes of identical quasi-identifier combinations.
    std::vector<uint32_t> cards;
    for (const auto& q : config.quasiIdentifiers) cards.push_back(static_cast<uint32_t>(q.hierarchy->leafCount()));
    auto sizes = combinationSizes(columns, cards);
    if (!sizes) return sizes.status();
    r.riskBefore = prosecutorRisk(*sizes, threshold);
    r.riskAfter = prosecutorRisk(r.mondrian.partitionSizes, threshold);
    return r;
}

RiskSummary releasedRisk(const GeneralizationStats& stats, uint64_t threshold) {
    std::vector<uint64_t> sizes;
    sizes.reserve(stats.classSizes.size());
    for (size_t c = 0; c < stats.classSizes.size(); ++c)
        if (!stats.classSuppressed[c]) sizes.push_back(stats.classSizes[c]);
    return prosecutorRisk(sizes, threshold);
}

// ---- Final check -------------------------------------------------------------------------------

namespace {
std::vector<std::string> qiNames(const AnonymizationConfig& config) {
    std::vector<std::string> names;
    for (const auto& q : config.quasiIdentifiers) names.push_back(q.name);
    return names;
}
}  // namespace

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

}  // namespace custodian::anon
