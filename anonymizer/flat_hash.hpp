#pragma once
// Internal open-addressing hash tables for the search hot paths (class counting, frequency tables).
// Linear probing, power-of-two capacity, no deletion. Not thread-safe; one per thread.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace custodian::anon::detail {

__extension__ typedef unsigned __int128 Uint128;

inline uint64_t mixHash(uint64_t x) noexcept {
    // splitmix64 finalizer: cheap and spreads packed small codes over all bits.
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
inline uint64_t mixHash(Uint128 x) noexcept {
    const uint64_t high = static_cast<uint64_t>(x >> 64) + uint64_t{0x9e3779b97f4a7c15ULL};
    return mixHash(static_cast<uint64_t>(static_cast<uint64_t>(x) ^ mixHash(high)));
}

inline size_t capacityFor(size_t expected) noexcept {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    return cap;
}

// Maps keys to dense indexes 0,1,2,... in order of first insertion. reset() reuses the allocation,
// clearing only the slots used (generation stamps), so repeated small groupings stay cheap.
template <typename Key> class DenseIndexer {
public:
    // Prepares for up to `expected` distinct keys (more are accepted: the table grows). Only the
    // first capacityFor(expected) slots are probed, so small groupings stay in cache.
    void reset(size_t expected) {
        const size_t cap = capacityFor(expected);
        if (cap > slots_.size()) slots_.resize(cap);
        nextGeneration();
        mask_ = cap - 1;
        size_ = 0;
    }
    // Returns the dense index of key, inserting it with index size() if new.
    uint32_t indexOf(Key key) {
        if ((size_ + 1) * 2 > mask_ + 1) grow();
        size_t i = static_cast<size_t>(mixHash(key)) & mask_;
        for (;;) {
            Slot& s = slots_[i];
            if (s.generation != generation_) {
                s.generation = generation_;
                s.key = key;
                s.index = static_cast<uint32_t>(size_++);
                return s.index;
            }
            if (s.key == key) return s.index;
            i = (i + 1) & mask_;
        }
    }
    // Index of key or UINT32_MAX.
    uint32_t find(Key key) const noexcept {
        if (slots_.empty()) return UINT32_MAX;
        size_t i = static_cast<size_t>(mixHash(key)) & mask_;
        for (;;) {
            const Slot& s = slots_[i];
            if (s.generation != generation_) return UINT32_MAX;
            if (s.key == key) return s.index;
            i = (i + 1) & mask_;
        }
    }
    size_t size() const noexcept { return size_; }
    size_t memoryBytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

private:
    void nextGeneration() {
        if (++generation_ == 0) {
            for (auto& s : slots_) s.generation = 0;
            generation_ = 1;
        }
    }
    void grow() {
        std::vector<Slot> live;
        live.reserve(size_);
        if (!slots_.empty()) {
            for (size_t i = 0; i <= mask_; ++i) {
                if (slots_[i].generation == generation_) live.push_back(slots_[i]);
            }
        }
        const size_t cap = slots_.empty() ? 16 : (mask_ + 1) * 2;
        if (cap > slots_.size()) slots_.resize(cap);
        nextGeneration();
        mask_ = cap - 1;
        for (const Slot& o : live) {
            size_t i = static_cast<size_t>(mixHash(o.key)) & mask_;
            while (slots_[i].generation == generation_) i = (i + 1) & mask_;
            slots_[i] = o;
            slots_[i].generation = generation_;
        }
    }

    struct Slot {
        Key key{};
        uint32_t index = 0;
        uint32_t generation = 0;
    };
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
    uint32_t generation_ = 1;
};

// Interns byte strings: each distinct string gets a dense id 0,1,2,... in order of first
// insertion; the bytes live in one arena (no allocation per string).
class StringInterner {
public:
    // The id of `value` and whether it was new.
    std::pair<uint32_t, bool> intern(std::string_view value) {
        if ((ends_.size() + 1) * 2 > slots_.size()) grow();
        const uint64_t hash = std::hash<std::string_view>{}(value);
        for (size_t i = static_cast<size_t>(hash) & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.id == kEmpty) {
                s = {hash, static_cast<uint32_t>(ends_.size())};
                bytes_.append(value);
                ends_.push_back(bytes_.size());
                return {s.id, true};
            }
            if (s.hash == hash && this->value(s.id) == value) return {s.id, false};
        }
    }
    // The id of `value`, or UINT32_MAX if it was never interned.
    uint32_t find(std::string_view value) const noexcept {
        if (slots_.empty()) return UINT32_MAX;
        const uint64_t hash = std::hash<std::string_view>{}(value);
        for (size_t i = static_cast<size_t>(hash) & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.id == kEmpty) return UINT32_MAX;
            if (s.hash == hash && this->value(s.id) == value) return s.id;
        }
    }
    std::string_view value(uint32_t id) const noexcept {
        const size_t begin = id == 0 ? 0 : ends_[id - 1];
        return {bytes_.data() + begin, ends_[id] - begin};
    }
    size_t size() const noexcept { return ends_.size(); }
    // Bytes allocated: slots, the byte arena and the string ends.
    size_t memoryBytes() const noexcept {
        return slots_.capacity() * sizeof(Slot) + bytes_.capacity() + ends_.capacity() * sizeof(size_t);
    }

