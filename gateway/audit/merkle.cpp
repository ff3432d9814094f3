#include "gateway/audit/merkle.hpp"

#include <openssl/evp.h>

#include <bit>
#include <cstring>

namespace custodian::audit {

namespace {

// Merkle hashing runs once per entry and once per node while verifying a million-entry export, so
// it uses OpenSSL's SHA-256 (SHA-NI / AVX2 where the CPU has them; ~4x libsodium's portable code).
// One fetched EVP_MD per process and one context per thread, reused for every hash.
class MerkleHasher {
public:
    MerkleHasher() : ctx_(EVP_MD_CTX_new()) {}
    ~MerkleHasher() { EVP_MD_CTX_free(ctx_); }
    MerkleHasher(const MerkleHasher&) = delete;
    MerkleHasher& operator=(const MerkleHasher&) = delete;

    Hash hash(uint8_t prefix, ByteView a, ByteView b = {}) {
        static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        Hash out{};
        unsigned int length = 0;
        if (md == nullptr || ctx_ == nullptr || EVP_DigestInit_ex2(ctx_, md, nullptr) != 1 ||
            EVP_DigestUpdate(ctx_, &prefix, 1) != 1 || EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
            (!b.empty() && EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1) ||
            EVP_DigestFinal_ex(ctx_, out.data(), &length) != 1) {
            return fallback(prefix, a, b);
        }
        return out;
    }

private:
    // The same function through crypto::Sha256 (which falls back to libsodium), if this context fails.
    static Hash fallback(uint8_t prefix, ByteView a, ByteView b) {
        crypto::Sha256 h;
        h.update({&prefix, 1});
        h.update(a);
        h.update(b);
        return h.finish();
    }
    EVP_MD_CTX* ctx_;
};

MerkleHasher& hasher() {
    thread_local MerkleHasher instance;
    return instance;
}

}  // namespace

Hash leafHash(ByteView entryBytes) { return hasher().hash(0x00, entryBytes); }

Hash nodeHash(const Hash& left, const Hash& right) { return hasher().hash(0x01, left, right); }

Hash emptyTreeHash() { return crypto::sha256({}); }

uint64_t largestPowerOfTwoBelow(uint64_t n) { return std::bit_floor(n - 1); }

MerkleTree::MerkleTree(const std::vector<Hash>& leafHashes) {
    if (leafHashes.empty()) return;
    size_ = leafHashes.size();
    levels_.push_back(leafHashes);
    for (size_t j = 0; levels_[j].size() >= 2; ++j) {
        const auto& below = levels_[j];
        std::vector<Hash> above(below.size() / 2);
        for (size_t i = 0; i < above.size(); ++i) above[i] = nodeHash(below[2 * i], below[2 * i + 1]);
        levels_.push_back(std::move(above));
    }
    levelBase_.assign(levels_.size(), 0);
}

MerkleTree::MerkleTree(LeafReader reader, unsigned blockLevel)
    : reader_(std::move(reader)), blockLevel_(std::min(blockLevel, 63u)) {}

void MerkleTree::append(const Hash& leaf) {
    if (levels_.empty()) {
        levels_.emplace_back();
        levelBase_.push_back(0);
    }
    levels_[0].push_back(leaf);
    ++size_;
    // Complete every subtree that this leaf closes (node counts are levelBase_ + size()).
    for (size_t j = 0; (levelBase_[j] + levels_[j].size()) % 2 == 0; ++j) {
        if (levels_.size() == j + 1) {
            levels_.emplace_back();
            levelBase_.push_back((levelBase_[j] + levels_[j].size()) / 2 - 1);
        }
        const auto& below = levels_[j];
        levels_[j + 1].push_back(nodeHash(below[below.size() - 2], below[below.size() - 1]));
        if (j + 1 == blockLevel_) {
            // A block is complete: its root is kept, the levels below start the next block.
            const uint64_t blocks = levelBase_[blockLevel_] + levels_[blockLevel_].size();
            for (size_t k = 0; k < blockLevel_; ++k) {
                levels_[k].clear();
                levelBase_[k] = blocks << (blockLevel_ - k);
            }
        }
    }
}

const std::vector<std::vector<Hash>>* MerkleTree::readBlock(uint64_t block, Reads& reads) const {
    if (auto it = reads.blocks.find(block); it != reads.blocks.end()) return &it->second;
    if (!reads.error) return nullptr;
    const uint64_t width = uint64_t{1} << blockLevel_;
    auto leaves = reader_ ? reader_(block * width, (block + 1) * width)
                          : Result<std::vector<Hash>>(internalError("no reader for older Merkle leaves"));
    if (!leaves) {
        reads.error = leaves.status();
        return nullptr;
    }
    if (leaves->size() != width) {
        reads.error =
            Status(StatusCode::Internal, "the stored leaf hashes of entries " + std::to_string(block * width) + " to " +
                                             std::to_string((block + 1) * width - 1) + " are incomplete");
        return nullptr;
    }
    std::vector<std::vector<Hash>> levels{std::move(leaves).value()};
    for (unsigned j = 0; j < blockLevel_; ++j) {
        const auto& below = levels[j];
        std::vector<Hash> above(below.size() / 2);
        for (size_t i = 0; i < above.size(); ++i) above[i] = nodeHash(below[2 * i], below[2 * i + 1]);
        levels.push_back(std::move(above));
    }
    if (levels.back()[0] != levels_[blockLevel_][block - levelBase_[blockLevel_]]) {
        reads.error = Status(StatusCode::Internal,
                             "the stored leaf hashes of entries " + std::to_string(block * width) + " to " +
                                 std::to_string((block + 1) * width - 1) +
                                 " do not match the tree built when they were appended: the audit table was altered");
        if (onMismatch_) onMismatch_(block * width, (block + 1) * width, reads.error.message());
        return nullptr;
    }
    levels.pop_back();
    return &reads.blocks.emplace(block, std::move(levels)).first->second;
}

Hash MerkleTree::nodeAt(unsigned level, uint64_t begin, Reads& reads) const {
    const uint64_t index = begin >> level;
    if (index >= levelBase_[level]) return levels_[level][index - levelBase_[level]];
    // Below the kept levels, in an older block.
    const uint64_t block = begin >> blockLevel_;
    const auto* levels = readBlock(block, reads);
    if (!levels) return Hash{};  // reads.error says why
    return (*levels)[level][index - (block << (blockLevel_ - level))];
}

Hash MerkleTree::rangeHash(uint64_t begin, uint64_t end, Reads& reads) const {
    const uint64_t n = end - begin;
    if (std::has_single_bit(n) && begin % n == 0)
        return nodeAt(static_cast<unsigned>(std::countr_zero(n)), begin, reads);
    const uint64_t k = largestPowerOfTwoBelow(n);
    return nodeHash(rangeHash(begin, begin + k, reads), rangeHash(begin + k, end, reads));
}

Result<Hash> MerkleTree::blockRoot(uint64_t block) const {
    const uint64_t width = blockSize();
    if (width == 0 || levels_.size() <= blockLevel_ || block >= size_ / width)
        return invalidArgument("block " + std::to_string(block) + " is not a complete block of this tree");
    return levels_[blockLevel_][block - levelBase_[blockLevel_]];
}

Result<Hash> MerkleTree::leaf(uint64_t index) const {
    if (index >= size_) return invalidArgument("leaf " + std::to_string(index) + " is beyond the log");
    Reads reads;
    Hash h = nodeAt(0, index, reads);
    if (!reads.error) return reads.error;
    return h;
}

Result<Hash> MerkleTree::rootAt(uint64_t treeSize) const {
    if (treeSize > size()) {
        return invalidArgument("tree size " + std::to_string(treeSize) + " is larger than the log (" +
                               std::to_string(size()) + " entries)");
    }
    if (treeSize == 0) return emptyTreeHash();
    Reads reads;
    Hash h = rangeHash(0, treeSize, reads);
    if (!reads.error) return reads.error;
    return h;
}

Hash MerkleTree::root() const {
    if (size_ == 0) return emptyTreeHash();
    Reads reads;
    return rangeHash(0, size_, reads);
}

void MerkleTree::path(uint64_t index, uint64_t begin, uint64_t end, std::vector<Hash>& out, Reads& reads) const {
    const uint64_t n = end - begin;
    if (n == 1) return;
    const uint64_t k = largestPowerOfTwoBelow(n);
    if (index < begin + k) {
        path(index, begin, begin + k, out, reads);
        out.push_back(rangeHash(begin + k, end, reads));
    } else {
        path(index, begin + k, end, out, reads);
        out.push_back(rangeHash(begin, begin + k, reads));
    }
}

Result<std::vector<Hash>> MerkleTree::inclusionProof(uint64_t index, uint64_t treeSize) const {
    if (treeSize > size()) {
        return invalidArgument("tree_size " + std::to_string(treeSize) + " is larger than the log (" +
                               std::to_string(size()) + " entries)");
    }
    if (index >= treeSize) {
        return invalidArgument("index " + std::to_string(index) + " is not below tree_size " +
                               std::to_string(treeSize));
    }
    std::vector<Hash> out;
    Reads reads;
    path(index, 0, treeSize, out, reads);
    if (!reads.error) return reads.error;
    return out;
}

Result<std::vector<MerkleTree::LeafProof>> MerkleTree::inclusionProofs(std::span<const uint64_t> indices,
                                                                       uint64_t treeSize) const {
    if (treeSize > size()) {
        return invalidArgument("tree_size " + std::to_string(treeSize) + " is larger than the log (" +
                               std::to_string(size()) + " entries)");
    }
    std::vector<LeafProof> out;
    out.reserve(indices.size());
    Reads reads;
    uint64_t block = UINT64_MAX;
    for (size_t i = 0; i < indices.size(); ++i) {
        const uint64_t index = indices[i];
        if (index >= treeSize)
            return invalidArgument("index " + std::to_string(index) + " is not below tree_size " +
                                   std::to_string(treeSize));
        if (i > 0 && index <= indices[i - 1]) return invalidArgument("the indices must be ascending");
        // Blocks an earlier index needed are not needed again: keep one block's levels at a time.
        const uint64_t b = blockLevel_ >= 64 ? 0 : index >> blockLevel_;
        if (b != block) {
            reads.blocks.clear();
            block = b;
        }
        LeafProof p;
        p.leaf = nodeAt(0, index, reads);
        path(index, 0, treeSize, p.path, reads);
        if (!reads.error) return reads.error;
        out.push_back(std::move(p));
    }
    return out;
}

void MerkleTree::subproof(uint64_t first, uint64_t begin, uint64_t end, bool complete, std::vector<Hash>& out,
                          Reads& reads) const {
    const uint64_t n = end - begin;
    if (first == n) {
        if (!complete) out.push_back(rangeHash(begin, end, reads));
        return;
    }
    const uint64_t k = largestPowerOfTwoBelow(n);
    if (first <= k) {
        subproof(first, begin, begin + k, complete, out, reads);
        out.push_back(rangeHash(begin + k, end, reads));
    } else {
        subproof(first - k, begin + k, end, false, out, reads);
        out.push_back(rangeHash(begin, begin + k, reads));
    }
}

Result<std::vector<Hash>> MerkleTree::consistencyProof(uint64_t first, uint64_t second) const {
    if (second > size()) {
        return invalidArgument("second " + std::to_string(second) + " is larger than the log (" +
                               std::to_string(size()) + " entries)");
    }
    if (first == 0 || first > second) {
        return invalidArgument("a consistency proof needs 0 < first <= second, got first=" + std::to_string(first) +
                               " second=" + std::to_string(second));
    }
    std::vector<Hash> out;
    Reads reads;
    if (first < second) subproof(first, 0, second, true, out, reads);
    if (!reads.error) return reads.error;
    return out;
}

size_t MerkleTree::memoryBytes() const {
    size_t total = 0;
    for (const auto& level : levels_) total += level.capacity() * sizeof(Hash);
    return total;
}

}  // namespace custodian::audit
