#pragma once
// Internal open-addressing hash tables for the search hot paths (class counting, frequency tables).
// Linear probing, power-of-two capacity, no deletion. Not thread-safe; one per thread.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>
#include "anonymizer/heap_bytes.hpp"

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

// A hash of a byte string for the tables below: one multiply-mix per 8 bytes, the last word read
// overlapping the one before, so that the short texts of quasi-identifier columns (postcodes, dates,
// categories) cost a mix or two instead of std::hash's byte loop. Not for anything persisted.
inline uint64_t hashBytes(std::string_view s) noexcept {
    const char* p = s.data();
    size_t n = s.size();
    const uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t{n} * 0xff51afd7ed558ccdULL);
    auto load = [](const char* at, size_t bytes) {
        uint64_t v = 0;
        std::memcpy(&v, at, bytes);
        return v;
    };
    if (n > 8) {
        uint64_t h = seed;
        for (; n > 8; p += 8, n -= 8) h = mixHash(h ^ load(p, 8));
        return mixHash(h ^ load(s.data() + s.size() - 8, 8));
    }
    if (n >= 4) return mixHash(seed ^ (load(p, 4) | load(p + n - 4, 4) << 32));
    if (n > 0)
        return mixHash(seed ^ (uint64_t{static_cast<uint8_t>(p[0])} | uint64_t{static_cast<uint8_t>(p[n / 2])} << 8 |
                               uint64_t{static_cast<uint8_t>(p[n - 1])} << 16));
    return mixHash(seed);
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
    // Asks the cache for the slot where a search for `key` starts (a hint: the table may grow before
    // the key is looked up). Callers looking up many keys prefetch a few ahead, so that the cache
    // misses of a large table overlap instead of following each other.
    void prefetch(Key key) const noexcept {
        if (!slots_.empty()) __builtin_prefetch(&slots_[static_cast<size_t>(mixHash(key)) & mask_]);
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
    static constexpr size_t slotBytes() noexcept { return sizeof(Slot); }
    // Frees the slots; the next reset() allocates what it needs.
    void release() noexcept {
        heap::release(slots_);
        mask_ = 0;
        size_ = 0;
    }

private:
    struct Slot {
        Key key{};
        uint32_t index = 0;
        uint32_t generation = 0;
    };
    void nextGeneration() {
        if (++generation_ == 0) {
            for (auto& s : slots_) s.generation = 0;
            generation_ = 1;
        }
    }
    void grow() {
        const size_t cap = slots_.empty() ? 16 : (mask_ + 1) * 2;
        if (cap <= slots_.size()) {
            // Room enough from an earlier use: move the live slots aside, then re-insert them.
            std::vector<Slot> live;
            live.reserve(size_);
            for (size_t i = 0; i <= mask_; ++i) {
                if (slots_[i].generation == generation_) live.push_back(slots_[i]);
            }
            nextGeneration();
            mask_ = cap - 1;
            for (const Slot& o : live) place(o);
            return;
        }
        // A new, larger array, filled straight from the old one (no copy of the live slots, and
        // the old array is not copied into the new one as a resize would).
        std::vector<Slot> old(cap);
        old.swap(slots_);
        const uint32_t oldGeneration = generation_;
        const size_t oldSlots = mask_ + 1;
        generation_ = 1;
        mask_ = cap - 1;
        for (size_t i = 0; i < oldSlots && i < old.size(); ++i) {
            if (old[i].generation == oldGeneration) place(old[i]);
        }
    }
    void place(Slot slot) {
        size_t i = static_cast<size_t>(mixHash(slot.key)) & mask_;
        while (slots_[i].generation == generation_) i = (i + 1) & mask_;
        slot.generation = generation_;
        slots_[i] = slot;
    }

    std::vector<Slot> slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
    uint32_t generation_ = 1;
};

