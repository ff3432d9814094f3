#pragma once
// The HTTP/1.1 server: Boost.Beast on C++20 coroutines, `threads` network threads, keep-alive,
// per-connection timeouts, a request body limit, optional TLS and graceful shutdown. Each session
// coroutine only reads a request, hands it to handleRequest (on a database worker thread unless
// the route runs inline) and writes the response — streaming BodyProducer bodies chunk by chunk.
//
// TLS: the handshake has its own deadline (tls.handshake_timeout_ms, from accept to the end of the
// handshake), and the connection counts against limits.max_connections from accept on, so
// half-open handshakes are bounded both in time and in number. A plain HTTP request on the TLS
// port is answered with a plain 400 (code "tls_required") and closed.
//
// The server is transport only: what a request means is the RequestHandler's business
// (gateway/http/request_handler.hpp; gateway/api implements it).
//
// Shutdown (requestShutdown, or SIGTERM/SIGINT when installSignalHandlers was called): the
// listeners close at once, idle keep-alive connections and connections still reading a header are
// closed, requests in flight run to completion and are answered with "Connection: close". After
// config.shutdownDeadline whatever is left is closed and run() returns.
//
// Beast and Asio stay inside server.cpp; this header is cheap to include.

#include <cstdint>
#include <memory>

#include "anonymizer/status.hpp"
#include "gateway/config/config.hpp"
#include "gateway/http/request_handler.hpp"

namespace custodian::http {

class Metrics;

// What a server serves and with what. Everything referenced must outlive the server.
struct ServerParts {
    const config::GatewayConfig& config;       // listen, tls, limits, timeouts, threads, access log
    RequestHandler& api;                       // requests on config.listen
    RequestHandler* metricsHandler = nullptr;  // requests on config.metricsListen (required when set)
    BlockingRunner runBlocking;                // where handlers that may block, and body producers, run
    Metrics* metrics = nullptr;                // request counts and latencies; null: not counted
};

class Server {
public:
    explicit Server(ServerParts parts);
    ~Server();  // stops, waits for jobs it posted to the pool, closes everything
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the listeners (and loads the TLS certificate). After it, port() is the bound port.
    Status start();
    uint16_t port() const;
    uint16_t metricsPort() const;  // 0 without a metrics listener

    // Stop on SIGTERM and SIGINT. Call after start(), before run().
    void installSignalHandlers();

    // Runs the network threads; returns when shutdown has completed.
    void run();

    // Thread-safe; may be called before or during run().
    void requestShutdown();

    struct Impl;  // opaque; public only so that server.cpp's session types can name it

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace custodian::http