private:
    static constexpr uint32_t kEmpty = UINT32_MAX;
    struct Slot {
        uint64_t hash = 0;
        uint32_t id = kEmpty;
    };
    void grow() {
        const size_t cap = slots_.empty() ? 64 : slots_.size() * 2;
        std::vector<Slot> old(cap);
        old.swap(slots_);
        mask_ = cap - 1;
        for (const Slot& o : old) {
            if (o.id == kEmpty) continue;
            size_t i = static_cast<size_t>(o.hash) & mask_;
            while (slots_[i].id != kEmpty) i = (i + 1) & mask_;
            slots_[i] = o;
        }
    }
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    std::string bytes_;
    std::vector<size_t> ends_;
};

// Maps fixed-width tuples of uint32 codes to dense indexes 0,1,2,... in order of first insertion;
// the tuples are stored back to back (index i at tuple(i)).
class TupleIndexer {
public:
    explicit TupleIndexer(size_t width) : width_(width) {}

    uint64_t hashOf(const uint32_t* tuple) const noexcept {
        uint64_t h = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < width_; ++i) h = mixHash(h ^ tuple[i]);
        return h;
    }
    // Starts loading the slot a later indexOf(…, hash) probes first: callers that know the hashes
    // of upcoming rows hide the cache miss of a large table.
    void prefetch(uint64_t hash) const noexcept {
        if (!slots_.empty()) __builtin_prefetch(&slots_[static_cast<size_t>(hash) & mask_]);
    }
    uint32_t indexOf(const uint32_t* tuple) { return indexOf(tuple, hashOf(tuple)); }
    // `hash` must be hashOf(tuple).
    uint32_t indexOf(const uint32_t* tuple, uint64_t hash) {
        if ((size_ + 1) * 2 > slots_.size()) grow();
        for (size_t i = static_cast<size_t>(hash) & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.index == kEmpty) {
                s = {hash, static_cast<uint32_t>(size_++)};
                tuples_.insert(tuples_.end(), tuple, tuple + width_);
                return s.index;
            }
            if (s.hash == hash && equal(this->tuple(s.index), tuple)) return s.index;
        }
    }
    const uint32_t* tuple(uint32_t index) const noexcept { return tuples_.data() + size_t{index} * width_; }
    size_t size() const noexcept { return size_; }
    size_t width() const noexcept { return width_; }
    // Bytes allocated: slots and the stored tuples.
    size_t memoryBytes() const noexcept {
        return slots_.capacity() * sizeof(Slot) + tuples_.capacity() * sizeof(uint32_t);
    }

private:
    static constexpr uint32_t kEmpty = UINT32_MAX;
    struct Slot {
        uint64_t hash = 0;
        uint32_t index = kEmpty;
    };
    bool equal(const uint32_t* a, const uint32_t* b) const noexcept {
        for (size_t i = 0; i < width_; ++i)
            if (a[i] != b[i]) return false;
        return true;
    }
    void grow() {
        const size_t cap = slots_.empty() ? 64 : slots_.size() * 2;
        std::vector<Slot> old(cap);
        old.swap(slots_);
        mask_ = cap - 1;
        for (const Slot& o : old) {
            if (o.index == kEmpty) continue;
            size_t i = static_cast<size_t>(o.hash) & mask_;
            while (slots_[i].index != kEmpty) i = (i + 1) & mask_;
            slots_[i] = o;
        }
    }
    size_t width_;
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    std::vector<uint32_t> tuples_;
    size_t size_ = 0;
};

}  // namespace custodian::anon::detail
