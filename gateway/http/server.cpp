// The only translation unit of the gateway that includes Beast and Asio (they cost seconds each).
#include <utility>  // before any Asio header (g++ 12 + Boost 1.74)
#include <limits>

// Asio's scheduler, once inlined into this file, trips g++ 12's -Wnull-dereference on its own
// thread-info pointer (a false positive inside Boost); the warning stays on everywhere else.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "gateway/http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gateway/http/errors.hpp"
#include "gateway/http/framing.hpp"
#include "gateway/http/metrics.hpp"
#include "gateway/http/request_handler.hpp"
#include "json/writer.hpp"

namespace custodian::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

auto withError(error_code& ec) { return net::redirect_error(net::use_awaitable, ec); }

std::string utcTimestamp() {
    auto now = std::chrono::system_clock::now();
    std::time_t secs = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    return buf;
}

struct LogRecord {
    std::string requestId;
    std::string remote;
    std::string method;
    std::string path;
    std::string route = "unmatched";
    int status = 0;
    double seconds = 0;
    uint64_t bytes = 0;
    std::string principal;
    std::string note;  // e.g. "client gone", "stream error: ..."
};

void writeAccessLog(const LogRecord& r) {
    json::JsonOut out;
    out.beginObject().field("time", utcTimestamp()).field("request_id", r.requestId).field("remote", r.remote);
    out.field("method", r.method).field("path", r.path).field("route", r.route);
    out.field("status", static_cast<int64_t>(r.status));
    out.key("duration_ms").number(static_cast<double>(static_cast<int64_t>(r.seconds * 1e6)) / 1000.0);
    out.key("bytes").uint(r.bytes);
    out.optional("principal", r.principal.empty() ? std::nullopt : std::optional<std::string>(r.principal));
    if (!r.note.empty()) out.field("note", r.note);
    std::string line = out.endObject().text() + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);  // one call: lines never interleave
}

// What the server needs from a session at shutdown, independent of the stream type.
class SessionControl {
public:
    virtual ~SessionControl() = default;
    virtual void cancelIfIdle() = 0;  // close if waiting for a request (not while handling one)
    virtual void forceClose() = 0;
};

// A complete HTTP/1.1 error response for the places that answer before (or instead of) HTTP
// parsing: the connection limit and plain HTTP sent to the TLS port.
std::string plainErrorResponse(int status, std::string_view reason, std::string_view code, const std::string& message,
                               std::string_view extraHeaders = {}) {
    const HttpResponse error = errorResponse(status, code, message);
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\nContent-Type: application/json\r\n" +
           std::string(extraHeaders) +
           "Connection: close\r\nServer: custodian/" CUSTODIAN_VERSION "\r\nContent-Length: " +
           std::to_string(error.body.size()) + "\r\n\r\n" + error.body;
}

// Writes `bytes` (bounded by `writeTimeout`) and closes with a short lingering close: closing with
// unread request bytes in the kernel would send a reset that can destroy the answer before the
// client reads it, so what the client still sends is drained for at most 500 ms.
net::awaitable<void> answerAndClose(beast::tcp_stream& stream, const std::string& bytes,
                                    std::chrono::milliseconds writeTimeout) {
    error_code ec;
    stream.expires_after(writeTimeout);
    co_await net::async_write(stream, net::buffer(bytes), withError(ec));
    if (!ec) {
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        char sink[4096];
        stream.expires_after(std::chrono::milliseconds(500));
        while (!ec) co_await stream.async_read_some(net::buffer(sink), withError(ec));
    }
    stream.socket().close(ec);
}

}  // namespace

struct Server::Impl {
    explicit Impl(ServerParts p) : parts(std::move(p)), config(parts.config) {}
    ~Impl();

    ServerParts parts;
    const config::GatewayConfig& config;

