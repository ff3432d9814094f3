#pragma once
// Boundaries between database code and the rest of the gateway: libpqxx reports errors with
// exceptions, callers get values.

#include <optional>
#include <string>
#include <utility>

#include "anonymizer/status.hpp"
#include "gateway/db/pool.hpp"

namespace custodian::db {

// Runs `body` (returning Result<T>) and turns any exception it throws into a Status with
// statusFromException (Unavailable for a lost connection, Internal for SQL errors), so no libpqxx
// exception crosses the function that called it.
template <typename T, typename F>
Result<T> guarded(const std::string& context, F&& body) {
    try {
        return std::forward<F>(body)();
    } catch (...) {
        return statusFromException(std::current_exception(), context);
    }
}

// Runs `work(pqxx::connection&)` (returning Result<T>) on a pooled connection; its result is the
// answer unless the pool could not provide a connection (that Status, e.g. Unavailable).
template <typename T, typename F>
Result<T> resultOnConnection(ConnectionPool& pool, F&& work) {
    std::optional<Result<T>> out;
    Status s = pool.withConnection([&](pqxx::connection& conn) {
        out.emplace(work(conn));
        return Status::ok();
    });
    if (!s) return s;
    return std::move(*out);
}

}  // namespace custodian::db
