#include "anonymizer/mondrian.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <span>

#include "anonymizer/flat_hash.hpp"
#include "anonymizer/heap_bytes.hpp"
#include "anonymizer/metrics.hpp"
#include "anonymizer/two_threads.hpp"

namespace custodian::anon {

namespace {

// A side of a cut smaller than 1/kBalance of the partition is taken only when no other cut exists.
constexpr size_t kBalance = 16;

struct Dimension {
    const Hierarchy* hierarchy = nullptr;
    const CertaintyPenaltyDomain* penalty = nullptr;
    bool numeric = false;
    bool valueSets = false;  // categorical: released as the set of values present
    // Order used for splitting: numeric values ascending; categorical leaves depth-first through the
    // hierarchy, so the leaves under any node are contiguous and a range of ranks has the lowest
    // common node of its two ends.
    std::vector<uint32_t> rankOfLeaf;
    std::vector<uint32_t> leafOfRank;
    std::vector<double> valueOfRank;  // numeric only

    // Input values covered by the lowest common hierarchy node of ranks a <= b (all values when a
    // hierarchy without a single root has none).
    uint32_t coveredByCommonNode(uint32_t a, uint32_t b, int* level = nullptr) const {
        const uint32_t la = leafOfRank[a], lb = leafOfRank[b];
        for (int lv = 0; lv < hierarchy->levels(); ++lv) {
            const uint32_t node = hierarchy->generalize(la, lv);
            if (node == hierarchy->generalize(lb, lv)) {
                if (level) *level = lv;
                return penalty->presentUnder(lv, node);
            }
        }
        if (level) *level = -1;
        return penalty->valuesPresent();
    }
    // Per-record penalty of releasing records whose values span ranks [a, b], `distinct` of them.
    double cost(uint32_t a, uint32_t b, uint32_t distinct) const {
        if (numeric) return penalty->range(valueOfRank[a], valueOfRank[b]);
        if (valueSets) return penalty->covering(distinct);
        return penalty->covering(coveredByCommonNode(a, b));
    }
};

// Records are stored row-major and physically reordered while partitioning, so every pass over a
// partition reads contiguous memory: [rank per QI..., sensitive code per attribute..., row id].
class Partitioner {
public:
    Partitioner(const MondrianConfig& c, const EncodedColumns& cols, const std::vector<Dimension>& dims)
        : config_(c), dims_(dims), q_(dims.size()), sensitive_(cols.sensitive.size()), width_(q_ + sensitive_ + 1) {
        const size_t n = cols.qi[0].size();
        ownRecords_.resize(n * width_);
        records_ = ownRecords_.data();
        rows_ = n;
        for (size_t i = 0; i < n; ++i) {
            uint32_t* r = records_ + i * width_;
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

    // A second partitioner over the same records, with scratch of its own: the two may split
    // disjoint record ranges at the same time (runOnTwoThreads()).
    struct Helper {};
    Partitioner(const Partitioner& owner, Helper)
        : config_(owner.config_), dims_(owner.dims_), q_(owner.q_), sensitive_(owner.sensitive_), width_(owner.width_),
          records_(owner.records_), rows_(owner.rows_), narrow_(owner.narrow_), narrowWidth_(owner.narrowWidth_),
          domains_(owner.domains_), histogram_(owner.histogram_) {}

    size_t rows() const { return rows_; }
    // While partitioning (before narrow()).
    const uint32_t* record(size_t i) const { return records_ + i * width_; }
    // At any time.
    uint32_t rowId(size_t i) const {
        if (!narrow_) return record(i)[width_ - 1];
        uint32_t id;
        std::memcpy(&id, narrow_ + i * narrowWidth_ + 2 * (width_ - 1), sizeof id);
        return id;
    }
    uint32_t rank(size_t i, size_t d) const { return narrow_ ? narrowCode(i, d) : record(i)[d]; }
    uint32_t sensitiveCode(size_t i, size_t s) const { return narrow_ ? narrowCode(i, q_ + s) : record(i)[q_ + s]; }

    // Once partitioning is over the records are only read. When every rank and sensitive code fits
    // in 16 bits (dates over 179 years, 65,536 postcodes), they are rewritten in place, 2 bytes a
    // code and 4 for the row id (5 QIs: 24 -> 14 bytes a record), and the whole pages of the array
    // this frees are handed back to the system. Call before making helpers for the reads.
    void narrow() {
        for (const Dimension& dim : dims_)
            if (dim.leafOfRank.size() > 65536) return;
        for (size_t s = 0; s < sensitive_; ++s)
            if (config_.sensitiveCardinalities[s] > 65536) return;
        const size_t codes = width_ - 1;
        narrowWidth_ = 2 * codes + 4;
        auto* bytes = reinterpret_cast<unsigned char*>(records_);
        // Record i moves from byte 4 * width_ * i down to narrowWidth_ * i: nothing is written over
        // a later record, and each record is read whole before it is written.
        std::vector<uint32_t> held(width_);
        for (size_t i = 0; i < rows_; ++i) {
            std::copy_n(records_ + i * width_, width_, held.begin());
            unsigned char* to = bytes + i * narrowWidth_;
            for (size_t c = 0; c < codes; ++c) {
                const auto code = static_cast<uint16_t>(held[c]);
                std::memcpy(to + 2 * c, &code, sizeof code);
            }
            std::memcpy(to + 2 * codes, &held[codes], sizeof(uint32_t));
        }
        narrow_ = bytes;
        heap::returnPages(bytes, rows_ * narrowWidth_, rows_ * width_ * sizeof(uint32_t));
    }
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
            if (config_.models.lDiversity && !model::lDiverse(*config_.models.lDiversity, hist, count, scratch_))
                return false;
            if (config_.models.tCloseness &&
                model::earthMoversDistance(hist, count, domains_[s]) > config_.models.tCloseness->t + 1e-12) {
                return false;
            }
        }
        return true;
    }

