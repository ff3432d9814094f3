#pragma once
// The one table that maps custodian::StatusCode to HTTP status codes, and the JSON error body
// every non-2xx response carries: {"error":{"code":"not_found","message":"..."}}.

#include <string>
#include <string_view>

#include "anonymizer/status.hpp"
#include "gateway/http/message.hpp"

namespace custodian::http {

int httpStatusFor(StatusCode code) noexcept;

// {"error":{"code":<code>,"message":<message>}} with the given HTTP status.
HttpResponse errorResponse(int httpStatus, std::string_view code, std::string_view message);
// Status → HTTP status via httpStatusFor, code = statusCodeName(status.code()).
HttpResponse errorResponse(const Status& status);

}  // namespace custodian::http
