// COPY text rows from a source database (gateway/release/copy_text.hpp). The first byte picks the
// number of fields, the rest is the row. A parse must either fail or give exactly that many
// fields, none longer than the row, and decoding again must give the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/release/copy_text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t fields = 1 + data[0] % 16;
    const std::string line(reinterpret_cast<const char*>(data + 1), size - 1);
    custodian::release::CopyTextRow row;
    if (!row.parse(line, fields)) {
        if (row.size() != 0) std::abort();
        return 0;
    }
    if (row.size() != fields) std::abort();
    std::vector<std::optional<std::string>> first;
    for (const auto& value : row.values()) {
        if (value && value->size() > line.size()) std::abort();
        first.push_back(value ? std::optional<std::string>(std::string(*value)) : std::nullopt);
    }
    custodian::release::CopyTextRow again;
    if (!again.parse(line, fields)) std::abort();
    for (size_t i = 0; i < fields; ++i) {
        const auto& v = again[i];
        if (v.has_value() != first[i].has_value() || (v && *v != *first[i])) std::abort();
    }
    return 0;
}