    std::span<const SensitiveCount> sensitiveHistogram(size_t s, size_t begin, size_t count) {
        const std::pair<size_t, size_t> range{begin, begin + count};
        return sensitiveHistogram(s, std::span(&range, 1));
    }

    // Over several ranges [first, second) of records (a released class made of merged partitions).
    std::span<const SensitiveCount> sensitiveHistogram(size_t s, std::span<const std::pair<size_t, size_t>> ranges) {
        auto& h = histogram_[s];
        touched_.clear();
        for (const auto& [begin, end] : ranges) {
            for (size_t i = begin; i < end; ++i) {
                const uint32_t v = sensitiveCode(i, s);
                if (h[v]++ == 0) touched_.push_back(v);
            }
        }
        std::sort(touched_.begin(), touched_.end());
        entries_.clear();
        for (uint32_t v : touched_) {
            entries_.push_back({v, h[v]});
            h[v] = 0;
        }
        return entries_;
    }

    using Ranges = std::vector<std::pair<size_t, size_t>>;

    // Splits all records recursively; appends finished partitions as [begin, end) into `out`, in
    // record order.
    void run(Ranges& out) {
        prepareScratch();
        descend({0, rows(), -1}, out);
    }

    // As run(), on two threads (see MondrianConfig::twoThreadsFrom). The same partitions in the
    // same order: a partition's cuts depend only on its own records, whichever thread splits it
    // and whenever, and run() finishes them in record order, which sorting restores here.
    void runOnTwoThreads(Ranges& out) {
        prepareScratch();
        // The first cuts on this thread, largest partition first, until there are at least four
        // and none holds more than 3/8 of the records, so that the two threads' shares are about
        // even (at most kMaxShared: a long run of lopsided cuts is left to the threads). Their
        // histograms are not kept: whichever thread takes a partition counts it. Every cut made
        // here is a pass over its records on one thread, so no more are made than that.
        constexpr size_t kMinShared = 4, kMaxShared = 64;
        std::vector<Pending> shared{{0, rows(), -1}};
        auto splittable = [&](const Pending& p) { return p.end - p.begin >= 2 * config_.models.k; };
        auto bySize = [](const Pending& a, const Pending& b) {
            return a.end - a.begin != b.end - b.begin ? a.end - a.begin > b.end - b.begin : a.begin < b.begin;
        };
        for (;;) {
            std::sort(shared.begin(), shared.end(), bySize);
            const size_t largest = shared.front().end - shared.front().begin;
            if (!splittable(shared.front()) || shared.size() >= kMaxShared ||
                (shared.size() >= kMinShared && largest * 8 <= rows() * 3))
                break;
            const Pending p = shared.front();
            shared.erase(shared.begin());
            const size_t mid = split(p.begin, p.end, -1);
            for (const int saved : {leftHistogram_, rightHistogram_})
                if (saved >= 0) release(saved);
            if (mid == 0) {
                out.emplace_back(p.begin, p.end);
                continue;
            }
            shared.push_back({p.begin, p.begin + mid, -1});
            shared.push_back({p.begin + mid, p.end, -1});
        }
        std::sort(shared.begin(), shared.end(), bySize);
        std::atomic<size_t> next{0};
        auto work = [&](Partitioner& self, Ranges& into) {
            for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < shared.size();)
                self.descend(shared[i], into);
        };
        Partitioner helper(*this, Helper{});
        helper.prepareScratch();
        Ranges helperOut;
        // Without a second thread this one takes every partition.
        if (!detail::runBesideHelper([&] { work(helper, helperOut); }, [&] { work(*this, out); })) work(*this, out);
        out.insert(out.end(), helperOut.begin(), helperOut.end());
        std::sort(out.begin(), out.end());
    }

    // Per-split scratch, sized for the dimensions' domains.
    void prepareScratch() {
        histogramOfRank_.resize(q_);
        for (size_t d = 0; d < q_; ++d) histogramOfRank_[d].assign(dims_[d].leafOfRank.size(), 0);
        ranks_.resize(q_);
        offset_.assign(q_ + 1, 0);
        for (size_t d = 0; d < q_; ++d) offset_[d + 1] = offset_[d] + dims_[d].leafOfRank.size();
        parent_.assign(offset_[q_], 0);
    }

    struct Pending {
        size_t begin, end;
        int histogram;  // saved histogram of the partition (see split()), -1 = count it
    };
    // Splits `start` to the end, depth first, left side first: appends its finished partitions
    // in record order.
    void descend(Pending start, Ranges& out) {
        std::vector<Pending> stack{start};
        while (!stack.empty()) {
            const Pending p = stack.back();
            stack.pop_back();
            const size_t mid = p.end - p.begin >= 2 * config_.models.k ? split(p.begin, p.end, p.histogram) : 0;
            if (mid == 0) {
                out.emplace_back(p.begin, p.end);
                continue;
            }
            stack.push_back({p.begin + mid, p.end, rightHistogram_});
            stack.push_back({p.begin, p.begin + mid, leftHistogram_});
        }
    }

