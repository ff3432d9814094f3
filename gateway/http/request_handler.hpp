#pragma once
// What the server asks of the application: a listener hands every parsed request to a
// RequestHandler and writes what it returns. The server knows no route, principal or database;
// gateway/api implements this interface with the router, authentication, admission and auditing.

#include <functional>
#include <string>

#include "gateway/http/message.hpp"

namespace custodian::http {

// A response together with what the server logs and counts about it.
struct HandledRequest {
    HttpResponse response;
    std::string route = "unmatched";  // the matched route pattern (metrics label; bounded cardinality)
    std::string principal;            // authenticated principal name, empty if none (access log)
};

class RequestHandler {
public:
    virtual ~RequestHandler() = default;
    // True if handle(request) cannot block: it then runs on the network thread. Otherwise the
    // server runs it with its blocking-job runner.
    virtual bool runsInline(const HttpRequest& request) const = 0;
    // The whole request → response logic. Must not throw (the server maps an escaped exception to 500).
    virtual HandledRequest handle(const HttpRequest& request) = 0;
    // handle() for requests that do not run inline: it may answer later, from another thread, by
    // calling done exactly once (the server's worker is free meanwhile). The default answers at once.
    using HandledCallback = std::function<void(HandledRequest)>;
    virtual void handleAsync(const HttpRequest& request, HandledCallback done) { done(handle(request)); }
};

// Runs a job that may block (database, files) off the network threads. The job must not throw.
using BlockingRunner = std::function<void(std::function<void()> job)>;

}  // namespace custodian::http
