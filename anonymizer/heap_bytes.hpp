#pragma once
// What standard containers take from the heap, as glibc's malloc sizes their blocks: for memory
// accounting that counts structures from their sizes and capacities instead of measuring them (the
// gateway's release memory budget).

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace custodian::anon::heap {

// Empties a container and gives its memory back. (`c = {}` does not: for std::vector and the
// unordered containers it is the initializer-list assignment, which keeps the capacity.)
template <typename Container> void release(Container& c) noexcept { Container().swap(c); }

// The block glibc's malloc takes for a request of `n` bytes: 8 bytes of header, 16-byte
// granularity, 32 bytes at least.
inline uint64_t mallocBlock(uint64_t n) { return std::max<uint64_t>(32, (n + 8 + 15) / 16 * 16); }

// The heap block of a std::string's characters (none when they fit its inline buffer).
inline uint64_t stringHeap(size_t length) { return length > 15 ? mallocBlock(length + 1) : 0; }

// One node of a std::unordered_map/set holding `value` bytes (next pointer, value, cached hash),
// and its share of the bucket array.
inline uint64_t hashNode(uint64_t value) { return mallocBlock(8 + value + 8) + 8; }

// The whole pages inside bytes [from, to) of a block that starts at address `base`, as an offset
// from `base` and a length (0 when no whole page lies inside: a range smaller than a page, or
// within one).
struct PageSpan {
    size_t offset = 0;
    size_t length = 0;
};
inline PageSpan wholePages(uintptr_t base, size_t from, size_t to, size_t page) {
    if (to <= from || page == 0) return {};
    const uintptr_t first = (base + from + page - 1) / page * page;  // rounded up
    const uintptr_t last = (base + to) / page * page;                // rounded down
    if (last <= first) return {};
    return {static_cast<size_t>(first - base), static_cast<size_t>(last - first)};
}

// Hands the whole pages inside bytes [from, to) of the block at `block` back to the system
// (MADV_DONTNEED: reading them again would give zeros). For the unused tail of a block the caller
// keeps but will not touch again. Advice only: when it is not taken the pages stay resident.
void returnPages(void* block, size_t from, size_t to) noexcept;

}  // namespace custodian::anon::heap
