#pragma once
// The generalization lattice of full-domain generalization: one node per combination of hierarchy
// levels, one level per quasi-identifier between its minimum and maximum. Node indexes are mixed-radix
// numbers over (level - minimum) with the first quasi-identifier varying slowest, so a node's
// successor in dimension d is node + stride(d). Immutable; safe to share.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::anon {

class GeneralizationLattice {
public:
    // Largest lattice the optimal search accepts (tags and levels are stored per node).
    static constexpr size_t kMaxNodes = 20'000'000;

    static Result<GeneralizationLattice> create(std::vector<int> minLevels, std::vector<int> maxLevels);

    size_t size() const noexcept { return size_; }
    size_t dimensions() const noexcept { return minLevels_.size(); }
    int level(size_t node, size_t dim) const noexcept { return levels_[node * dimensions() + dim]; }
    const uint8_t* levels(size_t node) const noexcept { return levels_.data() + node * dimensions(); }
    size_t index(const int* levels) const noexcept;
    int minLevel(size_t dim) const noexcept { return minLevels_[dim]; }
    int maxLevel(size_t dim) const noexcept { return maxLevels_[dim]; }
    size_t stride(size_t dim) const noexcept { return strides_[dim]; }
    // Sum of (level - minimum) over the dimensions: 0 at the bottom node.
    int height(size_t node) const noexcept { return heights_[node]; }
    int maxHeight() const noexcept { return maxHeight_; }
    size_t bottom() const noexcept { return 0; }
    size_t top() const noexcept { return size_ - 1; }
    // True when every level of `upper` is >= the level of `lower`.
    bool generalizes(size_t upper, size_t lower) const noexcept;
    // Nodes grouped by height, each group in index order.
    const std::vector<std::vector<uint32_t>>& byHeight() const noexcept { return byHeight_; }

private:
    std::vector<int> minLevels_, maxLevels_;
    std::vector<size_t> strides_;
    std::vector<uint8_t> levels_;
    std::vector<int> heights_;
    std::vector<std::vector<uint32_t>> byHeight_;
    size_t size_ = 0;
    int maxHeight_ = 0;
};

}  // namespace custodian::anon
