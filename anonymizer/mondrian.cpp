#include "anonymizer/mondrian.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "anonymizer/flat_hash.hpp"

namespace custodian::anon {

namespace {

struct Dimension {
    const Hierarchy* hierarchy = nullptr;
    bool numeric = false;
    std::vector<uint32_t> rankOfLeaf;   // order used for splitting
    std::vector<uint32_t> leafOfRank;
    double width = 1;                   // normalizer: domain range (numeric) or leaves - 1
    std::vector<double> valueOfRank;    // numeric only
};

// Records are stored row-major and physically reordered while partitioning, so every pass over a
// partition reads contiguous memory: [rank per QI..., sensitive code per attribute..., row id].
class Partitioner {
public:
    Partitioner(const MondrianConfig& c, const EncodedColumns& cols, const std::vector<Dimension>& dims)
        : config_(c), dims_(dims), q_(dims.size()), sensitive_(cols.sensitive.size()), width_(q_ + sensitive_ + 1) {
        const size_t n = cols.qi[0].size();
        records_.resize(n * width_);
        for (size_t i = 0; i < n; ++i) {
            uint32_t* r = records_.data() + i * width_;
            for (size_t d = 0; d < q_; ++d) r[d] = dims[d].rankOfLeaf[cols.qi[d][i]];
            for (size_t s = 0; s < sensitive_; ++s) r[q_ + s] = cols.sensitive[s][i];
            r[width_ - 1] = static_cast<uint32_t>(i);
        }
        domains_.resize(sensitive_);
        for (size_t s = 0; s < sensitive_; ++s) {
            std::vector<uint64_t> freq(c.sensitiveCardinalities[s], 0);
            for (size_t r = 0; r < n; ++r) ++freq[cols.sensitive[s][r]];
            domains_[s] = SensitiveDomain::fromFrequencies(
                freq, c.sensitiveDistances.empty() ? TClosenessDistance::Equal : c.sensitiveDistances[s]);
        }
        histogram_.resize(sensitive_);
        for (size_t s = 0; s < sensitive_; ++s) histogram_[s].assign(c.sensitiveCardinalities[s], 0);
    }

    size_t rows() const { return records_.size() / width_; }
    const uint32_t* record(size_t i) const { return records_.data() + i * width_; }
    uint32_t rowId(size_t i) const { return record(i)[width_ - 1]; }
    uint32_t rank(size_t i, size_t d) const { return record(i)[d]; }
    bool needSensitive() const { return config_.models.lDiversity || config_.models.tCloseness; }

    double distance(size_t s, std::span<const SensitiveCount> hist, uint64_t size) const {
        return model::earthMoversDistance(hist, size, domains_[s]);
    }

    // Whether records [begin, begin + count) form a partition that satisfies the models.
    bool satisfies(size_t begin, size_t count) {
        if (count < config_.models.k) return false;
        if (!needSensitive()) return true;
        for (size_t s = 0; s < sensitive_; ++s) {
            const auto hist = sensitiveHistogram(s, begin, count);
            if (config_.models.lDiversity && !model::lDiverse(*config_.models.lDiversity, hist, count, scratch_)) return false;
            if (config_.models.tCloseness &&
                model::earthMoversDistance(hist, count, domains_[s]) > config_.models.tCloseness->t + 1e-12) {
                return false;
            }
        }
        return true;
    }