    // Per-record penalty of dimension d over records [begin, end), with its released label.
    void describe(size_t d, size_t begin, size_t end, std::string& label, double& cost) {
        const Dimension& dim = dims_[d];
        const Hierarchy& h = *dim.hierarchy;
        auto& histogram = histogramOfRank_[d];
        // The ranks present, from the records: a partition can be small and still span most of a
        // wide domain (dates), so nothing here walks the rank range.
        auto& present = describedRanks_;
        present.clear();
        for (size_t i = begin; i < end; ++i) {
            const uint32_t r = rank(i, d);
            if (histogram[r]++ == 0) present.push_back(r);
        }
        std::sort(present.begin(), present.end());
        const uint32_t lo = present.front(), hi = present.back();
        const auto distinct = static_cast<uint32_t>(present.size());
        cost = dim.cost(lo, hi, distinct);
        if (dim.numeric) {
            const std::string& a = h.label(0, dim.leafOfRank[lo]);
            label = lo == hi ? a : "[" + a + "-" + h.label(0, dim.leafOfRank[hi]) + "]";
        } else {
            int level = -1;
            const uint32_t covered = dim.coveredByCommonNode(lo, hi, &level);
            if (dim.valueSets && covered != distinct) {
                // The tightest description: the values themselves, in hierarchy order.
                label.clear();
                for (uint32_t r : present) {
                    if (!label.empty()) label += kValueSetSeparator;
                    label += h.label(0, dim.leafOfRank[r]);
                }
            } else {
                label = level < 0 ? std::string("*") : h.label(level, h.generalize(dim.leafOfRank[lo], level));
            }
        }
        for (uint32_t r : present) histogram[r] = 0;
    }

private:
    struct Cut {
        double gain;  // records x penalty removed in the cut dimension
        size_t dimension;
        uint32_t rank;  // strict: ranks <= rank go left; relaxed: the rank shared by both sides
        bool relaxed;
        // A regrouping cut of a categorical attribute (strict, hierarchy nodes): ranks in
        // [rank, last] go left (one child of the partition's lowest common node).
        uint32_t last = 0;
        bool interval = false;
    };

    // Chooses and makes the cut of records [begin, end) that removes the most penalty in its own
    // dimension among the cuts leaving both sides >= k (and, when declared, l-diverse / t-close).
    // Returns the size of the left side, 0 when no cut is allowed.
    // `saved` is a histogram of the partition saved by the split that made it, or -1 to count it
    // here. When the cut is made, leftHistogram_ / rightHistogram_ are the two sides' histograms for
    // those that will be split in turn (>= 2k records), else -1: the smaller side is counted and the
    // larger one is the partition's histogram minus it, so each level reads at most half the records.
    size_t split(size_t begin, size_t end, int saved) {
        const size_t n = end - begin;
        const uint64_t k = config_.models.k;
        // A side smaller than n / kBalance is allowed only when it is the only way to cut: a chain of
        // tiny cuts would make the recursion quadratic.
        const size_t smallest = std::max<size_t>(k, n / kBalance);
        // Per QI the histogram over ranks and the ranks present, ascending. Every loop below walks
        // the ranks present, never the range between the lowest and the highest: a partition
        // split on one QI still spans most of another's domain (10,000s of dates), and one walk of
        // a range per split made the partitioning quadratic in practice.
        if (saved >= 0) {
            const Saved& h = pool_[static_cast<size_t>(saved)];
            for (size_t d = 0; d < q_; ++d) {
                ranks_[d].assign(h.ranks.begin() + static_cast<ptrdiff_t>(h.start[d]),
                                 h.ranks.begin() + static_cast<ptrdiff_t>(h.start[d + 1]));
                for (uint32_t r : ranks_[d]) histogramOfRank_[d][r] = h.counts[offset_[d] + r];
            }
            release(saved);
        } else {
            for (auto& present : ranks_) present.clear();
            for (size_t i = begin; i < end; ++i) {
                const uint32_t* rec = record(i);
                for (size_t d = 0; d < q_; ++d) {
                    if (histogramOfRank_[d][rec[d]]++ == 0) ranks_[d].push_back(rec[d]);
                }
            }
            for (auto& present : ranks_) std::sort(present.begin(), present.end());
        }
        leftHistogram_ = rightHistogram_ = -1;
        cuts_.clear();
        relaxedCuts_.clear();
        for (size_t d = 0; d < q_; ++d) {
            const std::vector<uint32_t>& present = ranks_[d];
            if (present.size() < 2) continue;
            const Dimension& dim = dims_[d];
            const auto& histogram = histogramOfRank_[d];
            const auto m = static_cast<uint32_t>(present.size());
            const double whole = static_cast<double>(n) * dim.cost(present.front(), present.back(), m);
            auto gainOf = [&](size_t left, uint32_t lastLeft, uint32_t firstRight) {
                const uint32_t leftDistinct = lastLeft + 1, rightDistinct = m - firstRight;
                return whole - static_cast<double>(left) * dim.cost(present.front(), present[lastLeft], leftDistinct) -
                       static_cast<double>(n - left) * dim.cost(present[firstRight], present.back(), rightDistinct);
            };
            // Strict cuts: between two consecutive values present.
            std::optional<Cut> best, median, anyAllowed;
            size_t left = 0;
            bool medianSeen = false;
            for (uint32_t j = 0; j + 1 < m; ++j) {
                left += histogram[present[j]];
                if (n - left < k) break;
                if (left < k) continue;
                const Cut c{gainOf(left, j, j + 1), d, present[j], false};
                if (!anyAllowed || c.gain > anyAllowed->gain) anyAllowed = c;
                if (!medianSeen && left * 2 >= n) {
                    median = c;
                    medianSeen = true;
                }
                if (left >= smallest && n - left >= smallest && (!best || c.gain > best->gain)) best = c;
            }
            if (!best) best = anyAllowed;
            if (best) cuts_.push_back(*best);
            if (median && (!best || median->rank != best->rank)) cuts_.push_back(*median);
            if (!dim.numeric && !dim.valueSets) regroupingCuts(d, n, smallest, whole, present);
            if (config_.mode == MondrianMode::Relaxed) {
                // The left side takes exactly n / 2 records; those with the value at that position
                // go to both sides.
                size_t below = 0;
                for (uint32_t j = 0; j < m; ++j) {
                    const size_t here = histogram[present[j]];
                    if (below + here > n / 2) {
                        // below == n / 2 is the strict cut before this value, already a candidate.
                        if (below < n / 2) relaxedCuts_.push_back({gainOf(n / 2, j, j), d, present[j], true});
                        break;
                    }
                    below += here;
                }
            }
        }
        // Keep the partition's histogram for the sides' (parent_), and leave the scratch zero.
        for (size_t d = 0; d < q_; ++d) {
            for (uint32_t r : ranks_[d]) {
                parent_[offset_[d] + r] = histogramOfRank_[d][r];
                histogramOfRank_[d][r] = 0;
            }
        }
        auto byGain = [](const Cut& a, const Cut& b) {
            return a.gain != b.gain ? a.gain > b.gain : a.dimension < b.dimension;
        };
        std::sort(cuts_.begin(), cuts_.end(), byGain);
        std::sort(relaxedCuts_.begin(), relaxedCuts_.end(), byGain);
        for (const auto* list : {&cuts_, &relaxedCuts_}) {
            for (const Cut& c : *list) {
                const size_t d = c.dimension;
                size_t mid;
                if (c.interval) {
                    mid = partition(begin, end, [&](const uint32_t* r) { return r[d] >= c.rank && r[d] <= c.last; }) -
                          begin;
                } else if (!c.relaxed) {
                    mid = partition(begin, end, [&](const uint32_t* r) { return r[d] <= c.rank; }) - begin;
                } else {
                    // less | equal | greater; the first n / 2 go left.
                    const size_t lessEnd = partition(begin, end, [&](const uint32_t* r) { return r[d] < c.rank; });
                    partition(lessEnd, end, [&](const uint32_t* r) { return r[d] == c.rank; });
                    mid = n / 2;
                }
                if (mid == 0 || mid == n) continue;
                if (satisfies(begin, mid) && satisfies(begin + mid, n - mid)) {
                    saveSides(begin, mid, end);
                    clearParent();
                    return mid;
                }
            }
        }
        clearParent();
        return 0;
    }

