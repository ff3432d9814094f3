#include "gateway/http/framing.hpp"

#include <string>

namespace custodian::http {
namespace {

constexpr std::string_view kCrlf = "\r\n";

bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool isAlpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// tchar (RFC 9110 §5.6.2): the characters of methods and field names.
bool isTchar(unsigned char c) {
    if (isDigit(c) || isAlpha(c)) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Characters of a URI outside of percent-encodings (RFC 3986 unreserved, sub-delims, ":" "@" "/"
// "?"); '%' is let through and its two digits are left to the router, which says which segment
// is wrong.
bool isUriChar(unsigned char c) {
    if (isDigit(c) || isAlpha(c)) return true;
    return std::string_view("-._~!$&'()*+,;=:@/?%").find(static_cast<char>(c)) != std::string_view::npos;
}

// field-vchar / SP / HTAB (RFC 9110 §5.5): anything but control characters; obs-text is allowed.
bool isFieldValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c; };
        if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i]))) return false;
    }
    return true;
}

std::string_view trimOws(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// A value quoted into an error message: control and non-ASCII bytes as \xHH (the message ends up
// in JSON and in logs), at most 64 bytes of it.
std::string quoted(std::string_view value) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (size_t i = 0; i < value.size() && i < 64; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (value.size() > 64) out += "...";
    return out + "\"";
}

std::string hexByte(unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("0x") + kHex[c >> 4] + kHex[c & 0xf];
}

Status bad(std::string message) { return invalidArgument(std::move(message)); }

Status checkRequestTarget(std::string_view method, std::string_view target) {
    if (method == "OPTIONS" && target == "*") return Status::ok();  // asterisk-form
    size_t start = 0;
    if (target.empty() || target.front() != '/') {
        // absolute-form: scheme "://" authority path-abempty [ "?" query ]
        size_t scheme = 0;
        while (scheme < target.size() &&
               (isAlpha(static_cast<unsigned char>(target[scheme])) ||
                (scheme > 0 && (isDigit(static_cast<unsigned char>(target[scheme])) || target[scheme] == '+' ||
                                target[scheme] == '-' || target[scheme] == '.'))))
            ++scheme;
        if (scheme == 0 || target.substr(scheme, 3) != "://")
            return bad("invalid request-target " + quoted(target) +
                       ": expected a path starting with \"/\" or an absolute URI");
        start = scheme + 3;
    }
    for (size_t i = start; i < target.size(); ++i) {
        const auto c = static_cast<unsigned char>(target[i]);
        // IP literals ("[::1]") may appear only in the authority of an absolute-form target.
        const bool literal = start > 0 && (c == '[' || c == ']');
        if (!isUriChar(c) && !literal)
            return bad("invalid request-target " + quoted(target) + ": character " + hexByte(c) +
                       " is not allowed in a URI");
    }
    return Status::ok();
}

// uri-host [ ":" port ] (RFC 9110 §7.2); empty is allowed (a target without an authority).
Status checkHost(std::string_view host) {
    for (char ch : host) {
        const auto c = static_cast<unsigned char>(ch);
        const bool allowed = (isUriChar(c) && c != '/' && c != '?' && c != '@') || c == '[' || c == ']';
        if (!allowed) return bad("invalid Host header " + quoted(host));
    }
    return Status::ok();
}

}  // namespace

HeaderScan scanRequestHeader(std::string_view buffered, size_t maxHeaderBytes) {
    HeaderScan scan;
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    while (scan.begin + 1 < buffered.size() && buffered[scan.begin] == '\r' && buffered[scan.begin + 1] == '\n')
        scan.begin += 2;
    const size_t limit = buffered.size() < maxHeaderBytes ? buffered.size() : maxHeaderBytes;
    for (size_t i = scan.begin; i < limit; ++i) {
        if (buffered[i] == '\n') {
            if (i == scan.begin || buffered[i - 1] != '\r') {
                scan.state = HeaderScan::State::Malformed;
                scan.error = bad("a line of the request header ends in a bare LF; lines must end in CRLF");
                return scan;
            }
            if (i >= scan.begin + 3 && buffered.substr(i - 3, 4) == "\r\n\r\n") {
                scan.state = HeaderScan::State::Complete;
                scan.end = i + 1;
                return scan;
            }
        } else if (buffered[i] == '\r' && i + 1 < buffered.size() && buffered[i + 1] != '\n') {
            scan.state = HeaderScan::State::Malformed;
            scan.error = bad("the request header contains a bare CR (one not followed by LF)");
            return scan;
        }
    }
    // Bytes that cannot begin a request line (a TLS ClientHello, binary noise) are refused now
    // rather than at the header timeout: the method, up to the first space, must be a token.
    for (size_t i = scan.begin; i < limit && buffered[i] != ' ' && buffered[i] != '\r' && buffered[i] != '\n'; ++i) {
        if (!isTchar(static_cast<unsigned char>(buffered[i]))) {
            scan.state = HeaderScan::State::Malformed;
            scan.error = bad("the request does not start with a method: byte " +
                             hexByte(static_cast<unsigned char>(buffered[i])) + " at offset " + std::to_string(i));
            return scan;
        }
    }
    if (buffered.size() >= maxHeaderBytes) scan.state = HeaderScan::State::TooLarge;
    return scan;
}

