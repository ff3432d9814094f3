// The RFC 9112 framing checks the server runs on every header block before Beast parses it
// (gateway/http/framing). The socket-level view of the same cases, with smuggled second requests,
// is tests/integration/test_http_framing.cpp.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/http/framing.hpp"

using namespace custodian;
using namespace custodian::http;
using Body = RequestFraming::Body;
using State = HeaderScan::State;

namespace {

std::string post(const std::string& fields) { return "POST /v1/extracts HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n"; }

// The message of the refusal, or "" when the header is accepted.
std::string refusal(const std::string& block) {
    auto result = validateRequestHeader(block);
    return result ? std::string() : result.status().message();
}

}  // namespace

TEST_CASE("framing: a plain request, a Content-Length body and a chunked body are accepted", "[unit][http][framing]") {
    auto plain = validateRequestHeader("GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n");
    REQUIRE(plain);
    CHECK(plain->body == Body::None);

    auto lengthed = validateRequestHeader(post("Content-Length: 0042\r\n"));
    REQUIRE(lengthed);
    CHECK(lengthed->body == Body::ContentLength);
    CHECK(lengthed->contentLength == 42);

    // Field values are case-insensitive tokens with optional whitespace around them.
    for (const char* te :
         {"chunked", "CHUNKED", "Chunked", " chunked", "chunked ", "\tchunked\t", "chunked,", ", chunked"}) {
        INFO(te);
        auto chunked = validateRequestHeader(post(std::string("transfer-encoding:") + te + "\r\n"));
        REQUIRE(chunked);
        CHECK(chunked->body == Body::Chunked);
    }

    // HTTP/1.0 needs no Host; absolute-form and asterisk-form targets are request-targets too.
    CHECK(validateRequestHeader("GET /healthz HTTP/1.0\r\n\r\n"));
    CHECK(validateRequestHeader("GET http://gw:8080/healthz?x=%41 HTTP/1.1\r\nHost: gw:8080\r\n\r\n"));
    CHECK(validateRequestHeader("OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"));
    // obs-text is allowed in field values; only control characters are not.
    CHECK(validateRequestHeader("GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\nX-Empty:\r\n\r\n"));
}

