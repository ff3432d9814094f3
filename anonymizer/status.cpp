#include "anonymizer/status.hpp"

namespace custodian {

const char* statusCodeName(StatusCode code) noexcept {
    switch (code) {
    case StatusCode::Ok: return "ok";
    case StatusCode::InvalidArgument: return "invalid_argument";
    case StatusCode::NotFound: return "not_found";
    case StatusCode::PermissionDenied: return "permission_denied";
    case StatusCode::Unauthenticated: return "unauthenticated";
    case StatusCode::FailedPrecondition: return "failed_precondition";
    case StatusCode::ResourceExhausted: return "resource_exhausted";
    case StatusCode::Unavailable: return "unavailable";
    case StatusCode::Aborted: return "aborted";
    case StatusCode::Internal: return "internal";
    }
    return "unknown";
}

}  // namespace custodian
