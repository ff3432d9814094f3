// Fuzz target: raw bytes from the network, read as gateway/http/server.cpp reads them. The header
// block is delimited by http::scanRequestHeader and checked by http::validateRequestHeader (RFC
// 9112 framing); a header they accept goes through Beast's request parser with the gateway's
// default header and body limits, and every request that parses is handed to api::handleRequest
// over the real route table and a Services with no database, no token hasher and no audit log.
// Any response is fine — 4xx, 503 for routes that need the database — except a crash, a sanitizer
// report, a response that breaks the handler's contract (a status outside 100..599, or no
// X-Request-Id), or a header the validator accepts but frames differently from Beast (chunked or
// not, which Content-Length): that disagreement is what request smuggling is made of.
#include <utility>  // before any Asio header (g++ 12 + Boost 1.74)

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gateway/config/config.hpp"
#include "gateway/http/framing.hpp"
#include "gateway/api/handler.hpp"
#include "gateway/http/metrics.hpp"
#include "gateway/api/routes.hpp"
#include "gateway/api/services.hpp"

namespace {

namespace bhttp = boost::beast::http;
using namespace custodian;

struct Fixture {
    config::GatewayConfig config;
    http::Metrics metrics;
    api::Router router{api::builtinRoutes()};
    api::Services services;
    Fixture() {
        services.config = &config;
        services.metrics = &metrics;
        services.router = &router;
    }
};

// The conversion the server does (Session::toRequest), kept in step by hand: method, target split
// at '?', headers in order, body, request id only when acceptable.
http::HttpRequest toRequest(bhttp::request<bhttp::string_body>&& req) {
    http::HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    const size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = r.target.substr(q + 1);
    for (const auto& field : req) r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    r.body = std::move(req.body());
    r.remoteAddress = "192.0.2.1:4242";
    const std::string incoming = r.header("X-Request-Id");
    if (http::acceptableRequestId(incoming)) r.requestId = incoming;
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Fixture fixture;
    // Several pipelined requests may arrive on one connection: parse until the bytes run out or
    // the parser refuses, as a keep-alive session would.
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    for (int requests = 0; requests < 8 && !rest.empty(); ++requests) {
        const http::HeaderScan scan = http::scanRequestHeader(rest, fixture.config.maxHeaderBytes);
        if (scan.state != http::HeaderScan::State::Complete) return 0;  // 400, 431, or wait for more
        if (scan.begin > scan.end || scan.end > rest.size() || scan.end > fixture.config.maxHeaderBytes) std::abort();
        rest.remove_prefix(scan.begin);
        const Result<http::RequestFraming> framing = http::validateRequestHeader(rest.substr(0, scan.end - scan.begin));
        if (!framing) return 0;  // the server answers 400 and closes
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(fixture.config.maxHeaderBytes);
        parser.body_limit(fixture.config.maxBodyBytes);
        parser.eager(true);
        boost::system::error_code ec;
        size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
        if (used > rest.size()) std::abort();
        if (parser.is_header_done()) {
            const bool chunked = framing->body == http::RequestFraming::Body::Chunked;
            const bool lengthed = framing->body == http::RequestFraming::Body::ContentLength;
            if (parser.chunked() != chunked) std::abort();
            if (parser.content_length().has_value() != lengthed) std::abort();
            if (lengthed && *parser.content_length() != framing->contentLength) std::abort();
        }
        rest.remove_prefix(used);
        if (ec == bhttp::error::need_more && !parser.is_done()) {
            // The connection ends here; Beast reports end_of_stream / partial_message.
            parser.put_eof(ec);
        }
        if (ec || !parser.is_done()) return 0;
        http::HttpRequest request = toRequest(parser.release());
        http::HandledRequest handled = api::handleRequest(request, fixture.services);
        const int status = handled.response.status;
        if (status < 100 || status > 599) std::abort();
        if (handled.response.header("X-Request-Id").empty()) std::abort();
        if (handled.response.stream) {
            // A streamed body must end or fail without a database; a few chunks are enough.
            for (int i = 0; i < 4; ++i) {
                auto chunk = handled.response.stream->nextChunk();
                if (!chunk || !chunk->has_value()) break;
            }
        }
        if (used == 0) break;
    }
    return 0;
}
