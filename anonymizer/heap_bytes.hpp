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

}  // namespace custodian::anon::heap