    void clearParent() {
        for (size_t d = 0; d < q_; ++d)
            for (uint32_t r : ranks_[d]) parent_[offset_[d] + r] = 0;
    }

    // Histograms of the sides [begin, begin + mid) and [begin + mid, end) that will be split again.
    void saveSides(size_t begin, size_t mid, size_t end) {
        const size_t n = end - begin, twoK = 2 * config_.models.k;
        const bool leftSmaller = mid <= n - mid;
        const size_t smallBegin = leftSmaller ? begin : begin + mid, smallEnd = leftSmaller ? begin + mid : end;
        const bool needSmall = smallEnd - smallBegin >= twoK, needLarge = n - (smallEnd - smallBegin) >= twoK;
        if (!needSmall && !needLarge) return;
        // Each side's ranks are those of the partition (ranks_, ascending) where its count is not 0.
        const int small = acquire();
        {
            Saved& hs = pool_[static_cast<size_t>(small)];
            for (size_t i = smallBegin; i < smallEnd; ++i) {
                const uint32_t* rec = record(i);
                for (size_t d = 0; d < q_; ++d) ++hs.counts[offset_[d] + rec[d]];
            }
            for (size_t d = 0; d < q_; ++d) {
                for (uint32_t r : ranks_[d])
                    if (hs.counts[offset_[d] + r] != 0) hs.ranks.push_back(r);
                hs.start[d + 1] = hs.ranks.size();
            }
        }
        int large = -1;
        if (needLarge) {
            large = acquire();  // may move pool_'s elements: no reference into it is held across
            Saved& hl = pool_[static_cast<size_t>(large)];
            const Saved& hsmall = pool_[static_cast<size_t>(small)];
            for (size_t d = 0; d < q_; ++d) {
                for (uint32_t r : ranks_[d]) {
                    const size_t at = offset_[d] + r;
                    hl.counts[at] = parent_[at] - hsmall.counts[at];
                    if (hl.counts[at] != 0) hl.ranks.push_back(r);
                }
                hl.start[d + 1] = hl.ranks.size();
            }
        }
        int kept = small;
        if (!needSmall) {
            release(small);
            kept = -1;
        }
        leftHistogram_ = leftSmaller ? kept : large;
        rightHistogram_ = leftSmaller ? large : kept;
    }

