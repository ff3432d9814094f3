#include "anonymizer/optimal_search.hpp"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <limits>
#include <queue>
#include <unordered_map>

#include "anonymizer/flat_hash.hpp"
#include "anonymizer/heap_bytes.hpp"
#include "anonymizer/two_threads.hpp"

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
    std::vector<double> pathScore;  // per node: separable entropy, a heuristic for Flash paths
    // Suppression bounds (see SuppressionBounds): on when records can be suppressed, the metric is
    // entropy or loss, and the lattice is small enough for per-node bound arrays.
    bool bounds = false;
    bool columnPenalties = false;                 // entropy and loss: per-QI penalties of suppressed cells
    std::vector<std::vector<double>> minPenalty;  // [d][level]: smallest penalty of one suppressed cell
    // With bounds: penalties[d][level][code] = cellPenalty(d, level, code), one flat row per level
    // that check() reads without going through the metric's tables.
    std::vector<std::vector<std::vector<double>>> penalties;

    const uint32_t* upMap(size_t d, int from, int to) const {
        return up[d][static_cast<size_t>(from)][static_cast<size_t>(to - from - 1)].data();
    }
    // What suppressing one record's cell of QI d adds to the metric (before the loss metric's division
    // by |D| * QIs) when the cell would otherwise be released as node `code` of `level`. Never
    // negative, and never larger at a lower level for the node below (a smaller node has a smaller
    // frequency and a smaller loss).
    double cellPenalty(size_t d, int level, uint32_t code) const {
        return config->metric == Metric::NonUniformEntropy ? costs->entropySuppressionDelta(d, level, code)
                                                           : 1.0 - costs->lossCell(d, level, code);
    }
    const double* penaltyRow(size_t d, int level) const { return penalties[d][static_cast<size_t>(level)].data(); }
};

// A class table's hash index is first sized for at most this many classes (and grows).
constexpr size_t kPresizedClasses = size_t{1} << 18;
// Keys whose hash slots are prefetched before the first of them is looked up.
constexpr size_t kPrefetchChunk = 16;
// Node keys are computed for this many frequency-table combinations at a time.
constexpr size_t kKeyBlock = 4096;
// Evaluator::twoThreads(): combinations each thread files per stripe (a multiple of kKeyBlock).
constexpr size_t kHalfStripe = 4 * kKeyBlock;

// Dense counters (8 bytes each) of one pass of Evaluator::seedPairs(), or of one node counted by
// Evaluator::groupDense(), are at most this many.
constexpr size_t kDenseEntries = size_t{1} << 22;

// Paths take the generalization known to fail for the most records first (pathSuccessor()) when the
// frequency table has at most this many combinations. Such a path stays among larger classes: on
// Adult (19,502 combinations) and 1 M near-unique benefit rows (994,163) it ends at higher failing
// nodes and the search evaluates fewer (Adult 4 %: 1,050 -> 904 nodes, 84 -> 71 ms; 1 M: search
// 0.11 -> 0.06 s), but at 10 M rows (9.46 M combinations) its first checks counted a 2.8 M-class node
// from the table: no faster, and the working set's peak 253 MiB instead of 182 (an extract's peak RSS
// then exceeds issue 16's 400 MB: 450 MiB), so larger tables keep the entropy order.
constexpr size_t kPathsByFailingUpTo = size_t{4} << 20;
// Per-node bound arrays are allocated only up to this many entries (nodes x (QIs + 1)).
constexpr size_t kMaxBoundEntries = size_t{4} << 20;

