// Hostile clients against the real server (issue 6, part 5): every way a client can try to hold
// server resources — an oversized header, an oversized body, a header or body trickled byte by
// byte, hundreds of connections that never send anything — is bounded by a limit or a timeout,
// and the server keeps answering other clients meanwhile.
//
// Timing assertions are deliberately loose (lower bounds a little under the configured timeout,
// upper bounds several seconds over it) so the tests hold on a loaded 2-core machine.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gateway/http/message.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using api::Access;
using api::RequestContext;
using http::HttpResponse;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<api::Route> echoRoute() {
    return {{"POST", "/test/echo", Access::publicRoute(), [](RequestContext& ctx) -> Result<HttpResponse> {
                 return HttpResponse::text(200, std::to_string(ctx.request.body.size()));
             }}};
}

// A bare non-blocking TCP connection: the hostile side needs to send without ever blocking on a
// server that stopped reading, and to notice a close while still sending.
class RawConnection {
public:
    explicit RawConnection(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("socket failed");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect failed");
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    }
    ~RawConnection() {
        if (fd_ >= 0) ::close(fd_);
    }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    int fd() const { return fd_; }

    // Sends what the socket accepts now; false once the server has closed or reset the connection.
    bool trySend(std::string_view bytes) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        return n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK;
    }

    // Reads whatever is available (waiting up to `wait`); false once the peer closed or reset.
    bool pump(milliseconds wait) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
        char buf[16384];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            received_.append(buf, static_cast<size_t>(n));
            return true;
        }
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }

    const std::string& received() const { return received_; }

private:
    int fd_ = -1;
    std::string received_;
};

// Sends `request` one byte every `pace` until the server closes the connection or `limit` passes.
// Returns how long the server tolerated it.
milliseconds trickleUntilClosed(RawConnection& c, const std::string& request, milliseconds pace, milliseconds limit) {
    const auto started = Clock::now();
    size_t next = 0;
    while (Clock::now() - started < limit) {
        if (next < request.size()) {
            if (!c.trySend(std::string_view(request).substr(next, 1))) break;
            ++next;
        }
        if (!c.pump(pace)) break;
    }
    return std::chrono::duration_cast<milliseconds>(Clock::now() - started);
}

int statusOf(const std::string& raw) {
    // "HTTP/1.1 431 ..." → 431; 0 if no status line arrived.
    if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return 0;
    return std::stoi(raw.substr(9, 3));
}

}  // namespace

TEST_CASE("a header larger than max_header_bytes is refused with 431", "[integration][hostile]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) { c.maxHeaderBytes = 4096; }});

    // Just over the limit: small enough to sit in the socket buffers, so the client can read the answer.
    HttpClient justOver(gw.port());
    justOver.sendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(5000, 'p') + "\r\n\r\n");
    auto refused = justOver.readResponse();
    CHECK(refused.status == 431);
    CHECK(refused.body.find(R"("code":"header_too_large")") != std::string::npos);
    CHECK(justOver.waitForClose(milliseconds(5000)));

    // Many header lines, each small: the limit is on the whole header, not on one line.
    HttpClient manyLines(gw.port());
    std::string lines;
    for (int i = 0; i < 400; ++i) lines += "X-H" + std::to_string(i) + ": 0123456789\r\n";
    manyLines.sendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + "\r\n");
    CHECK(manyLines.readResponse().status == 431);

    // A 4 MB header that never ends: the server stops reading and closes; the client never gets a 200.
    RawConnection flood(gw.port());
    std::string chunk(64 * 1024, 'h');
    REQUIRE(flood.trySend("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: "));
    const auto started = Clock::now();
    bool open = true;
    for (int i = 0; i < 64 && open; ++i) { open = flood.trySend(chunk) && flood.pump(milliseconds(20)); }
    while (open && Clock::now() - started < milliseconds(15000)) open = flood.pump(milliseconds(100));
    CHECK_FALSE(open);
    CHECK(statusOf(flood.received()) != 200);

    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("a body larger than max_body_bytes is refused with 413 before it is sent", "[integration][hostile]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {echoRoute(), [](config::GatewayConfig& c) { c.maxBodyBytes = 64 * 1024; }});

    // The declared length alone decides: the client sends no body byte and still gets the 413
    // promptly — the server does not wait for (or buffer) a gigabyte.
    HttpClient declared(gw.port());
    const auto started = Clock::now();
    declared.sendRaw("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n");
    auto refused = declared.readResponse();
    CHECK(refused.status == 413);
    CHECK(refused.body.find(R"("code":"payload_too_large")") != std::string::npos);
    CHECK(Clock::now() - started < milliseconds(5000));
    CHECK(declared.waitForClose(milliseconds(5000)));

    // A client that announces 100-continue is refused before it sends the body too.
    HttpClient expecting(gw.port());
    expecting.sendRaw(
        "POST /test/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n");
    CHECK(expecting.readResponse().status == 413);

    // A chunked body that keeps coming: refused once it passes the limit, the connection ends
    // while the client is still sending — the server never reads the whole stream.
    RawConnection endless(gw.port());
    REQUIRE(endless.trySend("POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'b') + "\r\n";
    bool open = true;
    size_t sent = 0;
    const auto streamStarted = Clock::now();
    while (open && Clock::now() - streamStarted < milliseconds(20000) && sent < 256u * 1024 * 1024) {
        open = endless.trySend(chunk) && endless.pump(milliseconds(5));
        sent += chunk.size();
    }
    while (open && Clock::now() - streamStarted < milliseconds(20000)) open = endless.pump(milliseconds(100));
    CHECK_FALSE(open);
    CHECK(sent < 64u * 1024 * 1024);  // stopped long before the client ran out of body
    // The 413 is written before the close, but a reset racing the client's read may discard it;
    // what must never happen is a 200.
    CHECK(statusOf(endless.received()) != 200);

    // Right at the limit is fine.
    CHECK(httpRequest(gw.port(), "POST", "/test/echo", {}, std::string(64 * 1024, 'x')).body == "65536");
}

TEST_CASE("a header trickled byte by byte is cut off at the header timeout", "[integration][hostile]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) { c.timeouts.header = milliseconds(800); }});

    // Slowloris: a byte every 50 ms keeps the connection busy, but the header timeout is a
    // deadline for the whole header, not an inactivity timer.
    RawConnection slow(gw.port());
    std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 200; ++i) header += "X-Slow-" + std::to_string(i) + ": 1\r\n";
    header += "\r\n";
    milliseconds tolerated = trickleUntilClosed(slow, header, milliseconds(50), milliseconds(20000));
    CHECK(tolerated >= milliseconds(600));
    CHECK(tolerated < milliseconds(8000));
    CHECK(statusOf(slow.received()) != 200);

    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("a body trickled byte by byte is cut off at the body timeout", "[integration][hostile]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {echoRoute(), [](config::GatewayConfig& c) {
                                          c.timeouts.header = milliseconds(10000);
                                          c.timeouts.body = milliseconds(800);
                                      }});

    RawConnection slow(gw.port());
    REQUIRE(slow.trySend("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n"));
    milliseconds tolerated = trickleUntilClosed(slow, std::string(400, 'b'), milliseconds(50), milliseconds(20000));
    CHECK(tolerated >= milliseconds(600));
    CHECK(tolerated < milliseconds(8000));  // well before the 10 s header timeout or the 20 s body
    CHECK(statusOf(slow.received()) != 200);

    // A body that arrives in time is served.
    CHECK(httpRequest(gw.port(), "POST", "/test/echo", {}, std::string(400, 'b')).body == "400");
}

