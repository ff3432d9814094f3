#include "anonymizer/optimal_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "anonymizer/flat_hash.hpp"

namespace custodian::anon {

namespace {

using detail::Uint128;

// Bit layout of a class key: one fixed-width field per quasi-identifier holding its node code.
struct KeyLayout {
    std::vector<unsigned> shift, width;
    std::vector<uint32_t> mask;
    unsigned totalBits = 0;
};

KeyLayout makeLayout(const std::vector<std::shared_ptr<const Hierarchy>>& hierarchies) {
    KeyLayout l;
    for (const auto& h : hierarchies) {
        unsigned w = 1;
        while ((uint64_t{1} << w) < h->leafCount()) ++w;
        l.shift.push_back(l.totalBits);
        l.width.push_back(w);
        l.mask.push_back(static_cast<uint32_t>((uint64_t{1} << w) - 1));
        l.totalBits += w;
    }
    return l;
}

// Everything the search needs besides the key type: validated config, lattice, costs, code maps.
struct Prepared {
    const FrequencyTable* table = nullptr;
    const OptimalSearchConfig* config = nullptr;
    std::optional<GeneralizationLattice> lattice;
    std::optional<CellCosts> costs;
    std::vector<SensitiveDomain> domains;
    KeyLayout layout;
    uint64_t records = 0;
    uint64_t maxSuppressed = 0;
    bool noSuppression = false;   // no record can be suppressed
    bool fullIsMonotone = false;  // the full predicate equals its monotone part M
    bool needSensitive = false;   // l-diversity or t-closeness declared
    // up[d][a][b - a - 1][code at level a] = code at level b, for a < b.
    std::vector<std::vector<std::vector<std::vector<uint32_t>>>> up;
    std::vector<double> pathScore; // per node: separable entropy, a heuristic for Flash paths
    std::vector<std::vector<uint32_t>> columns; // frequency table codes, column-major