Result<Prepared> prepare(const FrequencyTable& table, const OptimalSearchConfig& config) {
    Prepared p;
    p.table = &table;
    p.config = &config;
    const size_t q = table.qiCount();
    if (config.hierarchies.size() != q) {
        return invalidArgument("optimal search: " + std::to_string(config.hierarchies.size()) + " hierarchies for " +
                               std::to_string(q) + " quasi-identifiers");
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
            return invalidArgument("optimal search: levels of '" + config.hierarchies[d]->name() +
                                   "' must satisfy 0 <= " + std::to_string(lo[d]) + " <= " + std::to_string(hi[d]) +
                                   " <= " + std::to_string(top));
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
    for (size_t d = 0; d < q; ++d) {
        table.column(d).visit(0, [&](const auto* codes) {
            for (size_t c = 0; c < table.size(); ++c) leafFreq[d][codes[c]] += table.count(c);
        });
    }
    for (size_t c = 0; c < table.size(); ++c) {
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
    const auto& lat = *p.lattice;
    const Metric metric = config.metric;
    p.columnPenalties = metric == Metric::NonUniformEntropy || metric == Metric::Loss;
    // Discernibility keeps the classification: its suppression bound (k (|D| - s) + |D| s, and sums of
    // squares from below) is too weak on Adult to pay for itself.
    p.bounds = !p.noSuppression && p.columnPenalties && lat.size() * (q + 1) <= kMaxBoundEntries;
    if (p.columnPenalties) {
        p.minPenalty.resize(q);
        if (p.bounds) p.penalties.resize(q);
        for (size_t d = 0; d < q; ++d) {
            const Hierarchy& h = *config.hierarchies[d];
            for (int level = 0; level < h.levels(); ++level) {
                std::vector<double> row(h.nodeCount(level));
                double least = std::numeric_limits<double>::infinity();
                for (uint32_t c = 0; c < h.nodeCount(level); ++c) {
                    row[c] = p.cellPenalty(d, level, c);
                    least = std::min(least, std::max(0.0, row[c]));
                }
                p.minPenalty[d].push_back(std::isfinite(least) ? least : 0.0);
                if (p.bounds) p.penalties[d].push_back(std::move(row));
            }
        }
    }
    p.pathScore.resize(lat.size());
    for (size_t node = 0; node < lat.size(); ++node) {
        double s = 0;
        for (size_t d = 0; d < q; ++d) s += p.costs->entropyAtLevel(d, lat.level(node, d));
        p.pathScore[node] = s;
    }
    return p;
}

template <typename Key> struct ClassTable {
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
    uint64_t suppressedMonotone = 0;  // records in classes failing the monotone part M
    uint64_t suppressedFull = 0;      // records in classes failing any model
    bool satisfiesMonotone = false;
    bool satisfiesFull = false;
    // With Prepared::columnPenalties, per QI: the metric penalty of the cells of the records failing
    // M, at this node's levels (the records failing M here fail it at every specialization too).
    std::vector<double> penalty;
};

// Thrown inside the search when OptimalSearchConfig::memory refuses the working set's growth, and
// turned back into that status at the entry points (stoppable()).
struct SearchStopped {
    Status status;
};

template <typename F> auto stoppable(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (SearchStopped& stopped) { return std::move(stopped.status); }
}

template <typename Key> class Evaluator {
public:
    Evaluator(const Prepared& p, bool withSensitive)
        : p_(p), withSensitive_(withSensitive && p.table->sensitiveCount() > 0) {}

    bool withSensitive() const noexcept { return withSensitive_; }

    // Bytes held now: cached class tables, the hash index and scratch of the roll-ups.
    uint64_t workingSetBytes() const noexcept {
        uint64_t bytes = ownBytes();
        for (const Half& half : halves_) bytes += halfBytes(half);
        return bytes;
    }
    // States the working set (plus `extra` bytes held beside it) to the configuration's observer;
    // throws SearchStopped when it refuses.
    void reportMemory(uint64_t extra = 0) const { report(workingSetBytes() + extra); }

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
        releaseLargeIndexes();
        return insert(std::move(table));
    }

    // Caches the lowest node of each two-QI projection — QIs d and e at their lowest levels, every
    // other QI at its highest level, where it has a single node — counted into dense arrays (no
    // hashing) in as few passes over the frequency table as their sizes allow, instead of one hashed
    // pass per pair. The projections' other nodes roll up from these. Nothing is seeded when the
    // classes need sensitive distributions or a highest level has several nodes (classes() then
    // counts each pair's node as any other).
    void seedPairs(const std::vector<std::pair<size_t, size_t>>& pairs) {
        const auto& lat = *p_.lattice;
        const FrequencyTable& ft = *p_.table;
        const size_t q = lat.dimensions();
        if (withSensitive_ || pairs.empty()) return;
        Key top = 0;
        for (size_t d = 0; d < q; ++d) {
            const Hierarchy& h = *p_.config->hierarchies[d];
            if (h.nodeCount(lat.maxLevel(d)) != 1) return;
            top |= static_cast<Key>(h.generalize(0, lat.maxLevel(d))) << p_.layout.shift[d];
        }
        std::vector<int> levels(q);
        std::vector<std::vector<uint32_t>> lowest(q);  // per QI used: leaf code -> node code at its lowest level
        std::vector<std::vector<uint32_t>> block(q);
        std::vector<uint64_t> blockCounts(kKeyBlock);
        struct Dense {
            size_t d, e, node;
            uint32_t width;  // node count of e at its lowest level
            std::vector<uint64_t> counts;
        };
        for (size_t next = 0; next < pairs.size();) {
            // The pairs of this pass: as many as fit kDenseEntries counters (at least one).
            std::vector<Dense> pass;
            size_t entries = 0;
            for (; next < pairs.size(); ++next) {
                const auto [d, e] = pairs[next];
                for (size_t f = 0; f < q; ++f) levels[f] = lat.maxLevel(f);
                levels[d] = lat.minLevel(d);
                levels[e] = lat.minLevel(e);
                const size_t node = lat.index(levels.data());
                if (cacheIndex_.count(node)) continue;
                const size_t nd = p_.config->hierarchies[d]->nodeCount(levels[d]);
                const size_t ne = p_.config->hierarchies[e]->nodeCount(levels[e]);
                if (nd * ne > kDenseEntries) continue;  // left to classes(): too many counters
                if (!pass.empty() && entries + nd * ne > kDenseEntries) break;
                entries += nd * ne;
                pass.push_back({d, e, node, static_cast<uint32_t>(ne), {}});
            }
            if (pass.empty()) break;
            reportMemory(entries * sizeof(uint64_t));
            for (Dense& x : pass) {
                x.counts.assign(p_.config->hierarchies[x.d]->nodeCount(lat.minLevel(x.d)) * x.width, 0);
                for (size_t d : {x.d, x.e}) {
                    if (!lowest[d].empty()) continue;
                    const Hierarchy& h = *p_.config->hierarchies[d];
                    lowest[d].resize(h.leafCount());
                    for (uint32_t leaf = 0; leaf < h.leafCount(); ++leaf)
                        lowest[d][leaf] = h.generalize(leaf, lat.minLevel(d));
                    block[d].resize(kKeyBlock);
                }
            }
            evaluations_ += pass.size();
            ++fromTable_;
            rolledClasses_ += ft.size();
            for (size_t first = 0; first < ft.size(); first += kKeyBlock) {
                const size_t n = std::min(kKeyBlock, ft.size() - first);
                for (size_t d = 0; d < q; ++d) {
                    if (block[d].empty()) continue;
                    const uint32_t* map = lowest[d].data();
                    uint32_t* out = block[d].data();
                    ft.column(d).visit(first, [&](const auto* codes) {
                        for (size_t i = 0; i < n; ++i) out[i] = map[codes[i]];
                    });
                }
                for (size_t i = 0; i < n; ++i) blockCounts[i] = ft.count(first + i);
                for (Dense& x : pass) {
                    const uint32_t* a = block[x.d].data();
                    const uint32_t* b = block[x.e].data();
                    for (size_t i = 0; i < n; ++i) x.counts[size_t{a[i]} * x.width + b[i]] += blockCounts[i];
                }
            }
            for (Dense& x : pass) {
                auto table = std::make_unique<ClassTable<Key>>();
                table->node = x.node;
                const Key base = top & ~(static_cast<Key>(p_.layout.mask[x.d]) << p_.layout.shift[x.d]) &
                                 ~(static_cast<Key>(p_.layout.mask[x.e]) << p_.layout.shift[x.e]);
                for (size_t i = 0; i < x.counts.size(); ++i) {
                    if (x.counts[i] == 0) continue;
                    table->keys.push_back(base | static_cast<Key>(i / x.width) << p_.layout.shift[x.d] |
                                          static_cast<Key>(i % x.width) << p_.layout.shift[x.e]);
                    table->counts.push_back(x.counts[i]);
                }
                table->keys.shrink_to_fit();
                table->counts.shrink_to_fit();
                heap::release(x.counts);
                table->lastUse = ++tick_;
                insert(std::move(table));
            }
        }
    }

    NodeCheck check(const ClassTable<Key>& t) {
        NodeCheck r;
        const PrivacyModels& m = p_.config->models;
        const bool distinctInM = m.lDiversity && m.lDiversity->variant == LDiversityVariant::Distinct;
        const size_t sens = withSensitive_ ? p_.table->sensitiveCount() : 0;
        const size_t q = p_.lattice->dimensions();
        const bool penalties = p_.bounds && p_.columnPenalties;
        if (penalties) {
            r.penalty.assign(q, 0.0);
            penaltyRows_.resize(q);
            for (size_t d = 0; d < q; ++d) penaltyRows_[d] = p_.penaltyRow(d, p_.lattice->level(t.node, d));
        }
        if (!m.lDiversity && !m.tCloseness) {
            // k-anonymity alone (M is the full predicate): a class fails on its size only.
            for (size_t i = 0; i < t.size(); ++i) {
                const uint64_t size = t.counts[i];
                if (size >= m.k) continue;
                r.suppressedMonotone += size;
                if (penalties) addPenalties(t.keys[i], size, r.penalty);
            }
            r.suppressedFull = r.suppressedMonotone;
            r.satisfiesMonotone = r.satisfiesFull = r.suppressedMonotone <= p_.maxSuppressed;
            return r;
        }
        for (size_t i = 0; i < t.size(); ++i) {
            const uint64_t size = t.counts[i];
            bool passM = size >= m.k;
            if (passM && distinctInM) {
                for (size_t s = 0; s < sens && passM; ++s)
                    passM = model::lDiverse(*m.lDiversity, t.hist(s, i), size, scratch_);
            }
            bool passF = passM;
            if (passF && m.lDiversity && !distinctInM) {
                for (size_t s = 0; s < sens && passF; ++s)
                    passF = model::lDiverse(*m.lDiversity, t.hist(s, i), size, scratch_);
            }
            if (passF && m.tCloseness) {
                for (size_t s = 0; s < sens && passF; ++s) {
                    passF = model::earthMoversDistance(t.hist(s, i), size, p_.domains[s]) <= m.tCloseness->t + 1e-12;
                }
            }
            if (p_.fullIsMonotone) passM = passF;
            if (!passM && penalties) addPenalties(t.keys[i], size, r.penalty);
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
                for (size_t s = 0; s < sens && pass; ++s)
                    pass = model::lDiverse(*m.lDiversity, t.hist(s, i), size, scratch_);
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
    // A grouping of many classes leaves its hash index (or twoThreads()'s two) that large. Later
    // groupings are mostly far smaller, and the large index would stay in the working set beside the
    // next large class tables (near-unique 10 M rows: 128 MiB of twoThreads() slots held while a
    // 2.8 M-class table rolled up to a 1.2 M-class one), so it is freed; one presized for at most
    // kPresizedClasses classes is kept.
    void releaseLargeIndexes() noexcept {
        const size_t keep = detail::capacityFor(kPresizedClasses) * detail::DenseIndexer<Key>::slotBytes();
        if (indexer_.memoryBytes() > keep) indexer_.release();
        for (Half& half : halves_) {
            if (half.indexer.memoryBytes() > keep) half.indexer.release();
        }
    }

    // Adds the penalties of a class of `size` records failing M, read from penaltyRows_ (the rows of
    // the checked node's levels).
    void addPenalties(Key key, uint64_t size, std::vector<double>& penalty) const noexcept {
        const auto records = static_cast<double>(size);
        for (size_t d = 0; d < penalty.size(); ++d) penalty[d] += records * penaltyRows_[d][code(key, d)];
    }

    // The working set but twoThreads()'s halves.
    uint64_t ownBytes() const noexcept {
        return cacheBytes_ + indexer_.memoryBytes() + targetOf_.capacity() * sizeof(uint32_t) +
               fill_.capacity() * sizeof(uint32_t) + staging_.capacity() * sizeof(SensitiveCount) +
               baseKeys_.capacity() * sizeof(Key) + dense_.capacity() * sizeof(uint64_t);
    }
    struct Half;
    static uint64_t halfBytes(const Half& half) noexcept {
        uint64_t bytes = half.indexer.memoryBytes() + half.keys.capacity() * sizeof(Key) +
                         half.counts.capacity() * sizeof(uint64_t) + half.block.capacity() * sizeof(Key);
        for (const auto& set : half.filed)
            for (const auto& part : set) bytes += part.capacity() * sizeof(Filed);
        return bytes;
    }
    void report(uint64_t bytes) const {
        if (!p_.config->memory) return;
        if (Status s = p_.config->memory(bytes); !s) throw SearchStopped{std::move(s)};
    }

    const ClassTable<Key>* findSource(size_t node) const {
        const auto& lat = *p_.lattice;
        const ClassTable<Key>* best = nullptr;
        // Direct specializations first: the highest possible sources.
        for (size_t d = 0; d < lat.dimensions(); ++d) {
            if (lat.level(node, d) == lat.minLevel(d)) continue;
            auto it = cacheIndex_.find(node - lat.stride(d));
            if (it != cacheIndex_.end() && (!best || cache_[it->second]->size() < best->size()))
                best = cache_[it->second].get();
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
        reportMemory();
        return *cache_[cacheIndex_.at(node)];
    }

    template <typename KeyOf, typename CountOf, typename HistOf>
    void group(size_t sources, KeyOf keyOf, CountOf countOf, HistOf histOf, ClassTable<Key>& out) {
        if (!withSensitive_ && groupDense(sources, keyOf, countOf, out)) return;
        const size_t bound = classBound(out.node, sources);
        indexer_.reset(std::min(bound, kPresizedClasses));
        if (withSensitive_) targetOf_.resize(sources);
        out.keys.clear();
        out.counts.clear();
        out.keys.reserve(bound);
        out.counts.reserve(bound);
        constexpr size_t kReportEvery = size_t{1} << 20;
        // Keys a chunk at a time, their slots prefetched before the chunk is counted.
        Key chunk[kPrefetchChunk];
        for (size_t first = 0; first < sources; first += kPrefetchChunk) {
            const size_t n = std::min(kPrefetchChunk, sources - first);
            for (size_t j = 0; j < n; ++j) {
                chunk[j] = keyOf(first + j);
                indexer_.prefetch(chunk[j]);
            }
            if ((first + n) / kReportEvery != first / kReportEvery)
                reportMemory(out.keys.size() * sizeof(Key) + out.counts.size() * sizeof(uint64_t));
            for (size_t j = 0; j < n; ++j) {
                const size_t i = first + j;
                const uint32_t t = indexer_.indexOf(chunk[j]);
                if (t == out.keys.size()) {
                    out.keys.push_back(chunk[j]);
                    out.counts.push_back(0);
                }
                out.counts[t] += countOf(i);
                if (withSensitive_) targetOf_[i] = t;
            }
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

    // The node's classes counted in an array indexed by the node codes (mixed radix over the QIs
    // whose level has more than one node) instead of a hash index, when denseFits(): no hashing, no
    // probing, and a pass over the array lists the classes (in the order of their codes). False
    // when it does not fit.
    template <typename KeyOf, typename CountOf>
    bool groupDense(size_t sources, KeyOf keyOf, CountOf countOf, ClassTable<Key>& out) {
        if (!denseFits(out.node, sources)) return false;
        const auto& lat = *p_.lattice;
        size_t entries = 1;
        radixDims_.clear();
        for (size_t d = 0; d < lat.dimensions(); ++d) {
            const size_t nodes = p_.config->hierarchies[d]->nodeCount(lat.level(out.node, d));
            if (nodes == 1) continue;  // code 0 for every source
            radixDims_.push_back({d, static_cast<uint32_t>(nodes), entries});
            entries *= nodes;
        }
        dense_.assign(entries, 0);
        reportMemory();
        for (size_t i = 0; i < sources; ++i) {
            const Key key = keyOf(i);
            size_t at = 0;
            for (const Radix& r : radixDims_) at += size_t{code(key, r.d)} * r.stride;
            dense_[at] += countOf(i);
        }
        out.keys.clear();
        out.counts.clear();
        size_t classes = 0;
        for (uint64_t c : dense_) classes += c != 0;
        out.keys.reserve(classes);
        out.counts.reserve(classes);
        for (size_t at = 0; at < entries; ++at) {
            if (dense_[at] == 0) continue;
            Key key = 0;
            for (const Radix& r : radixDims_) key |= static_cast<Key>(at / r.stride % r.nodes) << p_.layout.shift[r.d];
            out.keys.push_back(key);
            out.counts.push_back(dense_[at]);
        }
        return true;
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
        // The keys of a block of combinations at a time, column at a time: streams through one code
        // column and one small lookup table per pass, with the block's keys in cache. A level with a
        // single node contributes code 0 to every key: its column is not read.
        used_.clear();
        for (size_t d = 0; d < q; ++d) {
            if (p_.config->hierarchies[d]->nodeCount(lat.level(out.node, d)) > 1) used_.push_back(d);
        }
        if (!withSensitive_ && ft.size() >= p_.config->twoThreadsFrom && !denseFits(out.node, ft.size()) &&
            twoThreads(out))
            return;
        baseKeys_.resize(kKeyBlock);
        size_t blockBegin = 0, blockEnd = 0;
        auto keyOf = [&](size_t c) {
            if (c >= blockEnd) {
                blockBegin = c;
                blockEnd = std::min(c + kKeyBlock, ft.size());
                blockKeys(out.node, blockBegin, blockEnd - blockBegin, baseKeys_.data());
            }
            return baseKeys_[c - blockBegin];
        };
        group(
            ft.size(), keyOf, [&](size_t c) { return ft.count(c); },
            [&](size_t s, size_t c) { return ft.sensitive(s, c); }, out);
    }

    // The node keys of combinations [first, first + n) of the frequency table (columns in used_).
    void blockKeys(size_t node, size_t first, size_t n, Key* keys) const {
        const FrequencyTable& ft = *p_.table;
        std::fill(keys, keys + n, Key{0});
        for (size_t d : used_) {
            const Key* contribution = contribution_[d][static_cast<size_t>(p_.lattice->level(node, d))].data();
            ft.column(d).visit(first, [&](const auto* codes) {
                for (size_t i = 0; i < n; ++i) keys[i] |= contribution[codes[i]];
            });
        }
    }

    // A node's classes from a large frequency table on two threads (the search runs while the
    // database is idle), stripe by stripe: each thread computes the keys of half a stripe and files
    // each key (with its count) under the thread whose half of the hash space it falls in; after
    // both have filed, each counts the keys filed under it by either. Every key is computed and
    // hashed once, the two indexes hold disjoint classes (no merge) and together are as large as
    // one. Filing alternates between two sets of buffers, so one barrier per stripe suffices: a
    // thread files stripe s + 1 into the other set while the other may still count stripe s.
    // False when a thread cannot be started (then one thread does it).
    bool twoThreads(ClassTable<Key>& out) {
        const FrequencyTable& ft = *p_.table;
        const size_t node = out.node;
        const size_t presize = std::min(classBound(node, ft.size()), kPresizedClasses) / 2 + 1;
        constexpr size_t kStripe = 2 * kHalfStripe;
        const size_t stripes = (ft.size() + kStripe - 1) / kStripe;
        // Each thread publishes the bytes of its half after every stripe; the calling thread states
        // both halves with the rest of the working set every million combinations, and a refusal
        // (or any error) stops the other thread at its next barrier.
        std::atomic<bool> stop{false};
        std::barrier<> filed(2);
        constexpr size_t kReportEvery = size_t{1} << 20;
        for (Half& half : halves_) {
            half.indexer.reset(presize);
            half.keys.clear();
            half.counts.clear();
            half.block.resize(kKeyBlock);
            for (auto& set : half.filed)
                for (auto& part : set) part.resize(kHalfStripe);
        }
        // Thread `which` files its half of `stripe` into buffer set `stripe % 2`.
        auto file = [&](Half& half, size_t which, size_t stripe) {
            auto& set = half.filed[stripe % 2];
            Filed* into[2] = {set[0].data(), set[1].data()};
            size_t n[2] = {0, 0};
            const size_t begin = std::min(ft.size(), stripe * kStripe + which * kHalfStripe);
            const size_t end = std::min(ft.size(), begin + kHalfStripe);
            for (size_t first = begin; first < end; first += kKeyBlock) {
                const size_t m = std::min(kKeyBlock, end - first);
                blockKeys(node, first, m, half.block.data());
                for (size_t i = 0; i < m; ++i) {
                    const Key key = half.block[i];
                    const auto part = static_cast<size_t>(detail::mixHash(key) >> 63);
                    into[part][n[part]++] = {key, ft.count(first + i)};
                }
            }
            half.filedCount[stripe % 2][0] = n[0];
            half.filedCount[stripe % 2][1] = n[1];
        };
        // Thread `which` counts what both filed under it in `stripe`.
        auto count = [&](Half& half, size_t which, size_t stripe) {
            for (const Half& from : halves_) {
                const Filed* entries = from.filed[stripe % 2][which].data();
                const size_t n = from.filedCount[stripe % 2][which];
                for (size_t i = 0; i < n; ++i) {
                    if (i + kPrefetchChunk < n) half.indexer.prefetch(entries[i + kPrefetchChunk].key);
                    const uint32_t t = half.indexer.indexOf(entries[i].key);
                    if (t == half.keys.size()) {
                        half.keys.push_back(entries[i].key);
                        half.counts.push_back(0);
                    }
                    half.counts[t] += entries[i].count;
                }
            }
            half.bytes.store(halfBytes(half), std::memory_order_relaxed);
        };
        auto run = [&](size_t which) {
            Half& half = halves_[which];
            try {
                for (size_t stripe = 0; stripe < stripes && !stop.load(std::memory_order_relaxed); ++stripe) {
                    file(half, which, stripe);
                    filed.arrive_and_wait();
                    if (stop.load(std::memory_order_relaxed)) break;
                    count(half, which, stripe);
                    const size_t read = std::min(ft.size(), (stripe + 1) * kStripe);
                    if (which == 0 && read / kReportEvery != stripe * kStripe / kReportEvery) {
                        report(ownBytes() + halves_[0].bytes.load(std::memory_order_relaxed) +
                               halves_[1].bytes.load(std::memory_order_relaxed));
                    }
                }
            } catch (...) {
                stop.store(true, std::memory_order_relaxed);
                filed.arrive_and_drop();  // the other thread must not wait for this one
                throw;
            }
            filed.arrive_and_drop();
        };
        if (!detail::runBesideHelper([&] { run(1); }, [&] { run(0); })) return false;
        out.keys.clear();
        out.counts.clear();
        out.keys.reserve(halves_[0].keys.size() + halves_[1].keys.size());
        out.counts.reserve(out.keys.capacity());
        for (Half& half : halves_) {
            out.keys.insert(out.keys.end(), half.keys.begin(), half.keys.end());
            out.counts.insert(out.counts.end(), half.counts.begin(), half.counts.end());
        }
        reportMemory(out.keys.capacity() * sizeof(Key) + out.counts.capacity() * sizeof(uint64_t));
        for (Half& half : halves_) {  // the indexes are reused; the class lists are in `out` now
            heap::release(half.keys);
            heap::release(half.counts);
        }
        return true;
    }

    // Whether groupDense() counts `node` from `sources` classes or combinations: the node's code
    // space has at most kDenseEntries entries and at most a quarter as many as there are sources.
    bool denseFits(size_t node, size_t sources) const {
        const size_t limit = std::min(kDenseEntries, sources / 4);
        size_t entries = 1;
        for (size_t d = 0; d < p_.lattice->dimensions(); ++d) {
            const size_t nodes = p_.config->hierarchies[d]->nodeCount(p_.lattice->level(node, d));
            if (entries > limit / nodes) return false;
            entries *= nodes;
        }
        return true;
    }

    // At most how many classes `node` can have when rolled up from `sources` classes or
    // combinations: the product of its levels' node counts, capped by the sources. The hash index
    // is presized for that bound but at most kPresizedClasses (a node's classes are usually far
    // fewer, and a small table stays in the L1/L2 cache); it grows when they are not.
    size_t classBound(size_t node, size_t sources) const {
        size_t bound = 1;
        for (size_t d = 0; d < p_.lattice->dimensions() && bound < sources; ++d)
            bound *= p_.config->hierarchies[d]->nodeCount(p_.lattice->level(node, d));
        return std::min(bound, sources);
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
    std::vector<size_t> changed_, used_;
    std::vector<const uint32_t*> maps_;
    std::vector<uint64_t> scratch_;
    std::vector<const double*> penaltyRows_;  // check(): per QI, the penalties at the node's level
    std::vector<std::vector<std::vector<Key>>> contribution_;
    std::vector<Key> baseKeys_;
    // groupDense(): the QIs with more than one node at the node's level, and the counters.
    struct Radix {
        size_t d;
        uint32_t nodes;
        size_t stride;
    };
    std::vector<Radix> radixDims_;
    std::vector<uint64_t> dense_;
    // twoThreads(): one class index, class list, key block and two sets of filing buffers (one
    // per thread that counts) per thread.
    struct Filed {
        Key key;
        uint64_t count;
    };
    struct Half {
        detail::DenseIndexer<Key> indexer;
        std::vector<Key> keys;
        std::vector<uint64_t> counts;
        std::vector<Key> block;
        std::vector<Filed> filed[2][2];  // [stripe % 2][counting thread]
        size_t filedCount[2][2] = {};
        std::atomic<uint64_t> bytes{0};  // halfBytes() as its thread last saw it
    };
    Half halves_[2];
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

// Makes a node whose class table is `t` the best candidate when it satisfies every model within the
// suppression limit and has a lower (loss, height, index).
template <typename Key>
void consider(const Prepared& p, Evaluator<Key>& ev, const ClassTable<Key>& t, Candidate& best) {
    const auto kept = ev.keptClasses(t);
    uint64_t suppressed = 0;
    for (size_t i = 0; i < t.size(); ++i) suppressed += kept[i] ? 0 : t.counts[i];
    if (suppressed > p.maxSuppressed) return;
    const auto& lat = *p.lattice;
    const double loss = ev.metrics(t, kept).get(p.config->metric);
    if (better(loss, lat.height(t.node), t.node, best)) best = {true, loss, lat.height(t.node), t.node};
}

// With `searched`, the search's own evaluator when it keeps the sensitive distributions this needs:
// its cache usually holds the node's classes already.
template <typename Key>
GeneralizationStats describeNode(const Prepared& p, size_t node, Evaluator<Key>* searched = nullptr) {
    std::optional<Evaluator<Key>> own;
    const bool reuse = searched && searched->withSensitive() == (p.table->sensitiveCount() > 0);
    Evaluator<Key>& ev = reuse ? *searched : own.emplace(p, /*withSensitive=*/true);
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
                s.lossPerAttribute[d] += static_cast<double>(t.counts[i]) *
                                         (1.0 - costs.lossCell(d, lat.level(node, d), s.classCodes[i * q + d]));
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
    ev.reportMemory(s.classCodes.capacity() * sizeof(uint32_t) + s.classSizes.capacity() * sizeof(uint64_t) +
                    s.classSuppressed.capacity());
    return s;
}

// Visits the nodes reachable from `start` by direct generalizations (up) or specializations (down),
// not `start` itself; `visit(node)` returns whether to continue beyond that node.
template <typename Visit>
void traverse(const GeneralizationLattice& lat, size_t start, bool up, std::vector<size_t>& stack, Visit visit) {
    stack.assign(1, start);
    while (!stack.empty()) {
        const size_t n = stack.back();
        stack.pop_back();
        for (size_t d = 0; d < lat.dimensions(); ++d) {
            if (up ? lat.level(n, d) == lat.maxLevel(d) : lat.level(n, d) == lat.minLevel(d)) continue;
            const size_t s = up ? n + lat.stride(d) : n - lat.stride(d);
            if (visit(s)) stack.push_back(s);
        }
    }
}

// Per-node tags of the monotone predicate M, with Flash's predictive tagging: a node satisfying M
// tags its generalizations, a node failing M its specializations.
enum : uint8_t { kUnknown = 0, kSatisfies = 1, kFails = 2 };

class Tags {
public:
    explicit Tags(const GeneralizationLattice& lat) : lat_(lat), tag_(lat.size(), kUnknown) {}
    uint8_t operator[](size_t node) const noexcept { return tag_[node]; }
    const std::vector<uint8_t>& all() const noexcept { return tag_; }

    void set(size_t node, bool satisfies) {
        const uint8_t value = satisfies ? kSatisfies : kFails;
        tag_[node] = value;
        traverse(lat_, node, satisfies, stack_, [&](size_t s) {
            if (tag_[s] == value) return false;
            tag_[s] = value;
            return true;
        });
    }

private:
    const GeneralizationLattice& lat_;
    std::vector<uint8_t> tag_;
    std::vector<size_t> stack_;
};

// Lower bounds on what suppression costs at nodes not yet evaluated (issue 16). A record in a class
// failing the monotone part M at an evaluated node X fails M at every specialization of X too (its
// class there is a subset), so for every node N <= X:
//   records failing M at N  >=  records failing M at X,
// and, per QI d, the metric penalty of those records' suppressed d-cells at N is at least their
// penalty at X's level (Prepared::cellPenalty shrinks going up). Each QI's penalty sum is bounded on
// its own, by the best X for that QI, or by (records failing M) x (least penalty of a d-cell at N's
// level). Hence, with sep(N) the metric without suppression:
//   metric(N) >= sep(N) + sum_d max(penalty_d, failing x minPenalty_d)   (loss: the sum / (|D| QIs))
// The evaluated nodes X are the nodes the search checks anyway and the two-QI projections (all other
// QIs at their highest level), computed before the search from a table of at most |QI values|^2
// classes each: Incognito's subset property, used for predictive tagging and for these bounds.
class SuppressionBounds {
public:
    explicit SuppressionBounds(const Prepared& p)
        : p_(p), lat_(*p.lattice), q_(lat_.dimensions()), failing_(lat_.size(), 0),
          penalty_(p.columnPenalties ? lat_.size() * q_ : 0, 0.0) {}

    // Records what the check of `node` proved, at the node itself.
    void record(size_t node, const NodeCheck& c) { raise(node, c); }

    // Carries every recorded value to all specializations (one pass, top down).
    void closeDownward() {
        for (size_t n = lat_.size(); n-- > 0;) {
            for (size_t d = 0; d < q_; ++d) {
                if (lat_.level(n, d) == lat_.maxLevel(d)) continue;
                const size_t s = n + lat_.stride(d);
                failing_[n] = std::max(failing_[n], failing_[s]);
                if (p_.columnPenalties) {
                    for (size_t e = 0; e < q_; ++e)
                        penalty_[n * q_ + e] = std::max(penalty_[n * q_ + e], penalty_[s * q_ + e]);
                }
            }
        }
    }

    // Records a check and carries it to the specializations where it raises a bound.
    void propagate(size_t node, const NodeCheck& c) {
        if (raise(node, c)) traverse(lat_, node, /*up=*/false, stack_, [&](size_t s) { return raise(s, c); });
    }

    uint64_t failing(size_t node) const noexcept { return failing_[node]; }

    // Lower bound of the metric at `node` (and only there), given `separable` = its metric without
    // suppression.
    double bound(size_t node, double separable) const {
        const double n = static_cast<double>(p_.records);
        const double s = static_cast<double>(failing_[node]);
        double extra = 0;
        for (size_t d = 0; d < q_; ++d) {
            extra += std::max(penalty_[node * q_ + d], s * p_.minPenalty[d][static_cast<size_t>(lat_.level(node, d))]);
        }
        if (p_.config->metric == Metric::Loss) extra /= n * static_cast<double>(q_);
        return separable + extra;
    }

private:
    bool raise(size_t node, const NodeCheck& c) {
        bool raised = false;
        if (c.suppressedMonotone > failing_[node]) {
            failing_[node] = c.suppressedMonotone;
            raised = true;
        }
        if (p_.columnPenalties && !c.penalty.empty()) {
            for (size_t d = 0; d < q_; ++d) {
                if (c.penalty[d] > penalty_[node * q_ + d]) {
                    penalty_[node * q_ + d] = c.penalty[d];
                    raised = true;
                }
            }
        }
        return raised;
    }

    const Prepared& p_;
    const GeneralizationLattice& lat_;
    size_t q_;
    std::vector<uint64_t> failing_;
    std::vector<double> penalty_;
    std::vector<size_t> stack_;
};

// A bound exceeds a loss beyond rounding (bounds and losses are summed in different orders).
bool exceeds(double bound, double loss) { return bound - 1e-9 * std::max(1.0, std::fabs(bound)) > loss; }

// Two-QI projections: every node whose levels are at their maximum except in two QIs. Only when
// there are few of them relative to the lattice (at least three QIs), and only for pairs of QIs
// whose lowest levels have at most a quarter as many value pairs as the table has combinations
// (a pair that is itself nearly unique costs as much as the search it would save).
struct Projections {
    std::vector<size_t> nodes;
    std::vector<std::pair<size_t, size_t>> pairs;  // the QI pairs (d < e) the nodes project onto
};

Projections projectionsOf(const Prepared& p) {
    const auto& lat = *p.lattice;
    const size_t q = lat.dimensions();
    Projections r;
    if (q < 3) return r;
    std::vector<int> levels(q);
    for (size_t d = 0; d < q; ++d) {
        for (size_t e = d + 1; e < q; ++e) {
            const double pairs = static_cast<double>(p.config->hierarchies[d]->nodeCount(lat.minLevel(d))) *
                                 static_cast<double>(p.config->hierarchies[e]->nodeCount(lat.minLevel(e)));
            if (pairs * 4 > static_cast<double>(p.table->size())) continue;
            r.pairs.emplace_back(d, e);
            for (int a = lat.minLevel(d); a <= lat.maxLevel(d); ++a) {
                for (int b = lat.minLevel(e); b <= lat.maxLevel(e); ++b) {
                    for (size_t f = 0; f < q; ++f) levels[f] = lat.maxLevel(f);
                    levels[d] = a;
                    levels[e] = b;
                    r.nodes.push_back(lat.index(levels.data()));
                }
            }
        }
    }
    std::sort(r.nodes.begin(), r.nodes.end());
    r.nodes.erase(std::unique(r.nodes.begin(), r.nodes.end()), r.nodes.end());
    if (r.nodes.size() * 4 > lat.size()) r = {};
    return r;
}

// The next node of a Flash path: the unclassified direct generalization with the lowest entropy, or
// SIZE_MAX. With suppression bounds, the one known to fail M for the most records comes first (then
// the lowest entropy): a path that stays among failing nodes longer ends at a higher failing node,
// whose check tags more specializations (Adult, k = 5, 4 %: 1,050 -> 904 nodes evaluated, 5.83 M ->
// 5.02 M classes rolled up). Only for tables of at most kPathsByFailingUpTo combinations.
size_t pathSuccessor(const Prepared& p, const Tags& tag, size_t cur, const SuppressionBounds* bounds = nullptr) {
    const auto& lat = *p.lattice;
    size_t next = SIZE_MAX;
    for (size_t d = 0; d < lat.dimensions(); ++d) {
        if (lat.level(cur, d) == lat.maxLevel(d)) continue;
        const size_t s = cur + lat.stride(d);
        if (tag[s] != kUnknown) continue;
        if (next == SIZE_MAX) {
            next = s;
            continue;
        }
        if (bounds && bounds->failing(s) != bounds->failing(next)) {
            if (bounds->failing(s) > bounds->failing(next)) next = s;
        } else if (p.pathScore[s] < p.pathScore[next]) {
            next = s;
        }
    }
    return next;
}

// Flash-style classification by the monotone predicate M.
// With `bounds` (records can be suppressed, and a table of at most kPathsByFailingUpTo combinations),
// every check's count of records failing M is carried to the specializations, and paths take the
// generalization known to fail for the most records first, as in searchBestFirst() (Adult, k = 5,
// 4 %, discernibility: 3,886 -> 3,653 nodes evaluated, 15.4 M -> 13.2 M classes rolled up).
template <typename Key> void classify(const Prepared& p, Evaluator<Key>& ev, Tags& tag, SuppressionBounds* bounds) {
    const auto& lat = *p.lattice;
    std::vector<size_t> path;
    std::vector<uint32_t> order;
    for (const auto& level : lat.byHeight()) {
        order = level;
        std::stable_sort(order.begin(), order.end(),
                         [&](uint32_t a, uint32_t b) { return p.pathScore[a] < p.pathScore[b]; });
        for (uint32_t start : order) {
            if (tag[start] != kUnknown) continue;
            // Greedy path of unclassified generalizations (pathSuccessor(): by entropy, or known failing
            // records first with `bounds`).
            path.assign(1, start);
            for (size_t next = pathSuccessor(p, tag, start, bounds); next != SIZE_MAX;
                 next = pathSuccessor(p, tag, next, bounds)) {
                path.push_back(next);
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
                    const NodeCheck c = ev.check(ev.classes(node));
                    if (bounds) bounds->propagate(node, c);
                    sat = c.satisfiesMonotone;
                    tag.set(node, sat);
                }
                if (sat) hi = mid - 1;
                else lo = mid + 1;
            }
        }
    }
}

struct HeapEntry {
    double bound;
    int height;
    uint32_t node;
    // std::priority_queue keeps the largest on top: invert for (bound, height, node) ascending.
    bool operator<(const HeapEntry& o) const noexcept {
        if (bound != o.bound) return bound > o.bound;
        if (height != o.height) return height > o.height;
        return node > o.node;
    }
};

// The search with suppression bounds: best first over the nodes not known to fail M, in increasing
// order of the lower bound of their metric (bounds rise as checks come in; a node popped with a stale
// bound is queued again), until the lowest bound exceeds the best loss found. An unclassified node
// is classified Flash-style, on a greedy path of unclassified generalizations that stays among the
// nodes whose bound does not exceed the best loss (all nodes until a solution is found). Most such
// nodes fail M, so the top of the path — the cheapest to check, with the largest set of
// specializations to tag — is checked first; when it satisfies M the lowest satisfying node of the
// path is binary-searched. Exact: every node that can satisfy the models with a loss <= the optimum
// is classified, and its loss computed when it satisfies M.
template <typename Key>
void searchBestFirst(const Prepared& p, Evaluator<Key>& ev, Tags& tag, SuppressionBounds& bounds, Candidate& best,
                     size_t& considered) {
    const auto& lat = *p.lattice;
    const Metric metric = p.config->metric;
    const bool separable = metricSeparable(metric);
    auto boundOf = [&](size_t node) {
        return bounds.bound(node, separable ? ev.separableLowerBound(node, metric) : 0);
    };
    auto relevant = [&](size_t node) { return !best.found || !exceeds(boundOf(node), best.loss); };
    std::vector<HeapEntry> initial;
    for (size_t node = 0; node < lat.size(); ++node) {
        if (tag[node] != kFails) initial.push_back({boundOf(node), lat.height(node), static_cast<uint32_t>(node)});
    }
    std::priority_queue<HeapEntry> queue(std::less<HeapEntry>(), std::move(initial));
    const SuppressionBounds* byFailing = p.table->size() <= kPathsByFailingUpTo ? &bounds : nullptr;
    std::vector<uint8_t> done(lat.size(), 0);
    std::vector<size_t> path;
    // Checks a node; a node satisfying M is a solution candidate: its loss is computed from the same
    // class table at once, which also gives the search an incumbent early.
    auto evaluate = [&](size_t node) {
        const auto& t = ev.classes(node);
        const NodeCheck c = ev.check(t);
        bounds.propagate(node, c);
        if (tag[node] == kUnknown) tag.set(node, c.satisfiesMonotone);
        if (!c.satisfiesMonotone || done[node] || (best.found && exceeds(boundOf(node), best.loss)))
            return c.satisfiesMonotone;
        done[node] = 1;
        ++considered;
        consider(p, ev, t, best);
        return true;
    };
    while (!queue.empty()) {
        const HeapEntry top = queue.top();
        queue.pop();
        const size_t node = top.node;
        if (best.found && exceeds(top.bound, best.loss)) break;
        if (done[node] || tag[node] == kFails) continue;
        const double now = boundOf(node);
        if (now > top.bound) {
            queue.push({now, top.height, top.node});
            continue;
        }
        if (tag[node] == kSatisfies) {
            evaluate(node);
            continue;
        }
        path.assign(1, node);
        size_t lastRelevant = 0;
        for (size_t next = pathSuccessor(p, tag, node, byFailing); next != SIZE_MAX;
             next = pathSuccessor(p, tag, next, byFailing)) {
            if (lastRelevant + 1 == path.size() && relevant(next)) lastRelevant = path.size();
            path.push_back(next);
        }
        // The highest relevant node first. When it satisfies, the lowest satisfying node below it;
        // when it fails (the usual case), the highest failing node above it, which tags more.
        ptrdiff_t lo = 0, hi = static_cast<ptrdiff_t>(lastRelevant) - 1;
        if (!evaluate(path[lastRelevant])) {
            lo = static_cast<ptrdiff_t>(lastRelevant) + 1;
            hi = static_cast<ptrdiff_t>(path.size()) - 1;
        }
        while (lo <= hi) {
            const ptrdiff_t mid = lo + (hi - lo) / 2;
            const size_t n = path[static_cast<size_t>(mid)];
            const bool sat = tag[n] != kUnknown ? tag[n] == kSatisfies : evaluate(n);
            if (sat) hi = mid - 1;
            else lo = mid + 1;
        }
        // Classified now; a satisfying node not evaluated yet comes back through the queue.
        if (tag[node] == kSatisfies && !done[node]) queue.push({boundOf(node), top.height, top.node});
    }
}

// Without suppression bounds: Flash classification of every node, then the selection among the
// nodes satisfying M in increasing order of a lower bound.
template <typename Key>
Result<size_t> searchAfterClassification(const Prepared& p, Evaluator<Key>& ev, Tags& tag, Candidate& best,
                                         size_t& considered) {
    const auto& lat = *p.lattice;
    const size_t q = lat.dimensions();
    const Metric metric = p.config->metric;
    std::optional<SuppressionBounds> bounds;
    if (!p.noSuppression && p.table->size() <= kPathsByFailingUpTo && lat.size() * (q + 1) <= kMaxBoundEntries)
        bounds.emplace(p);
    classify(p, ev, tag, bounds ? &*bounds : nullptr);
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
    const bool separable = metricSeparable(metric);
    std::vector<double> bound(lat.size(), 0);
    for (uint32_t c : candidates) bound[c] = separable ? ev.separableLowerBound(c, metric) : 0;
    std::sort(candidates.begin(), candidates.end(), [&](uint32_t a, uint32_t b) {
        if (bound[a] != bound[b]) return bound[a] < bound[b];
        if (lat.height(a) != lat.height(b)) return lat.height(a) < lat.height(b);
        return a < b;
    });
    std::vector<uint8_t> pruned(lat.size(), 0);
    std::vector<size_t> stack;
    for (uint32_t node : candidates) {
        if (separable && best.found && bound[node] > best.loss) break;
        if (pruned[node]) continue;
        ++considered;
        if (minimalOnly && separable) {
            // Loss equals the bound here, and candidates come in (loss, height, index) order.
            best = {true, bound[node], lat.height(node), node};
            break;
        }
        const auto& t = ev.classes(node);
        consider(p, ev, t, best);
        if (!separable && best.found && ev.classLowerBound(t, metric) > best.loss) {
            // Every generalization of this node has loss >= the bound > best: prune them.
            traverse(lat, node, /*up=*/true, stack, [&](size_t s) {
                if (pruned[s]) return false;
                pruned[s] = 1;
                return true;
            });
        }
    }
    return candidates.size();
}

template <typename Key> Result<OptimalSolution> search(const Prepared& p) {
    const auto started = std::chrono::steady_clock::now();
    const auto& lat = *p.lattice;
    Evaluator<Key> ev(p, p.needSensitive);
    Tags tag(lat);
    Candidate best;
    size_t considered = 0, candidates = 0, projections = 0;
    if (p.bounds) {
        SuppressionBounds bounds(p);
        // The two-QI projections first: small tables whose checks tag and bound many nodes.
        const Projections projected = projectionsOf(p);
        ev.seedPairs(projected.pairs);
        for (size_t node : projected.nodes) {
            const NodeCheck c = ev.check(ev.classes(node));
            ++projections;
            bounds.record(node, c);
            if (tag[node] == kUnknown) tag.set(node, c.satisfiesMonotone);
        }
        bounds.closeDownward();
        searchBestFirst(p, ev, tag, bounds, best, considered);
        candidates = considered;
    } else {
        auto n = searchAfterClassification(p, ev, tag, best, considered);
        if (!n) return n.status();
        candidates = *n;
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
    sol.candidates = candidates;
    sol.candidatesEvaluated = considered;
    sol.projections = projections;
    sol.searchSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    sol.best = describeNode<Key>(p, best.node, &ev);
    sol.objective = sol.best.metrics.get(p.config->metric);
    return sol;
}

template <typename Key> Result<OptimalSolution> exhaustive(const Prepared& p) {
    const auto started = std::chrono::steady_clock::now();
    const auto& lat = *p.lattice;
    const Metric metric = p.config->metric;
    Evaluator<Key> ev(p, p.needSensitive);
    Candidate best;
    for (size_t node = 0; node < lat.size(); ++node) { consider(p, ev, ev.classes(node), best); }
    if (!best.found) return failedPrecondition("no generalization satisfies " + p.config->models.describe());
    OptimalSolution sol;
    sol.latticeSize = lat.size();
    sol.nodesEvaluated = ev.evaluations();
    sol.candidates = lat.size();
    sol.searchSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    sol.best = describeNode<Key>(p, best.node, &ev);
    sol.objective = sol.best.metrics.get(metric);
    return sol;
}

}  // namespace

Result<OptimalSolution> findOptimalGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    return stoppable([&] { return p->layout.totalBits <= 64 ? search<uint64_t>(*p) : search<Uint128>(*p); });
}

Result<OptimalSolution> exhaustiveGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    return stoppable([&] { return p->layout.totalBits <= 64 ? exhaustive<uint64_t>(*p) : exhaustive<Uint128>(*p); });
}

namespace {

Result<size_t> nodeOf(const Prepared& p, const std::vector<int>& levels, const char* what) {
    const auto& lat = *p.lattice;
    if (levels.size() != lat.dimensions()) {
        return invalidArgument(std::string(what) + ": one level per quasi-identifier expected");
    }
    for (size_t d = 0; d < levels.size(); ++d) {
        if (levels[d] < lat.minLevel(d) || levels[d] > lat.maxLevel(d)) {
            return invalidArgument(std::string(what) + ": level " + std::to_string(levels[d]) + " of '" +
                                   p.config->hierarchies[d]->name() + "' is outside [" +
                                   std::to_string(lat.minLevel(d)) + ", " + std::to_string(lat.maxLevel(d)) + "]");
        }
    }
    return lat.index(levels.data());
}

template <typename Key> RolledUpClasses classesOf(const Prepared& p, Evaluator<Key>& ev, size_t node) {
    const auto& t = ev.classes(node);
    RolledUpClasses r;
    r.fromTable = ev.fromTable();
    const size_t q = p.lattice->dimensions();
    for (size_t i = 0; i < t.size(); ++i) {
        for (size_t d = 0; d < q; ++d) r.codes.push_back(ev.code(t.keys[i], d));
        r.sizes.push_back(t.counts[i]);
    }
    return r;
}

template <typename Key> RolledUpClasses rolledUp(const Prepared& p, size_t from, size_t to) {
    // `from` first, then `to` from the cached table of `from` (fromTable == 1 shows that it was).
    Evaluator<Key> ev(p, /*withSensitive=*/false);
    (void)ev.classes(from);
    return classesOf(p, ev, to);
}

template <typename Key> Result<RolledUpClasses> seeded(const Prepared& p, size_t d, size_t e) {
    // Every pair seeded together (one pass), then the one asked for read back from the cache.
    const auto& lat = *p.lattice;
    const size_t q = lat.dimensions();
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t a = 0; a < q; ++a) {
        for (size_t b = a + 1; b < q; ++b) pairs.emplace_back(a, b);
    }
    Evaluator<Key> ev(p, /*withSensitive=*/false);
    ev.seedPairs(pairs);
    if (ev.evaluations() == 0) return failedPrecondition("projection: not seeded (a highest level has several nodes)");
    std::vector<int> levels(q);
    for (size_t f = 0; f < q; ++f) levels[f] = lat.maxLevel(f);
    levels[d] = lat.minLevel(d);
    levels[e] = lat.minLevel(e);
    return classesOf(p, ev, lat.index(levels.data()));
}

template <typename Key> double boundAfter(const Prepared& p, const std::vector<size_t>& checked, size_t node) {
    Evaluator<Key> ev(p, p.needSensitive);
    SuppressionBounds bounds(p);
    for (size_t n : checked) {
        const auto& t = ev.classes(n);
        bounds.propagate(n, ev.check(t));
    }
    const Metric metric = p.config->metric;
    return bounds.bound(node, metricSeparable(metric) ? ev.separableLowerBound(node, metric) : 0);
}

}  // namespace

Result<RolledUpClasses> rollUpGeneralization(const FrequencyTable& table, const OptimalSearchConfig& config,
                                             const std::vector<int>& fromLevels, const std::vector<int>& levels) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    auto from = nodeOf(*p, fromLevels, "roll-up");
    if (!from) return from.status();
    auto to = nodeOf(*p, levels, "roll-up");
    if (!to) return to.status();
    if (!p->lattice->generalizes(*to, *from))
        return invalidArgument("roll-up: the target does not generalize the source");
    return stoppable([&]() -> Result<RolledUpClasses> {
        if (p->layout.totalBits <= 64) return rolledUp<uint64_t>(*p, *from, *to);
        return rolledUp<Uint128>(*p, *from, *to);
    });
}

Result<RolledUpClasses> projectionClasses(const FrequencyTable& table, const OptimalSearchConfig& config, size_t d,
                                          size_t e) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    if (d >= e || e >= p->lattice->dimensions()) return invalidArgument("projection: QIs d < e expected");
    return stoppable([&]() -> Result<RolledUpClasses> {
        if (p->layout.totalBits <= 64) return seeded<uint64_t>(*p, d, e);
        return seeded<Uint128>(*p, d, e);
    });
}

Result<std::optional<double>> suppressionLowerBound(const FrequencyTable& table, const OptimalSearchConfig& config,
                                                    const std::vector<std::vector<int>>& checked,
                                                    const std::vector<int>& levels) {
    auto p = prepare(table, config);
    if (!p) return p.status();
    if (!p->bounds) return std::optional<double>();
    std::vector<size_t> nodes;
    for (const auto& l : checked) {
        auto n = nodeOf(*p, l, "bound");
        if (!n) return n.status();
        nodes.push_back(*n);
    }
    auto node = nodeOf(*p, levels, "bound");
    if (!node) return node.status();
    return stoppable([&]() -> Result<std::optional<double>> {
        if (p->layout.totalBits <= 64) return std::optional<double>(boundAfter<uint64_t>(*p, nodes, *node));
        return std::optional<double>(boundAfter<Uint128>(*p, nodes, *node));
    });
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
    return stoppable([&]() -> Result<GeneralizationStats> {
        if (p->layout.totalBits <= 64) return describeNode<uint64_t>(*p, node);
        return describeNode<Uint128>(*p, node);
    });
}

}  // namespace custodian::anon