    // Declared before the io_context so they outlive the handlers it destroys.
    std::mutex sessionsMutex;
    std::unordered_map<uint64_t, std::weak_ptr<SessionControl>> sessions;
    uint64_t nextSessionId = 0;
    std::atomic<bool> shuttingDown{false};
    std::mutex jobsMutex;
    std::condition_variable jobsDone;
    int poolJobs = 0;
    std::optional<net::ssl::context> ssl;

    net::io_context ioc{1};
    std::optional<tcp::acceptor> acceptor;
    std::optional<tcp::acceptor> metricsAcceptor;
    std::optional<net::signal_set> signals;
    std::optional<net::steady_timer> deadline;

    Status start();
    net::awaitable<void> acceptLoop(tcp::acceptor& acc, RequestHandler& handler, bool tls);
    net::awaitable<void> refuseOverloaded(tcp::socket socket);
    void beginShutdown();
    void sessionEnded(uint64_t id);
    void registerSession(uint64_t id, std::shared_ptr<SessionControl> session) {
        std::lock_guard lock(sessionsMutex);
        sessions[id] = std::move(session);
    }

    // Runs fn(done) on a database worker thread and resumes the calling coroutine on its own
    // executor with the result that fn — or whoever fn hands `done` to — passes to done, from any
    // thread, possibly after fn returned (an audited request waiting for its entry's group commit
    // gives its worker back). Only the first call of done counts. fn must not throw.
    template <typename T, typename Fn> net::awaitable<T> onPoolUntilDone(Fn fn) {
        auto executor = co_await net::this_coro::executor;
        {
            std::lock_guard lock(jobsMutex);
            ++poolJobs;
        }
        // g++ 12 destroys the initiation object that Boost 1.74's use_awaitable passes into its
        // initiating coroutine twice. So the initiation holds nothing but a raw pointer (trivially
        // destructible) to this frame's state, which lives until the handler resumes us.
        struct PoolCall {
            Impl* self;
            decltype(executor) resumeExecutor;
            Fn fn;
        };
        PoolCall call{this, executor, std::move(fn)};
        PoolCall* callPtr = &call;
        auto initiation = [callPtr](auto handler) {
            using Handler = decltype(handler);
            using Executor = decltype(callPtr->resumeExecutor);
            // What done needs to resume us, held once: done moves it out, so that nothing of the
            // io_context (executor copies, the handler) is held once the job count is down again.
            struct Resume {
                Impl* self = nullptr;
                std::optional<Handler> waiting;
                std::optional<Executor> resumeOn;
                std::atomic<bool> answered{false};
            };
            auto resume = std::make_shared<Resume>();
            resume->self = callPtr->self;
            resume->waiting.emplace(std::move(handler));
            resume->resumeOn.emplace(callPtr->resumeExecutor);
            callPtr->self->parts.runBlocking([callPtr, resume]() mutable {
                // Once done ran, *callPtr is gone (the coroutine resumed): take fn out of it first.
                Fn job = std::move(callPtr->fn);
                job(std::function<void(T)>([resume](T result) {
                    if (resume->answered.exchange(true)) return;
                    Impl* self = resume->self;
                    {
                        Handler resumeWith = std::move(*resume->waiting);
                        Executor on = std::move(*resume->resumeOn);
                        resume->waiting.reset();
                        resume->resumeOn.reset();
                        net::post(on, [resumeWith = std::move(resumeWith), result = std::move(result)]() mutable {
                            resumeWith(std::move(result));
                        });
                    }
                    // The count reaching zero lets shutdown destroy the io_context while this thread
                    // is still unwinding (ASan caught a strand destroyed after its service).
                    std::lock_guard lock(self->jobsMutex);
                    if (--self->poolJobs == 0) self->jobsDone.notify_all();
                }));
            });
        };
        T result = co_await net::async_initiate<decltype(net::use_awaitable), void(T)>(initiation, net::use_awaitable);
        co_return result;
    }

    // Runs fn() on a database worker thread and resumes the calling coroutine on its own executor
    // with its result. fn must not throw.
    template <typename T, typename Fn> net::awaitable<T> onPool(Fn fn) {
        auto call = [fn = std::move(fn)](std::function<void(T)> done) mutable { done(fn()); };
        co_return co_await onPoolUntilDone<T>(std::move(call));
    }
};

