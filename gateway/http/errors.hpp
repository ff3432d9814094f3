#pragma once
// The one table that maps custodian::StatusCode to HTTP status codes, and the JSON error body
// every non-2xx response carries: {"error":{"code":"not_found","message":"..."}}.

#include <string>
#include <string_view>

#include "anonymizer/status.hpp"
#include "gateway/http/message.hpp"

namespace custodian::http {

int httpStatusFor(StatusCode code) noexcept;

// {"error":{"code":<code>,"message":<message>[,"details":<detailsJson>]}} with the given HTTP status
// (`detailsJson` is a JSON object, or empty). A 503 says when to come back: `Retry-After: 1` (the
// overload guard replaces it with its own estimate), so well-behaved clients back off while the
// database or the audit log is unavailable instead of retrying at once.
HttpResponse errorResponse(int httpStatus, std::string_view code, std::string_view message,
                           std::string_view detailsJson = {});
// The error body's "code" for a Status: its reason when it has one (e.g. database_unavailable),
// else statusCodeName(status.code()).
std::string_view errorCodeFor(const Status& status) noexcept;
// Status → HTTP status via httpStatusFor, code = errorCodeFor(status).
HttpResponse errorResponse(const Status& status);

}  // namespace custodian::http
