// `custodian extract`: the partner client. Requests an extract, decrypts it while it downloads,
// fetches the signed manifest, verifies its signature with the gateway's key and the extract's
// digests against it, and only then moves the plaintext into place (temporary file + rename). On
// any failure it exits non-zero and leaves no plaintext behind.
//
// A plain HTTP/1.1 client over Boost.Beast's synchronous API (http:// and https://, one connection
// per request); Beast stays in this one translation unit.
#include <utility>  // before Boost.Asio (g++ 12 + Boost 1.74)

// Asio's scheduler, once inlined here, trips g++ 12's -Wnull-dereference inside Boost's own code
// (a thread-local pointer it checks elsewhere); the warning says nothing about this file.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <limits>
#include <string>
#include <vector>

#include "gateway/cli/args.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway/crypto/secure_file.hpp"

namespace custodian::cli {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

struct GatewayUrl {
    bool tls = false;
    std::string host;
    std::string port;
    std::string basePath;  // without trailing '/'
};

Result<GatewayUrl> parseUrl(const std::string& url) {
    GatewayUrl u;
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        u.tls = true;
        rest = url.substr(8);
    } else {
        return invalidArgument("--url must start with http:// or https://");
    }
    const size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    u.basePath = slash == std::string::npos ? "" : rest.substr(slash);
    while (!u.basePath.empty() && u.basePath.back() == '/') u.basePath.pop_back();
    if (authority.empty()) return invalidArgument("--url has no host");
    if (authority.front() == '[') {  // [IPv6]:port
        const size_t close = authority.find(']');
        if (close == std::string::npos) return invalidArgument("--url has a malformed IPv6 address");
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') u.port = authority.substr(close + 2);
    } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
        u.host = authority.substr(0, colon);
        u.port = authority.substr(colon + 1);
    } else {
        u.host = authority;
    }
    if (u.port.empty()) u.port = u.tls ? "443" : "80";
    return u;
}

// Shows bytes, rows, rate and elapsed time on stderr, only when stderr is a terminal.
class Progress {
public:
    Progress() : enabled_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}
    void update(uint64_t bytes, uint64_t rows, bool force = false) {
        if (!enabled_) return;
        const auto now = std::chrono::steady_clock::now();
        if (!force && now - last_ < std::chrono::milliseconds(200)) return;
        last_ = now;
        const double seconds = std::chrono::duration<double>(now - start_).count();
        const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
        const double rate = seconds > 0 ? static_cast<double>(rows) / seconds : 0;
        std::fprintf(stderr, "\r  %8.1f MiB  %12llu rows  %10.0f rows/s  %6.1f s ", mib,
                     static_cast<unsigned long long>(rows), rate, seconds);
        std::fflush(stderr);
    }
    void finish() {
        if (enabled_) std::fprintf(stderr, "\n");
    }

private:
    bool enabled_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_{};
};

// One HTTP exchange on its own connection. `onBody` receives the body as it arrives when the
// status is 200; otherwise the body is collected into `errorBody`.
struct Exchange {
    int status = 0;
    std::string extractId;  // X-Extract-Id
    std::string errorBody;
    bool complete = false;  // the whole body arrived (for chunked: the last chunk)
};

using BodySink = std::function<Status(const char* data, size_t size)>;

