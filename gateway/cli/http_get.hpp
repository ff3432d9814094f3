#pragma once
// A blocking HTTP(S) GET (and JSON POST) for command-line clients (`custodian audit verify --url`,
// `custodian query`), with the body
// either returned in memory (small JSON answers) or streamed to a file (exports of any size).
// https:// verifies the server certificate against the system trust store or `caFile`, and the
// host name; there is no way to switch verification off.
//
// Beast/Asio stay inside http_get.cpp.

#include <chrono>
#include <string>

#include "anonymizer/status.hpp"

namespace custodian::cli {

struct HttpGetOptions {
    std::string bearerToken;           // sent as "Authorization: Bearer <token>" when not empty
    std::string caFile;                // PEM bundle for https; empty: the system's default paths
    std::chrono::seconds timeout{60};  // per network operation
};

struct HttpGetResult {
    int status = 0;
    std::string contentType;
    std::string body;  // empty when written to a file
};

// GET `url` (http://host[:port]/path?query or https://...). Unavailable when the server cannot be
// reached or the transfer breaks; InvalidArgument for a malformed URL. Any HTTP status is a
// successful result: the caller decides. With `bodyFile`, the body goes to that file (created or
// truncated) instead of `body`.
Result<HttpGetResult> httpGet(const std::string& url, const HttpGetOptions& options, const std::string& bodyFile = "");

// POST `body` as application/json to `url`; the answer in memory. Errors as httpGet.
Result<HttpGetResult> httpPostJson(const std::string& url, const std::string& body, const HttpGetOptions& options);

}  // namespace custodian::cli
