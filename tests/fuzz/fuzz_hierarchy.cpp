// Fuzz target for the hierarchy file parser. The first byte picks the delimiter. A hierarchy that
// parses must map every leaf to a node at every level, and its rows must survive a format/parse
// round trip; anything else must be an error value.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "anonymizer/hierarchy_builders.hpp"
#include "anonymizer/hierarchy_io.hpp"
#include "anonymizer/value.hpp"

using namespace custodian::anon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static constexpr char kDelimiters[] = {';', ',', '\t', '|'};
    const char delimiter = kDelimiters[data[0] & 3];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    auto rows = parseHierarchyRows(text, delimiter);
    auto hierarchy = parseHierarchyCsv("fuzz", text, delimiter);
    if (!rows) {
        if (hierarchy) __builtin_trap();  // a hierarchy cannot exist without its rows
        return 0;
    }
    auto again = parseHierarchyRows(formatHierarchyRows(*rows, delimiter), delimiter);
    if (!again || *again != *rows) __builtin_trap();
    if (!hierarchy) return 0;

    const Hierarchy& h = *hierarchy;
    if (h.leafCount() != rows->size()) __builtin_trap();
    for (const auto& row : *rows) {
        const auto leaf = h.leafCode(row[0]);
        if (!leaf) __builtin_trap();
        for (int level = 0; level < h.levels(); ++level) {
            const uint32_t node = h.generalize(*leaf, level);
            if (node >= h.nodeCount(level) || h.label(level, node) != row[static_cast<size_t>(level)]) __builtin_trap();
        }
    }
    // The leaves double as a domain for the masking builder, which must produce a valid hierarchy
    // whenever every leaf is valid UTF-8 (it masks characters) of at most kMaxMaskingLength
    // characters, and refuse the domain otherwise — never crash. (The hierarchy file itself takes
    // any bytes: values are matched byte for byte against the data.)
    std::vector<std::string> leaves;
    for (const auto& row : *rows) leaves.push_back(row[0]);
    size_t longest = 0;
    bool utf8 = true;
    for (const auto& leaf : leaves) {
        size_t chars = 0;
        for (const char c : leaf) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
        longest = std::max(longest, chars);
        utf8 = utf8 && isValidUtf8(leaf);
    }
    auto masked = buildMaskingHierarchy("mask", leaves, MaskingHierarchySpec{});
    if (utf8 && longest <= kMaxMaskingLength && !masked) __builtin_trap();
    if (!utf8 && masked) __builtin_trap();
    return 0;
}
