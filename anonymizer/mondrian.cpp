#include "anonymizer/mondrian.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace custodian::anon {

namespace {

struct Dimension {
    const Hierarchy* hierarchy = nullptr;
    bool numeric = false;
    std::vector<uint32_t> rankOfLeaf;   // order used for splitting
    std::vector<uint32_t> leafOfRank;
    double width = 1;                   // normalizer: domain range (numeric) or leaves - 1
    std::vector<double> valueOfRank;    // numeric only
    std::vector<uint32_t> rank;         // per row
};

class Partitioner {
public:
    Partitioner(const MondrianConfig& c, const EncodedColumns& cols, std::vector<Dimension>& dims)
        : config_(c), cols_(cols), dims_(dims) {
        domains_.resize(cols.sensitive.size());
        const size_t n = rows();
        for (size_t s = 0; s < cols.sensitive.size(); ++s) {
            std::vector<uint64_t> freq(c.sensitiveCardinalities[s], 0);
            for (size_t r = 0; r < n; ++r) ++freq[cols.sensitive[s][r]];
            domains_[s].distance = c.sensitiveDistances.empty() ? TClosenessDistance::Equal : c.sensitiveDistances[s];
            domains_[s].globalShare.resize(freq.size());
            for (size_t v = 0; v < freq.size(); ++v) {
                domains_[s].globalShare[v] = n ? static_cast<double>(freq[v]) / static_cast<double>(n) : 0;
            }
        }
        histogram_.resize(cols.sensitive.size());
        for (size_t s = 0; s < cols.sensitive.size(); ++s) histogram_[s].assign(c.sensitiveCardinalities[s], 0);
    }

    double distance(size_t s, std::span<const SensitiveCount> hist, uint64_t size) const {
        return model::earthMoversDistance(hist, size, domains_[s]);
    }

    size_t rows() const { return cols_.qi.empty() ? 0 : cols_.qi[0].size(); }
    bool needSensitive() const { return config_.models.lDiversity || config_.models.tCloseness; }

    // Whether the rows ids[b, e) form a partition that satisfies the models.
    bool satisfies(const uint32_t* ids, size_t count) {
        if (count < config_.models.k) return false;
        if (!needSensitive()) return true;
        for (size_t s = 0; s < cols_.sensitive.size(); ++s) {
            const auto hist = sensitiveHistogram(s, ids, count);
            if (config_.models.lDiversity && !model::lDiverse(*config_.models.lDiversity, hist, count, scratch_)) return false;
            if (config_.models.tCloseness &&
                model::earthMoversDistance(hist, count, domains_[s]) > config_.models.tCloseness->t + 1e-12) {
                return false;
            }
        }
        return true;
    }

    std::span<const SensitiveCount> sensitiveHistogram(size_t s, const uint32_t* ids, size_t count) {
        auto& h = histogram_[s];
        touched_.clear();
        for (size_t i = 0; i < count; ++i) {
            const uint32_t v = cols_.sensitive[s][ids[i]];
            if (h[v]++ == 0) touched_.push_back(v);
        }
        std::sort(touched_.begin(), touched_.end());
        entries_.clear();
        for (uint32_t v : touched_) {
            entries_.push_back({v, h[v]});
            h[v] = 0;
        }
        return entries_;
    }