    const uint32_t* upMap(size_t d, int from, int to) const {
        return up[d][static_cast<size_t>(from)][static_cast<size_t>(to - from - 1)].data();
    }
};

Result<Prepared> prepare(const FrequencyTable& table, const OptimalSearchConfig& config) {
    Prepared p;
    p.table = &table;
    p.config = &config;
    const size_t q = table.qiCount();
    if (config.hierarchies.size() != q) {
        return invalidArgument("optimal search: " + std::to_string(config.hierarchies.size()) +
                               " hierarchies for " + std::to_string(q) + " quasi-identifiers");
    }
    for (size_t d = 0; d < q; ++d) {
        const auto& h = config.hierarchies[d];
        if (!h) return invalidArgument("optimal search: quasi-identifier " + std::to_string(d) + " has no hierarchy");
        if (h->leafCount() != table.qiCardinalities()[d]) {
            return invalidArgument("optimal search: hierarchy '" + h->name() + "' has " +
                                   std::to_string(h->leafCount()) + " leaves but the table encodes " +
                                   std::to_string(table.qiCardinalities()[d]) + " values");
        }
    }
    if (Status s = config.models.validate(table.sensitiveCount()); !s) return s;
    if (!config.sensitiveDistances.empty() && config.sensitiveDistances.size() != table.sensitiveCount()) {
        return invalidArgument("optimal search: one t-closeness distance per sensitive attribute expected");
    }
    if (table.totalRecords() == 0) return failedPrecondition("optimal search: the input has no records");

    std::vector<int> lo(q, 0), hi(q, 0);
    for (size_t d = 0; d < q; ++d) {
        const int top = config.hierarchies[d]->levels() - 1;
        lo[d] = d < config.minLevels.size() ? config.minLevels[d] : 0;
        hi[d] = d < config.maxLevels.size() && config.maxLevels[d] >= 0 ? config.maxLevels[d] : top;
        if (lo[d] < 0 || hi[d] > top || lo[d] > hi[d]) {
            return invalidArgument("optimal search: levels of '" + config.hierarchies[d]->name() + "' must satisfy 0 <= " +
                                   std::to_string(lo[d]) + " <= " + std::to_string(hi[d]) + " <= " + std::to_string(top));
        }
    }
    auto lattice = GeneralizationLattice::create(lo, hi);
    if (!lattice) return lattice.status();
    p.lattice.emplace(std::move(lattice.value()));

    p.layout = makeLayout(config.hierarchies);
    if (p.layout.totalBits > 128) {
        return invalidArgument("optimal search: the quasi-identifiers need " + std::to_string(p.layout.totalBits) +
                               " bits per combination; at most 128 are supported");
    }

    p.records = table.totalRecords();
    p.maxSuppressed = config.models.maxSuppressed(p.records);
    p.noSuppression = p.maxSuppressed == 0;
    PrivacyModels effective = config.models;
    if (p.noSuppression) effective.suppressionLimit = 0;
    p.fullIsMonotone = effective.monotone();
    p.needSensitive = table.sensitiveCount() > 0 && (config.models.lDiversity || config.models.tCloseness);

    // Leaf frequencies per QI, and the global sensitive distributions.
    std::vector<std::vector<uint64_t>> leafFreq(q);
    for (size_t d = 0; d < q; ++d) leafFreq[d].assign(table.qiCardinalities()[d], 0);
    p.domains.resize(table.sensitiveCount());
    std::vector<std::vector<uint64_t>> sensFreq(table.sensitiveCount());
    for (size_t s = 0; s < table.sensitiveCount(); ++s) sensFreq[s].assign(table.sensitiveCardinalities()[s], 0);
    for (size_t c = 0; c < table.size(); ++c) {
        const uint32_t* codes = table.codes(c);
        for (size_t d = 0; d < q; ++d) leafFreq[d][codes[d]] += table.count(c);
        for (size_t s = 0; s < table.sensitiveCount(); ++s) {
            for (const auto& e : table.sensitive(s, c)) sensFreq[s][e.value] += e.count;
        }
    }
    for (size_t s = 0; s < table.sensitiveCount(); ++s) {
        p.domains[s] = SensitiveDomain::fromFrequencies(
            sensFreq[s], config.sensitiveDistances.empty() ? TClosenessDistance::Equal : config.sensitiveDistances[s]);
    }
    p.costs.emplace(CellCosts::build(config.hierarchies, config.numeric, leafFreq));

    p.up.resize(q);
    for (size_t d = 0; d < q; ++d) {
        const Hierarchy& h = *config.hierarchies[d];
        const auto levels = static_cast<size_t>(h.levels());
        p.up[d].resize(levels);
        for (size_t a = 0; a < levels; ++a) {
            for (size_t b = a + 1; b < levels; ++b) {
                std::vector<uint32_t> map(h.nodeCount(static_cast<int>(a)));
                for (uint32_t leaf = 0; leaf < h.leafCount(); ++leaf) {
                    map[h.generalize(leaf, static_cast<int>(a))] = h.generalize(leaf, static_cast<int>(b));
                }
                p.up[d][a].push_back(std::move(map));
            }
        }
    }
    p.columns.assign(q, std::vector<uint32_t>(table.size()));
    for (size_t c = 0; c < table.size(); ++c) {
        const uint32_t* codes = table.codes(c);
        for (size_t d = 0; d < q; ++d) p.columns[d][c] = codes[d];
    }
    const auto& lat = *p.lattice;
    p.pathScore.resize(lat.size());
    for (size_t node = 0; node < lat.size(); ++node) {
        double s = 0;
        for (size_t d = 0; d < q; ++d) s += p.costs->entropyAtLevel(d, lat.level(node, d));
        p.pathScore[node] = s;
    }
    return p;
}

template <typename Key>
struct ClassTable {
    size_t node = 0;
    std::vector<Key> keys;
    std::vector<uint64_t> counts;
    struct Distribution {
        std::vector<uint32_t> offsets;
        std::vector<SensitiveCount> entries;
    };
    std::vector<Distribution> sensitive;
    uint64_t lastUse = 0;

    size_t size() const noexcept { return counts.size(); }
    size_t bytes() const noexcept {
        size_t b = keys.capacity() * sizeof(Key) + counts.capacity() * sizeof(uint64_t) + sizeof(*this);
        for (const auto& d : sensitive) {
            b += d.offsets.capacity() * sizeof(uint32_t) + d.entries.capacity() * sizeof(SensitiveCount);
        }
        return b;
    }
    std::span<const SensitiveCount> hist(size_t s, size_t cls) const noexcept {
        const auto& d = sensitive[s];
        return {d.entries.data() + d.offsets[cls], d.entries.data() + d.offsets[cls + 1]};
    }
};

// Outcome of the privacy predicate on one node.
struct NodeCheck {
    uint64_t suppressedMonotone = 0; // records in classes failing the monotone part M
    uint64_t suppressedFull = 0;     // records in classes failing any model
    bool satisfiesMonotone = false;
    bool satisfiesFull = false;
};

template <typename Key>
class Evaluator {
public:
    Evaluator(const Prepared& p, bool withSensitive)
        : p_(p), withSensitive_(withSensitive && p.table->sensitiveCount() > 0) {}