    int acquire() {
        if (free_.empty()) {
            Saved s;
            s.counts.assign(offset_[q_], 0);
            s.start.assign(q_ + 1, 0);
            pool_.push_back(std::move(s));
            return static_cast<int>(pool_.size() - 1);
        }
        const int i = free_.back();
        free_.pop_back();
        return i;
    }
    // Zeroes the counts at the ranks present (the rest are zero already) and frees the slot.
    void release(int i) {
        Saved& s = pool_[static_cast<size_t>(i)];
        for (size_t d = 0; d < q_; ++d) {
            for (size_t j = s.start[d]; j < s.start[d + 1]; ++j) s.counts[offset_[d] + s.ranks[j]] = 0;
        }
        s.ranks.clear();
        std::fill(s.start.begin(), s.start.end(), 0);
        free_.push_back(i);
    }

private:
    // Cuts of categorical dimension d (released as hierarchy nodes) that regroup the children of the
    // partition's lowest common node instead of cutting their depth-first order in two: one child
    // against all the others. A side of two or more children stays under the common node, so this
    // is the only way to release a middle child's values under their own node in one cut (the
    // first and the last child are already order cuts). present and histogramOfRank_[d] describe
    // the partition, `whole` is its penalty in d. Both sides must have >= k records; balanced cuts
    // (>= smallest) are preferred, as for order cuts.
    void regroupingCuts(size_t d, size_t n, size_t smallest, double whole, const std::vector<uint32_t>& present) {
        const Dimension& dim = dims_[d];
        const Hierarchy& h = *dim.hierarchy;
        const auto& histogram = histogramOfRank_[d];
        const uint64_t k = config_.models.k;
        const auto m = static_cast<uint32_t>(present.size());
        std::optional<Cut> best, anyAllowed;
        auto consider = [&](const Cut& c, size_t left) {
            if (left < k || n - left < k) return;
            if (!anyAllowed || c.gain > anyAllowed->gain) anyAllowed = c;
            if (left >= smallest && n - left >= smallest && (!best || c.gain > best->gain)) best = c;
        };
        int level = -1;
        dim.coveredByCommonNode(present.front(), present.back(), &level);
        const int childLevel = level < 0 ? h.levels() - 1 : level - 1;
        if (childLevel < 0) return;
        // Children are runs of present (depth-first order); skip the first and the last.
        uint32_t start = 0;
        size_t runs = 0;
        while (start < m) {
            const uint32_t node = h.generalize(dim.leafOfRank[present[start]], childLevel);
            uint32_t stop = start;
            size_t records = 0;
            while (stop < m && h.generalize(dim.leafOfRank[present[stop]], childLevel) == node)
                records += histogram[present[stop++]];
            if (runs > 0 && stop < m) {
                const double own = dim.cost(present[start], present[stop - 1], stop - start);
                const double gain = whole - static_cast<double>(records) * own -
                                    static_cast<double>(n - records) * (whole / static_cast<double>(n));
                Cut c{gain, d, present[start], false};
                c.last = present[stop - 1];
                c.interval = true;
                consider(c, records);
            }
            ++runs;
            start = stop;
        }
        if (!best) best = anyAllowed;
        if (best) cuts_.push_back(*best);
    }

    void swapRecords(size_t a, size_t b) {
        uint32_t* x = records_ + a * width_;
        uint32_t* y = records_ + b * width_;
        std::swap_ranges(x, x + width_, y);
    }

