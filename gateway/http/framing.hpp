#pragma once
// Message framing of HTTP/1.1 requests (RFC 9112), checked on the raw bytes of the header block
// before Beast parses it. Where a request ends must be decided exactly as every other HTTP
// implementation on the path decides it (a TLS-terminating proxy in front of the gateway above
// all); where two of them could disagree — an unknown or obfuscated Transfer-Encoding, two
// Content-Lengths, an obs-fold, a bare CR or LF — the request is refused and the connection
// closed, so bytes one of them reads as a body are never read here as a second request.
//
// Beast 1.74 alone accepts several such requests: `Transfer-Encoding: xchunked` and
// `chunked, identity` are read as "no body", obs-fold and duplicate equal Content-Lengths pass,
// and an HTTP/1.1 request without Host is served.
//
// Line endings are strict: a bare LF or a bare CR anywhere in the header block is refused (RFC
// 9112 §2.2 lets a recipient accept a bare LF; the gateway does not, like Beast). Empty lines
// before the request line are skipped, as §2.2 recommends.
//
// Pure functions over bytes: no Beast, no sockets, so they are unit-tested and fuzzed directly.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "anonymizer/status.hpp"

namespace custodian::http {

// How far the header block of the next request has arrived in a connection's buffered bytes.
struct HeaderScan {
    enum class State {
        NeedMore,   // no complete header block yet, and nothing wrong so far
        Complete,   // [begin, end) is the header block: request line through the empty line
        TooLarge,   // no end of header within maxHeaderBytes (431)
        Malformed,  // a bare CR or LF already makes the request unreadable (400)
    };
    State state = State::NeedMore;
    size_t begin = 0;  // empty lines skipped before the request line
    size_t end = 0;    // one past the CRLFCRLF that ends the header block
    Status error;      // why, when Malformed
};

// Finds the end of the header block at the start of `buffered`. The block (without the empty
// lines before it) may take at most `maxHeaderBytes` bytes, its final CRLFCRLF included.
HeaderScan scanRequestHeader(std::string_view buffered, size_t maxHeaderBytes);

// How the body of a request whose header passed validateRequestHeader is delimited.
struct RequestFraming {
    enum class Body { None, ContentLength, Chunked };
    Body body = Body::None;
    uint64_t contentLength = 0;  // when ContentLength
};

// Validates a complete header block (request line through the final empty line, as delimited by
// scanRequestHeader) against RFC 9112: request line, field syntax, Host, Transfer-Encoding and
// Content-Length. An invalid argument says what is wrong, quoting the offending value.
Result<RequestFraming> validateRequestHeader(std::string_view headerBlock);

}  // namespace custodian::http