    size_t evaluations() const noexcept { return evaluations_; }
    // Classes read while rolling up, and evaluations that started from the frequency table.
    size_t rolledClasses() const noexcept { return rolledClasses_; }
    size_t fromTable() const noexcept { return fromTable_; }

    // Class table of `node`, rolled up from the cheapest cached specialization (or the frequency
    // table). The reference stays valid until the next call.
    const ClassTable<Key>& classes(size_t node) {
        ++tick_;
        if (auto it = cacheIndex_.find(node); it != cacheIndex_.end()) {
            cache_[it->second]->lastUse = tick_;
            return *cache_[it->second];
        }
        ++evaluations_;
        const ClassTable<Key>* source = findSource(node);
        auto table = std::make_unique<ClassTable<Key>>();
        table->node = node;
        if (source) {
            rolledClasses_ += source->size();
            rollUp(*source, *table);
        } else {
            ++fromTable_;
            rolledClasses_ += p_.table->size();
            fromFrequencyTable(*table);
        }
        table->lastUse = tick_;
        return insert(std::move(table));
    }

    NodeCheck check(const ClassTable<Key>& t) {
        NodeCheck r;
        const PrivacyModels& m = p_.config->models;
        const bool distinctInM = m.lDiversity && m.lDiversity->variant == LDiversityVariant::Distinct;
        const size_t sens = withSensitive_ ? p_.table->sensitiveCount() : 0;
        for (size_t i = 0; i < t.size(); ++i) {
            const uint64_t size = t.counts[i];
            bool passM = size >= m.k;
            if (passM && distinctInM) {
                for (size_t s = 0; s < sens && passM; ++s) passM = model::lDiverse(*m.lDiversity, t.hist(s, i), size, scratch_);
            }
            bool passF = passM;
            if (passF && m.lDiversity && !distinctInM) {
                for (size_t s = 0; s < sens && passF; ++s) passF = model::lDiverse(*m.lDiversity, t.hist(s, i), size, scratch_);
            }
            if (passF && m.tCloseness) {
                for (size_t s = 0; s < sens && passF; ++s) {
                    passF = model::earthMoversDistance(t.hist(s, i), size, p_.domains[s]) <= m.tCloseness->t + 1e-12;
                }
            }
            if (p_.fullIsMonotone) passM = passF;
            if (!passM) r.suppressedMonotone += size;
            if (!passF) r.suppressedFull += size;
        }
        r.satisfiesMonotone = r.suppressedMonotone <= p_.maxSuppressed;
        r.satisfiesFull = r.suppressedFull <= p_.maxSuppressed;
        return r;
    }

    // Per-class pass/fail of all models (true = kept).
    std::vector<uint8_t> keptClasses(const ClassTable<Key>& t) {
        std::vector<uint8_t> kept(t.size(), 1);
        const PrivacyModels& m = p_.config->models;
        const size_t sens = withSensitive_ ? p_.table->sensitiveCount() : 0;
        for (size_t i = 0; i < t.size(); ++i) {
            const uint64_t size = t.counts[i];
            bool pass = size >= m.k;
            if (pass && m.lDiversity) {
                for (size_t s = 0; s < sens && pass; ++s) pass = model::lDiverse(*m.lDiversity, t.hist(s, i), size, scratch_);
            }
            if (pass && m.tCloseness) {
                for (size_t s = 0; s < sens && pass; ++s) {
                    pass = model::earthMoversDistance(t.hist(s, i), size, p_.domains[s]) <= m.tCloseness->t + 1e-12;
                }
            }
            kept[i] = pass;
        }
        return kept;
    }

    uint32_t code(Key key, size_t d) const noexcept {
        return static_cast<uint32_t>(key >> p_.layout.shift[d]) & p_.layout.mask[d];
    }

