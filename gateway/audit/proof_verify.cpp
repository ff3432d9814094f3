#include "gateway/audit/proof_verify.hpp"

#include <vector>

namespace custodian::audit {

namespace {
bool lsb(uint64_t x) { return (x & 1) != 0; }
}  // namespace

bool verifyInclusion(uint64_t leafIndex, uint64_t treeSize, const Hash& leaf, std::span<const Hash> inclusionPath,
                     const Hash& rootHash) {
    // Step 1.
    if (leafIndex >= treeSize) return false;
    // Steps 2–3.
    uint64_t fn = leafIndex;
    uint64_t sn = treeSize - 1;
    Hash r = leaf;
    // Step 4.
    for (const Hash& p : inclusionPath) {
        if (sn == 0) return false;  // 4a
        if (lsb(fn) || fn == sn) {  // 4b
            r = nodeHash(p, r);
            if (!lsb(fn)) {
                while (!lsb(fn) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = nodeHash(r, p);
        }
        fn >>= 1;  // 4c
        sn >>= 1;
    }
    // Step 5.
    return sn == 0 && r == rootHash;
}

bool verifyConsistency(uint64_t first, uint64_t second, const Hash& firstHash, const Hash& secondHash,
                       std::span<const Hash> consistencyPath) {
    if (first > second) return false;
    if (first == second) return consistencyPath.empty() && firstHash == secondHash;
    if (first == 0) return consistencyPath.empty();
    // Step 1.
    if (consistencyPath.empty()) return false;
    // Step 2.
    std::vector<Hash> path;
    path.reserve(consistencyPath.size() + 1);
    if ((first & (first - 1)) == 0) path.push_back(firstHash);
    path.insert(path.end(), consistencyPath.begin(), consistencyPath.end());
    // Step 3.
    uint64_t fn = first - 1;
    uint64_t sn = second - 1;
    // Step 4.
    while (lsb(fn)) {
        fn >>= 1;
        sn >>= 1;
    }
    // Step 5.
    Hash fr = path[0];
    Hash sr = path[0];
    // Step 6.
    for (size_t i = 1; i < path.size(); ++i) {
        const Hash& c = path[i];
        if (sn == 0) return false;  // 6a
        if (lsb(fn) || fn == sn) {  // 6b
            fr = nodeHash(c, fr);
            sr = nodeHash(c, sr);
            if (!lsb(fn)) {
                while (!lsb(fn) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = nodeHash(sr, c);
        }
        fn >>= 1;  // 6c
        sn >>= 1;
    }
    // Step 7.
    return fr == firstHash && sr == secondHash && sn == 0;
}

}  // namespace custodian::audit
