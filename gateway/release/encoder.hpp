#pragma once
// Encoders of released batches: CSV (RFC 4180, comma, LF, header row; null as an empty field, the
// empty string as "") and NDJSON (one JSON object per row, members in column order; integers and
// decimals as JSON numbers, dates and timestamps as strings in canonical form, null as null).
// Suppressed rows are never written. Both append to a caller-owned buffer so a release can encode
// page by page without copying.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "anonymizer/table.hpp"

namespace custodian::release {

enum class ExtractFormat { Csv, Ndjson };

const char* formatName(ExtractFormat format) noexcept;  // "csv" | "ndjson"
std::optional<ExtractFormat> parseFormat(std::string_view name) noexcept;
const char* formatMediaType(ExtractFormat format) noexcept;  // "text/csv" | "application/x-ndjson"

class RowEncoder {
public:
    RowEncoder(ExtractFormat format, anon::SchemaPtr schema);

    ExtractFormat format() const noexcept { return format_; }
    // The bytes before the first row (CSV: the header line; NDJSON: nothing).
    void appendPreamble(std::string& out) const;
    // Appends every released row of `batch` (its schema must be the encoder's); returns how many.
    uint64_t appendRows(const anon::Batch& batch, std::string& out) const;

private:
    ExtractFormat format_;
    anon::SchemaPtr schema_;
    std::vector<std::string> memberNames_;  // NDJSON: "\"name\":" per column, first one with '{'
};

// Appends `s` as a JSON string literal; invalid UTF-8 becomes U+FFFD so the output is always JSON.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace custodian::release
