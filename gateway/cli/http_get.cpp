// Asio's scheduler, once inlined into this file, trips g++ 12's -Wnull-dereference on its own
// code (as in gateway/http/server.cpp).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <utility>  // before Boost.Asio (g++ 12 + Boost 1.74)

#include "gateway/cli/http_get.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <limits>

namespace custodian::cli {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct ParsedUrl {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;
};

Result<ParsedUrl> parseUrl(const std::string& url) {
    ParsedUrl u;
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        u.tls = true;
        rest = url.substr(8);
    } else {
        return invalidArgument("URL must start with http:// or https://: " + url);
    }
    const size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (authority.empty() || authority.find('@') != std::string::npos)
        return invalidArgument("URL needs a host (and no user info): " + url);
    if (authority.front() == '[') {  // [IPv6]:port
        const size_t close = authority.find(']');
        if (close == std::string::npos) return invalidArgument("URL has an unterminated IPv6 address: " + url);
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return invalidArgument("URL: unexpected text after the address: " + url);
            u.port = authority.substr(close + 2);
        }
    } else {
        const size_t colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != std::string::npos) u.port = authority.substr(colon + 1);
    }
    if (u.port.empty()) u.port = u.tls ? "443" : "80";
    if (u.host.empty() || u.port.find_first_not_of("0123456789") != std::string::npos || u.port.size() > 5)
        return invalidArgument("URL has an invalid host or port: " + url);
    return u;
}

void setSocketTimeouts(tcp::socket& socket, std::chrono::seconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count());
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// One request: a GET, or a POST of `jsonBody` when it is set.
template <class Stream>
Result<HttpGetResult> exchange(Stream& stream, const ParsedUrl& u, const HttpGetOptions& options,
                               const std::string& bodyFile, const std::string* jsonBody) {
    http::request<http::string_body> req{jsonBody ? http::verb::post : http::verb::get, u.target, 11};
    if (jsonBody) {
        req.set(http::field::content_type, "application/json");
        req.body() = *jsonBody;
        req.prepare_payload();
    }
    const bool defaultPort = u.port == (u.tls ? "443" : "80");
    req.set(http::field::host, defaultPort ? u.host : u.host + ":" + u.port);
    req.set(http::field::user_agent, "custodian-cli");
    req.set(http::field::connection, "close");
    if (!options.bearerToken.empty()) req.set(http::field::authorization, "Bearer " + options.bearerToken);
    http::write(stream, req);

    beast::flat_buffer buffer;
    HttpGetResult out;
    if (bodyFile.empty()) {
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        http::read(stream, buffer, parser);
        out.status = static_cast<int>(parser.get().result_int());
        out.contentType = std::string(parser.get()[http::field::content_type]);
        out.body = std::move(parser.get().body());
    } else {
        http::response_parser<http::file_body> parser;
        parser.body_limit(std::numeric_limits<std::uint64_t>::max());
        beast::error_code ec;
        parser.get().body().open(bodyFile.c_str(), beast::file_mode::write, ec);
        if (ec) return unavailable(bodyFile + ": cannot write: " + ec.message());
        http::read(stream, buffer, parser);  // throws on a body cut short (missing last chunk)
        out.status = static_cast<int>(parser.get().result_int());
        out.contentType = std::string(parser.get()[http::field::content_type]);
    }
    return out;
}

}  // namespace

namespace {

Result<HttpGetResult> httpExchange(const std::string& url, const HttpGetOptions& options, const std::string& bodyFile,
                                   const std::string* jsonBody) {
    auto u = parseUrl(url);
    if (!u) return u.status();
    try {
        net::io_context ioc;
        tcp::resolver resolver(ioc);
        auto endpoints = resolver.resolve(u->host, u->port);
        if (!u->tls) {
            tcp::socket socket(ioc);
            net::connect(socket, endpoints);
            setSocketTimeouts(socket, options.timeout);
            auto r = exchange(socket, *u, options, bodyFile, jsonBody);
            beast::error_code ignored;
            socket.shutdown(tcp::socket::shutdown_both, ignored);
            return r;
        }
        net::ssl::context ctx(net::ssl::context::tls_client);
        if (options.caFile.empty()) ctx.set_default_verify_paths();
        else ctx.load_verify_file(options.caFile);
        ctx.set_verify_mode(net::ssl::verify_peer);
        net::ssl::stream<tcp::socket> stream(ioc, ctx);
        if (!SSL_set_tlsext_host_name(stream.native_handle(), u->host.c_str()))
            return unavailable(url + ": cannot set the TLS server name");
        stream.set_verify_callback(net::ssl::host_name_verification(u->host));
        net::connect(stream.next_layer(), endpoints);
        setSocketTimeouts(stream.next_layer(), options.timeout);
        stream.handshake(net::ssl::stream_base::client);
        auto r = exchange(stream, *u, options, bodyFile, jsonBody);
        beast::error_code ignored;
        stream.shutdown(ignored);
        return r;
    } catch (const std::exception& e) { return unavailable(url + ": " + e.what()); }
}

}  // namespace

Result<HttpGetResult> httpGet(const std::string& url, const HttpGetOptions& options, const std::string& bodyFile) {
    return httpExchange(url, options, bodyFile, nullptr);
}

Result<HttpGetResult> httpPostJson(const std::string& url, const std::string& body, const HttpGetOptions& options) {
    return httpExchange(url, options, "", &body);
}

}  // namespace custodian::cli