namespace {

template <typename Stream> constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

template <typename Stream> class Session : public SessionControl, public std::enable_shared_from_this<Session<Stream>> {
public:
    Session(Server::Impl& server, Stream stream, RequestHandler& handler, uint64_t id, std::string remote)
        : server_(server), stream_(std::move(stream)), handler_(handler), id_(id), remote_(std::move(remote)) {}

    void cancelIfIdle() override {
        net::post(stream_.get_executor(), [self = this->shared_from_this()] {
            if (!self->busy_) beast::get_lowest_layer(self->stream_).cancel();
        });
    }
    void forceClose() override {
        net::post(stream_.get_executor(),
                  [self = this->shared_from_this()] { beast::get_lowest_layer(self->stream_).close(); });
    }

    // `self` is a coroutine parameter, so it is copied into the frame when the coroutine is
    // created: the session stays alive from co_spawn until the coroutine ends.
    static net::awaitable<void> run(std::shared_ptr<Session> self) {
        co_await self->serve();
        co_await self->closeGracefully();
        self->server_.sessionEnded(self->id_);
    }

private:
    auto& lowest() { return beast::get_lowest_layer(stream_); }
    const config::GatewayConfig& cfg() const { return server_.config; }

    net::awaitable<void> serve() {
        error_code ec;
        if constexpr (kIsTls<Stream>) {
            // One deadline from accept to the end of the handshake: a client that never sends a
            // byte, or stops halfway through its ClientHello, holds its slot no longer than this.
            lowest().expires_after(cfg().tls->handshakeTimeout);
            const bool clientSpeaksTls = co_await beast::async_detect_ssl(lowest(), buffer_, withError(ec));
            if (ec) co_return;
            if (!clientSpeaksTls) {
                co_await refusePlainHttp();
                co_return;
            }
            const size_t used =
                co_await stream_.async_handshake(net::ssl::stream_base::server, buffer_.data(), withError(ec));
            if (ec) co_return;
            buffer_.consume(used);
            handshakeDone_ = true;
        }
        bool first = true;
        for (;;) {
            if (server_.shuttingDown.load()) co_return;
            busy_ = false;
            bhttp::request_parser<bhttp::string_body> parser;
            parser.header_limit(cfg().maxHeaderBytes);
            parser.body_limit(cfg().maxBodyBytes);
            lowest().expires_after(first ? cfg().timeouts.header : cfg().timeouts.idle);
            // The header block is read and checked here before Beast sees it: Beast 1.74 reads an
            // unknown Transfer-Encoding as "no body" and would serve the body as a second request.
            HeaderScan scan = co_await readHeaderBlock(ec);
            busy_ = true;
            auto started = Clock::now();
            if (ec) co_return;  // timeout, disconnect or shutdown: end silently, as below
            if (scan.state == HeaderScan::State::TooLarge) {
                co_await rejectAndClose(parser, 431, "header_too_large", "the request header is too large", started);
                co_return;
            }
            if (scan.state == HeaderScan::State::Malformed) {
                co_await rejectAndClose(parser, 400, "bad_request", "malformed HTTP request: " + scan.error.message(),
                                        started);
                co_return;
            }
            buffer_.consume(scan.begin);  // empty lines before the request line
            const std::string_view block(static_cast<const char*>(buffer_.data().data()), scan.end - scan.begin);
            Result<RequestFraming> framing = validateRequestHeader(block);
            if (!framing) {
                co_await rejectAndClose(parser, 400, "bad_request",
                                        "malformed HTTP request: " + framing.status().message(), started);
                co_return;
            }
            // A Content-Length over max_body_bytes is refused once the header is parsed, through the
            // request handler (so that the refusal is authenticated and audited), without reading
            // the body. Beast would stop inside the header instead.
            const bool bodyTooLarge =
                framing->body == RequestFraming::Body::ContentLength && framing->contentLength > cfg().maxBodyBytes;
            if (bodyTooLarge) parser.body_limit(std::numeric_limits<std::uint64_t>::max());
            co_await bhttp::async_read_header(stream_, buffer_, parser, withError(ec));
            if (!ec && !(parser.chunked() == (framing->body == RequestFraming::Body::Chunked) &&
                         parser.content_length() == (framing->body == RequestFraming::Body::ContentLength
                                                         ? boost::optional<uint64_t>(framing->contentLength)
                                                         : boost::none))) {
                // Cannot happen while the validator and Beast agree; if they ever do not, the
                // request is refused rather than framed by the one that reads less.
                co_await rejectAndClose(parser, 400, "bad_request", "malformed HTTP request: ambiguous message framing",
                                        started);
                co_return;
            }
            if (ec) {
                // Timeouts, disconnects and shutdown cancellation end the connection silently; a
                // malformed or oversized request gets an error response first.
                if (ec == bhttp::error::body_limit) co_await refuseOversizedBody(parser, started);
                else if (ec == bhttp::error::header_limit)
                    co_await rejectAndClose(parser, 431, "header_too_large", "the request header is too large",
                                            started);
                else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
                    co_await rejectAndClose(parser, 400, "bad_request", "malformed HTTP request: " + ec.message(),
                                            started);
                co_return;
            }
            if (bodyTooLarge) {
                co_await refuseOversizedBody(parser, started);
                co_return;
            }
            if (bhttp::header<true>& h = parser.get(); h[bhttp::field::expect] == "100-continue") {
                lowest().expires_after(cfg().timeouts.write);
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                co_await net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()), withError(ec));
                if (ec) co_return;
            }
            lowest().expires_after(cfg().timeouts.body);
            co_await bhttp::async_read(stream_, buffer_, parser, withError(ec));
            if (ec) {
                if (ec == bhttp::error::body_limit) co_await refuseOversizedBody(parser, started);
                co_return;
            }
            bool keepAlive = parser.get().keep_alive();
            if (!co_await handle(parser.release(), keepAlive, started)) co_return;
            if (!keepAlive) co_return;
            first = false;
        }
    }

    // Reads until buffer_ holds the whole header block of the next request, it cannot be one
    // (bare CR or LF), or it outgrows max_header_bytes. Bounded by the deadline already set on
    // the stream; `ec` is set when the read fails (timeout, disconnect, cancellation).
    net::awaitable<HeaderScan> readHeaderBlock(error_code& ec) {
        for (;;) {
            const std::string_view buffered(static_cast<const char*>(buffer_.data().data()), buffer_.size());
            HeaderScan scan = scanRequestHeader(buffered, cfg().maxHeaderBytes);
            if (scan.state != HeaderScan::State::NeedMore) co_return scan;
            const size_t n = co_await stream_.async_read_some(buffer_.prepare(8192), withError(ec));
            if (ec) co_return scan;
            buffer_.commit(n);
        }
    }

    static HttpRequest toRequest(bhttp::request<bhttp::string_body>&& req, const std::string& remote) {
        HttpRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        size_t q = r.target.find('?');
        r.path = r.target.substr(0, q);
        if (q != std::string::npos) r.query = r.target.substr(q + 1);
        for (const auto& field : req)
            r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        r.body = std::move(req.body());
        r.remoteAddress = remote;
        std::string incoming = r.header("X-Request-Id");
        r.requestId = acceptableRequestId(incoming) ? incoming : newRequestId();
        return r;
    }

    // 413, decided from Content-Length (or a chunked body outgrowing max_body_bytes) before the body
    // is read. Once the header is known the refusal goes through handleRequest like any request —
    // authenticated when credentials are sent, and audited — and the connection closes.
    net::awaitable<void> refuseOversizedBody(bhttp::request_parser<bhttp::string_body>& parser,
                                             Clock::time_point started) {
        const std::string message = "the request body exceeds " + std::to_string(cfg().maxBodyBytes) + " bytes";
        if (!parser.is_header_done()) {
            co_await rejectAndClose(parser, 413, "payload_too_large", message, started);
            co_return;
        }
        bhttp::request<bhttp::string_body> header;
        header.base() = parser.get().base();
        const unsigned version = header.version();
        HttpRequest request = toRequest(std::move(header), remote_);
        request.refusedByServer = HttpRequest::Refusal{413, "payload_too_large", message};
        bool keepAlive = false;
        co_await serve(std::move(request), version, keepAlive, started);
    }

    // Returns false if the connection must end.
    net::awaitable<bool> handle(bhttp::request<bhttp::string_body> msg, bool& keepAlive, Clock::time_point started) {
        const unsigned version = msg.version();
        HttpRequest request = toRequest(std::move(msg), remote_);
        co_return co_await serve(std::move(request), version, keepAlive, started);
    }

    // Runs one parsed request through handleRequest and writes the answer. Returns false if the
    // connection must end.
    net::awaitable<bool> serve(HttpRequest request, unsigned version, bool& keepAlive, Clock::time_point started) {
        Metrics* metrics = server_.parts.metrics;
        if (metrics) metrics->requestStarted();
        LogRecord log;
        log.requestId = request.requestId;
        log.remote = remote_;
        log.method = request.method;
        log.path = request.path;

        HandledRequest handled;
        if (handler_.runsInline(request)) {
            handled = handler_.handle(request);
        } else {
            RequestHandler* handler = &handler_;
            auto job = [handler, request](std::function<void(HandledRequest)> done) {  // named: see onPool
                try {
                    handler->handleAsync(request, done);
                } catch (const std::exception& e) {
                    HandledRequest failed;
                    failed.response = errorResponse(internalError(e.what()));
                    failed.response.setHeader("X-Request-Id", request.requestId);
                    done(std::move(failed));  // ignored if the handler had answered
                }
            };
            handled = co_await server_.onPoolUntilDone<HandledRequest>(std::move(job));
        }
        keepAlive = keepAlive && !server_.shuttingDown.load();
        log.route = handled.route;
        log.principal = handled.principal;
        log.status = handled.response.status;
        bool ok = co_await write(handled.response, keepAlive, version, log);
        log.seconds = std::chrono::duration<double>(Clock::now() - started).count();
        if (metrics) metrics->requestFinished(log.route, log.method, log.status, log.seconds);
        if (cfg().accessLog) writeAccessLog(log);
        co_return ok;
    }

    net::awaitable<bool> write(HttpResponse& response, bool keepAlive, unsigned version, LogRecord& log) {
        error_code ec;
        auto setCommon = [&](auto& msg) {
            for (const auto& [name, value] : response.headers) msg.set(name, value);
            msg.set(bhttp::field::server, "custodian/" CUSTODIAN_VERSION);
            msg.keep_alive(keepAlive);
        };
        if (!response.stream && log.method == "HEAD") {
            // A response to HEAD has the headers of the GET answer and no body (RFC 9110, 9.3.2).
            bhttp::response<bhttp::empty_body> msg{static_cast<bhttp::status>(response.status), version};
            setCommon(msg);
            msg.content_length(response.body.size());
            lowest().expires_after(cfg().timeouts.write);
            co_await bhttp::async_write(stream_, msg, withError(ec));
            co_return !ec;
        }
        if (!response.stream) {
            bhttp::response<bhttp::string_body> msg{static_cast<bhttp::status>(response.status), version};
            setCommon(msg);
            msg.body() = std::move(response.body);
            msg.prepare_payload();
            log.bytes = msg.body().size();
            lowest().expires_after(cfg().timeouts.write);
            co_await bhttp::async_write(stream_, msg, withError(ec));
            co_return !ec;
        }

        std::shared_ptr<BodyProducer> producer = response.stream;
        bhttp::response<bhttp::empty_body> head{static_cast<bhttp::status>(response.status), version};
        setCommon(head);
        head.chunked(true);
        bhttp::response_serializer<bhttp::empty_body> serializer{head};
        lowest().expires_after(cfg().timeouts.write);
        co_await bhttp::async_write_header(stream_, serializer, withError(ec));
        if (ec) {
            producer->clientGone(ec.message());
            log.note = "client gone: " + ec.message();
            co_return false;
        }
        for (;;) {
            using Chunk = Result<std::optional<std::string>>;
            auto produce = [producer]() -> Chunk {  // named: see onPool
                try {
                    return producer->nextChunk();
                } catch (const std::exception& e) { return internalError(e.what()); }
            };
            Chunk next = co_await server_.onPool<Chunk>(std::move(produce));
            if (!next) {
                // The status line is gone; closing without the last chunk tells the client the
                // body is incomplete.
                log.note = "stream error: " + next.status().message();
                co_return false;
            }
            lowest().expires_after(cfg().timeouts.write);
            if (!next->has_value()) {
                co_await net::async_write(stream_, bhttp::make_chunk_last(), withError(ec));
                if (ec) log.note = "client gone: " + ec.message();
                co_return !ec;
            }
            const std::string& chunk = **next;
            if (chunk.empty()) continue;  // an empty chunk would end the body
            co_await net::async_write(stream_, bhttp::make_chunk(net::buffer(chunk)), withError(ec));
            if (ec) {
                producer->clientGone(ec.message());
                log.note = "client gone: " + ec.message();
                co_return false;
            }
            log.bytes += chunk.size();
        }
    }

    net::awaitable<void> rejectAndClose(bhttp::request_parser<bhttp::string_body>& parser, int status,
                                        std::string_view code, const std::string& message, Clock::time_point started) {
        Metrics* metrics = server_.parts.metrics;
        if (metrics) metrics->requestStarted();
        HttpResponse response = errorResponse(status, code, message);
        LogRecord log;
        log.requestId = newRequestId();
        log.remote = remote_;
        if (parser.is_header_done()) {
            log.method = std::string(parser.get().method_string());
            log.path = std::string(parser.get().target().substr(0, parser.get().target().find('?')));
        }
        log.status = status;
        response.setHeader("X-Request-Id", log.requestId);
        co_await write(response, false, 11, log);
        log.seconds = std::chrono::duration<double>(Clock::now() - started).count();
        if (metrics) metrics->requestFinished(log.route, log.method, status, log.seconds);
        if (cfg().accessLog) writeAccessLog(log);
    }

    // A plain HTTP request on the TLS port gets a plain-text 400 that says so, instead of a TLS
    // alert the client cannot read.
    net::awaitable<void> refusePlainHttp() {
        const auto started = Clock::now();
        LogRecord log;
        log.requestId = newRequestId();
        log.remote = remote_;
        log.status = 400;
        log.note = "plain HTTP on the TLS listener";
        co_await answerAndClose(lowest(),
                                plainErrorResponse(400, "Bad Request", "tls_required",
                                                   "this port accepts HTTPS only; use https://",
                                                   "X-Request-Id: " + log.requestId + "\r\n"),
                                cfg().timeouts.write);
        log.seconds = std::chrono::duration<double>(Clock::now() - started).count();
        if (cfg().accessLog) writeAccessLog(log);
    }

    net::awaitable<void> closeGracefully() {
        error_code ec;
        if constexpr (kIsTls<Stream>) {
            if (handshakeDone_ && lowest().socket().is_open()) {
                lowest().expires_after(std::chrono::seconds(2));
                co_await stream_.async_shutdown(withError(ec));
            }
        }
        if (lowest().socket().is_open()) {
            lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
            // Lingering close: closing with unread request bytes in the kernel would send a reset
            // that can destroy the response (e.g. a 413) before the client reads it. Drain what
            // the client still sends, briefly, until it closes its side.
            if constexpr (!kIsTls<Stream>) {
                char sink[4096];
                lowest().expires_after(std::chrono::milliseconds(500));
                while (!ec) co_await lowest().async_read_some(net::buffer(sink), withError(ec));
            }
            lowest().socket().close(ec);
        }
    }

    Server::Impl& server_;
    Stream stream_;
    beast::flat_buffer buffer_;
    RequestHandler& handler_;
    uint64_t id_;
    std::string remote_;
    bool busy_ = false;           // handling a request (touched on the session's strand only)
    bool handshakeDone_ = false;  // TLS only: a close_notify is owed to the client
};

}  // namespace

