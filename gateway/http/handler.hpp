#pragma once
// handleRequest: the whole request → response logic (routing, authentication, role check,
// overload protection — per-principal rate limit and in-flight extract slots, gateway/http/overload.hpp —
// handler, error mapping, request id) as a plain function, testable without a socket. It may block
// on the database for protected routes; the server runs it on a worker thread unless
// runsInline() says the request cannot block.

#include <string>

#include "gateway/http/message.hpp"
#include "gateway/http/router.hpp"

namespace custodian {
struct Services;
}

namespace custodian::http {

struct HandledRequest {
    HttpResponse response;
    std::string route = "unmatched";  // the matched route pattern (metrics label)
    std::string principal;            // authenticated principal name, empty if none
};

HandledRequest handleRequest(const HttpRequest& request, Services& services, const Router& router);
// Uses services.router.
HandledRequest handleRequest(const HttpRequest& request, Services& services);

// True if handling `request` with `router` cannot block (unknown route, wrong method, or an
// inline-safe public route).
bool runsInline(const HttpRequest& request, const Router& router);

// 32 hex characters from the system CSPRNG.
std::string newRequestId();
// An X-Request-Id sent by a client or proxy is kept if it is 1–64 characters of [A-Za-z0-9._-].
bool acceptableRequestId(std::string_view id);

}  // namespace custodian::http
