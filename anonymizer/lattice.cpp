#include "anonymizer/lattice.hpp"

namespace custodian::anon {

Result<GeneralizationLattice> GeneralizationLattice::create(std::vector<int> minLevels, std::vector<int> maxLevels) {
    if (minLevels.empty()) return invalidArgument("lattice: no quasi-identifier");
    if (minLevels.size() != maxLevels.size()) return invalidArgument("lattice: level bounds differ in length");
    GeneralizationLattice g;
    size_t size = 1;
    for (size_t d = 0; d < minLevels.size(); ++d) {
        if (minLevels[d] < 0 || maxLevels[d] < minLevels[d] || maxLevels[d] > 255) {
            return invalidArgument("lattice: quasi-identifier " + std::to_string(d) + " has level range [" +
                                   std::to_string(minLevels[d]) + ", " + std::to_string(maxLevels[d]) + "]");
        }
        size *= static_cast<size_t>(maxLevels[d] - minLevels[d] + 1);
        if (size > kMaxNodes) {
            return Status(StatusCode::ResourceExhausted,
                          "lattice: more than " + std::to_string(kMaxNodes) +
                              " generalization nodes; restrict the levels or use Mondrian");
        }
    }
    const size_t q = minLevels.size();
    g.minLevels_ = std::move(minLevels);
    g.maxLevels_ = std::move(maxLevels);
    g.size_ = size;
    g.strides_.assign(q, 1);
    for (size_t d = q - 1; d > 0; --d) {
        g.strides_[d - 1] =
            g.strides_[d] * (static_cast<size_t>(g.maxLevels_[d]) - static_cast<size_t>(g.minLevels_[d]) + 1);
    }
    for (size_t d = 0; d < q; ++d) g.maxHeight_ += g.maxLevels_[d] - g.minLevels_[d];
    g.levels_.resize(size * q);
    g.heights_.resize(size);
    g.byHeight_.resize(static_cast<size_t>(g.maxHeight_) + 1);
    for (size_t node = 0; node < size; ++node) {
        int h = 0;
        for (size_t d = 0; d < q; ++d) {
            const size_t radix = (static_cast<size_t>(g.maxLevels_[d]) - static_cast<size_t>(g.minLevels_[d]) + 1);
            const int offset = static_cast<int>((node / g.strides_[d]) % radix);
            g.levels_[node * q + d] = static_cast<uint8_t>(g.minLevels_[d] + offset);
            h += offset;
        }
        g.heights_[node] = h;
        g.byHeight_[static_cast<size_t>(h)].push_back(static_cast<uint32_t>(node));
    }
    return g;
}

size_t GeneralizationLattice::index(const int* levels) const noexcept {
    size_t node = 0;
    for (size_t d = 0; d < dimensions(); ++d) node += static_cast<size_t>(levels[d] - minLevels_[d]) * strides_[d];
    return node;
}

bool GeneralizationLattice::generalizes(size_t upper, size_t lower) const noexcept {
    const uint8_t* u = levels(upper);
    const uint8_t* l = levels(lower);
    for (size_t d = 0; d < dimensions(); ++d) {
        if (u[d] < l[d]) return false;
    }
    return true;
}

}  // namespace custodian::anon