    // Metrics of a node whose classes failing the full predicate are suppressed. Requires the table to
    // have been checked with the full predicate (suppressedFull) — `kept` flags per class.
    MetricValues metrics(const ClassTable<Key>& t, const std::vector<uint8_t>& kept) const {
        MetricValues v;
        const auto& lat = *p_.lattice;
        const auto& costs = *p_.costs;
        const size_t q = lat.dimensions();
        const double n = static_cast<double>(p_.records);
        double entropy = 0, loss = 0;
        for (size_t d = 0; d < q; ++d) {
            entropy += costs.entropyAtLevel(d, lat.level(t.node, d));
            loss += costs.lossAtLevel(d, lat.level(t.node, d));
            v.height += lat.level(t.node, d);
        }
        uint64_t suppressed = 0;
        size_t keptCount = 0;
        double dm = 0;
        for (size_t i = 0; i < t.size(); ++i) {
            const double size = static_cast<double>(t.counts[i]);
            if (kept[i]) {
                ++keptCount;
                dm += size * size;
                continue;
            }
            suppressed += t.counts[i];
            for (size_t d = 0; d < q; ++d) {
                const int level = lat.level(t.node, d);
                const uint32_t c = code(t.keys[i], d);
                entropy += size * costs.entropySuppressionDelta(d, level, c);
                loss += size * (1.0 - costs.lossCell(d, level, c));
            }
        }
        dm += static_cast<double>(suppressed) * n;
        v.discernibility = dm;
        v.nonUniformEntropy = entropy;
        v.loss = loss / (n * static_cast<double>(q));
        const size_t released = keptCount + (suppressed > 0 ? 1 : 0);
        v.averageClassSize = released > 0 ? n / static_cast<double>(released) : 0;
        return v;
    }

    // A lower bound on the metric for this node and every generalization of it (see header).
    double classLowerBound(const ClassTable<Key>& t, Metric metric) const {
        if (metric == Metric::Discernibility) {
            double dm = 0;
            for (uint64_t c : t.counts) dm += static_cast<double>(c) * static_cast<double>(c);
            return dm;
        }
        if (metric == Metric::AverageClassSize) {
            return static_cast<double>(p_.records) / static_cast<double>(t.size() + 1);
        }
        return separableLowerBound(t.node, metric);
    }

    double separableLowerBound(size_t node, Metric metric) const {
        const auto& lat = *p_.lattice;
        const auto& costs = *p_.costs;
        const size_t q = lat.dimensions();
        double v = 0;
        for (size_t d = 0; d < q; ++d) {
            const int level = lat.level(node, d);
            switch (metric) {
            case Metric::NonUniformEntropy: v += costs.entropyAtLevel(d, level); break;
            case Metric::Loss: v += costs.lossAtLevel(d, level); break;
            case Metric::Height: v += level; break;
            default: break;
            }
        }
        if (metric == Metric::Loss) v /= static_cast<double>(p_.records) * static_cast<double>(q);
        return v;
    }

private:
    const ClassTable<Key>* findSource(size_t node) const {
        const auto& lat = *p_.lattice;
        const ClassTable<Key>* best = nullptr;
        // Direct specializations first: the highest possible sources.
        for (size_t d = 0; d < lat.dimensions(); ++d) {
            if (lat.level(node, d) == lat.minLevel(d)) continue;
            auto it = cacheIndex_.find(node - lat.stride(d));
            if (it != cacheIndex_.end() && (!best || cache_[it->second]->size() < best->size())) best = cache_[it->second].get();
        }
        if (best) return best;
        for (const auto& t : cache_) {
            if ((!best || t->size() < best->size()) && lat.generalizes(node, t->node)) best = t.get();
        }
        return best;
    }

    const ClassTable<Key>& insert(std::unique_ptr<ClassTable<Key>> table) {
        const size_t node = table->node;
        cacheBytes_ += table->bytes();
        cache_.push_back(std::move(table));
        cacheIndex_[node] = cache_.size() - 1;
        // Evict least recently used tables (never the one just inserted) beyond the budget.
        while (cacheBytes_ > p_.config->cacheBytes && cache_.size() > 1) {
            size_t victim = SIZE_MAX;
            for (size_t i = 0; i < cache_.size(); ++i) {
                if (cache_[i]->node == node) continue;
                if (victim == SIZE_MAX || cache_[i]->lastUse < cache_[victim]->lastUse) victim = i;
            }
            cacheBytes_ -= cache_[victim]->bytes();
            cacheIndex_.erase(cache_[victim]->node);
            if (victim != cache_.size() - 1) {
                std::swap(cache_[victim], cache_.back());
                cacheIndex_[cache_[victim]->node] = victim;
            }
            cache_.pop_back();
        }
        return *cache_[cacheIndex_.at(node)];
    }