// Byte strings by dense id 0,1,2,..., in one arena (no allocation per string).
class StringArena {
public:
    uint32_t add(std::string_view value) {
        bytes_.append(value);
        ends_.push_back(bytes_.size());
        return static_cast<uint32_t>(ends_.size() - 1);
    }
    std::string_view operator[](uint32_t id) const noexcept {
        const size_t begin = id == 0 ? 0 : ends_[id - 1];
        return {bytes_.data() + begin, ends_[id] - begin};
    }
    size_t size() const noexcept { return ends_.size(); }
    size_t memoryBytes() const noexcept { return bytes_.capacity() + ends_.capacity() * sizeof(size_t); }

private:
    std::string bytes_;
    std::vector<size_t> ends_;
};

// Interns byte strings: each distinct string gets a dense id 0,1,2,... in order of first
// insertion; the bytes live in a StringArena.
class StringInterner {
public:
    // The id of `value` and whether it was new.
    std::pair<uint32_t, bool> intern(std::string_view value) {
        if ((strings_.size() + 1) * 2 > slots_.size()) grow();
        const uint64_t hash = hashBytes(value);
        for (size_t i = static_cast<size_t>(hash) & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.id == kEmpty) {
                s = {hash, strings_.add(value)};
                return {s.id, true};
            }
            if (s.hash == hash && this->value(s.id) == value) return {s.id, false};
        }
    }
    // The id of `value`, or UINT32_MAX if it was never interned.
    uint32_t find(std::string_view value) const noexcept {
        if (slots_.empty()) return UINT32_MAX;
        const uint64_t hash = hashBytes(value);
        for (size_t i = static_cast<size_t>(hash) & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.id == kEmpty) return UINT32_MAX;
            if (s.hash == hash && this->value(s.id) == value) return s.id;
        }
    }
    std::string_view value(uint32_t id) const noexcept { return strings_[id]; }
    size_t size() const noexcept { return strings_.size(); }
    // The strings, for keeping what was interned; the index is freed (the interner is spent).
    StringArena strings() && {
        heap::release(slots_);
        return std::move(strings_);
    }
    // Bytes allocated: slots, the byte arena and the string ends.
    size_t memoryBytes() const noexcept { return slots_.capacity() * sizeof(Slot) + strings_.memoryBytes(); }

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
    StringArena strings_;
};

// Row counts of dense groups 0, 1, 2, ..., four bytes each while counting: a count that passes
// 2^32 - 1 carries into a side table, so no count is ever wrong, however many rows one group has.
class GroupCounts {
public:
    void reserve(size_t groups) { counts_.reserve(groups); }
    size_t size() const noexcept { return counts_.size(); }
    // Adds `rows` to `group`; group == size() opens the next group.
    void add(uint32_t group, uint32_t rows = 1) {
        if (group == counts_.size()) counts_.push_back(0);
        const uint32_t before = counts_[group];
        counts_[group] = before + rows;
        if (counts_[group] < before) carries_[group] += uint64_t{1} << 32;
    }
    uint64_t count(uint32_t group) const {
        auto it = carries_.find(group);
        return counts_[group] + (it == carries_.end() ? 0 : it->second);
    }
    size_t memoryBytes() const noexcept {
        return counts_.size() * sizeof(uint32_t) + carries_.size() * 4 * sizeof(uint64_t);
    }
    // Every count, eight bytes each; the four-byte counts are freed.
    std::vector<uint64_t> take() && {
        std::vector<uint64_t> out(counts_.begin(), counts_.end());
        heap::release(counts_);
        for (const auto& [group, carried] : carries_) out[group] += carried;
        carries_.clear();
        return out;
    }

private:
    std::vector<uint32_t> counts_;
    std::unordered_map<uint32_t, uint64_t> carries_;
};

// Maps fixed-width tuples of uint32 codes to dense indexes 0,1,2,... in order of first insertion.
// The tuples are kept column by column (column(c) holds code c of every tuple), so that a caller can
// take them over as columns; a slot holds the tuple's index and the upper 32 bits of its hash (8
// bytes, at most three quarters full), and a lookup compares codes only when those bits match. A
// tuple's first slot is given by the top bits of its hash, so the stored bits alone place it again
// when the slots double: growing reads the old slots in order and writes the new ones almost in
// order, without reading a tuple or hashing it again.
class TupleIndexer {
public:
    explicit TupleIndexer(size_t width) : columns_(width) {}

