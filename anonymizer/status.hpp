#pragma once
// Errors as values at every boundary (abseil/Envoy style). A Status carries a code that maps to an
// HTTP status in one table (gateway/http/errors) and a message a person can act on.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace custodian {

enum class StatusCode {
    Ok,
    InvalidArgument,     // bad input: 400 / 422 where the input is well-formed but unacceptable
    NotFound,            // 404
    PermissionDenied,    // 403
    Unauthenticated,     // 401
    FailedPrecondition,  // 422 (e.g. a privacy model unreachable within the suppression limit)
    ResourceExhausted,   // 429 / 413
    Unavailable,         // 503 (database down, audit log not writable)
    Aborted,             // 409 (concurrent modification)
    Internal,            // 500
};

const char* statusCodeName(StatusCode code) noexcept;

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok() { return {}; }
    bool isOk() const noexcept { return code_ == StatusCode::Ok; }
    explicit operator bool() const noexcept { return isOk(); }
    StatusCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    // A finer machine-readable name than the code, e.g. "database_unavailable" for an Unavailable
    // that is the loss of the database; empty when the code says it all. HTTP error bodies carry
    // it as their "code" (gateway/http/errors.hpp).
    const std::string& reason() const noexcept { return reason_; }

    // Prefixes the message with where the error happened: "policy.columns[2]: " + message.
    Status withContext(const std::string& where) const {
        if (isOk()) return *this;
        Status s(code_, where + ": " + message_);
        s.reason_ = reason_;
        return s;
    }
    Status withReason(std::string reason) const {
        Status s = *this;
        s.reason_ = std::move(reason);
        return s;
    }

private:
    StatusCode code_ = StatusCode::Ok;
    std::string message_;
    std::string reason_;
};

inline Status invalidArgument(std::string m) { return {StatusCode::InvalidArgument, std::move(m)}; }
inline Status notFound(std::string m) { return {StatusCode::NotFound, std::move(m)}; }
inline Status permissionDenied(std::string m) { return {StatusCode::PermissionDenied, std::move(m)}; }
inline Status failedPrecondition(std::string m) { return {StatusCode::FailedPrecondition, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::Unavailable, std::move(m)}; }
inline Status internalError(std::string m) { return {StatusCode::Internal, std::move(m)}; }

// Result<T>: a value or a non-ok Status.
template <typename T> class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}                                                // NOLINT implicit
    Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).isOk()); }  // NOLINT

    bool isOk() const noexcept { return std::holds_alternative<T>(v_); }
    explicit operator bool() const noexcept { return isOk(); }

    const Status& status() const {
        static const Status okStatus;
        return isOk() ? okStatus : std::get<Status>(v_);
    }
    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    std::variant<T, Status> v_;
};

}  // namespace custodian