    template <typename KeyOf, typename CountOf, typename HistOf>
    void group(size_t sources, KeyOf keyOf, CountOf countOf, HistOf histOf, ClassTable<Key>& out) {
        // Size the hash table for the classes the node can have, not for its sources: high nodes
        // have few classes, and a small table stays in the L1/L2 cache.
        size_t bound = 1;
        for (size_t d = 0; d < p_.lattice->dimensions() && bound < sources; ++d) {
            bound *= p_.config->hierarchies[d]->nodeCount(p_.lattice->level(out.node, d));
        }
        indexer_.reset(std::min(bound, sources));
        targetOf_.resize(sources);
        out.keys.clear();
        out.counts.clear();
        for (size_t i = 0; i < sources; ++i) {
            const Key key = keyOf(i);
            const uint32_t t = indexer_.indexOf(key);
            if (t == out.keys.size()) {
                out.keys.push_back(key);
                out.counts.push_back(0);
            }
            out.counts[t] += countOf(i);
            targetOf_[i] = t;
        }
        out.keys.shrink_to_fit();
        out.counts.shrink_to_fit();
        if (!withSensitive_) return;
        const size_t targets = out.keys.size();
        out.sensitive.resize(p_.table->sensitiveCount());
        for (size_t s = 0; s < out.sensitive.size(); ++s) {
            auto& dist = out.sensitive[s];
            fill_.assign(targets + 1, 0);
            for (size_t i = 0; i < sources; ++i) fill_[targetOf_[i] + 1] += static_cast<uint32_t>(histOf(s, i).size());
            for (size_t t = 0; t < targets; ++t) fill_[t + 1] += fill_[t];
            staging_.resize(fill_[targets]);
            std::vector<uint32_t> start(fill_.begin(), fill_.end());
            for (size_t i = 0; i < sources; ++i) {
                for (const auto& e : histOf(s, i)) staging_[fill_[targetOf_[i]]++] = e;
            }
            // Sort each class's entries by value and merge duplicates.
            dist.offsets.assign(targets + 1, 0);
            dist.entries.clear();
            for (size_t t = 0; t < targets; ++t) {
                auto b = staging_.begin() + start[t];
                auto e = staging_.begin() + start[t + 1];
                std::sort(b, e, [](const SensitiveCount& x, const SensitiveCount& y) { return x.value < y.value; });
                for (auto it = b; it != e; ++it) {
                    if (dist.entries.size() > dist.offsets[t] && dist.entries.back().value == it->value) {
                        dist.entries.back().count += it->count;
                    } else {
                        dist.entries.push_back(*it);
                    }
                }
                dist.offsets[t + 1] = static_cast<uint32_t>(dist.entries.size());
            }
            dist.entries.shrink_to_fit();
        }
    }

    void fromFrequencyTable(ClassTable<Key>& out) {
        const auto& lat = *p_.lattice;
        const FrequencyTable& ft = *p_.table;
        const size_t q = lat.dimensions();
        if (contribution_.empty()) {
            // contribution_[d][level][leaf] = the leaf's node code at that level, shifted into place.
            contribution_.resize(q);
            for (size_t d = 0; d < q; ++d) {
                const Hierarchy& h = *p_.config->hierarchies[d];
                contribution_[d].resize(static_cast<size_t>(h.levels()));
                for (int level = 0; level < h.levels(); ++level) {
                    auto& c = contribution_[d][static_cast<size_t>(level)];
                    c.resize(h.leafCount());
                    for (uint32_t leaf = 0; leaf < h.leafCount(); ++leaf) {
                        c[leaf] = static_cast<Key>(h.generalize(leaf, level)) << p_.layout.shift[d];
                    }
                }
            }
        }
        // Column at a time: streams through one code column and one small lookup table per pass.
        baseKeys_.assign(ft.size(), 0);
        const auto& columns = p_.columns;
        for (size_t d = 0; d < q; ++d) {
            const Key* c = contribution_[d][static_cast<size_t>(lat.level(out.node, d))].data();
            const uint32_t* col = columns[d].data();
            Key* keys = baseKeys_.data();
            for (size_t i = 0, n = ft.size(); i < n; ++i) keys[i] |= c[col[i]];
        }
        group(
            ft.size(), [&](size_t c) { return baseKeys_[c]; }, [&](size_t c) { return ft.count(c); },
            [&](size_t s, size_t c) { return ft.sensitive(s, c); }, out);
    }

    void rollUp(const ClassTable<Key>& src, ClassTable<Key>& out) {
        const auto& lat = *p_.lattice;
        changed_.clear();
        maps_.clear();
        for (size_t d = 0; d < lat.dimensions(); ++d) {
            const int from = lat.level(src.node, d), to = lat.level(out.node, d);
            if (from == to) continue;
            changed_.push_back(d);
            maps_.push_back(p_.upMap(d, from, to));
        }
        group(
            src.size(),
            [&](size_t i) {
                Key key = src.keys[i];
                for (size_t j = 0; j < changed_.size(); ++j) {
                    const size_t d = changed_[j];
                    const unsigned shift = p_.layout.shift[d];
                    const uint32_t v = static_cast<uint32_t>(key >> shift) & p_.layout.mask[d];
                    key &= ~(static_cast<Key>(p_.layout.mask[d]) << shift);
                    key |= static_cast<Key>(maps_[j][v]) << shift;
                }
                return key;
            },
            [&](size_t i) { return src.counts[i]; }, [&](size_t s, size_t i) { return src.hist(s, i); }, out);
    }

