#pragma once
// Independent verification of Merkle proofs, written from RFC 9162 §2.1.3.2 (inclusion) and
// §2.1.4.2 (consistency). Deliberately shares no code with the proof generator in merkle.cpp other
// than the node hash, so that tests checking generated proofs with it mean something. Auditors'
// tools and the online `audit verify` use these.

#include <cstdint>
#include <span>

#include "gateway/audit/merkle.hpp"

namespace custodian::audit {

// True iff `inclusionPath` proves that `leafHash` is leaf `leafIndex` of the tree of `treeSize`
// leaves whose root is `rootHash`.
[[nodiscard]] bool verifyInclusion(uint64_t leafIndex, uint64_t treeSize, const Hash& leafHash,
                                   std::span<const Hash> inclusionPath, const Hash& rootHash);

// True iff `consistencyPath` proves that the tree of `first` leaves with root `firstHash` is a
// prefix of the tree of `second` leaves with root `secondHash`. first == second needs an empty
// path and equal roots; first == 0 is consistent with anything (empty path).
[[nodiscard]] bool verifyConsistency(uint64_t first, uint64_t second, const Hash& firstHash, const Hash& secondHash,
                                     std::span<const Hash> consistencyPath);

}  // namespace custodian::audit