    uint64_t hashOf(const uint32_t* tuple) const noexcept {
        uint64_t h = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < columns_.size(); ++i) h = mixHash(h ^ tuple[i]);
        return h;
    }
    // Starts loading the slot a later indexOf(…, hash) probes first: callers that know the hashes
    // of upcoming rows hide the cache miss of a large table.
    void prefetch(uint64_t hash) const noexcept {
        if (!slots_.empty()) __builtin_prefetch(&slots_[home(static_cast<uint32_t>(hash >> 32))]);
    }
    uint32_t indexOf(const uint32_t* tuple) { return indexOf(tuple, hashOf(tuple)); }
    // `hash` must be hashOf(tuple).
    uint32_t indexOf(const uint32_t* tuple, uint64_t hash) {
        if ((size_ + 1) * 4 > slots_.size() * 3) grow();
        const auto tag = static_cast<uint32_t>(hash >> 32);
        for (size_t i = home(tag);; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.index == kEmpty) {
                s = {tag, static_cast<uint32_t>(size_)};
                for (size_t c = 0; c < columns_.size(); ++c) columns_[c].push_back(tuple[c]);
                return static_cast<uint32_t>(size_++);
            }
            if (s.tag == tag && equal(s.index, tuple)) return s.index;
        }
    }
    uint32_t code(uint32_t index, size_t column) const noexcept { return columns_[column][index]; }
    size_t size() const noexcept { return size_; }
    size_t width() const noexcept { return columns_.size(); }
    // Room for this many tuples in the columns, allocated now (untouched pages cost no memory).
    void reserve(size_t tuples) {
        for (auto& column : columns_) column.reserve(tuples);
    }
    // Bytes in use: the slots and the stored tuples (not the columns' reserve, which is address
    // space until written).
    size_t memoryBytes() const noexcept {
        size_t bytes = slots_.capacity() * sizeof(Slot);
        for (const auto& column : columns_) bytes += column.size() * sizeof(uint32_t);
        return bytes;
    }
    // The tuples, column by column; the index is freed and must not be used again.
    std::vector<std::vector<uint32_t>> takeColumns() && {
        heap::release(slots_);
        size_ = 0;
        return std::move(columns_);
    }

private:
    static constexpr uint32_t kEmpty = UINT32_MAX;
    struct Slot {
        uint32_t tag = 0;  // the hash's upper 32 bits
        uint32_t index = kEmpty;
    };
    bool equal(uint32_t index, const uint32_t* tuple) const noexcept {
        for (size_t c = 0; c < columns_.size(); ++c)
            if (columns_[c][index] != tuple[c]) return false;
        return true;
    }
    // The first slot of a tuple whose hash has upper bits `tag`: the top log2(slots) bits.
    size_t home(uint32_t tag) const noexcept { return static_cast<size_t>(tag) >> homeShift_; }
    void grow() {
        constexpr size_t kMaxSlots = size_t{1} << 32;  // homes come from the 32 stored bits
        const size_t cap = slots_.empty() ? 64 : slots_.size() * 2;
        if (cap > kMaxSlots) throw std::length_error("too many distinct tuples to index");
        std::vector<Slot> old(cap);
        old.swap(slots_);
        mask_ = cap - 1;
        homeShift_ = 32 - static_cast<unsigned>(std::countr_zero(cap));
        for (const Slot& o : old) {
            if (o.index == kEmpty) continue;
            size_t i = home(o.tag);
            while (slots_[i].index != kEmpty) i = (i + 1) & mask_;
            slots_[i] = o;
        }
    }
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    unsigned homeShift_ = 32;
    std::vector<std::vector<uint32_t>> columns_;
    size_t size_ = 0;
};

}  // namespace custodian::anon::detail
