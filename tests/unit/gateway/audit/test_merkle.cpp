// Merkle tree: RFC 6962 test vectors (certificate-transparency), a naive reference MTH, and every
// generated proof for sizes 1..300 checked with the independent RFC 9162 verifiers.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "gateway/audit/merkle.hpp"
#include "gateway/audit/proof_verify.hpp"

using namespace custodian;
using namespace custodian::audit;

namespace {

std::vector<crypto::Bytes> rfcLeaves() {
    std::vector<crypto::Bytes> leaves = {{}, {0x00}, {0x10}, {0x20, 0x21}, {0x30, 0x31}, {0x40, 0x41, 0x42, 0x43}};
    crypto::Bytes l6, l7;
    for (uint8_t b = 0x50; b < 0x58; ++b) l6.push_back(b);
    for (uint8_t b = 0x60; b < 0x70; ++b) l7.push_back(b);
    leaves.push_back(l6);
    leaves.push_back(l7);
    return leaves;
}

std::string hex(const Hash& h) { return crypto::toHex(h); }
std::vector<std::string> hexes(const std::vector<Hash>& hs) {
    std::vector<std::string> out;
    for (const auto& h : hs) out.push_back(hex(h));
    return out;
}

// MTH straight from RFC 6962 §2.1, recursive over a vector: the reference for rootAt().
Hash referenceRoot(const std::vector<Hash>& leaves, size_t begin, size_t end) {
    const size_t n = end - begin;
    if (n == 0) return emptyTreeHash();
    if (n == 1) return leaves[begin];
    size_t k = 1;
    while (k * 2 < n) k *= 2;
    return nodeHash(referenceRoot(leaves, begin, begin + k), referenceRoot(leaves, begin + k, end));
}

std::vector<Hash> randomLeaves(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<Hash> out(n);
    for (auto& h : out) {
        const uint32_t v = rng();
        h = leafHash(crypto::asBytes(std::to_string(v)));
    }
    return out;
}

}  // namespace

TEST_CASE("roots match the RFC 6962 test vectors for sizes 0..8", "[audit][merkle]") {
    const char* expected[] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    };
    MerkleTree tree;
    CHECK(hex(tree.root()) == expected[0]);
    for (const auto& leaf : rfcLeaves()) tree.append(leafHash(leaf));
    for (uint64_t n = 0; n <= 8; ++n) CHECK(hex(tree.rootAt(n).value()) == expected[n]);
    CHECK_FALSE(tree.rootAt(9).isOk());
}