Result<RequestFraming> validateRequestHeader(std::string_view block) {
    if (block.size() < 4 || block.substr(block.size() - 4) != "\r\n\r\n")
        return bad("the request header does not end with an empty line");
    block.remove_suffix(2);  // every line, the last field line included, now ends in CRLF
    auto nextLine = [&block]() -> std::string_view {
        const size_t eol = block.find(kCrlf);
        std::string_view line = block.substr(0, eol);
        block.remove_prefix(eol + 2);
        return line;
    };

    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3), single spaces.
    const std::string_view requestLine = nextLine();
    const size_t sp1 = requestLine.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : requestLine.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || requestLine.find(' ', sp2 + 1) != std::string_view::npos)
        return bad("malformed request line " + quoted(requestLine) +
                   ": expected METHOD SP request-target SP HTTP-version");
    const std::string_view method = requestLine.substr(0, sp1);
    const std::string_view target = requestLine.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = requestLine.substr(sp2 + 1);
    if (method.empty()) return bad("malformed request line " + quoted(requestLine) + ": no method");
    for (char c : method)
        if (!isTchar(static_cast<unsigned char>(c))) return bad("invalid method " + quoted(method));
    if (Status s = checkRequestTarget(method, target); !s) return s;
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return bad("unsupported HTTP version " + quoted(version) + ": expected HTTP/1.1 or HTTP/1.0");
    const bool http11 = version == "HTTP/1.1";

    int hosts = 0;
    int contentLengths = 0;
    int transferEncodings = 0;
    std::string_view contentLength;
    std::string_view transferEncoding;
    while (!block.empty()) {
        const std::string_view line = nextLine();
        if (line.empty()) return bad("an empty line inside the request header");
        if (line.front() == ' ' || line.front() == '\t')
            return bad("obsolete line folding: a header line starts with whitespace (" + quoted(line) + ")");
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos) return bad("header line without a colon: " + quoted(line));
        const std::string_view name = line.substr(0, colon);
        if (name.empty()) return bad("header line with an empty field name: " + quoted(line));
        if (name.back() == ' ' || name.back() == '\t')
            return bad("whitespace between the field name and the colon in " + quoted(line));
        for (char c : name)
            if (!isTchar(static_cast<unsigned char>(c))) return bad("invalid header field name " + quoted(name));
        const std::string_view value = trimOws(line.substr(colon + 1));
        for (char c : value)
            if (!isFieldValueChar(static_cast<unsigned char>(c)))
                return bad("control character " + hexByte(static_cast<unsigned char>(c)) + " in the value of " +
                           std::string(name));
        if (iequals(name, "Host")) {
            if (++hosts > 1) return bad("more than one Host header");
            if (Status s = checkHost(value); !s) return s;
        } else if (iequals(name, "Content-Length")) {
            if (++contentLengths > 1) return bad("more than one Content-Length header");
            contentLength = value;
        } else if (iequals(name, "Transfer-Encoding")) {
            if (++transferEncodings > 1) return bad("more than one Transfer-Encoding header");
            transferEncoding = value;
        }
    }
    if (http11 && hosts == 0) return bad("an HTTP/1.1 request needs a Host header");

    RequestFraming framing;
    if (transferEncodings > 0) {
        // RFC 9112 §6.1: chunked must be the final coding; the gateway implements no other coding,
        // so the only acceptable value is "chunked" alone (empty list elements aside).
        if (!http11) return bad("Transfer-Encoding in an HTTP/1.0 request");
        if (contentLengths > 0) return bad("both Content-Length and Transfer-Encoding");
        int codings = 0;
        bool chunked = false;
        std::string_view rest = transferEncoding;
        while (true) {
            const size_t comma = rest.find(',');
            const std::string_view coding = trimOws(rest.substr(0, comma));
            if (!coding.empty()) {
                ++codings;
                chunked = iequals(coding, "chunked");
            }
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
        if (codings != 1 || !chunked)
            return bad("Transfer-Encoding: only \"chunked\" is supported (got " + quoted(transferEncoding) + ")");
        framing.body = RequestFraming::Body::Chunked;
        return framing;
    }
    if (contentLengths > 0) {
        // 1*DIGIT (RFC 9110 §8.6): no sign, no spaces inside, no list, no hex.
        if (contentLength.empty()) return bad("empty Content-Length");
        uint64_t length = 0;
        for (char c : contentLength) {
            if (!isDigit(static_cast<unsigned char>(c)))
                return bad("Content-Length must be a decimal number (got " + quoted(contentLength) + ")");
            const uint64_t digit = static_cast<uint64_t>(c - '0');
            if (length > (UINT64_MAX - digit) / 10)
                return bad("Content-Length " + quoted(contentLength) + " is too large");
            length = length * 10 + digit;
        }
        framing.body = RequestFraming::Body::ContentLength;
        framing.contentLength = length;
    }
    return framing;
}

}  // namespace custodian::http
