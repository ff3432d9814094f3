#pragma once
// Validation findings of policy documents: each one names the place in the document (an RFC 6901
// JSON pointer such as "/columns/3/transform/params/keep_last", "" for the whole document) and says
// what is wrong in a sentence a data steward can act on.

#include <string>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::policies {

struct ValidationError {
    std::string pointer;
    std::string message;

    bool operator==(const ValidationError&) const = default;
};

using ValidationErrors = std::vector<ValidationError>;

// RFC 6901 escaping of one reference token ("~" → "~0", "/" → "~1").
std::string escapePointerToken(std::string_view token);
// pointer + "/" + escaped token.
std::string appendPointer(const std::string& pointer, std::string_view token);
std::string appendPointer(const std::string& pointer, size_t index);

// One InvalidArgument status listing every error as "POINTER: MESSAGE" (pointer "(document)" for
// the root), for callers that only carry a Status. Precondition: !errors.empty().
Status validationStatus(const ValidationErrors& errors);

}  // namespace custodian::policies