    std::span<const SensitiveCount> sensitiveHistogram(size_t s, size_t begin, size_t count) {
        auto& h = histogram_[s];
        touched_.clear();
        for (size_t i = begin; i < begin + count; ++i) {
            const uint32_t v = record(i)[q_ + s];
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

    // Splits all records recursively; appends finished partitions as [begin, end) into `out`.
    void run(std::vector<std::pair<size_t, size_t>>& out) {
        struct Range {
            size_t begin, end;
        };
        std::vector<Range> stack{{0, rows()}};
        std::vector<uint32_t> lo(q_), hi(q_);
        std::vector<size_t> order(q_);
        std::vector<double> spread(q_);
        while (!stack.empty()) {
            const Range r = stack.back();
            stack.pop_back();
            const size_t n = r.end - r.begin;
            bool split = false;
            if (n >= 2 * config_.models.k) {
                std::fill(lo.begin(), lo.end(), UINT32_MAX);
                std::fill(hi.begin(), hi.end(), 0);
                for (size_t i = r.begin; i < r.end; ++i) {
                    const uint32_t* rec = record(i);
                    for (size_t d = 0; d < q_; ++d) {
                        lo[d] = std::min(lo[d], rec[d]);
                        hi[d] = std::max(hi[d], rec[d]);
                    }
                }
                for (size_t d = 0; d < q_; ++d) {
                    const Dimension& dim = dims_[d];
                    spread[d] = dim.numeric ? (dim.valueOfRank[hi[d]] - dim.valueOfRank[lo[d]]) / dim.width
                                            : static_cast<double>(hi[d] - lo[d]) / dim.width;
                }
                std::iota(order.begin(), order.end(), size_t{0});
                std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return spread[a] > spread[b]; });
                for (size_t d : order) {
                    if (hi[d] == lo[d]) break;
                    const size_t mid = cut(r.begin, n, d, lo[d], hi[d]);
                    if (mid == 0 || mid == n) continue;
                    if (satisfies(r.begin, mid) && satisfies(r.begin + mid, n - mid)) {
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
    void swapRecords(size_t a, size_t b) {
        uint32_t* x = records_.data() + a * width_;
        uint32_t* y = records_.data() + b * width_;
        std::swap_ranges(x, x + width_, y);
    }

    // Moves the records satisfying pred to the front of [begin, end); returns the boundary.
    template <typename Pred>
    size_t partition(size_t begin, size_t end, Pred pred) {
        size_t i = begin, j = end;
        for (;;) {
            while (i < j && pred(record(i))) ++i;
            while (i < j && !pred(record(j - 1))) --j;
            if (i + 1 >= j) return i;
            swapRecords(i, j - 1);
            ++i;
            --j;
        }
    }

    // Reorders records [begin, begin + n) around the median of dimension d; returns the size of the
    // left side (0 when no cut exists).
    size_t cut(size_t begin, size_t n, size_t d, uint32_t lo, uint32_t hi) {
        counts_.assign(hi - lo + 1, 0);
        for (size_t i = begin; i < begin + n; ++i) ++counts_[record(i)[d] - lo];
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
        // Strict cut: every record with the median value goes left (or, when the median is the largest
        // value, right).
        size_t left = below + atMedian;
        bool lessOrEqual = true;
        if (left == n) {
            left = below;
            lessOrEqual = false;
        }
        const bool strictPossible = left > 0 && left < n;
        if (config_.mode == MondrianMode::Strict ||
            (strictPossible && left >= config_.models.k && n - left >= config_.models.k && !needSensitive())) {
            if (!strictPossible) return 0;
            if (lessOrEqual) partition(begin, begin + n, [&](const uint32_t* r) { return r[d] <= median; });
            else partition(begin, begin + n, [&](const uint32_t* r) { return r[d] < median; });
            return left;
        }
        // Relaxed: less | equal | greater, and the left side takes exactly n/2 records, splitting the
        // records with the median value between both sides.
        const size_t lessEnd = partition(begin, begin + n, [&](const uint32_t* r) { return r[d] < median; });
        partition(lessEnd, begin + n, [&](const uint32_t* r) { return r[d] == median; });
        return n / 2;
    }

    const MondrianConfig& config_;
    const std::vector<Dimension>& dims_;
    size_t q_, sensitive_, width_;
    std::vector<uint32_t> records_;
    std::vector<SensitiveDomain> domains_;
    std::vector<std::vector<uint64_t>> histogram_;
    std::vector<uint32_t> touched_;
    std::vector<SensitiveCount> entries_;
    std::vector<uint64_t> scratch_;
    std::vector<size_t> counts_;
};

} // namespace

// Non-uniform entropy of a local recoding (as ARX computes it for local recoding): every released
// cell costs log2(records whose released label in that column is the cell's label / records among
// those with the cell's original value). Partitions sharing a label share one released value, so
// counts are per label, not per partition. Per partition, a histogram over ranks (an array reset
// through the ranks it touched) keeps this linear in the records, without hashing each cell.
namespace {

template <typename Parts>
double nonUniformEntropy(const MondrianResult& result, const Parts& parts, const Partitioner& partitioner,
                         const std::vector<Dimension>& dims) {
    double entropy = 0;
    for (size_t d = 0; d < dims.size(); ++d) {
        detail::StringInterner labels;
        std::vector<uint64_t> recordsWithLabel;
        std::vector<uint32_t> labelOfPartition(parts.size());
        for (size_t p = 0; p < parts.size(); ++p) {
            const auto [id, isNew] = labels.intern(result.labels[p][d]);
            if (isNew) recordsWithLabel.push_back(0);
            recordsWithLabel[id] += result.partitionSizes[p];
            labelOfPartition[p] = id;
        }
        detail::DenseIndexer<uint64_t> pairs;  // (label, rank) -> index
        pairs.reset(1024);
        std::vector<uint64_t> pairRecords;
        std::vector<uint32_t> pairLabel;
        std::vector<uint64_t> histogram(dims[d].rankOfLeaf.size(), 0);
        std::vector<uint32_t> touched;
        for (size_t p = 0; p < parts.size(); ++p) {
            for (size_t i = parts[p].first; i < parts[p].second; ++i) {
                const uint32_t rank = partitioner.rank(i, d);
                if (histogram[rank]++ == 0) touched.push_back(rank);
            }
            for (uint32_t rank : touched) {
                const uint32_t index = pairs.indexOf((uint64_t{labelOfPartition[p]} << 32) | rank);
                if (index == pairRecords.size()) {
                    pairRecords.push_back(0);
                    pairLabel.push_back(labelOfPartition[p]);
                }
                pairRecords[index] += histogram[rank];
                histogram[rank] = 0;
            }
            touched.clear();
        }
        for (size_t i = 0; i < pairRecords.size(); ++i) {
            const auto f = static_cast<double>(pairRecords[i]);
            entropy += f * (std::log2(static_cast<double>(recordsWithLabel[pairLabel[i]])) - std::log2(f));
        }
    }
    return entropy;
}

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
    }

    MondrianConfig effective = config;
    effective.models = models;
    Partitioner partitioner(effective, columns, dims);
    if (!partitioner.satisfies(0, n)) {
        return failedPrecondition("mondrian: the whole input (" + std::to_string(n) + " records) does not satisfy " +
                                  models.describe());
    }
    std::vector<std::pair<size_t, size_t>> parts;
    partitioner.run(parts);
    // Deterministic partition numbering: by first row id.
    {
        std::vector<std::pair<uint32_t, size_t>> firstRow(parts.size());
        for (size_t p = 0; p < parts.size(); ++p) {
            uint32_t first = UINT32_MAX;
            for (size_t i = parts[p].first; i < parts[p].second; ++i) first = std::min(first, partitioner.rowId(i));
            firstRow[p] = {first, p};
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
        const size_t begin = parts[p].first;
        const size_t size = parts[p].second - parts[p].first;
        for (size_t i = begin; i < begin + size; ++i) result.partitionOfRow[partitioner.rowId(i)] = static_cast<uint32_t>(p);
        result.partitionSizes.push_back(size);
        result.achievedK = result.achievedK == 0 ? size : std::min<uint64_t>(result.achievedK, size);
        result.discernibility += static_cast<double>(size) * static_cast<double>(size);
        auto& labels = result.labels[p];
        for (size_t d = 0; d < q; ++d) {
            const Dimension& dim = dims[d];
            const Hierarchy& h = *dim.hierarchy;
            if (dim.numeric) {
                uint32_t mn = UINT32_MAX, mx = 0;
                for (size_t i = begin; i < begin + size; ++i) {
                    mn = std::min(mn, partitioner.rank(i, d));
                    mx = std::max(mx, partitioner.rank(i, d));
                }
                const std::string& a = h.label(0, dim.leafOfRank[mn]);
                const std::string& b = h.label(0, dim.leafOfRank[mx]);
                labels.push_back(mn == mx ? a : "[" + a + "-" + b + "]");
                loss += static_cast<double>(size) * (dim.valueOfRank[mx] - dim.valueOfRank[mn]) / dim.width;
            } else {
                // Categorical ranks are leaf codes.
                const uint32_t first = partitioner.rank(begin, d);
                int level = 0;
                for (size_t i = begin + 1; i < begin + size; ++i) {
                    const uint32_t leaf = partitioner.rank(i, d);
                    while (level + 1 < h.levels() && h.generalize(leaf, level) != h.generalize(first, level)) ++level;
                }
                bool common = true;
                if (level + 1 == h.levels()) {
                    // A hierarchy without a single root: the values may still differ at the top level.
                    for (size_t i = begin + 1; i < begin + size && common; ++i) {
                        common = h.generalize(partitioner.rank(i, d), level) == h.generalize(first, level);
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
            const auto hist = partitioner.sensitiveHistogram(s, begin, size);
            const double distinct = static_cast<double>(hist.size());
            const double entropyL = std::exp(model::entropy(hist, size));
            result.distinctL = result.distinctL ? std::min(*result.distinctL, distinct) : distinct;
            result.entropyL = result.entropyL ? std::min(*result.entropyL, entropyL) : entropyL;
            const double emd = partitioner.distance(s, hist, size);
            result.achievedT = result.achievedT ? std::max(*result.achievedT, emd) : emd;
        }
    }
    result.nonUniformEntropy = nonUniformEntropy(result, parts, partitioner, dims);
    result.ncp = loss / (static_cast<double>(n) * static_cast<double>(q));
    result.averageClassSize = static_cast<double>(n) / static_cast<double>(parts.size());
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

} // namespace custodian::anon
