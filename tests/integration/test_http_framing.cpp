// Request smuggling (issue 13, part 1): every way of writing the length of a request body that two
// HTTP implementations could read differently — the CL.TE, TE.CL and TE.TE families and their
// obfuscations — is refused with 400 and the connection closed, so a body can never be served as
// a second request on the same connection. Each case sends a request with a smuggled request
// behind it in one write, reads until the server closes, and counts the responses.
//
// A few legitimate framings are in the same table, to show that valid requests — including
// RFC-valid spellings such as `Transfer-Encoding: CHUNKED` — are still served, and framed as
// chunked: their chunk data is itself a request, which would be answered if the gateway read
// the body as "no body".
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "gateway/http/message.hpp"
#include "gateway_fixture.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using api::Access;
using api::RequestContext;
using http::HttpResponse;

namespace {

std::vector<api::Route> echoRoute() {
    return {{"POST", "/test/echo", Access::publicRoute(), [](RequestContext& ctx) -> Result<HttpResponse> {
                 return HttpResponse::text(200, "echo " + std::to_string(ctx.request.body.size()));
             }}};
}

struct Exchange {
    std::string received;
    bool closedByServer = false;  // EOF (or reset) before the 10 s read timeout
};

// Connects, sends `bytes` in one write, and reads until the server closes the connection.
Exchange sendAndReadUntilClose(uint16_t port, const std::string& bytes) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("connect failed");
    }
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    Exchange exchange;
    if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
        ::close(fd);
        throw std::runtime_error("send failed");
    }
    char buf[16384];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            exchange.received.append(buf, static_cast<size_t>(n));
            continue;
        }
        exchange.closedByServer = n == 0 || errno == ECONNRESET;
        break;
    }
    ::close(fd);
    return exchange;
}

struct Response {
    int status = 0;
    std::string body;
};

