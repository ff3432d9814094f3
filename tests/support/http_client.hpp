#pragma once
// A small blocking HTTP/1.1 client over a plain POSIX socket, for integration tests. It exists so
// tests can do what real clients do — and what misbehaving ones do: keep a connection open for
// several requests, send half a header and wait, disconnect in the middle of a streamed body.
// Every read has a timeout (default 30 s) so a server bug fails the test instead of hanging it.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace custodian::testing {

struct HttpResult {
    int status = 0;
    std::map<std::string, std::string> headers;  // lowercase names
    std::string body;                            // de-chunked
    bool chunked = false;
    bool complete = true;  // false if the connection closed before the end of a chunked body

    std::string header(const std::string& lowercaseName) const;
};

class HttpClient {
public:
    explicit HttpClient(uint16_t port, const std::string& host = "127.0.0.1");  // connects; throws
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    void setTimeout(std::chrono::milliseconds t) { timeout_ = t; }

    // Sends a request (Host and Content-Length added) and reads the response, which is checked
    // against docs/openapi.yaml (openapi_contract.hpp).
    HttpResult request(const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       const std::string& body = {});
    void sendRaw(std::string_view bytes);  // throws if the peer is gone
    HttpResult readResponse();             // throws on timeout or a malformed response
    // Reads and discards until the peer closes; true if that happened within `wait`.
    bool waitForClose(std::chrono::milliseconds wait);
    void close();

private:
    std::string readLine();
    std::string readExact(size_t n);
    bool fill();  // one recv into buffer_; false on EOF

    int fd_ = -1;
    std::string buffer_;
    std::chrono::milliseconds timeout_{30000};
};

// One request on a fresh connection.
HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       const std::string& body = {});

// One request on a fresh connection as the principal holding `token` (Authorization: Bearer), with
// Content-Type: application/json when there is a body.
HttpResult bearerRequest(uint16_t port, const std::string& method, const std::string& target, const std::string& token,
                         const std::string& body = {});

}  // namespace custodian::testing
