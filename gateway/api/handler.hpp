#pragma once
// handleRequest: the whole request → response logic (routing, authentication, role check,
// overload protection — per-principal rate limit and in-flight extract slots, gateway/api/overload.hpp —
// handler, error mapping, the audit entry of every audited request, request id) as a plain
// function, testable without a socket. It may block on the database for protected routes; the
// server runs it on a worker thread unless runsInline() says the request cannot block.
// RouterHandler adapts it to the transport's http::RequestHandler.

#include <string>

#include "gateway/api/router.hpp"
#include "gateway/http/message.hpp"
#include "gateway/http/request_handler.hpp"

namespace custodian::api {

struct Services;
using http::HandledRequest;

HandledRequest handleRequest(const HttpRequest& request, Services& services, const Router& router);
// The same, answering through `done` (exactly once): when the last step is appending the request's
// audit entry, done is called from the audit log's appender thread once the entry committed, and
// the calling thread is free meanwhile. handleRequest waits for it.
void handleRequestAsync(const HttpRequest& request, Services& services, const Router& router,
                        http::RequestHandler::HandledCallback done);
// Uses services.router.
HandledRequest handleRequest(const HttpRequest& request, Services& services);

// True if handling `request` with `router` cannot block (unknown route, wrong method, or an
// inline-safe public route that is not audited).
bool runsInline(const HttpRequest& request, const Router& router);

// One listener's routes served through handleRequest. Both referents must outlive it.
class RouterHandler final : public http::RequestHandler {
public:
    RouterHandler(Services& services, const Router& router) : services_(services), router_(router) {}
    bool runsInline(const HttpRequest& request) const override { return api::runsInline(request, router_); }
    HandledRequest handle(const HttpRequest& request) override;
    void handleAsync(const HttpRequest& request, HandledCallback done) override;

private:
    Services& services_;
    const Router& router_;
};

}  // namespace custodian::api
