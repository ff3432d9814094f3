#include "gateway/http/errors.hpp"

#include "json/writer.hpp"

namespace custodian::http {

int httpStatusFor(StatusCode code) noexcept {
    switch (code) {
    case StatusCode::Ok: return 200;
    case StatusCode::InvalidArgument: return 400;
    case StatusCode::NotFound: return 404;
    case StatusCode::PermissionDenied: return 403;
    case StatusCode::Unauthenticated: return 401;
    case StatusCode::FailedPrecondition: return 422;
    case StatusCode::ResourceExhausted: return 429;
    case StatusCode::Unavailable: return 503;
    case StatusCode::Aborted: return 409;
    case StatusCode::Internal: return 500;
    }
    return 500;
}

HttpResponse errorResponse(int httpStatus, std::string_view code, std::string_view message,
                           std::string_view detailsJson) {
    json::JsonOut body;
    body.beginObject().key("error").beginObject().field("code", code).field("message", message);
    if (!detailsJson.empty()) body.raw("details", std::string(detailsJson));
    body.endObject().endObject();
    HttpResponse r = HttpResponse::json(httpStatus, body.text());
    if (httpStatus == 503) r.setHeader("Retry-After", "1");
    return r;
}

std::string_view errorCodeFor(const Status& status) noexcept {
    if (!status.reason().empty()) return status.reason();
    return statusCodeName(status.code());
}

HttpResponse errorResponse(const Status& status) {
    HttpResponse r = errorResponse(httpStatusFor(status.code()), errorCodeFor(status), status.message());
    if (status.code() == StatusCode::Unauthenticated) r.setHeader("WWW-Authenticate", "Bearer");
    return r;
}

}  // namespace custodian::http