    // Splits ids[0, count) recursively; appends finished partitions as [begin, end) into `out`.
    void run(uint32_t* ids, size_t count, std::vector<std::pair<size_t, size_t>>& out) {
        struct Range {
            size_t begin, end;
        };
        std::vector<Range> stack{{0, count}};
        const size_t q = dims_.size();
        std::vector<uint32_t> lo(q), hi(q);
        std::vector<size_t> order(q);
        while (!stack.empty()) {
            const Range r = stack.back();
            stack.pop_back();
            uint32_t* part = ids + r.begin;
            const size_t n = r.end - r.begin;
            for (size_t d = 0; d < q; ++d) {
                const uint32_t* rank = dims_[d].rank.data();
                uint32_t mn = UINT32_MAX, mx = 0;
                for (size_t i = 0; i < n; ++i) {
                    const uint32_t v = rank[part[i]];
                    mn = std::min(mn, v);
                    mx = std::max(mx, v);
                }
                lo[d] = mn;
                hi[d] = mx;
            }
            std::iota(order.begin(), order.end(), size_t{0});
            auto spread = [&](size_t d) {
                const Dimension& dim = dims_[d];
                if (dim.numeric) return (dim.valueOfRank[hi[d]] - dim.valueOfRank[lo[d]]) / dim.width;
                return static_cast<double>(hi[d] - lo[d]) / dim.width;
            };
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return spread(a) > spread(b); });
            bool split = false;
            if (n >= 2 * config_.models.k) {
                for (size_t d : order) {
                    if (hi[d] == lo[d]) break;
                    const size_t mid = cut(part, n, d, lo[d], hi[d]);
                    if (mid == 0 || mid == n) continue;
                    if (satisfies(part, mid) && satisfies(part + mid, n - mid)) {
                        stack.push_back({r.begin + mid, r.end});
                        stack.push_back({r.begin, r.begin + mid});
                        split = true;
                        break;
                    }
                }
            }
            if (!split) out.emplace_back(r.begin, r.end);
        }
    }

private:
    // Reorders part[0, n) around the median of dimension d; returns the size of the left side (0 when
    // no cut exists).
    size_t cut(uint32_t* part, size_t n, size_t d, uint32_t lo, uint32_t hi) {
        const uint32_t* rank = dims_[d].rank.data();
        counts_.assign(hi - lo + 1, 0);
        for (size_t i = 0; i < n; ++i) ++counts_[rank[part[i]] - lo];
        // Median value: smallest v with at least half the records at or below it.
        size_t below = 0;
        uint32_t median = lo;
        for (uint32_t v = 0; v < counts_.size(); ++v) {
            if ((below + counts_[v]) * 2 >= n) {
                median = lo + v;
                break;
            }
            below += counts_[v];
        }
        const size_t atMedian = counts_[median - lo];
        if (config_.mode == MondrianMode::Strict) {
            size_t left = below + atMedian;
            if (left == n) {
                // The median is the largest value: cut just below it instead.
                if (below == 0) return 0;
                left = below;
                std::partition(part, part + n, [&](uint32_t id) { return rank[id] < median; });
                return left;
            }
            std::partition(part, part + n, [&](uint32_t id) { return rank[id] <= median; });
            return left;
        }
        // Relaxed: less | equal | greater, then the left half takes exactly n/2 records.
        uint32_t* lessEnd = std::partition(part, part + n, [&](uint32_t id) { return rank[id] < median; });
        std::partition(lessEnd, part + n, [&](uint32_t id) { return rank[id] == median; });
        return n / 2;
    }

    const MondrianConfig& config_;
    const EncodedColumns& cols_;
    std::vector<Dimension>& dims_;
    std::vector<SensitiveDomain> domains_;
    std::vector<std::vector<uint64_t>> histogram_;
    std::vector<uint32_t> touched_;
    std::vector<SensitiveCount> entries_;
    std::vector<uint64_t> scratch_;
    std::vector<size_t> counts_;
};

} // namespace