template <typename Stream>
Status runExchange(Stream& stream, const std::string& host, const std::string& method, const std::string& target,
                   const std::string& token, const std::string& body, const BodySink& onBody, Exchange& out) {
    bhttp::request<bhttp::string_body> req{method == "POST" ? bhttp::verb::post : bhttp::verb::get, target, 11};
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::user_agent, "custodian-extract/" CUSTODIAN_VERSION);
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
    if (method == "POST") {
        req.set(bhttp::field::content_type, "application/json");
        req.body() = body;
        req.prepare_payload();
    }
    req.keep_alive(false);
    beast::error_code ec;
    bhttp::write(stream, req, ec);
    if (ec) return unavailable("sending the request to the gateway: " + ec.message());

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // Boost 1.74 has no optional overload
    bhttp::read_header(stream, buffer, parser, ec);
    if (ec) return unavailable("reading the gateway's response: " + ec.message());
    out.status = static_cast<int>(parser.get().result_int());
    out.extractId = std::string(parser.get()["X-Extract-Id"]);
    std::vector<char> chunk(1 << 16);
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        bhttp::read(stream, buffer, parser, ec);
        if (ec == bhttp::error::need_buffer) ec = {};
        const size_t n = chunk.size() - parser.get().body().size;
        if (n > 0) {
            if (out.status == 200 && onBody) {
                if (Status s = onBody(chunk.data(), n); !s) return s;
            } else if (out.errorBody.size() < (1u << 20)) {
                out.errorBody.append(chunk.data(), n);
            }
        }
        if (ec) {
            // The gateway closed without finishing the body: the extract is incomplete.
            out.complete = false;
            return Status::ok();
        }
    }
    out.complete = true;
    return Status::ok();
}

void setSocketTimeout(int fd, std::chrono::seconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count());
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Result<Exchange> request(const GatewayUrl& url, const std::string& caFile, const std::string& method,
                         const std::string& path, const std::string& token, const std::string& body,
                         const BodySink& onBody) {
    Exchange out;
    try {
        net::io_context io;
        tcp::resolver resolver(io);
        beast::error_code ec;
        auto endpoints = resolver.resolve(url.host, url.port, ec);
        if (ec) return unavailable("cannot resolve " + url.host + ": " + ec.message());
        const std::string target = url.basePath + path;
        if (!url.tls) {
            beast::tcp_stream stream(io);
            stream.connect(endpoints, ec);
            if (ec) return unavailable("cannot connect to " + url.host + ":" + url.port + ": " + ec.message());
            setSocketTimeout(stream.socket().native_handle(), std::chrono::seconds(300));
            Status s = runExchange(stream, url.host, method, target, token, body, onBody, out);
            stream.socket().shutdown(tcp::socket::shutdown_both, ec);
            if (!s) return s;
            return out;
        }
        net::ssl::context ctx(net::ssl::context::tls_client);
        ctx.set_verify_mode(net::ssl::verify_peer);
        if (caFile.empty()) ctx.set_default_verify_paths();
        else ctx.load_verify_file(caFile);
        beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
        if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
            return invalidArgument("cannot set the TLS server name");
        stream.set_verify_callback(net::ssl::host_name_verification(url.host));
        beast::get_lowest_layer(stream).connect(endpoints, ec);
        if (ec) return unavailable("cannot connect to " + url.host + ":" + url.port + ": " + ec.message());
        setSocketTimeout(beast::get_lowest_layer(stream).socket().native_handle(), std::chrono::seconds(300));
        stream.handshake(net::ssl::stream_base::client, ec);
        if (ec) return unavailable("TLS handshake with " + url.host + " failed: " + ec.message());
        Status s = runExchange(stream, url.host, method, target, token, body, onBody, out);
        stream.shutdown(ec);
        if (!s) return s;
        return out;
    } catch (const std::exception& e) { return unavailable(std::string("talking to the gateway: ") + e.what()); }
}

// The "message" of a JSON error body, or the raw body.
std::string errorMessage(const Exchange& x) {
    std::string detail = x.errorBody;
    if (auto json = json::parseJson(x.errorBody); json) {
        if (const auto* error = json->find("error"); error && error->isObject()) {
            if (const auto* m = error->find("message"); m && m->isString()) detail = m->asString();
            if (const auto* d = error->find("details"); d && d->isObject()) {
                if (auto canonical = json::canonicalJson(*d); canonical) detail += " " + *canonical;
            }
        }
    }
    return "the gateway answered " + std::to_string(x.status) + ": " + detail;
}

struct Options {
    std::string url, token, dataset, policy, purpose, keyFile, out, format, gatewayKeyFile, caFile, manifestOut;
};