Server::Impl::~Impl() {
    std::unique_lock lock(jobsMutex);
    jobsDone.wait(lock, [&] { return poolJobs == 0; });
}

Status Server::Impl::start() {
    try {
        if (config.tls) {
            ssl.emplace(net::ssl::context::tls_server);
            ssl->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                             net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                             net::ssl::context::single_dh_use);
            ssl->use_certificate_chain_file(config.tls->certFile);
            ssl->use_private_key_file(config.tls->keyFile, net::ssl::context::pem);
        }
    } catch (const std::exception& e) {
        return invalidArgument(std::string("tls: cannot load the certificate or key: ") + e.what());
    }
    auto bind = [&](const config::ListenAddress& where, std::optional<tcp::acceptor>& acc,
                    const std::string& field) -> Status {
        error_code ec;
        auto address = net::ip::make_address(where.address, ec);
        if (ec) return invalidArgument(field + ".address: not an IP address: " + where.address);
        tcp::endpoint endpoint(address, where.port);
        acc.emplace(ioc);
        acc->open(endpoint.protocol(), ec);
        if (!ec) acc->set_option(net::socket_base::reuse_address(true), ec);
        if (!ec) acc->bind(endpoint, ec);
        if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
        if (ec)
            return Status(StatusCode::Unavailable, field + ": cannot listen on " + where.address + ":" +
                                                       std::to_string(where.port) + ": " + ec.message());
        return Status::ok();
    };
    if (Status s = bind(config.listen, acceptor, "listen"); !s) return s;
    if (config.metricsListen) {
        if (!parts.metricsHandler) return internalError("a metrics listener needs a metrics handler");
        if (Status s = bind(*config.metricsListen, metricsAcceptor, "metrics.listen"); !s) return s;
    }
    net::co_spawn(ioc, acceptLoop(*acceptor, parts.api, config.tls.has_value()), net::detached);
    if (metricsAcceptor) net::co_spawn(ioc, acceptLoop(*metricsAcceptor, *parts.metricsHandler, false), net::detached);
    return Status::ok();
}

