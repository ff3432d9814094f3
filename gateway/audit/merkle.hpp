#pragma once
// RFC 6962 / RFC 9162 Merkle tree over audit leaf hashes (SHA-256):
//   leaf hash  = SHA-256(0x00 ‖ entry bytes)
//   node hash  = SHA-256(0x01 ‖ left ‖ right)
//   MTH({})    = SHA-256("")
// MerkleTree keeps every complete, aligned subtree hash (level 0 = the leaf hashes, level j holds
// floor(n / 2^j) nodes): about 2 × 32 bytes per leaf, 64 MB for 1,000,000 leaves. Appending is O(1)
// amortised; the root of any prefix size and every proof take O(log n) hash operations.
//
// A tree made with a LeafReader keeps only the levels from `blockLevel` up, plus the lower levels
// of the last, incomplete block of 2^blockLevel leaves: 2 × 32 / 2^blockLevel bytes per leaf (64 KB
// per million leaves with blocks of 1024), so a long-running gateway's memory does not grow with
// its log. A root or proof that needs a node inside an older block reads that block's leaf hashes
// through the reader (at most two: the leaf's or the first size's, and the one the size ends in), and
// checks them against the block's kept root first: stored leaf hashes that were altered since the
// tree was built are reported (Internal), never used.
//
// The lead's database-backed log fills a MerkleTree from the stored leaf hashes at start-up and
// appends each committed entry. Thread-safety: const members may run concurrently with each other,
// not with append() — guard with a shared mutex. The reader is called from const members.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <span>
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
    // The leaf hashes with index in [begin, end), all of them, in order.
    using LeafReader = std::function<Result<std::vector<Hash>>(uint64_t begin, uint64_t end)>;

    MerkleTree() = default;
    explicit MerkleTree(const std::vector<Hash>& leafHashes);
    // An empty tree that keeps only whole blocks' roots and reads older leaves through `reader`.
    MerkleTree(LeafReader reader, unsigned blockLevel);

    void append(const Hash& leafHash);
    uint64_t size() const noexcept { return size_; }
    // Leaves per kept block (2^blockLevel), or 0 when every level is kept.
    uint64_t blockSize() const noexcept { return blockLevel_ < 64 ? uint64_t{1} << blockLevel_ : 0; }
    // The kept root of complete block `block` (leaves [block × blockSize(), (block + 1) × blockSize()));
    // never reads. InvalidArgument for a block that is not complete or a tree without blocks.
    Result<Hash> blockRoot(uint64_t block) const;
    // Called (from const members, so with the caller's locks held) when leaves read back through
    // the reader do not give a block's kept root: [begin, end) are the block's indices.
    using MismatchHandler = std::function<void(uint64_t begin, uint64_t end, const std::string& problem)>;
    void setMismatchHandler(MismatchHandler handler) { onMismatch_ = std::move(handler); }
    Result<Hash> leaf(uint64_t index) const;

    // MTH of the first `treeSize` leaves (treeSize ≤ size()).
    Result<Hash> rootAt(uint64_t treeSize) const;
    // MTH of the whole tree: never reads (the full size splits into kept blocks and the last one).
    Hash root() const;
    // RFC 6962 §2.1.1 PATH(index, D[treeSize]), ordered from the leaf upwards.
    Result<std::vector<Hash>> inclusionProof(uint64_t index, uint64_t treeSize) const;
    // The leaf and PATH of each of `indices` (ascending, each below treeSize) in D[treeSize]: an
    // older block is read once for the run of indices inside it, not once per proof.
    struct LeafProof {
        Hash leaf{};
        std::vector<Hash> path;
    };
    Result<std::vector<LeafProof>> inclusionProofs(std::span<const uint64_t> indices, uint64_t treeSize) const;
    // RFC 6962 §2.1.2 PROOF(first, D[second]); empty when first == second. 0 < first ≤ second.
    Result<std::vector<Hash>> consistencyProof(uint64_t first, uint64_t second) const;

    size_t memoryBytes() const;

private:
    // The older blocks one root or proof needed, read once per call, and the first error.
    struct Reads {
        std::map<uint64_t, std::vector<std::vector<Hash>>> blocks;  // block → its levels below blockLevel_
        Status error;
    };
    // The hash of the complete aligned subtree of 2^level leaves starting at `begin`.
    Hash nodeAt(unsigned level, uint64_t begin, Reads& reads) const;
    // MTH(D[begin:end)) for a range produced by the RFC recursion (begin is a multiple of the
    // largest power of two below end - begin, or the range is a complete aligned subtree).
    Hash rangeHash(uint64_t begin, uint64_t end, Reads& reads) const;
    void path(uint64_t index, uint64_t begin, uint64_t end, std::vector<Hash>& out, Reads& reads) const;
    void subproof(uint64_t first, uint64_t begin, uint64_t end, bool complete, std::vector<Hash>& out,
                  Reads& reads) const;
    const std::vector<std::vector<Hash>>* readBlock(uint64_t block, Reads& reads) const;

    uint64_t size_ = 0;
    std::vector<std::vector<Hash>> levels_;
    // levels_[j][0] is node levelBase_[j] of level j: nonzero only below blockLevel_, whose levels
    // hold just the last, incomplete block.
    std::vector<uint64_t> levelBase_;
    LeafReader reader_;
    MismatchHandler onMismatch_;
    unsigned blockLevel_ = 64;  // 64: every level kept
};

// Largest power of two strictly smaller than n (n ≥ 2).
uint64_t largestPowerOfTwoBelow(uint64_t n);

}  // namespace custodian::audit
