#pragma once
// RFC 6962 / RFC 9162 Merkle tree over audit leaf hashes (SHA-256):
//   leaf hash  = SHA-256(0x00 ‖ entry bytes)
//   node hash  = SHA-256(0x01 ‖ left ‖ right)
//   MTH({})    = SHA-256("")
// MerkleTree keeps every complete, aligned subtree hash (level 0 = the leaf hashes, level j holds
// floor(n / 2^j) nodes): about 2 × 32 bytes per leaf, 64 MB for 1,000,000 leaves. Appending is O(1)
// amortised; the root of any prefix size and every proof take O(log n) hash operations.
//
// The lead's database-backed log fills a MerkleTree from the stored leaf hashes at start-up and
// appends each committed entry. Thread-safety: const members may run concurrently with each other,
// not with append() — guard with a shared mutex.

#include <array>
#include <cstdint>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/crypto/digest.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::audit {

using Hash = crypto::Sha256Digest;
using crypto::ByteView;

Hash leafHash(ByteView entryBytes);
Hash nodeHash(const Hash& left, const Hash& right);
Hash emptyTreeHash();

class MerkleTree {
public:
    MerkleTree() = default;
    explicit MerkleTree(const std::vector<Hash>& leafHashes);

    void append(const Hash& leafHash);
    uint64_t size() const noexcept { return levels_.empty() ? 0 : levels_[0].size(); }
    const Hash& leaf(uint64_t index) const { return levels_[0][index]; }

    // MTH of the first `treeSize` leaves (treeSize ≤ size()).
    Result<Hash> rootAt(uint64_t treeSize) const;
    Hash root() const;
    // RFC 6962 §2.1.1 PATH(index, D[treeSize]), ordered from the leaf upwards.
    Result<std::vector<Hash>> inclusionProof(uint64_t index, uint64_t treeSize) const;
    // RFC 6962 §2.1.2 PROOF(first, D[second]); empty when first == second. 0 < first ≤ second.
    Result<std::vector<Hash>> consistencyProof(uint64_t first, uint64_t second) const;

    size_t memoryBytes() const;

private:
    // MTH(D[begin:end)) for a range produced by the RFC recursion (begin is a multiple of the
    // largest power of two below end - begin, or the range is a complete aligned subtree).
    Hash rangeHash(uint64_t begin, uint64_t end) const;
    void path(uint64_t index, uint64_t begin, uint64_t end, std::vector<Hash>& out) const;
    void subproof(uint64_t first, uint64_t begin, uint64_t end, bool complete, std::vector<Hash>& out) const;

    std::vector<std::vector<Hash>> levels_;
};

// Largest power of two strictly smaller than n (n ≥ 2).
uint64_t largestPowerOfTwoBelow(uint64_t n);

} // namespace custodian::audit