net::awaitable<void> Server::Impl::acceptLoop(tcp::acceptor& acc, RequestHandler& handler, bool tls) {
    for (;;) {
        error_code ec;
        tcp::socket socket = co_await acc.async_accept(net::make_strand(ioc), withError(ec));
        if (shuttingDown.load() || !acc.is_open() || ec == net::error::operation_aborted) co_return;
        if (ec) {
            // Out of file descriptors or similar: back off briefly instead of spinning.
            net::steady_timer pause(ioc, std::chrono::milliseconds(50));
            co_await pause.async_wait(withError(ec));
            continue;
        }
        error_code endpointError;
        auto peer = socket.remote_endpoint(endpointError);
        std::string remote = endpointError ? "" : peer.address().to_string() + ":" + std::to_string(peer.port());
        socket.set_option(tcp::no_delay(true), endpointError);
        auto executor = socket.get_executor();
        uint64_t id = 0;
        bool overloaded = false;
        {
            std::lock_guard lock(sessionsMutex);
            // The metrics listener is exempt so that monitoring still sees an overloaded gateway.
            overloaded = &acc == &*acceptor && sessions.size() >= config.maxConnections;
            if (!overloaded) id = nextSessionId++;
        }
        if (overloaded) {
            net::co_spawn(executor, refuseOverloaded(std::move(socket)), net::detached);
            continue;
        }
        if (tls) {
            using TlsStream = net::ssl::stream<beast::tcp_stream>;
            auto session = std::make_shared<Session<TlsStream>>(
                *this, TlsStream(beast::tcp_stream(std::move(socket)), *ssl), handler, id, std::move(remote));
            registerSession(id, session);
            net::co_spawn(executor, decltype(session)::element_type::run(session), net::detached);
        } else {
            auto session = std::make_shared<Session<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)),
                                                                        handler, id, std::move(remote));
            registerSession(id, session);
            net::co_spawn(executor, decltype(session)::element_type::run(session), net::detached);
        }
    }
}

