#pragma once
// PostgreSQL's COPY text format, as `COPY (SELECT …) TO STDOUT` sends it: one row per CopyData
// message, fields separated by a tab, the row ended by '\n', SQL NULL written as \N, and inside a
// field the backslash escapes \b \f \n \r \t \v, \ followed by 1 to 3 octal digits, \x followed by
// 1 or 2 hex digits, and \ followed by any other byte meaning that byte (\\ is a backslash).
// (PostgreSQL documentation, "COPY", File Formats, Text Format.)
//
// CopyTextRow splits and unescapes one row without allocating once its buffers have grown: fields
// without a backslash are views into the row's bytes, the others views into the decoder's own
// buffer. The views stay valid until the next parse() or until the row's bytes are freed.
//
// The bytes come from the source database, so a malformed row is an error value, never an assert.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::release {

class CopyTextRow {
public:
    // Splits `line` (with or without its final '\n') into exactly `fields` fields. InvalidArgument
    // when the row has another number of fields or ends inside an escape (a lone final backslash).
    // The message never quotes the row: it may hold the source's personal data. After an error
    // the row has no fields.
    Status parse(std::string_view line, size_t fields);

    size_t size() const noexcept { return values_.size(); }
    // Field i: its unescaped bytes, or nullopt for SQL NULL (the unescaped field \N).
    const std::optional<std::string_view>& operator[](size_t i) const noexcept { return values_[i]; }
    const std::vector<std::optional<std::string_view>>& values() const noexcept { return values_; }

private:
    Status split(std::string_view line, size_t fields);

    std::vector<std::optional<std::string_view>> values_;
    std::string unescaped_;                         // escaped fields, back to back
    std::vector<std::pair<size_t, size_t>> spans_;  // per field: (offset, length) into unescaped_ or npos
};

}  // namespace custodian::release
