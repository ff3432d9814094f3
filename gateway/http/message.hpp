#pragma once
// Plain request/response types shared by the router, the handlers and the server. They carry no
// Beast or Asio types so that route handlers compile fast and can be tested without a socket;
// gateway/http/server.cpp converts to and from Beast messages.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // as received: path and query
    std::string path;    // target without the query (not percent-decoded; route params are)
    std::string query;   // after '?', raw
    Headers headers;     // names as received
    std::string body;
    std::string remoteAddress;
    std::string requestId;  // set by the server; handleRequest fills one in if empty
    // Set when the server refused the request before its body was read (413): handleRequest then
    // answers with this error instead of running the route, and audits it like any other request.
    struct Refusal {
        int status = 0;
        std::string code;
        std::string message;
    };
    std::optional<Refusal> refusedByServer;

    // Value of the first header named `name` (case-insensitive), or empty.
    std::string header(std::string_view name) const;
    // Percent-decoded value of the query parameter `name`, if present.
    std::optional<std::string> queryParam(std::string_view name) const;
};

// A response body produced incrementally and sent with chunked transfer encoding, for bodies that
// are large or computed while they are sent (extracts, audit exports).
//
// Contract: the server calls nextChunk() repeatedly, one call at a time, on a worker thread (so it
// may block on the database), and writes each returned chunk before asking for the next. An empty
// optional ends the body. An error status after the header went out cannot change the HTTP status:
// the server then closes the connection without the terminating chunk, so the client sees a
// truncated body. If the client disconnects or a write fails first, clientGone() is called once
// and nextChunk() is not called again. The producer is destroyed after the last call.
class BodyProducer {
public:
    virtual ~BodyProducer() = default;
    virtual Result<std::optional<std::string>> nextChunk() = 0;
    virtual void clientGone(const std::string& reason) = 0;
};

struct HttpResponse {
    int status = 200;
    Headers headers;
    std::string body;                      // ignored when `stream` is set
    std::shared_ptr<BodyProducer> stream;  // chunked body instead of `body`

    void setHeader(std::string name, std::string value);  // replaces a header of the same name
    std::string header(std::string_view name) const;

    static HttpResponse json(int status, std::string jsonBody);
    static HttpResponse text(int status, std::string body, std::string contentType = "text/plain; charset=utf-8");
    static HttpResponse streaming(int status, std::string contentType, std::shared_ptr<BodyProducer> producer);
};

bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Percent-decodes `s` ('+' is kept as is in paths). InvalidArgument on a bad escape.
Result<std::string> percentDecode(std::string_view s, bool plusIsSpace = false);

// 32 hex characters from the system CSPRNG.
std::string newRequestId();
// An X-Request-Id sent by a client or proxy is kept if it is 1–64 characters of [A-Za-z0-9._-].
bool acceptableRequestId(std::string_view id);

}  // namespace custodian::http