Result<MondrianResult> mondrianPartition(const MondrianConfig& config, const EncodedColumns& columns) {
    const auto started = std::chrono::steady_clock::now();
    const size_t q = config.hierarchies.size();
    if (q == 0) return invalidArgument("mondrian: no quasi-identifier");
    if (columns.qi.size() != q) return invalidArgument("mondrian: one code column per quasi-identifier expected");
    if (columns.sensitive.size() != config.sensitiveCardinalities.size()) {
        return invalidArgument("mondrian: one cardinality per sensitive column expected");
    }
    if (!config.sensitiveDistances.empty() && config.sensitiveDistances.size() != columns.sensitive.size()) {
        return invalidArgument("mondrian: one t-closeness distance per sensitive column expected");
    }
    PrivacyModels models = config.models;
    models.suppressionLimit = 0;
    if (Status s = models.validate(columns.sensitive.size()); !s) return s.withContext("mondrian");
    const size_t n = columns.qi[0].size();
    if (n == 0) return failedPrecondition("mondrian: the input has no records");
    if (n >= UINT32_MAX) return Status(StatusCode::ResourceExhausted, "mondrian: too many rows");
    for (size_t d = 0; d < q; ++d) {
        if (!config.hierarchies[d]) return invalidArgument("mondrian: quasi-identifier " + std::to_string(d) + " has no hierarchy");
        if (columns.qi[d].size() != n) return invalidArgument("mondrian: code columns differ in length");
        const uint32_t leaves = static_cast<uint32_t>(config.hierarchies[d]->leafCount());
        for (uint32_t code : columns.qi[d]) {
            if (code >= leaves) {
                return invalidArgument("mondrian: code " + std::to_string(code) + " out of range for hierarchy '" +
                                       config.hierarchies[d]->name() + "'");
            }
        }
    }
    for (size_t s = 0; s < columns.sensitive.size(); ++s) {
        if (columns.sensitive[s].size() != n) return invalidArgument("mondrian: sensitive column differs in length");
        for (uint32_t v : columns.sensitive[s]) {
            if (v >= config.sensitiveCardinalities[s]) return invalidArgument("mondrian: sensitive code out of range");
        }
    }

    std::vector<Dimension> dims(q);
    for (size_t d = 0; d < q; ++d) {
        Dimension& dim = dims[d];
        const Hierarchy& h = *config.hierarchies[d];
        dim.hierarchy = &h;
        const auto leaves = static_cast<uint32_t>(h.leafCount());
        dim.leafOfRank.resize(leaves);
        std::iota(dim.leafOfRank.begin(), dim.leafOfRank.end(), 0U);
        dim.numeric = d < config.numeric.size() && config.numeric[d];
        if (dim.numeric) {
            if (!h.numericLeaves()) {
                return invalidArgument("mondrian: quasi-identifier '" + h.name() + "' is numeric but its values are not numbers");
            }
            const auto& v = *h.numericLeaves();
            std::stable_sort(dim.leafOfRank.begin(), dim.leafOfRank.end(), [&](uint32_t a, uint32_t b) { return v[a] < v[b]; });
            for (uint32_t leaf : dim.leafOfRank) dim.valueOfRank.push_back(v[leaf]);
            dim.width = dim.valueOfRank.back() - dim.valueOfRank.front();
        } else {
            dim.width = static_cast<double>(leaves - 1);
        }
        if (!(dim.width > 0)) dim.width = 1;
        dim.rankOfLeaf.resize(leaves);
        for (uint32_t r = 0; r < leaves; ++r) dim.rankOfLeaf[dim.leafOfRank[r]] = r;
        dim.rank.resize(n);
        for (size_t i = 0; i < n; ++i) dim.rank[i] = dim.rankOfLeaf[columns.qi[d][i]];
    }

    MondrianConfig effective = config;
    effective.models = models;
    Partitioner partitioner(effective, columns, dims);
    std::vector<uint32_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0U);
    if (!partitioner.satisfies(ids.data(), n)) {
        return failedPrecondition("mondrian: the whole input (" + std::to_string(n) + " records) does not satisfy " +
                                  models.describe());
    }
    std::vector<std::pair<size_t, size_t>> parts;
    partitioner.run(ids.data(), n, parts);
    // Deterministic partition numbering: by first row id.
    {
        std::vector<std::pair<uint32_t, size_t>> firstRow(parts.size());
        for (size_t p = 0; p < parts.size(); ++p) {
            firstRow[p] = {*std::min_element(ids.begin() + static_cast<std::ptrdiff_t>(parts[p].first),
                                             ids.begin() + static_cast<std::ptrdiff_t>(parts[p].second)),
                           p};
        }
        std::sort(firstRow.begin(), firstRow.end());
        std::vector<std::pair<size_t, size_t>> sorted;
        sorted.reserve(parts.size());
        for (const auto& f : firstRow) sorted.push_back(parts[f.second]);
        parts = std::move(sorted);
    }

    MondrianResult result;
    result.partitionOfRow.resize(n);
    result.partitionSizes.reserve(parts.size());
    result.labels.resize(parts.size());
    double loss = 0;
    for (size_t p = 0; p < parts.size(); ++p) {
        const uint32_t* part = ids.data() + parts[p].first;
        const size_t size = parts[p].second - parts[p].first;
        for (size_t i = 0; i < size; ++i) result.partitionOfRow[part[i]] = static_cast<uint32_t>(p);
        result.partitionSizes.push_back(size);
        result.achievedK = result.achievedK == 0 ? size : std::min<uint64_t>(result.achievedK, size);
        result.discernibility += static_cast<double>(size) * static_cast<double>(size);
        auto& labels = result.labels[p];
        for (size_t d = 0; d < q; ++d) {
            const Dimension& dim = dims[d];
            const Hierarchy& h = *dim.hierarchy;
            if (dim.numeric) {
                uint32_t mn = UINT32_MAX, mx = 0;
                for (size_t i = 0; i < size; ++i) {
                    mn = std::min(mn, dim.rank[part[i]]);
                    mx = std::max(mx, dim.rank[part[i]]);
                }
                const std::string& a = h.label(0, dim.leafOfRank[mn]);
                const std::string& b = h.label(0, dim.leafOfRank[mx]);
                labels.push_back(mn == mx ? a : "[" + a + "-" + b + "]");
                loss += static_cast<double>(size) * (dim.valueOfRank[mx] - dim.valueOfRank[mn]) / dim.width;
            } else {
                const uint32_t first = columns.qi[d][part[0]];
                int level = 0;
                for (size_t i = 1; i < size; ++i) {
                    const uint32_t leaf = columns.qi[d][part[i]];
                    while (level + 1 < h.levels() && h.generalize(leaf, level) != h.generalize(first, level)) ++level;
                }
                bool common = true;
                if (level + 1 == h.levels()) {
                    // A hierarchy without a single root: the values may still differ at the top level.
                    for (size_t i = 1; i < size && common; ++i) {
                        common = h.generalize(columns.qi[d][part[i]], level) == h.generalize(first, level);
                    }
                }
                const uint32_t node = h.generalize(first, level);
                const double leaves = static_cast<double>(h.leafCount());
                if (common) {
                    labels.push_back(h.label(level, node));
                    loss += leaves > 1 ? static_cast<double>(size) * (h.leavesUnder(level, node) - 1) / (leaves - 1) : 0;
                } else {
                    labels.emplace_back("*");
                    loss += static_cast<double>(size);
                }
            }
        }
        for (size_t s = 0; s < columns.sensitive.size(); ++s) {
            const auto hist = partitioner.sensitiveHistogram(s, part, size);
            const double distinct = static_cast<double>(hist.size());
            const double entropyL = std::exp(model::entropy(hist, size));
            result.distinctL = result.distinctL ? std::min(*result.distinctL, distinct) : distinct;
            result.entropyL = result.entropyL ? std::min(*result.entropyL, entropyL) : entropyL;
            const double emd = partitioner.distance(s, hist, size);
            result.achievedT = result.achievedT ? std::max(*result.achievedT, emd) : emd;
        }
    }
    result.ncp = loss / (static_cast<double>(n) * static_cast<double>(q));
    result.averageClassSize = static_cast<double>(n) / static_cast<double>(parts.size());
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

} // namespace custodian::anon