    // Moves the records satisfying pred to the front of [begin, end); returns the boundary.
    template <typename Pred> size_t partition(size_t begin, size_t end, Pred pred) {
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

    uint32_t narrowCode(size_t i, size_t c) const {
        uint16_t code;
        std::memcpy(&code, narrow_ + i * narrowWidth_ + 2 * c, sizeof code);
        return code;
    }

    const MondrianConfig& config_;
    const std::vector<Dimension>& dims_;
    size_t q_, sensitive_, width_;
    std::vector<uint32_t> ownRecords_;  // empty in a helper, which borrows its owner's
    uint32_t* records_ = nullptr;
    size_t rows_ = 0;
    // After narrow(): the records, narrowWidth_ bytes each (16-bit codes, then the row id).
    const unsigned char* narrow_ = nullptr;
    size_t narrowWidth_ = 0;
    std::vector<SensitiveDomain> domains_;
    std::vector<std::vector<uint64_t>> histogram_;
    std::vector<uint32_t> touched_;
    std::vector<SensitiveCount> entries_;
    std::vector<uint64_t> scratch_;
    // Scratch of split() and describe(): per dimension a histogram over ranks, all zero between uses.
    std::vector<std::vector<uint32_t>> histogramOfRank_;
    std::vector<std::vector<uint32_t>> ranks_;  // split(): per QI the ranks present, ascending
    std::vector<uint32_t> describedRanks_;      // describe(): the ranks present
    std::vector<Cut> cuts_, relaxedCuts_;
    // Saved histograms of partitions waiting on the stack, flat over all dimensions (offset_[d] is
    // dimension d's first slot), all zero when free; parent_ holds the partition being split.
    std::vector<size_t> offset_;
    std::vector<uint32_t> parent_;
    struct Saved {
        std::vector<uint32_t> counts;  // flat over all QIs, zero where no rank is present
        std::vector<uint32_t> ranks;   // the ranks present, QI by QI, ascending within each
        std::vector<size_t> start;     // QI d's ranks are [start[d], start[d + 1])
    };
    std::vector<Saved> pool_;
    std::vector<int> free_;
    int leftHistogram_ = -1, rightHistogram_ = -1;
};

}  // namespace

// Non-uniform entropy of a local recoding (as ARX computes it for local recoding): every released
// cell costs log2(records whose released label in that column is the cell's label / records among
// those with the cell's original value). Partitions sharing a label share one released value, so
// counts are per label, not per partition. Per label, a histogram over ranks (an array reset
// through the ranks it touched) keeps this linear in the records, without hashing each cell.
namespace {

// Items 0 .. n - 1 grouped by groupOf(item) < groups (a counting sort): group g's items are
// order[start[g], start[g + 1]), ascending.
template <typename GroupOf>
void groupItems(size_t n, size_t groups, GroupOf groupOf, std::vector<size_t>& start, std::vector<uint32_t>& order) {
    start.assign(groups + 1, 0);
    for (size_t i = 0; i < n; ++i) ++start[groupOf(i) + 1];
    for (size_t g = 0; g < groups; ++g) start[g + 1] += start[g];
    order.resize(n);
    for (size_t i = 0; i < n; ++i) order[start[groupOf(i)]++] = static_cast<uint32_t>(i);
    for (size_t g = groups; g > 0; --g) start[g] = start[g - 1];
    start[0] = 0;
}

// Rearranges items (rows of `width` elements) so that item i becomes the one that was at
// order[i], without a copy of the items: one cycle of the permutation at a time. `placed` is
// scratch.
template <typename T>
void permuteInPlace(std::span<T> items, size_t width, const std::vector<uint32_t>& order, std::vector<bool>& placed) {
    const size_t n = order.size();
    placed.assign(n, false);
    std::vector<T> held(width);
    for (size_t start = 0; start < n; ++start) {
        if (placed[start] || order[start] == start) continue;
        std::copy_n(items.begin() + static_cast<ptrdiff_t>(start * width), width, held.begin());
        size_t at = start;
        for (;;) {
            placed[at] = true;
            const size_t from = order[at];
            if (from == start) break;
            std::copy_n(items.begin() + static_cast<ptrdiff_t>(from * width), width,
                        items.begin() + static_cast<ptrdiff_t>(at * width));
            at = from;
        }
        std::copy_n(held.begin(), width, items.begin() + static_cast<ptrdiff_t>(at * width));
    }
}

// The released classes: class c is made of the partitions (record ranges)
// ranges[offset[c], offset[c + 1]), which ended with the same labels; sizes[c] records.
struct ReleasedClasses {
    std::vector<std::pair<size_t, size_t>> ranges;
    std::vector<size_t> offset;
    std::vector<uint64_t> sizes;