// Splits what a connection received into responses (each has a Content-Length: the gateway's
// error and echo responses are never streamed). Throws on anything else.
std::vector<Response> splitResponses(std::string_view raw) {
    std::vector<Response> responses;
    while (!raw.empty()) {
        if (raw.substr(0, 7) != "HTTP/1." || raw.size() < 12)
            throw std::runtime_error("not a status line: " + std::string(raw.substr(0, 40)));
        const size_t headerEnd = raw.find("\r\n\r\n");
        if (headerEnd == std::string_view::npos) throw std::runtime_error("truncated response header");
        std::string header(raw.substr(0, headerEnd + 2));
        for (char& c : header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const size_t cl = header.find("\r\ncontent-length:");
        if (cl == std::string::npos) throw std::runtime_error("response without Content-Length");
        const size_t length = std::stoul(header.substr(cl + 17));
        Response response;
        response.status = std::stoi(std::string(raw.substr(9, 3)));
        response.body = std::string(raw.substr(headerEnd + 4, length));
        responses.push_back(response);
        raw.remove_prefix(std::min(raw.size(), headerEnd + 4 + length));
    }
    return responses;
}

// The smuggled request: served with 200 if the gateway ever reads a body as a request.
const std::string kSmuggled = "GET /v1/keys HTTP/1.1\r\nHost: x\r\n\r\n";
// Ends the legitimate cases, so the server closes once everything has been answered.
const std::string kLast = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

std::string echo(const std::string& fields, const std::string& body) {
    return "POST /test/echo HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" + body;
}

// A chunked body whose only chunk is the smuggled request.
std::string smuggledInChunk() {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", kSmuggled.size());
    return std::string(size) + "\r\n" + kSmuggled + "\r\n0\r\n\r\n";
}

struct FramingCase {
    std::string name;
    std::string bytes;           // one write, the smuggled request included
    std::vector<int> statuses;   // every response the connection must produce, in order
    std::string firstBody = {};  // when set, the first response's body
};

std::vector<FramingCase> framingCases() {
    const std::string chunk = smuggledInChunk();
    const std::string echoed = "echo " + std::to_string(kSmuggled.size());
    const std::string nul(1, '\0');
    return {
        // --- TE.TE: a Transfer-Encoding that is not exactly "chunked" -----------------------
        {"issue 13: Transfer-Encoding: xchunked",
         "POST /v1/extracts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n" + kSmuggled,
         {400}},
        {"Transfer-Encoding: chunked, identity", echo("Transfer-Encoding: chunked, identity\r\n", kSmuggled), {400}},
        {"Transfer-Encoding: identity, chunked", echo("Transfer-Encoding: identity, chunked\r\n", chunk), {400}},
        {"Transfer-Encoding: gzip, chunked", echo("Transfer-Encoding: gzip, chunked\r\n", chunk), {400}},
        {"Transfer-Encoding: identity", echo("Transfer-Encoding: identity\r\n", kSmuggled), {400}},
        {"Transfer-Encoding: chunked;ext=1", echo("Transfer-Encoding: chunked;ext=1\r\n", chunk), {400}},
        {"Transfer-Encoding: chunked, chunked", echo("Transfer-Encoding: chunked, chunked\r\n", chunk), {400}},
        {"Transfer-Encoding with a vertical tab",
         echo("Transfer-Encoding: \x0b"
              "chunked\r\n",
              chunk),
         {400}},
        {"Transfer-Encoding with a NUL", echo("Transfer-Encoding: chunked" + nul + "\r\n", chunk), {400}},
        {"Transfer-Encoding: \"chunked\"", echo("Transfer-Encoding: \"chunked\"\r\n", chunk), {400}},
        {"two Transfer-Encoding headers, both chunked",
         echo("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunk),
         {400}},
        {"two Transfer-Encoding headers, chunked then identity",
         echo("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", chunk),
         {400}},
        {"Transfer-Encoding : chunked (space before the colon)", echo("Transfer-Encoding : chunked\r\n", chunk), {400}},
        {"Transfer-Encoding<TAB>: chunked", echo("Transfer-Encoding\t: chunked\r\n", chunk), {400}},
        {"obs-fold: Transfer-Encoding:<CRLF> chunked", echo("Transfer-Encoding:\r\n chunked\r\n", chunk), {400}},
        {"obs-fold hides Transfer-Encoding in X's value",
         echo("X: y\r\n Transfer-Encoding: chunked\r\n", chunk),
         {400}},
        {"Transfer-Encoding in an HTTP/1.0 request",
         "POST /test/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + chunk,
         {400}},
        // --- CL.TE and TE.CL --------------------------------------------------------------
        {"CL.TE: Content-Length then Transfer-Encoding",
         echo("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nG" + kSmuggled),
         {400}},
        {"TE.CL: Transfer-Encoding then Content-Length",
         echo("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", chunk),
         {400}},
        {"CL.TE with an obfuscated Transfer-Encoding",
         echo("Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n", "hello" + kSmuggled),
         {400}},
        // --- Content-Length ---------------------------------------------------------------
        {"two equal Content-Lengths", echo("Content-Length: 5\r\nContent-Length: 5\r\n", "hello" + kSmuggled), {400}},
        {"two different Content-Lengths",
         echo("Content-Length: 5\r\nContent-Length: 40\r\n", "hello" + kSmuggled),
         {400}},
        {"Content-Length: 5, 5", echo("Content-Length: 5, 5\r\n", "hello" + kSmuggled), {400}},
        {"Content-Length: +5", echo("Content-Length: +5\r\n", "hello" + kSmuggled), {400}},
        {"Content-Length: -5", echo("Content-Length: -5\r\n", "hello" + kSmuggled), {400}},
        {"Content-Length: 5 5", echo("Content-Length: 5 5\r\n", "hello" + kSmuggled), {400}},
        {"Content-Length: 0x5", echo("Content-Length: 0x5\r\n", "hello" + kSmuggled), {400}},
        {"Content-Length: 5.0", echo("Content-Length: 5.0\r\n", "hello" + kSmuggled), {400}},
        {"Content-Length beyond 2^64", echo("Content-Length: 18446744073709551621\r\n", "hello" + kSmuggled), {400}},
        {"empty Content-Length", echo("Content-Length:\r\n", kSmuggled), {400}},
        // --- Host ---------------------------------------------------------------------------
        {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n" + kSmuggled, {400}},
        {"two Host headers", "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + kSmuggled, {400}},
        {"a Host with a path", "GET /healthz HTTP/1.1\r\nHost: x/y\r\n\r\n" + kSmuggled, {400}},
        // --- line endings and bytes in the header -------------------------------------------
        {"bare LF line endings", "GET /healthz HTTP/1.1\nHost: x\n\n" + kSmuggled, {400}},
        {"bare LF before Transfer-Encoding",
         "POST /test/echo HTTP/1.1\r\nHost: x\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n" + chunk,
         {400}},
        {"bare CR before Transfer-Encoding",
         "POST /test/echo HTTP/1.1\r\nHost: x\r\nX: y\rTransfer-Encoding: chunked\r\n\r\n" + chunk,
         {400}},
        {"NUL in a field value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a" + nul + "b\r\n\r\n" + kSmuggled, {400}},
        {"control character in a field value",
         "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x01"
         "b\r\n\r\n" +
             kSmuggled,
         {400}},
        {"NUL in a field name", "GET /healthz HTTP/1.1\r\nHost: x\r\nX" + nul + ": b\r\n\r\n" + kSmuggled, {400}},
        // --- request line -------------------------------------------------------------------
        {"a request-target without a leading slash", "GET healthz HTTP/1.1\r\nHost: x\r\n\r\n" + kSmuggled, {400}},
        {"a request-target with a fragment", "GET /healthz#x HTTP/1.1\r\nHost: x\r\n\r\n" + kSmuggled, {400}},
        {"two spaces in the request line", "GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + kSmuggled, {400}},
        {"HTTP/1.2", "GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n" + kSmuggled, {400}},

        // --- legitimate framing: served normally --------------------------------------------
        {"plain GET", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + kLast, {200, 200}},
        {"Content-Length body", echo("Content-Length: 5\r\n", "hello") + kLast, {200, 200}, "echo 5"},
        {"Content-Length with leading zeros", echo("Content-Length: 005\r\n", "hello") + kLast, {200, 200}, "echo 5"},
        {"chunked body", echo("Transfer-Encoding: chunked\r\n", chunk) + kLast, {200, 200}, echoed},
        {"Transfer-Encoding: CHUNKED", echo("Transfer-Encoding: CHUNKED\r\n", chunk) + kLast, {200, 200}, echoed},
        {"Transfer-Encoding:<SP><SP>chunked<SP>",
         echo("Transfer-Encoding:  chunked \r\n", chunk) + kLast,
         {200, 200},
         echoed},
        {"Transfer-Encoding:<TAB>chunked", echo("Transfer-Encoding:\tchunked\r\n", chunk) + kLast, {200, 200}, echoed},
        {"lowercase transfer-encoding", echo("transfer-encoding: chunked\r\n", chunk) + kLast, {200, 200}, echoed},
        {"two pipelined GETs",
         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/keys HTTP/1.1\r\nHost: x\r\n\r\n" + kLast,
         {200, 200, 200}},
        {"an empty line before the request line (RFC 9112 section 2.2)",
         "\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + kLast,
         {200, 200}},
        {"HTTP/1.0 without Host, then close", "GET /healthz HTTP/1.0\r\n\r\n" + kSmuggled, {200}},
    };
}

}  // namespace

TEST_CASE("request smuggling: ambiguous framing is refused with 400 and nothing after it is served",
          "[integration][http][framing]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {echoRoute(), {}});

    const std::vector<FramingCase> cases = framingCases();
    int refused = 0;
    for (const FramingCase& c : cases) {
        if (c.statuses == std::vector<int>{400}) ++refused;
        INFO("case: " << c.name);
        const Exchange exchange = sendAndReadUntilClose(gw.port(), c.bytes);
        CHECK(exchange.closedByServer);
        std::vector<Response> responses;
        REQUIRE_NOTHROW(responses = splitResponses(exchange.received));
        std::vector<int> statuses;
        for (const Response& r : responses) statuses.push_back(r.status);
        CHECK(statuses == c.statuses);
        if (!c.firstBody.empty() && !responses.empty()) CHECK(responses.front().body == c.firstBody);
        if (c.statuses.front() == 400 && !responses.empty()) {
            CHECK(responses.front().body.find(R"("code":"bad_request")") != std::string::npos);
            CHECK(responses.front().body.find("malformed HTTP request: ") != std::string::npos);
        }
    }
    CHECK(refused >= 30);

    // The issue's reproduction says exactly what was wrong.
    const Exchange repro = sendAndReadUntilClose(gw.port(), cases.front().bytes);
    CHECK(repro.received.find("Connection: close\r\n") != std::string::npos);
    CHECK(repro.received.find(R"(Transfer-Encoding: only \"chunked\" is supported (got \"xchunked\"))") !=
          std::string::npos);
}

TEST_CASE("request smuggling: the header checks keep the 431 limit and the header timeout",
          "[integration][http][framing]") {
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), {{}, [](config::GatewayConfig& c) {
                                          c.maxHeaderBytes = 1024;
                                          c.timeouts.header = std::chrono::milliseconds(500);
                                      }});

    // A header block just over the limit is 431, even with a smuggled request after it.
    const std::string padded = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(1024, 'p') + "\r\n\r\n";
    const Exchange tooLarge = sendAndReadUntilClose(gw.port(), padded + kSmuggled);
    CHECK(tooLarge.closedByServer);
    std::vector<Response> responses = splitResponses(tooLarge.received);
    REQUIRE(responses.size() == 1);
    CHECK(responses.front().status == 431);

    // Half a header (no CRLFCRLF yet) is closed silently at the header timeout.
    const auto started = std::chrono::steady_clock::now();
    const Exchange half = sendAndReadUntilClose(gw.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    CHECK(half.closedByServer);
    CHECK(half.received.empty());
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(8));

    // Bytes that cannot start a request (here a TLS ClientHello) are refused at once, not at the
    // header timeout.
    const Exchange clientHello =
        sendAndReadUntilClose(gw.port(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9));
    CHECK(clientHello.closedByServer);
    responses = splitResponses(clientHello.received);
    REQUIRE(responses.size() == 1);
    CHECK(responses.front().status == 400);
    CHECK(responses.front().body.find("does not start with a method") != std::string::npos);
}
