#include "policies/validation.hpp"

namespace custodian::policies {

std::string escapePointerToken(std::string_view token) {
    std::string out;
    out.reserve(token.size());
    for (char c : token) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out.push_back(c);
    }
    return out;
}

std::string appendPointer(const std::string& pointer, std::string_view token) {
    return pointer + "/" + escapePointerToken(token);
}

std::string appendPointer(const std::string& pointer, size_t index) { return pointer + "/" + std::to_string(index); }

Status validationStatus(const ValidationErrors& errors) {
    std::string message = errors.size() == 1 ? "the policy has 1 error: "
                                             : "the policy has " + std::to_string(errors.size()) + " errors: ";
    for (size_t i = 0; i < errors.size(); ++i) {
        if (i > 0) message += "; ";
        message += errors[i].pointer.empty() ? "(document)" : errors[i].pointer;
        message += ": ";
        message += errors[i].message;
    }
    return invalidArgument(std::move(message));
}

}  // namespace custodian::policies