    size_t size() const noexcept { return sizes.size(); }
    std::span<const std::pair<size_t, size_t>> of(size_t c) const noexcept {
        return {ranges.data() + offset[c], ranges.data() + offset[c + 1]};
    }
};

double nonUniformEntropy(const MondrianResult& result, const ReleasedClasses& classes, const Partitioner& partitioner,
                         const std::vector<Dimension>& dims, bool twoThreads) {
    const size_t q = dims.size(), count = classes.size();
    // Each quasi-identifier's sum is independent of the others': on two threads they are taken
    // one at a time from a shared counter, each thread with its own scratch, and added in QI order
    // at the end, so the sum is the same bits as on one thread.
    std::vector<double> ofQi(q, 0);
    std::atomic<size_t> next{0};
    auto work = [&] {
        std::vector<size_t> start;
        std::vector<uint32_t> byLabel, touched;
        std::vector<uint64_t> histogram;
        for (size_t d; (d = next.fetch_add(1, std::memory_order_relaxed)) < q;) {
            // The classes grouped by their label in d (a counting sort), then per label one
            // histogram over the ranks of its records: memory per class and per rank, not per
            // (label, value) pair.
            const size_t labels = result.labelTexts[d].size();
            groupItems(
                count, labels, [&](size_t c) { return result.labelIds[c * q + d]; }, start, byLabel);
            histogram.assign(dims[d].rankOfLeaf.size(), 0);
            double sum = 0;
            for (size_t l = 0; l < labels; ++l) {
                uint64_t records = 0;
                for (size_t j = start[l]; j < start[l + 1]; ++j) {
                    const uint32_t c = byLabel[j];
                    records += classes.sizes[c];
                    for (const auto& [begin, end] : classes.of(c)) {
                        for (size_t i = begin; i < end; ++i) {
                            const uint32_t r = partitioner.rank(i, d);
                            if (histogram[r]++ == 0) touched.push_back(r);
                        }
                    }
                }
                // Summed per label, then per QI: shorter sums round less than one over every cell.
                const double withLabel = std::log2(static_cast<double>(records));
                double ofLabel = 0;
                for (uint32_t r : touched) {
                    const auto f = static_cast<double>(histogram[r]);
                    ofLabel += f * (withLabel - std::log2(f));
                    histogram[r] = 0;
                }
                sum += ofLabel;
                touched.clear();
            }
            ofQi[d] = sum;
        }
    };
    // On one thread (or when no second one can be started) this one takes every QI.
    if (!(twoThreads && q > 1) || !detail::runBesideHelper(work, work)) work();
    double entropy = 0;
    for (double x : ofQi) entropy += x;
    return entropy;
}

}  // namespace

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
        if (!config.hierarchies[d])
            return invalidArgument("mondrian: quasi-identifier " + std::to_string(d) + " has no hierarchy");
        if (columns.qi[d].size() != n) return invalidArgument("mondrian: code columns differ in length");
        const uint32_t leaves = static_cast<uint32_t>(config.hierarchies[d]->leafCount());
        const CodeView codes = columns.qi[d];
        for (size_t i = 0; i < n; ++i) {
            if (const uint32_t code = codes[i]; code >= leaves) {
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

    // Penalties are relative to the values present in the input.
    std::vector<CertaintyPenaltyDomain> penalties;
    for (size_t d = 0; d < q; ++d) {
        const bool numeric = d < config.numeric.size() && config.numeric[d];
        std::vector<uint64_t> frequency(config.hierarchies[d]->leafCount(), 0);
        for (size_t i = 0; i < n; ++i) ++frequency[columns.qi[d][i]];
        if (config.valueSets && !numeric) {
            const Hierarchy& h = *config.hierarchies[d];
            for (uint32_t leaf = 0; leaf < frequency.size(); ++leaf) {
                if (frequency[leaf] != 0 && h.label(0, leaf).find(kValueSetSeparator) != std::string::npos) {
                    return invalidArgument("mondrian: the value '" + h.label(0, leaf) + "' of quasi-identifier '" +
                                           h.name() + "' contains '" + kValueSetSeparator +
                                           "', which separates the members of a released value set");
                }
            }
        }
        penalties.push_back(CertaintyPenaltyDomain::build(*config.hierarchies[d], numeric, frequency));
    }

    std::vector<Dimension> dims(q);
    for (size_t d = 0; d < q; ++d) {
        Dimension& dim = dims[d];
        const Hierarchy& h = *config.hierarchies[d];
        dim.hierarchy = &h;
        dim.penalty = &penalties[d];
        const auto leaves = static_cast<uint32_t>(h.leafCount());
        dim.leafOfRank.resize(leaves);
        std::iota(dim.leafOfRank.begin(), dim.leafOfRank.end(), 0U);
        dim.numeric = d < config.numeric.size() && config.numeric[d];
        dim.valueSets = config.valueSets && !dim.numeric;
        if (dim.numeric) {
            if (!h.numericLeaves()) {
                return invalidArgument("mondrian: quasi-identifier '" + h.name() +
                                       "' is numeric but its values are not numbers");
            }
            const auto& v = *h.numericLeaves();
            std::stable_sort(dim.leafOfRank.begin(), dim.leafOfRank.end(),
                             [&](uint32_t a, uint32_t b) { return v[a] < v[b]; });
            for (uint32_t leaf : dim.leafOfRank) dim.valueOfRank.push_back(v[leaf]);
        } else {
            // Depth-first: by ancestor from the top level down, then by leaf order.
            std::stable_sort(dim.leafOfRank.begin(), dim.leafOfRank.end(), [&](uint32_t a, uint32_t b) {
                for (int level = h.levels() - 1; level > 0; --level) {
                    const uint32_t na = h.generalize(a, level), nb = h.generalize(b, level);
                    if (na != nb) return na < nb;
                }
                return a < b;
            });
        }
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
    if (n >= config.twoThreadsFrom) partitioner.runOnTwoThreads(parts);
    else partitioner.run(parts);
    if (config.narrowRecords) partitioner.narrow();

    // Describe every partition, then merge those with identical descriptions into one released class.
    // A label is interned per QI once; a class is the tuple of its labels' ids.
    MondrianResult result;
    result.partitions = parts.size();
    ReleasedClasses classes;
    // NCP per QI: each partition's records times its per-record penalty, summed in partition order
    // (partitions merged into one class have the same labels, hence the same penalty).
    result.ncpPerAttribute.assign(q, 0);
    {
        std::vector<detail::StringInterner> labels(q);
        detail::TupleIndexer tuples(q);  // a class's q label ids
        tuples.reserve(parts.size());
        // Per class in order of discovery (sized for one class per partition, the most there can
        // be: no growth by doubling).
        std::vector<uint32_t> labelIds;  // [class * q + d]
        std::vector<uint32_t> classOfPart(parts.size()), firstRow;
        std::vector<uint64_t> sizes;
        labelIds.reserve(parts.size() * q);
        firstRow.reserve(parts.size());
        sizes.reserve(parts.size());
        std::vector<double> penalty(q);
        std::vector<uint32_t> ids(q);
        std::string label;
        // Partition p joins its class; ids and penalty hold its description.
        auto add = [&](size_t p) {
            const auto [begin, end] = parts[p];
            const uint32_t c = tuples.indexOf(ids.data());
            if (c == sizes.size()) {
                labelIds.insert(labelIds.end(), ids.begin(), ids.end());
                firstRow.push_back(UINT32_MAX);
                sizes.push_back(0);
            }
            classOfPart[p] = c;
            sizes[c] += end - begin;
            for (size_t d = 0; d < q; ++d) result.ncpPerAttribute[d] += static_cast<double>(end - begin) * penalty[d];
            for (size_t i = begin; i < end; ++i) firstRow[c] = std::min(firstRow[c], partitioner.rowId(i));
        };
        // On two threads (config.twoThreadsFrom), a chunk of partitions at a time: a helper
        // describes the second half of the chunk into a buffer while this thread describes and adds
        // the first half, then adds the second from the buffer, in order — labels and classes are
        // interned in the same order as on one thread.
        std::optional<Partitioner> helper;
        if (n >= config.twoThreadsFrom) {
            helper.emplace(partitioner, Partitioner::Helper{});
            helper->prepareScratch();
        }
        std::string describedBytes;          // the helper's labels, one after the other
        std::vector<uint32_t> describedEnd;  // [partition in the half * q + d]: where a label ends
        std::vector<double> describedPenalty;
        // A chunk is at most kChunkRows records (a value set's label grows with its partition's
        // values: the buffer stays bounded by records, not by partitions).
        constexpr size_t kChunkRows = size_t{1} << 17;
        for (size_t first = 0, last = 0; first < parts.size(); first = last) {
            for (size_t rows = 0; last < parts.size() && (last == first || rows < kChunkRows); ++last)
                rows += parts[last].second - parts[last].first;
            const size_t mid = helper ? first + (last - first) / 2 : last;
            auto describeSecondHalf = [&] {
                std::string own;
                double cost = 0;
                describedBytes.clear();
                describedEnd.clear();
                describedPenalty.clear();
                for (size_t p = mid; p < last; ++p) {
                    for (size_t d = 0; d < q; ++d) {
                        helper->describe(d, parts[p].first, parts[p].second, own, cost);
                        describedBytes += own;
                        describedEnd.push_back(static_cast<uint32_t>(describedBytes.size()));
                        describedPenalty.push_back(cost);
                    }
                }
            };
            auto describeFirstHalf = [&] {
                for (size_t p = first; p < mid; ++p) {
                    for (size_t d = 0; d < q; ++d) {
                        partitioner.describe(d, parts[p].first, parts[p].second, label, penalty[d]);
                        ids[d] = labels[d].intern(label).first;
                    }
                    add(p);
                }
            };
            // Without a second half or a second thread, both halves in turn on this thread.
            if (mid == last || !detail::runBesideHelper(describeSecondHalf, describeFirstHalf)) {
                describeFirstHalf();
                if (mid < last) describeSecondHalf();
            }
            for (size_t p = mid, at = 0; p < last; ++p) {
                for (size_t d = 0; d < q; ++d, ++at) {
                    const size_t from = at == 0 ? 0 : describedEnd[at - 1];
                    ids[d] =
                        labels[d].intern(std::string_view(describedBytes).substr(from, describedEnd[at] - from)).first;
                    penalty[d] = describedPenalty[at];
                }
                add(p);
            }
        }
        // The class index is spent: free it, and the labels' indexes, before the numbering below.
        tuples = detail::TupleIndexer(q);
        for (auto& interner : labels) result.labelTexts.push_back(std::move(interner).strings());
        // Deterministic class numbering: by first row id. The per-class vectors are permuted in
        // place (no second copy of them at the peak).
        const size_t count = sizes.size();
        std::vector<uint32_t> order(count);
        std::iota(order.begin(), order.end(), 0U);
        std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return firstRow[a] < firstRow[b]; });
        heap::release(firstRow);
        std::vector<bool> placed;
        permuteInPlace(std::span(labelIds), q, order, placed);
        permuteInPlace(std::span(sizes), 1, order, placed);
        result.labelIds = std::move(labelIds);
        classes.sizes = std::move(sizes);
        // classOfPart as numbered.
        {
            std::vector<uint32_t> numberOf(count);
            for (size_t c = 0; c < count; ++c) numberOf[order[c]] = static_cast<uint32_t>(c);
            heap::release(order);
            for (uint32_t& c : classOfPart) c = numberOf[c];
        }
        // Each class's partitions, in the order they were made.
        std::vector<uint32_t> partOrder;
        groupItems(
            parts.size(), count, [&](size_t p) { return classOfPart[p]; }, classes.offset, partOrder);
        heap::release(classOfPart);
        permuteInPlace(std::span(parts), 1, partOrder, placed);
        classes.ranges = std::move(parts);
    }

    result.partitionOfRow.resize(n);
    result.partitionSizes.reserve(classes.size());
    for (size_t c = 0; c < classes.size(); ++c) {
        const uint64_t size = classes.sizes[c];
        for (const auto& [begin, end] : classes.of(c))
            for (size_t i = begin; i < end; ++i) result.partitionOfRow[partitioner.rowId(i)] = static_cast<uint32_t>(c);
        result.partitionSizes.push_back(size);
        result.achievedK = result.achievedK == 0 ? size : std::min<uint64_t>(result.achievedK, size);
        result.discernibility += static_cast<double>(size) * static_cast<double>(size);
        for (size_t s = 0; s < columns.sensitive.size(); ++s) {
            const auto hist = partitioner.sensitiveHistogram(s, classes.of(c));
            const double distinct = static_cast<double>(hist.size());
            const double entropyL = std::exp(model::entropy(hist, size));
            result.distinctL = result.distinctL ? std::min(*result.distinctL, distinct) : distinct;
            result.entropyL = result.entropyL ? std::min(*result.entropyL, entropyL) : entropyL;
            const double emd = partitioner.distance(s, hist, size);
            result.achievedT = result.achievedT ? std::max(*result.achievedT, emd) : emd;
        }
    }
    for (double& a : result.ncpPerAttribute) {
        a /= static_cast<double>(n);
        result.ncp += a;
    }
    result.ncp /= static_cast<double>(q);
    result.nonUniformEntropy = nonUniformEntropy(result, classes, partitioner, dims, n >= config.twoThreadsFrom);
    result.averageClassSize = static_cast<double>(n) / static_cast<double>(classes.size());
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

}  // namespace custodian::anon
