#pragma once
// A generalization hierarchy for one quasi-identifier: every leaf value with its ancestors at each
// level, level 0 being the leaves themselves. Immutable after fromRows(); share it through a
// std::shared_ptr<const Hierarchy> — every member is safe to call concurrently.
//
// Node codes: at every level, nodes are numbered 0..nodeCount(level)-1 in order of first appearance
// when scanning the leaves in the order given (level 0 node code == leaf code). So leaf order is the
// order of the rows passed in, which ordered-distance t-closeness and Mondrian use as the value order
// of categorical attributes.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "anonymizer/flat_hash.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

class Hierarchy {
public:
    // rows[i] = {leaf value, level-1 value, ..., level-N value}. Validates with precise errors
    // (InvalidArgument): at least one row, every row the same length, leaves unique, and each level a
    // coarsening of the one below (two values equal at level j are equal at level j+1).
    static Result<Hierarchy> fromRows(std::string name, const std::vector<std::vector<std::string>>& rows);

    const std::string& name() const noexcept { return name_; }
    // Number of levels including level 0 (the leaves).
    int levels() const noexcept { return static_cast<int>(labels_.size()); }
    size_t leafCount() const noexcept { return labels_.empty() ? 0 : labels_[0].size(); }
    std::optional<uint32_t> leafCode(std::string_view value) const;
    // Node code of the leaf's ancestor at `level`, O(1). Preconditions: leafCode < leafCount(),
    // 0 <= level < levels().
    uint32_t generalize(uint32_t leafCode, int level) const {
        return level == 0 ? leafCode : leafToNode_[static_cast<size_t>(level)][leafCode];
    }
    const std::string& label(int level, uint32_t nodeCode) const {
        return labels_[static_cast<size_t>(level)][nodeCode];
    }
    size_t nodeCount(int level) const { return labels_[static_cast<size_t>(level)].size(); }
    // Number of leaves generalized to this node (1 for every leaf), for NCP / loss metrics.
    uint32_t leavesUnder(int level, uint32_t nodeCode) const {
        return leavesUnder_[static_cast<size_t>(level)][nodeCode];
    }
    // Node at level+1 that contains this node at `level`. Precondition: level + 1 < levels().
    uint32_t parent(int level, uint32_t nodeCode) const { return parent_[static_cast<size_t>(level)][nodeCode]; }
    // The whole leaf → node table of one level (size leafCount()); level 0 is the identity.
    const std::vector<uint32_t>& levelMap(int level) const { return leafToNode_[static_cast<size_t>(level)]; }

    // Leaf values parsed as numbers when every leaf is a finite decimal number, else nullopt;
    // used for numeric Mondrian ranges and ordered distances.
    const std::optional<std::vector<double>>& numericLeaves() const noexcept { return numericLeaves_; }
    // Smallest and largest leaf code under a node, by leaf order (a node's leaves need not be
    // contiguous in leaf order; these bound them).
    uint32_t minLeafUnder(int level, uint32_t nodeCode) const { return minLeaf_[static_cast<size_t>(level)][nodeCode]; }
    uint32_t maxLeafUnder(int level, uint32_t nodeCode) const { return maxLeaf_[static_cast<size_t>(level)][nodeCode]; }
    // Lowest level at which all of the given leaves share one node (levels()-1 if only the root does;
    // callers with a hierarchy without a single root get the top level's node of the first leaf).
    int lowestCommonLevel(const uint32_t* leafCodes, size_t count) const;

private:
    std::string name_;
    std::vector<std::vector<std::string>> labels_;          // [level][node]
    std::vector<std::vector<uint32_t>> leafToNode_;         // [level][leaf]
    std::vector<std::vector<uint32_t>> leavesUnder_;        // [level][node]
    std::vector<std::vector<uint32_t>> parent_;             // [level][node] -> node at level+1
    std::vector<std::vector<uint32_t>> minLeaf_, maxLeaf_;  // [level][node]
    detail::StringInterner leafIndex_;                      // leaf label -> leaf code
    std::optional<std::vector<double>> numericLeaves_;
};

}  // namespace custodian::anon