TEST_CASE("hundreds of idle connections are closed by the timeouts while others are served", "[integration][hostile]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) {
                                          c.timeouts.header = milliseconds(3000);
                                          c.timeouts.idle = milliseconds(3000);
                                      }});
    constexpr int kSilent = 300;     // connect and never send a byte (header timeout)
    constexpr int kKeepAlive = 200;  // one request, then idle on keep-alive (idle timeout)

    std::vector<std::unique_ptr<RawConnection>> silent;
    for (int i = 0; i < kSilent; ++i) silent.push_back(std::make_unique<RawConnection>(gw.port()));
    std::vector<std::unique_ptr<HttpClient>> idle;
    for (int i = 0; i < kKeepAlive; ++i) {
        idle.push_back(std::make_unique<HttpClient>(gw.port()));
        REQUIRE(idle.back()->request("GET", "/healthz").status == 200);
    }

    // While all of them are held open, a new client is answered promptly.
    const auto asked = Clock::now();
    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
    CHECK(Clock::now() - asked < milliseconds(3000));

    // Every one of them is closed by the server within the timeouts (plus generous slack).
    const auto deadline = Clock::now() + milliseconds(20000);
    int silentClosed = 0;
    for (auto& c : silent) {
        bool open = true;
        while (open && Clock::now() < deadline) open = c->pump(milliseconds(200));
        if (!open) ++silentClosed;
        CHECK(c->received().empty());  // nothing was asked, nothing is answered
    }
    CHECK(silentClosed == kSilent);
    int idleClosed = 0;
    for (auto& c : idle) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (c->waitForClose(std::max(left, milliseconds(1)))) ++idleClosed;
    }
    CHECK(idleClosed == kKeepAlive);

    CHECK(httpRequest(gw.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("connections beyond max_connections are answered 503 with Retry-After", "[integration][hostile]") {
    auto db = TestDatabase::create();
    constexpr uint32_t kLimit = 20;
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) {
                                          c.maxConnections = kLimit;
                                          c.timeouts.header = milliseconds(30000);
                                      }});
    std::vector<std::unique_ptr<RawConnection>> held;
    for (uint32_t i = 0; i < kLimit; ++i) held.push_back(std::make_unique<RawConnection>(gw.port()));

    // Once the server has accepted all of them (it may take a moment on a loaded machine), the
    // next connection is refused at once, before its request is even read.
    HttpResult refused;
    const auto deadline = Clock::now() + milliseconds(15000);
    do {
        refused = httpRequest(gw.port(), "GET", "/healthz");
        if (refused.status == 503) break;
        std::this_thread::sleep_for(milliseconds(100));
    } while (Clock::now() < deadline);
    REQUIRE(refused.status == 503);
    CHECK(refused.header("retry-after") == "1");
    CHECK(refused.body.find(R"("code":"overloaded")") != std::string::npos);
    for (auto& c : held) CHECK(c->pump(milliseconds(1)));  // the held connections are untouched

    // Freeing connections makes room again.
    held.resize(kLimit / 2);
    int status = 0;
    do {
        status = httpRequest(gw.port(), "GET", "/healthz").status;
        if (status == 200) break;
        std::this_thread::sleep_for(milliseconds(100));
    } while (Clock::now() < deadline + milliseconds(15000));
    CHECK(status == 200);
}