// Answers a connection over limits.max_connections with a fixed 503 and closes it, without
// reading the request (TLS included: the refusal is plain text, which a TLS client sees as a
// failed handshake — it is closed either way). The refusal is bounded by the write timeout and a
// 500 ms lingering close, so refused connections cannot pile up either.
net::awaitable<void> Server::Impl::refuseOverloaded(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    co_await answerAndClose(stream,
                            plainErrorResponse(503, "Service Unavailable", "overloaded",
                                               "the gateway has reached its connection limit; retry shortly",
                                               "Retry-After: 1\r\n"),
                            config.timeouts.write);
}

void Server::Impl::beginShutdown() {
    if (shuttingDown.exchange(true)) return;
    error_code ec;
    if (acceptor) acceptor->close(ec);
    if (metricsAcceptor) metricsAcceptor->close(ec);
    if (signals) signals->cancel(ec);
    std::vector<std::shared_ptr<SessionControl>> live;
    {
        std::lock_guard lock(sessionsMutex);
        for (auto& [id, weak] : sessions)
            if (auto s = weak.lock()) live.push_back(std::move(s));
        if (live.empty()) {
            ioc.stop();
            return;
        }
    }
    for (auto& s : live) s->cancelIfIdle();
    deadline.emplace(ioc, config.shutdownDeadline);
    deadline->async_wait([this](error_code waitError) {
        if (waitError) return;
        std::fprintf(stderr, "custodian: shutdown deadline reached; closing the remaining connections\n");
        std::lock_guard lock(sessionsMutex);
        for (auto& [id, weak] : sessions)
            if (auto s = weak.lock()) s->forceClose();
        ioc.stop();
    });
}