    const Prepared& p_;
    bool withSensitive_;
    size_t evaluations_ = 0;
    size_t rolledClasses_ = 0;
    size_t fromTable_ = 0;
    uint64_t tick_ = 0;
    size_t cacheBytes_ = 0;
    std::vector<std::unique_ptr<ClassTable<Key>>> cache_;
    std::unordered_map<size_t, size_t> cacheIndex_;
    detail::DenseIndexer<Key> indexer_;
    std::vector<uint32_t> targetOf_, fill_;
    std::vector<SensitiveCount> staging_;
    std::vector<size_t> changed_;
    std::vector<const uint32_t*> maps_;
    std::vector<uint64_t> scratch_;
    std::vector<std::vector<std::vector<Key>>> contribution_;
    std::vector<Key> baseKeys_;
};

struct Candidate {
    bool found = false;
    double loss = 0;
    int height = 0;
    size_t node = 0;
};

bool better(double loss, int height, size_t node, const Candidate& best) {
    if (!best.found) return true;
    if (loss != best.loss) return loss < best.loss;
    if (height != best.height) return height < best.height;
    return node < best.node;
}

template <typename Key>
GeneralizationStats describeNode(const Prepared& p, size_t node) {
    Evaluator<Key> ev(p, /*withSensitive=*/true);
    const auto& t = ev.classes(node);
    const auto kept = ev.keptClasses(t);
    const auto& lat = *p.lattice;
    const size_t q = lat.dimensions();
    GeneralizationStats s;
    for (size_t d = 0; d < q; ++d) s.levels.push_back(lat.level(node, d));
    s.records = p.records;
    s.metrics = ev.metrics(t, kept);
    const auto& costs = *p.costs;
    const double n = static_cast<double>(p.records);
    s.lossPerAttribute.resize(q);
    for (size_t d = 0; d < q; ++d) s.lossPerAttribute[d] = costs.lossAtLevel(d, lat.level(node, d));
    s.classCodes.resize(t.size() * q);
    s.classSizes = t.counts;
    s.classSuppressed.resize(t.size());
    const size_t sens = p.table->sensitiveCount();
    std::vector<uint64_t> scratch;
    for (size_t i = 0; i < t.size(); ++i) {
        for (size_t d = 0; d < q; ++d) s.classCodes[i * q + d] = ev.code(t.keys[i], d);
        s.classSuppressed[i] = !kept[i];
        if (!kept[i]) {
            for (size_t d = 0; d < q; ++d)  // a suppressed cell costs 1 instead of its node's loss
                s.lossPerAttribute[d] +=
                    static_cast<double>(t.counts[i]) * (1.0 - costs.lossCell(d, lat.level(node, d), s.classCodes[i * q + d]));
            s.suppressedRecords += t.counts[i];
            ++s.suppressedClasses;
            continue;
        }
        ++s.classes;
        s.achievedK = s.achievedK == 0 ? t.counts[i] : std::min(s.achievedK, t.counts[i]);
        for (size_t a = 0; a < sens; ++a) {
            const auto hist = t.hist(a, i);
            const double distinct = static_cast<double>(model::distinctValues(hist));
            const double entropyL = std::exp(model::entropy(hist, t.counts[i]));
            const double emd = model::earthMoversDistance(hist, t.counts[i], p.domains[a]);
            s.distinctL = s.distinctL ? std::min(*s.distinctL, distinct) : distinct;
            s.entropyL = s.entropyL ? std::min(*s.entropyL, entropyL) : entropyL;
            s.achievedT = s.achievedT ? std::max(*s.achievedT, emd) : emd;
        }
    }
    for (double& loss : s.lossPerAttribute) loss = n > 0 ? loss / n : 0;
    s.satisfies = s.suppressedRecords <= p.maxSuppressed;
    return s;
}

// Flash-style classification by the monotone predicate M; returns per-node tags.
enum : uint8_t { kUnknown = 0, kSatisfies = 1, kFails = 2 };

template <typename Key>
std::vector<uint8_t> classify(const Prepared& p, Evaluator<Key>& ev) {
    const auto& lat = *p.lattice;
    const size_t q = lat.dimensions();
    std::vector<uint8_t> tag(lat.size(), kUnknown);
    std::vector<size_t> stack;
    auto tagUp = [&](size_t node) {
        stack.assign(1, node);
        tag[node] = kSatisfies;
        while (!stack.empty()) {
            const size_t n = stack.back();
            stack.pop_back();
            for (size_t d = 0; d < q; ++d) {
                if (lat.level(n, d) == lat.maxLevel(d)) continue;
                const size_t s = n + lat.stride(d);
                if (tag[s] != kSatisfies) {
                    tag[s] = kSatisfies;
                    stack.push_back(s);
                }
            }
        }
    };
    auto tagDown = [&](size_t node) {
        stack.assign(1, node);
        tag[node] = kFails;
        while (!stack.empty()) {
            const size_t n = stack.back();
            stack.pop_back();
            for (size_t d = 0; d < q; ++d) {
                if (lat.level(n, d) == lat.minLevel(d)) continue;
                const size_t s = n - lat.stride(d);
                if (tag[s] != kFails) {
                    tag[s] = kFails;
                    stack.push_back(s);
                }
            }
        }
    };
    std::vector<size_t> path;
    std::vector<uint32_t> order;
    for (const auto& level : lat.byHeight()) {
        order = level;
        std::stable_sort(order.begin(), order.end(),
                         [&](uint32_t a, uint32_t b) { return p.pathScore[a] < p.pathScore[b]; });
        for (uint32_t start : order) {
            if (tag[start] != kUnknown) continue;
            // Greedy path of unclassified generalizations, cheapest (by entropy) first.
            path.assign(1, start);
            for (size_t cur = start;;) {
                size_t next = SIZE_MAX;
                for (size_t d = 0; d < q; ++d) {
                    if (lat.level(cur, d) == lat.maxLevel(d)) continue;
                    const size_t s = cur + lat.stride(d);
                    if (tag[s] == kUnknown && (next == SIZE_MAX || p.pathScore[s] < p.pathScore[next])) next = s;
                }
                if (next == SIZE_MAX) break;
                path.push_back(next);
                cur = next;
            }
            // Binary search for the lowest satisfying node on the path.
            ptrdiff_t lo = 0, hi = static_cast<ptrdiff_t>(path.size()) - 1;
            while (lo <= hi) {
                const ptrdiff_t mid = lo + (hi - lo) / 2;
                const size_t node = path[static_cast<size_t>(mid)];
                bool sat;
                if (tag[node] != kUnknown) {
                    sat = tag[node] == kSatisfies;
                } else {
                    sat = ev.check(ev.classes(node)).satisfiesMonotone;
                    if (sat) tagUp(node);
                    else tagDown(node);
                }
                if (sat) hi = mid - 1;
                else lo = mid + 1;
            }
        }
    }
    return tag;
}

template <typename Key>
Result<OptimalSolution> search(const Prepared& p) {
    const auto started = std::chrono::steady_clock::now();
    const auto& lat = *p.lattice;
    const size_t q = lat.dimensions();
    const Metric metric = p.config->metric;
    Evaluator<Key> ev(p, p.needSensitive);
    const auto tag = classify(p, ev);

    const bool metricMonotone = p.noSuppression || metric == Metric::Height;
    const bool minimalOnly = metricMonotone && p.fullIsMonotone;
    std::vector<uint32_t> candidates;
    for (size_t node = 0; node < lat.size(); ++node) {
        if (tag[node] != kSatisfies) continue;
        if (minimalOnly) {
            bool minimal = true;
            for (size_t d = 0; d < q && minimal; ++d) {
                if (lat.level(node, d) > lat.minLevel(d) && tag[node - lat.stride(d)] == kSatisfies) minimal = false;
            }
            if (!minimal) continue;
        }
        candidates.push_back(static_cast<uint32_t>(node));
    }
    if (candidates.empty()) {
        return failedPrecondition("no generalization satisfies " + p.config->models.describe() + " with at most " +
                                  std::to_string(p.maxSuppressed) + " of " + std::to_string(p.records) +
                                  " records suppressed");
    }
    const bool separable = metricSeparable(metric);
    std::vector<double> bound(lat.size(), 0);
    for (uint32_t c : candidates) bound[c] = separable ? ev.separableLowerBound(c, metric) : 0;
    std::sort(candidates.begin(), candidates.end(), [&](uint32_t a, uint32_t b) {
        if (bound[a] != bound[b]) return bound[a] < bound[b];
        if (lat.height(a) != lat.height(b)) return lat.height(a) < lat.height(b);
        return a < b;
    });

    Candidate best;
    std::vector<uint8_t> pruned(lat.size(), 0);
    std::vector<size_t> stack;
    for (uint32_t node : candidates) {
        if (separable && best.found && bound[node] > best.loss) break;
        if (pruned[node]) continue;
        if (minimalOnly && separable) {
            // Loss equals the bound here, and candidates come in (loss, height, index) order.
            best = {true, bound[node], lat.height(node), node};
            break;
        }
        const auto& t = ev.classes(node);
        const auto kept = ev.keptClasses(t);
        uint64_t suppressed = 0;
        for (size_t i = 0; i < t.size(); ++i) suppressed += kept[i] ? 0 : t.counts[i];
        if (suppressed <= p.maxSuppressed) {
            const double loss = ev.metrics(t, kept).get(metric);
            if (better(loss, lat.height(node), node, best)) best = {true, loss, lat.height(node), node};
        }
        if (!separable && best.found && ev.classLowerBound(t, metric) > best.loss) {
            // Every generalization of this node has loss >= the bound > best: prune them.
            stack.assign(1, node);
            while (!stack.empty()) {
                const size_t n = stack.back();
                stack.pop_back();
                for (size_t d = 0; d < q; ++d) {
                    if (lat.level(n, d) == lat.maxLevel(d)) continue;
                    const size_t s = n + lat.stride(d);
                    if (!pruned[s]) {
                        pruned[s] = 1;
                        stack.push_back(s);
                    }
                }
            }
        }
    }
    if (!best.found) {
        return failedPrecondition("no generalization satisfies " + p.config->models.describe() + " with at most " +
                                  std::to_string(p.maxSuppressed) + " of " + std::to_string(p.records) +
                                  " records suppressed");
    }
    OptimalSolution sol;
    sol.latticeSize = lat.size();
    sol.nodesEvaluated = ev.evaluations();
    sol.classesRolledUp = ev.rolledClasses();
    sol.evaluationsFromTable = ev.fromTable();
    sol.candidates = candidates.size();
    sol.searchSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    sol.best = describeNode<Key>(p, best.node);
    sol.objective = sol.best.metrics.get(metric);
    return sol;
}

template <typename Key>
Result<OptimalSolution> exhaustive(const Prepared& p) {
    const auto started = std::chrono::steady_clock::now();
    const auto& lat = *p.lattice;
    const Metric metric = p.config->metric;
    Evaluator<Key> ev(p, p.needSensitive);
    Candidate best;
    for (size_t node = 0; node < lat.size(); ++node) {
        const auto& t = ev.classes(node);
        const auto kept = ev.keptClasses(t);
        uint64_t suppressed = 0;
        for (size_t i = 0; i < t.size(); ++i) suppressed += kept[i] ? 0 : t.counts[i];
        if (suppressed > p.maxSuppressed) continue;
        const double loss = ev.metrics(t, kept).get(metric);
        if (better(loss, lat.height(node), node, best)) best = {true, loss, lat.height(node), node};
    }
    if (!best.found) return failedPrecondition("no generalization satisfies " + p.config->models.describe());
    OptimalSolution sol;
    sol.latticeSize = lat.size();
    sol.nodesEvaluated = ev.evaluations();
    sol.candidates = lat.size();
    sol.searchSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    sol.best = describeNode<Key>(p, best.node);
    sol.objective = sol.best.metrics.get(metric);
    return sol;
}

} // namespace

Result<OptimalSolution> findOptimalGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    if (p->layout.totalBits <= 64) return search<uint64_t>(*p);
    return search<Uint128>(*p);
}

Result<OptimalSolution> exhaustiveGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    if (p->layout.totalBits <= 64) return exhaustive<uint64_t>(*p);
    return exhaustive<Uint128>(*p);
}

Result<GeneralizationStats> evaluateGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config,
                                                   const std::vector<int>& levels) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    const auto& lat = *p->lattice;
    if (levels.size() != lat.dimensions()) return invalidArgument("evaluate: one level per quasi-identifier expected");
    for (size_t d = 0; d < levels.size(); ++d) {
        if (levels[d] < lat.minLevel(d) || levels[d] > lat.maxLevel(d)) {
            return invalidArgument("evaluate: level " + std::to_string(levels[d]) + " of '" +
                                   config.hierarchies[d]->name() + "' is outside [" + std::to_string(lat.minLevel(d)) +
                                   ", " + std::to_string(lat.maxLevel(d)) + "]");
        }
    }
    const size_t node = lat.index(levels.data());
    if (p->layout.totalBits <= 64) return describeNode<uint64_t>(*p, node);
    return describeNode<Uint128>(*p, node);
}

} // namespace custodian::anon