// The gateway key to verify the manifest with: the pinned file, or the first key of GET /v1/keys.
Result<crypto::Ed25519PublicKey> gatewayKey(const Options& o, const GatewayUrl& url) {
    if (!o.gatewayKeyFile.empty()) return crypto::readGatewayPublicKeyFile(o.gatewayKeyFile);
    auto keys = request(url, o.caFile, "GET", "/v1/keys", "", "", nullptr);
    if (!keys) return keys.status();
    if (keys->status != 200) return unavailable(errorMessage(*keys));
    auto json = json::parseJson(keys->errorBody);
    if (!json) return invalidArgument("GET /v1/keys returned malformed JSON");
    const auto* list = json->find("keys");
    if (!list || !list->isArray() || list->asArray().empty()) return invalidArgument("GET /v1/keys returned no key");
    const auto* pk = list->asArray()[0].find("public_key");
    if (!pk || !pk->isString()) return invalidArgument("GET /v1/keys returned a key without public_key");
    return crypto::parseGatewayPublicKey(pk->asString());
}

Status runExtractRequest(const Options& o) {
    auto url = parseUrl(o.url);
    if (!url) return url.status();
    auto key = crypto::readBoxSecretKeyFile(o.keyFile);
    if (!key) return key.status();
    auto opener = crypto::ExtractOpener::create(*key);
    if (!opener) return opener.status();
    auto out = crypto::AtomicOutputFile::create(o.out);
    if (!out) return out.status();

    json::JsonValue::Object body{{"dataset", o.dataset},
                                 {"policy", o.policy},
                                 {"purpose", o.purpose},
                                 {"format", o.format},
                                 {"encryption", "sealed"}};
    auto bodyText = json::canonicalJson(json::JsonValue(std::move(body)));
    if (!bodyText) return bodyText.status();

    Progress progress;
    uint64_t received = 0, rows = 0;
    crypto::Bytes plaintext;
    BodySink sink = [&](const char* data, size_t size) -> Status {
        received += size;
        plaintext.clear();
        if (Status s = opener->feed({reinterpret_cast<const uint8_t*>(data), size}, plaintext); !s)
            return s.withContext("decrypting the extract");
        for (uint8_t b : plaintext) rows += b == '\n';
        if (Status s = out->write(plaintext); !s) return s;
        progress.update(received, rows);
        return Status::ok();
    };
    auto exchange = request(*url, o.caFile, "POST", "/v1/extracts", o.token, *bodyText, sink);
    progress.update(received, rows, true);
    progress.finish();
    if (!exchange) return exchange.status();
    if (exchange->status != 200) return unavailable(errorMessage(*exchange));
    if (!exchange->complete)
        return unavailable(
            "the gateway ended the extract before its end (aborted on the gateway side; see the audit log)");
    if (Status s = opener->finish(); !s) return s.withContext("decrypting the extract");
    if (exchange->extractId.empty()) return invalidArgument("the gateway sent no X-Extract-Id header");

    // The manifest: signed by the gateway, it binds the file's digests to the policy and the audit entry.
    auto trusted = gatewayKey(o, *url);
    if (!trusted) return trusted.status().withContext("gateway key");
    auto manifestExchange =
        request(*url, o.caFile, "GET", "/v1/extracts/" + exchange->extractId + "/manifest", o.token, "", nullptr);
    if (!manifestExchange) return manifestExchange.status();
    if (manifestExchange->status != 200) return unavailable("manifest: " + errorMessage(*manifestExchange));
    auto manifest = crypto::verifyManifest(manifestExchange->errorBody, *trusted);
    if (!manifest) return manifest.status().withContext("manifest");
    if (manifest->extractId != exchange->extractId)
        return permissionDenied("the manifest is for extract " + manifest->extractId + ", not " + exchange->extractId);
    if (Status s = crypto::checkExtractAgainstManifest(*manifest, opener->digests()); !s) return s;
    if (!o.manifestOut.empty()) {
        auto manifestFile = crypto::AtomicOutputFile::create(o.manifestOut);
        if (!manifestFile) return manifestFile.status();
        if (Status s = manifestFile->write(crypto::asBytes(manifestExchange->errorBody)); !s) return s;
        if (Status s = manifestFile->commit(0644); !s) return s;
    }
    if (Status s = out->commit(0600); !s) return s;
    std::printf("extract %s: %llu rows released (%llu suppressed) to %s\n"
                "dataset %s, policy %s version %lld (sha256 %s), audit entry %llu\n"
                "plaintext_sha256 %s (verified against the signed manifest)\n",
                manifest->extractId.c_str(), static_cast<unsigned long long>(manifest->rowsReleased),
                static_cast<unsigned long long>(manifest->rowsSuppressed), o.out.c_str(), manifest->dataset.c_str(),
                manifest->policy.c_str(), static_cast<long long>(manifest->policyVersion),
                manifest->policySha256.c_str(), static_cast<unsigned long long>(manifest->auditIndex),
                crypto::toHex(manifest->digests.plaintextSha256).c_str());
    return Status::ok();
}

}  // namespace