void Server::Impl::sessionEnded(uint64_t id) {
    std::lock_guard lock(sessionsMutex);
    sessions.erase(id);
    std::erase_if(sessions, [](const auto& entry) { return entry.second.expired(); });
    if (shuttingDown.load() && sessions.empty()) ioc.stop();
}

Server::Server(ServerParts parts) : impl_(std::make_unique<Impl>(std::move(parts))) {}

Server::~Server() = default;

Status Server::start() { return impl_->start(); }

uint16_t Server::port() const {
    error_code ec;
    return impl_->acceptor ? impl_->acceptor->local_endpoint(ec).port() : 0;
}

uint16_t Server::metricsPort() const {
    error_code ec;
    return impl_->metricsAcceptor ? impl_->metricsAcceptor->local_endpoint(ec).port() : 0;
}

void Server::installSignalHandlers() {
    impl_->signals.emplace(impl_->ioc, SIGINT, SIGTERM);
    impl_->signals->async_wait([this](error_code ec, int signal) {
        if (ec) return;
        std::fprintf(stderr, "custodian: received signal %d; shutting down (deadline %lld ms)\n", signal,
                     static_cast<long long>(impl_->config.shutdownDeadline.count()));
        impl_->beginShutdown();
    });
}

void Server::run() {
    std::vector<std::thread> threads;
    for (int i = 1; i < impl_->config.threads; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
    impl_->ioc.run();
    for (auto& t : threads) t.join();
}

void Server::requestShutdown() {
    net::post(impl_->ioc, [impl = impl_.get()] { impl->beginShutdown(); });
}

}  // namespace custodian::http