TEST_CASE("framing: any Transfer-Encoding other than chunked alone is refused, quoting it", "[unit][http][framing]") {
    CHECK(refusal(post("Transfer-Encoding: xchunked\r\n")) ==
          R"(Transfer-Encoding: only "chunked" is supported (got "xchunked"))");
    CHECK(refusal(post("Transfer-Encoding: chunked, identity\r\n")) ==
          R"(Transfer-Encoding: only "chunked" is supported (got "chunked, identity"))");
    for (const char* te : {"identity, chunked", "gzip, chunked", "chunked, chunked", "chunked;q=1", "chunk", "",
                           "identity", "chunked\x0b", "\"chunked\""}) {
        INFO(te);
        CHECK_FALSE(validateRequestHeader(post(std::string("Transfer-Encoding: ") + te + "\r\n")));
    }
    CHECK(refusal(post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")) ==
          "more than one Transfer-Encoding header");
    CHECK(refusal(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")) ==
          "both Content-Length and Transfer-Encoding");
    CHECK(refusal(post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")) ==
          "both Content-Length and Transfer-Encoding");
    CHECK(refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          "Transfer-Encoding in an HTTP/1.0 request");
}

TEST_CASE("framing: duplicate or malformed Content-Length is refused", "[unit][http][framing]") {
    CHECK(refusal(post("Content-Length: 5\r\nContent-Length: 5\r\n")) == "more than one Content-Length header");
    CHECK(refusal(post("Content-Length: 5\r\ncontent-length: 6\r\n")) == "more than one Content-Length header");
    CHECK(refusal(post("Content-Length: +5\r\n")) == R"(Content-Length must be a decimal number (got "+5"))");
    for (const char* cl : {"-5", "5 5", "5, 5", "0x5", "5.0", "five", "5;", "\xd9\xa5"}) {
        INFO(cl);
        CHECK_FALSE(validateRequestHeader(post(std::string("Content-Length: ") + cl + "\r\n")));
    }
    CHECK(refusal(post("Content-Length:\r\n")) == "empty Content-Length");
    CHECK(refusal(post("Content-Length: 18446744073709551616\r\n")) ==
          R"(Content-Length "18446744073709551616" is too large)");
    auto largest = validateRequestHeader(post("Content-Length: 18446744073709551615\r\n"));
    REQUIRE(largest);  // Beast's body limit answers this one with 413
    CHECK(largest->contentLength == UINT64_MAX);
}

TEST_CASE("framing: obs-fold, whitespace before the colon and control characters are refused",
          "[unit][http][framing]") {
    CHECK(refusal(post("Transfer-Encoding:\r\n chunked\r\n")) ==
          R"(obsolete line folding: a header line starts with whitespace (" chunked"))");
    CHECK(refusal(post("X: y\r\n\tchunked\r\n")).rfind("obsolete line folding", 0) == 0);
    CHECK(refusal(post("Transfer-Encoding : chunked\r\n")) ==
          R"(whitespace between the field name and the colon in "Transfer-Encoding : chunked")");
    CHECK(refusal(post("Transfer-Encoding\t: chunked\r\n")).rfind("whitespace between", 0) == 0);
    CHECK(refusal(post("X-A: a" + std::string(1, '\0') + "b\r\n")) == "control character 0x00 in the value of X-A");
    CHECK(refusal(post("X-A: a\x01"
                       "b\r\n")) == "control character 0x01 in the value of X-A");
    CHECK(refusal(post("X-A: a\x7f\r\n")) == "control character 0x7f in the value of X-A");
    CHECK(refusal(post("X-A: a\rb\r\n")) == "control character 0x0d in the value of X-A");
    CHECK(refusal(post("X A: b\r\n")) == R"(invalid header field name "X A")");
    CHECK(refusal(post("X-A b\r\n")) == R"(header line without a colon: "X-A b")");
    CHECK(refusal(post(": b\r\n")) == R"(header line with an empty field name: ": b")");
}

TEST_CASE("framing: an HTTP/1.1 request needs exactly one valid Host", "[unit][http][framing]") {
    CHECK(refusal("GET /healthz HTTP/1.1\r\n\r\n") == "an HTTP/1.1 request needs a Host header");
    CHECK(refusal("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == "more than one Host header");
    CHECK(refusal("GET /healthz HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n") == "more than one Host header");
    CHECK(refusal("GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n") == R"(invalid Host header "a/b")");
    CHECK(refusal("GET /healthz HTTP/1.1\r\nHost: a@b\r\n\r\n") == R"(invalid Host header "a@b")");
    CHECK(validateRequestHeader("GET /healthz HTTP/1.1\r\nHost:\r\n\r\n"));  // empty is allowed (RFC 9110 §7.2)
}

TEST_CASE("framing: the request line is METHOD SP request-target SP HTTP/1.x", "[unit][http][framing]") {
    CHECK(refusal("GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n").rfind("malformed request line", 0) == 0);
    CHECK(refusal("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n").rfind("malformed request line", 0) == 0);
    CHECK(refusal("GET /healthz\r\nHost: x\r\n\r\n").rfind("malformed request line", 0) == 0);
    CHECK(refusal("G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == R"(invalid method "G(T")");
    CHECK(refusal("GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n") ==
          R"(unsupported HTTP version "HTTP/2.0": expected HTTP/1.1 or HTTP/1.0)");
    CHECK(refusal("GET /healthz http/1.1\r\nHost: x\r\n\r\n").rfind("unsupported HTTP version", 0) == 0);
    CHECK(refusal("GET healthz HTTP/1.1\r\nHost: x\r\n\r\n") ==
          R"(invalid request-target "healthz": expected a path starting with "/" or an absolute URI)");
    CHECK(refusal("GET * HTTP/1.1\r\nHost: x\r\n\r\n").rfind("invalid request-target", 0) == 0);
    CHECK(refusal("GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n") ==
          R"(invalid request-target "/a#frag": character 0x23 is not allowed in a URI)");
    CHECK(refusal("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n") ==
          R"(invalid request-target "/caf\xc3\xa9": character 0xc3 is not allowed in a URI)");
    CHECK(refusal("GET /a\"<x> HTTP/1.1\r\nHost: x\r\n\r\n").rfind("invalid request-target", 0) == 0);
}

TEST_CASE("framing: the header block ends at the first CRLFCRLF within max_header_bytes", "[unit][http][framing]") {
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    auto whole = scanRequestHeader(request + "GET /next", 1024);
    CHECK(whole.state == State::Complete);
    CHECK(whole.begin == 0);
    CHECK(whole.end == request.size());

    // Every prefix is "need more", never an error.
    for (size_t n = 0; n < request.size(); ++n) {
        INFO(n);
        CHECK(scanRequestHeader(request.substr(0, n), 1024).state == State::NeedMore);
    }

    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    auto afterEmptyLines = scanRequestHeader("\r\n\r\n" + request, 1024);
    CHECK(afterEmptyLines.state == State::Complete);
    CHECK(afterEmptyLines.begin == 4);
    CHECK(afterEmptyLines.end == 4 + request.size());

    // The limit counts the whole block; exactly at the limit is fine.
    CHECK(scanRequestHeader(request, request.size()).state == State::Complete);
    CHECK(scanRequestHeader(request, request.size() - 1).state == State::TooLarge);
    CHECK(scanRequestHeader("GET /healthz HTTP/1.1\r\nX: " + std::string(100, 'a'), 64).state == State::TooLarge);
}

TEST_CASE("framing: bare LF, bare CR and bytes that cannot start a request are refused before the header ends",
          "[unit][http][framing]") {
    auto bareLf = scanRequestHeader("GET / HTTP/1.1\nHost: x\n\n", 1024);
    CHECK(bareLf.state == State::Malformed);
    CHECK(bareLf.error.message() == "a line of the request header ends in a bare LF; lines must end in CRLF");
    CHECK(scanRequestHeader("GET / HTTP/1.1\r\nHost: x\r\n\n", 1024).state == State::Malformed);
    CHECK(scanRequestHeader("\nGET / HTTP/1.1\r\n", 1024).state == State::Malformed);

    auto bareCr = scanRequestHeader("GET / HTTP/1.1\r\nX: a\rb", 1024);
    CHECK(bareCr.state == State::Malformed);
    CHECK(bareCr.error.message() == "the request header contains a bare CR (one not followed by LF)");
    CHECK(scanRequestHeader("GET / HTTP/1.1\r\nX: a\r", 1024).state == State::NeedMore);  // LF may follow

    // A TLS ClientHello on the plain port: refused at the first byte, not at the header timeout.
    auto clientHello = scanRequestHeader(std::string("\x16\x03\x01\x02\x00\x01", 6), 1024);
    CHECK(clientHello.state == State::Malformed);
    CHECK(clientHello.error.message() == "the request does not start with a method: byte 0x16 at offset 0");
}