int runExtract(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"url", true, true, "the gateway, e.g. https://gateway.example.org:8443", "URL"},
        {"token", true, false, "the partner's API token (default: $CUSTODIAN_TOKEN)", "TOKEN"},
        {"dataset", true, true, "the dataset to extract", "NAME"},
        {"policy", true, true, "the release policy to extract under", "NAME"},
        {"purpose", true, true, "the declared purpose (one the policy allows)", "PURPOSE"},
        {"key", true, true, "the partner secret key written by `custodian keygen`", "PREFIX.key"},
        {"out", true, true, "where to write the plaintext (appears only when verified, mode 0600)", "FILE"},
        {"format", true, false, "csv (default) or ndjson", "FORMAT"},
        {"gateway-key", true, false, "pin the gateway's Ed25519 public key (default: GET /v1/keys)", "FILE"},
        {"ca-file", true, false, "CA certificate(s) to verify an https gateway (default: system store)", "FILE"},
        {"cacert", true, false, "the same as --ca-file (its earlier name)", "FILE"},
        {"manifest-out", true, false, "also save the signed manifest there", "FILE"},
    };
    const std::string synopsis = "extract --url URL --token T --dataset D --policy P --purpose P --key PREFIX.key "
                                 "--out FILE [--format csv|ndjson]";
    const std::string description =
        "Requests an extract, decrypts it while it downloads (progress on a terminal), verifies the\n"
        "gateway-signed manifest and the extract's digests, and only then writes FILE. On any failure\n"
        "it exits 1 and leaves no plaintext behind.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian extract: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::printf("%s", usageText(synopsis, description, specs).c_str());
        return 0;
    }
    Options o;
    o.url = *args->get("url");
    o.token = args->getOr("token", "");
    if (o.token.empty()) {
        if (const char* env = std::getenv("CUSTODIAN_TOKEN")) o.token = env;
    }
    if (o.token.empty()) {
        std::fprintf(stderr, "custodian extract: --token (or CUSTODIAN_TOKEN) is required\n");
        return 2;
    }
    o.dataset = *args->get("dataset");
    o.policy = *args->get("policy");
    o.purpose = *args->get("purpose");
    o.keyFile = *args->get("key");
    o.out = *args->get("out");
    o.format = args->getOr("format", "csv");
    if (o.format != "csv" && o.format != "ndjson") {
        std::fprintf(stderr, "custodian extract: --format must be csv or ndjson\n");
        return 2;
    }
    o.gatewayKeyFile = args->getOr("gateway-key", "");
    o.caFile = args->getOr("ca-file", args->getOr("cacert", ""));
    o.manifestOut = args->getOr("manifest-out", "");
    if (Status s = runExtractRequest(o); !s) {
        std::fprintf(stderr, "custodian extract: %s\n", s.message().c_str());
        return 1;
    }
    return 0;
}

}  // namespace custodian::cli
