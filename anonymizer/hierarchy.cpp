#include "anonymizer/hierarchy.hpp"

#include <charconv>
#include <cmath>

namespace custodian::anon {

namespace {

// Parses a whole string as a finite decimal number (leading/trailing blanks allowed).
std::optional<double> parseNumber(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.empty()) return std::nullopt;
    if (s.front() == '+') s.remove_prefix(1);
    double v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

}  // namespace

Result<Hierarchy> Hierarchy::fromRows(std::string name, const std::vector<std::vector<std::string>>& rows) {
    const std::string where = "hierarchy '" + name + "'";
    if (rows.empty()) return invalidArgument(where + ": has no rows");
    const size_t depth = rows[0].size();
    if (depth == 0) return invalidArgument(where + ": row 1 is empty");
    if (rows.size() > UINT32_MAX - 1) return invalidArgument(where + ": too many rows");
    for (size_t i = 1; i < rows.size(); ++i) {
        if (rows[i].size() != depth) {
            return invalidArgument(where + ": row " + std::to_string(i + 1) + " (leaf '" +
                                   (rows[i].empty() ? std::string() : rows[i][0]) + "') has " +
                                   std::to_string(rows[i].size()) + " levels, row 1 has " + std::to_string(depth));
        }
    }

    Hierarchy h;
    h.name_ = std::move(name);
    const size_t leaves = rows.size();
    h.labels_.resize(depth);
    h.leafToNode_.resize(depth);
    h.leavesUnder_.resize(depth);
    h.minLeaf_.resize(depth);
    h.maxLeaf_.resize(depth);
    h.parent_.resize(depth > 0 ? depth - 1 : 0);
    for (size_t i = 0; i < leaves; ++i) {
        // Leaf codes are row numbers: interned in order, each new leaf gets id i.
        auto [id, inserted] = h.leafIndex_.intern(rows[i][0]);
        if (!inserted) {
            return invalidArgument(where + ": leaf '" + rows[i][0] + "' appears twice (rows " + std::to_string(id + 1) +
                                   " and " + std::to_string(i + 1) + ")");
        }
    }

    for (size_t level = 0; level < depth; ++level) {
        std::unordered_map<std::string_view, uint32_t> nodeOf;
        auto& map = h.leafToNode_[level];
        map.resize(leaves);
        for (size_t i = 0; i < leaves; ++i) {
            const std::string& value = rows[i][level];
            auto [it, inserted] = nodeOf.emplace(value, static_cast<uint32_t>(h.labels_[level].size()));
            if (inserted) {
                h.labels_[level].push_back(value);
                h.leavesUnder_[level].push_back(0);
                h.minLeaf_[level].push_back(static_cast<uint32_t>(i));
                h.maxLeaf_[level].push_back(static_cast<uint32_t>(i));
            }
            const uint32_t node = it->second;
            map[i] = node;
            ++h.leavesUnder_[level][node];
            h.maxLeaf_[level][node] = static_cast<uint32_t>(i);
        }
        if (level == 0) continue;
        // Coarsening: every node one level down must map to exactly one node here.
        auto& parents = h.parent_[level - 1];
        constexpr uint32_t kUnset = UINT32_MAX;
        parents.assign(h.labels_[level - 1].size(), kUnset);
        for (size_t i = 0; i < leaves; ++i) {
            const uint32_t child = h.leafToNode_[level - 1][i];
            const uint32_t node = map[i];
            if (parents[child] == kUnset) {
                parents[child] = node;
            } else if (parents[child] != node) {
                return invalidArgument(where + ": level " + std::to_string(level) + " is not a coarsening of level " +
                                       std::to_string(level - 1) + ": value '" + h.labels_[level - 1][child] +
                                       "' at level " + std::to_string(level - 1) + " generalizes to both '" +
                                       h.labels_[level][parents[child]] + "' and '" + h.labels_[level][node] +
                                       "' (row " + std::to_string(i + 1) + ", leaf '" + rows[i][0] + "')");
            }
        }
    }
    // Level 0 maps each leaf to itself; keep the table so levelMap(0) works uniformly.

    std::vector<double> numbers(leaves);
    bool numeric = true;
    for (size_t i = 0; i < leaves && numeric; ++i) {
        auto v = parseNumber(rows[i][0]);
        if (!v) numeric = false;
        else numbers[i] = *v;
    }
    if (numeric) h.numericLeaves_ = std::move(numbers);
    return h;
}

std::optional<uint32_t> Hierarchy::leafCode(std::string_view value) const {
    const uint32_t code = leafIndex_.find(value);
    if (code == UINT32_MAX) return std::nullopt;
    return code;
}

int Hierarchy::lowestCommonLevel(const uint32_t* leafCodes, size_t count) const {
    const int top = levels() - 1;
    if (count == 0) return 0;
    for (int level = 0; level < top; ++level) {
        const auto& map = leafToNode_[static_cast<size_t>(level)];
        const uint32_t first = map[leafCodes[0]];
        bool same = true;
        for (size_t i = 1; i < count && same; ++i) same = map[leafCodes[i]] == first;
        if (same) return level;
    }
    return top;
}

}  // namespace custodian::anon