TEST_CASE("inclusion and consistency proofs match the RFC 6962 test vectors", "[audit][merkle]") {
    MerkleTree tree;
    for (const auto& leaf : rfcLeaves()) tree.append(leafHash(leaf));
    CHECK(hexes(tree.inclusionProof(0, 8).value()) ==
          std::vector<std::string>{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                                   "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                   "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"});
    CHECK(hexes(tree.inclusionProof(5, 8).value()) ==
          std::vector<std::string>{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                                   "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                   "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"});
    CHECK(hexes(tree.inclusionProof(2, 3).value()) ==
          std::vector<std::string>{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"});
    CHECK(tree.inclusionProof(0, 1).value().empty());
    CHECK(hexes(tree.consistencyProof(1, 8).value()) == hexes(tree.inclusionProof(0, 8).value()));
    CHECK(hexes(tree.consistencyProof(6, 8).value()) ==
          std::vector<std::string>{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                                   "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                   "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"});
    CHECK(hexes(tree.consistencyProof(2, 5).value()) ==
          std::vector<std::string>{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                   "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"});
    CHECK(tree.consistencyProof(8, 8).value().empty());
    CHECK_FALSE(tree.consistencyProof(0, 8).isOk());
    CHECK_FALSE(tree.consistencyProof(5, 4).isOk());
    CHECK_FALSE(tree.inclusionProof(8, 8).isOk());
    CHECK_FALSE(tree.inclusionProof(0, 9).isOk());
}

TEST_CASE("roots of every prefix equal the reference MTH, built by append or from a vector", "[audit][merkle]") {
    const auto leaves = randomLeaves(300, 42);
    MerkleTree appended;
    for (const auto& l : leaves) appended.append(l);
    const MerkleTree bulk(leaves);
    for (size_t n = 0; n <= leaves.size(); ++n) {
        const Hash expected = referenceRoot(leaves, 0, n);
        REQUIRE(appended.rootAt(n).value() == expected);
        REQUIRE(bulk.rootAt(n).value() == expected);
    }
}

TEST_CASE("every inclusion proof for sizes 1..300 verifies independently, and only for its leaf",
          "[audit][merkle][proofs]") {
    const auto leaves = randomLeaves(300, 7);
    const MerkleTree tree(leaves);
    for (uint64_t n = 1; n <= 300; ++n) {
        const Hash root = tree.rootAt(n).value();
        for (uint64_t i = 0; i < n; ++i) {
            const auto proof = tree.inclusionProof(i, n).value();
            INFO("index " << i << " size " << n);
            REQUIRE(verifyInclusion(i, n, leaves[i], proof, root));
            // Spot checks that the verifier can fail: another leaf, index or root, or a bad path.
            if ((i * 31 + n) % 17 == 0) {
                REQUIRE_FALSE(verifyInclusion(i, n, leaves[(i + 1) % 300], proof, root));
                if (n > 1) REQUIRE_FALSE(verifyInclusion((i + 1) % n, n, leaves[i], proof, root));
                // A path does not pin the size by itself (the signed head binds size and root), but
                // it cannot prove membership in the next tree.
                if (n < 300) REQUIRE_FALSE(verifyInclusion(i, n + 1, leaves[i], proof, tree.rootAt(n + 1).value()));
                REQUIRE_FALSE(verifyInclusion(n, n, leaves[i], proof, root));
                if (!proof.empty()) {
                    auto bad = proof;
                    bad.back()[0] ^= 1;
                    REQUIRE_FALSE(verifyInclusion(i, n, leaves[i], bad, root));
                    auto shorter = proof;
                    shorter.pop_back();
                    REQUIRE_FALSE(verifyInclusion(i, n, leaves[i], shorter, root));
                }
                auto longer = proof;
                longer.push_back(root);
                REQUIRE_FALSE(verifyInclusion(i, n, leaves[i], longer, root));
            }
        }
    }
}

TEST_CASE("every consistency proof for 1 <= m <= n <= 300 verifies independently and binds both roots",
          "[audit][merkle][proofs]") {
    const auto leaves = randomLeaves(300, 11);
    const MerkleTree tree(leaves);
    std::vector<Hash> roots(301);
    for (uint64_t n = 0; n <= 300; ++n) roots[n] = tree.rootAt(n).value();
    for (uint64_t n = 1; n <= 300; ++n) {
        for (uint64_t m = 1; m <= n; ++m) {
            const auto proof = tree.consistencyProof(m, n).value();
            INFO("first " << m << " second " << n);
            REQUIRE(verifyConsistency(m, n, roots[m], roots[n], proof));
            if ((m * 13 + n) % 11 == 0 && m < n) {
                REQUIRE_FALSE(verifyConsistency(m, n, roots[m - 1], roots[n], proof));
                REQUIRE_FALSE(verifyConsistency(m, n, roots[m], roots[n - 1], proof));
                REQUIRE_FALSE(verifyConsistency(m, n - 1, roots[m], roots[n - 1], proof));
                auto bad = proof;
                bad.front()[5] ^= 0x10;
                REQUIRE_FALSE(verifyConsistency(m, n, roots[m], roots[n], bad));
                REQUIRE_FALSE(verifyConsistency(m, n, roots[m], roots[n], {}));
            }
        }
    }
    CHECK(verifyConsistency(0, 5, emptyTreeHash(), roots[5], {}));
    CHECK_FALSE(verifyConsistency(6, 5, roots[6], roots[5], {}));
}

TEST_CASE("memory use is about two hashes per leaf", "[audit][merkle]") {
    const MerkleTree tree(randomLeaves(4096, 3));
    CHECK(tree.memoryBytes() >= 2 * 4095 * sizeof(Hash));
    CHECK(tree.memoryBytes() <= 2 * 4096 * sizeof(Hash) + 64 * sizeof(Hash));
}

// A tree that keeps only the roots of blocks of 2^4 leaves reads older blocks through its reader and
// gives exactly the full tree's roots and proofs; an altered stored leaf is reported, never used.
TEST_CASE("a tree keeping block roots only gives the full tree's roots and proofs, reading at most two blocks",
          "[audit][merkle][compact]") {
    const auto leaves = randomLeaves(1000, 11);
    std::vector<Hash> stored = leaves;  // what the table holds
    size_t reads = 0;
    MerkleTree compact(
        [&](uint64_t begin, uint64_t end) -> Result<std::vector<Hash>> {
            ++reads;
            if (end > stored.size()) return internalError("read beyond the stored leaves");
            return std::vector<Hash>(stored.begin() + static_cast<ptrdiff_t>(begin),
                                     stored.begin() + static_cast<ptrdiff_t>(end));
        },
        4);
    MerkleTree full;
    for (size_t i = 0; i < leaves.size(); ++i) {
        compact.append(leaves[i]);
        full.append(leaves[i]);
        // The root of the whole tree never needs a read.
        REQUIRE(compact.root() == full.root());
    }
    CHECK(reads == 0);
    CHECK(compact.memoryBytes() < full.memoryBytes() / 8);
    for (uint64_t n : {1ull, 15ull, 16ull, 17ull, 100ull, 511ull, 512ull, 999ull, 1000ull}) {
        INFO("size " << n);
        REQUIRE(compact.rootAt(n).value() == full.rootAt(n).value());
        for (uint64_t i = 0; i < n; i += 7) {
            reads = 0;
            REQUIRE(compact.inclusionProof(i, n).value() == full.inclusionProof(i, n).value());
            CHECK(reads <= 2);  // the leaf's block and the one the size ends in
            REQUIRE(compact.leaf(i).value() == leaves[i]);
        }
        for (uint64_t first = 1; first <= n; first += 13) {
            reads = 0;
            REQUIRE(compact.consistencyProof(first, n).value() == full.consistencyProof(first, n).value());
            CHECK(reads <= 2);
        }
    }
    // A stored leaf hash altered after it was appended: proofs through its block fail.
    stored[37][0] ^= 1;
    auto proof = compact.inclusionProof(37, 1000);
    REQUIRE_FALSE(proof);
    CHECK(proof.status().message().find("the audit table was altered") != std::string::npos);
    CHECK_FALSE(compact.rootAt(40));
    CHECK(compact.inclusionProof(600, 1000).value() == full.inclusionProof(600, 1000).value());  // other blocks
    // A reader that fails makes the proof fail with its error.
    MerkleTree broken([](uint64_t, uint64_t) -> Result<std::vector<Hash>> { return unavailable("database down"); }, 4);
    for (const auto& l : leaves) broken.append(l);
    CHECK(broken.inclusionProof(3, 1000).status().code() == StatusCode::Unavailable);
    CHECK(broken.root() == full.root());
}

TEST_CASE("proofs of many leaves at once equal the single proofs and read each block about once",
          "[audit][merkle][compact]") {
    const auto leaves = randomLeaves(1000, 12);
    size_t reads = 0;
    MerkleTree compact(
        [&](uint64_t begin, uint64_t end) -> Result<std::vector<Hash>> {
            ++reads;
            return std::vector<Hash>(leaves.begin() + static_cast<ptrdiff_t>(begin),
                                     leaves.begin() + static_cast<ptrdiff_t>(end));
        },
        4);  // blocks of 16 leaves
    MerkleTree full;
    for (const auto& l : leaves) {
        compact.append(l);
        full.append(l);
    }
    for (uint64_t n : {1ull, 17ull, 999ull, 1000ull}) {
        INFO("size " << n);
        std::vector<uint64_t> indices;
        for (uint64_t i = 0; i < n; i += 3) indices.push_back(i);
        reads = 0;
        auto batch = compact.inclusionProofs(indices, n);
        REQUIRE(batch);
        REQUIRE(batch->size() == indices.size());
        for (size_t k = 0; k < indices.size(); ++k) {
            CHECK((*batch)[k].leaf == leaves[indices[k]]);
            CHECK((*batch)[k].path == full.inclusionProof(indices[k], n).value());
        }
        // One read per block holding an index, plus the block the size ends in for each of them at most.
        const uint64_t blocks = (n + 15) / 16;
        CHECK(reads <= 2 * blocks);
    }
    CHECK_FALSE(compact.inclusionProofs(std::vector<uint64_t>{5, 3}, 100));  // not ascending
    CHECK_FALSE(compact.inclusionProofs(std::vector<uint64_t>{100}, 100));   // beyond the tree
    CHECK_FALSE(compact.inclusionProofs(std::vector<uint64_t>{1}, 1001));    // beyond the log
    CHECK(compact.inclusionProofs(std::vector<uint64_t>{}, 10).value().empty());
}
