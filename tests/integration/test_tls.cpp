// TLS on the real server (issues 2 and 6): a throwaway self-signed certificate made with the
// openssl CLI, the server on port 0 with tls.cert_file/key_file, and an OpenSSL client that
// verifies the certificate (chain and IP address) before it sends a byte. Also what a TLS
// listener must survive: plain HTTP sent to it, and clients that connect and never start — or
// never finish — the handshake (bounded by tls.handshake_timeout_ms and limits.max_connections).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// A self-signed P-256 certificate for 127.0.0.1 in a temp dir, deleted on destruction.
class ThrowawayCertificate {
public:
    ThrowawayCertificate() {
        char tmpl[] = "/tmp/custodian-tls-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        const int rc =
            runCommand({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", keyFile(), "-out", certFile(), "-days", "1", "-subj", "/CN=custodian-test",
                        "-addext", "subjectAltName=IP:127.0.0.1"},
                       dir_ + "/openssl.log");
        if (rc != 0) throw std::runtime_error("openssl req failed (exit " + std::to_string(rc) + ")");
    }
    ~ThrowawayCertificate() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string certFile() const { return dir_ + "/cert.pem"; }
    std::string keyFile() const { return dir_ + "/key.pem"; }

private:
    std::string dir_;
};

std::string openSslErrors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += std::string(out.empty() ? "" : "; ") + buf;
    }
    return out.empty() ? "no OpenSSL error queued" : out;
}

// A blocking HTTPS/1.1 client: verifies the server certificate against `caFile` and the address
// 127.0.0.1, then sends requests on one keep-alive connection. Every socket operation times out
// after 10 s so a server bug fails the test instead of hanging it.
class TlsClient {
public:
    TlsClient(uint16_t port, const std::string& caFile) {
        try {
            connect(port, caFile);
        } catch (...) {
            release();
            throw;
        }
    }
    ~TlsClient() { release(); }
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    std::string protocol() const { return SSL_get_version(ssl_); }

private:
    void connect(uint16_t port, const std::string& caFile) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        if (!ctx_) throw std::runtime_error("SSL_CTX_new: " + openSslErrors());
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_load_verify_locations(ctx_, caFile.c_str(), nullptr) != 1)
            throw std::runtime_error("loading the CA file: " + openSslErrors());
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval timeout{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("connect failed");
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
        if (SSL_connect(ssl_) != 1) throw std::runtime_error("TLS handshake failed: " + openSslErrors());
        connected_ = true;
    }
    void release() {
        if (ssl_) {
            if (connected_) SSL_shutdown(ssl_);
            SSL_free(ssl_);
        }
        if (fd_ >= 0) ::close(fd_);
        SSL_CTX_free(ctx_);
        ssl_ = nullptr;
        fd_ = -1;
        ctx_ = nullptr;
    }

public:
    HttpResult request(const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {}) {
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
        req += "\r\n";
        if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size()))
            throw std::runtime_error("SSL_write failed: " + openSslErrors());
        size_t headerEnd;
        while ((headerEnd = buffer_.find("\r\n\r\n")) == std::string::npos) fill();
        HttpResult r;
        const std::string head = buffer_.substr(0, headerEnd);
        buffer_.erase(0, headerEnd + 4);
        r.status = std::stoi(head.substr(9, 3));
        size_t lineStart = head.find("\r\n");
        while (lineStart != std::string::npos) {
            const size_t next = head.find("\r\n", lineStart + 2);
            const std::string line =
                head.substr(lineStart + 2, next == std::string::npos ? std::string::npos : next - lineStart - 2);
            if (const size_t colon = line.find(':'); colon != std::string::npos) {
                std::string name = line.substr(0, colon);
                for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
            }
            lineStart = next;
        }
        const size_t length = std::stoul(r.header("content-length"));
        while (buffer_.size() < length) fill();
        r.body = buffer_.substr(0, length);
        buffer_.erase(0, length);
        return r;
    }

private:
    void fill() {
        char buf[16384];
        const int n = SSL_read(ssl_, buf, sizeof buf);
        if (n <= 0) throw std::runtime_error("SSL_read: connection closed or timed out: " + openSslErrors());
        buffer_.append(buf, static_cast<size_t>(n));
    }

    bool connected_ = false;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    int fd_ = -1;
    std::string buffer_;
};

GatewayOptions tlsOptions(const ThrowawayCertificate& cert, std::function<void(config::GatewayConfig&)> more = {}) {
    GatewayOptions o;
    o.adjustConfig = [&cert, more](config::GatewayConfig& c) {
        config::TlsConfig tls;
        tls.certFile = cert.certFile();
        tls.keyFile = cert.keyFile();
        c.tls = tls;
        if (more) more(c);
    };
    return o;
}

// The first bytes of a TLS ClientHello: a handshake record announcing 512 bytes, of which only
// the start arrives.
const std::string kPartialClientHello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);

}  // namespace

TEST_CASE("the gateway serves HTTPS with the configured certificate, and authenticates over it", "[integration][tls]") {
    ThrowawayCertificate cert;
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), tlsOptions(cert));
    const std::string partner = gw.addPrincipal(auth::Role::Partner, "partner-tls");

    TlsClient client(gw.port(), cert.certFile());
    CHECK((client.protocol() == "TLSv1.3" || client.protocol() == "TLSv1.2"));
    auto health = client.request("GET", "/healthz");
    CHECK(health.status == 200);
    // Keep-alive inside one TLS session: an authenticated route, refused then served.
    auto anonymous = client.request("GET", "/v1/catalog");
    CHECK(anonymous.status == 401);
    CHECK(anonymous.body.find(R"("code":"unauthenticated")") != std::string::npos);
    auto catalog = client.request("GET", "/v1/catalog", {{"Authorization", "Bearer " + partner}});
    INFO(catalog.body);
    CHECK(catalog.status == 200);
    CHECK_FALSE(catalog.header("x-request-id").empty());
}

TEST_CASE("plain HTTP on the TLS port is answered with a plain 400 and closed", "[integration][tls]") {
    ThrowawayCertificate cert;
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), tlsOptions(cert));

    HttpClient plain(gw.port());
    auto refused = plain.request("GET", "/healthz");
    CHECK(refused.status == 400);
    CHECK(refused.body.find(R"("code":"tls_required")") != std::string::npos);
    CHECK(refused.header("connection") == "close");
    CHECK(plain.waitForClose(milliseconds(5000)));

    // The listener is unharmed.
    TlsClient client(gw.port(), cert.certFile());
    CHECK(client.request("GET", "/healthz").status == 200);
}

TEST_CASE("a certificate that cannot be loaded stops the server from starting", "[integration][tls]") {
    auto db = TestDatabase::create();
    GatewayOptions o;
    o.adjustConfig = [](config::GatewayConfig& c) {
        c.tls = config::TlsConfig{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
    };
    REQUIRE_THROWS_WITH(RunningGateway(db.conninfo(), o), Catch::Contains("tls: cannot load the certificate"));
}

TEST_CASE("half-open TLS handshakes are closed at the handshake timeout and do not block other clients",
          "[integration][tls][hostile]") {
    ThrowawayCertificate cert;
    auto db = TestDatabase::create();
    RunningGateway gw(db.conninfo(), tlsOptions(cert, [](config::GatewayConfig& c) {
                          c.tls->handshakeTimeout = milliseconds(1500);
                          c.timeouts.header = milliseconds(60000);  // so only the handshake deadline can close them
                          c.maxConnections = 200;
                      }));
    constexpr int kSilent = 60;   // connect, never send a byte
    constexpr int kPartial = 40;  // start a ClientHello, never finish it
    const auto opened = Clock::now();
    std::vector<std::unique_ptr<HttpClient>> halfOpen;
    for (int i = 0; i < kSilent + kPartial; ++i) {
        halfOpen.push_back(std::make_unique<HttpClient>(gw.port()));
        if (i >= kSilent) halfOpen.back()->sendRaw(kPartialClientHello);
    }

    // While they are all held, a real TLS client is served promptly.
    const auto asked = Clock::now();
    {
        TlsClient client(gw.port(), cert.certFile());
        CHECK(client.request("GET", "/healthz").status == 200);
    }
    CHECK(Clock::now() - asked < milliseconds(1500));

    // Each is closed by the server: not before the deadline (minus slack), and not long after it.
    int closed = 0;
    milliseconds firstClose{0};
    const auto deadline = opened + milliseconds(15000);
    for (auto& c : halfOpen) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (c->waitForClose(std::max(left, milliseconds(1)))) {
            if (closed++ == 0) firstClose = std::chrono::duration_cast<milliseconds>(Clock::now() - opened);
        }
    }
    CHECK(closed == kSilent + kPartial);
    CHECK(firstClose >= milliseconds(1200));
    CHECK(firstClose < milliseconds(8000));

    TlsClient after(gw.port(), cert.certFile());
    CHECK(after.request("GET", "/healthz").status == 200);
}

TEST_CASE("half-open TLS handshakes count against max_connections until the handshake timeout frees them",
          "[integration][tls][hostile]") {
    ThrowawayCertificate cert;
    auto db = TestDatabase::create();
    constexpr uint32_t kLimit = 20;
    RunningGateway gw(db.conninfo(), tlsOptions(cert, [](config::GatewayConfig& c) {
                          c.tls->handshakeTimeout = milliseconds(2000);
                          c.maxConnections = kLimit;
                      }));
    std::vector<std::unique_ptr<HttpClient>> halfOpen;
    for (uint32_t i = 0; i < kLimit; ++i) {
        halfOpen.push_back(std::make_unique<HttpClient>(gw.port()));
        if (i % 2 == 0) halfOpen.back()->sendRaw(kPartialClientHello);
    }
    // Once all of them are accepted, a newcomer is refused at once with the plain 503 (a TLS client
    // sees a failed handshake; a plain one can read it).
    HttpResult refused;
    const auto until = Clock::now() + milliseconds(1500);
    do {
        refused = httpRequest(gw.port(), "GET", "/healthz");
        if (refused.status == 503) break;
        std::this_thread::sleep_for(milliseconds(50));
    } while (Clock::now() < until);
    REQUIRE(refused.status == 503);
    CHECK(refused.header("retry-after") == "1");
    CHECK_THROWS_WITH(TlsClient(gw.port(), cert.certFile()), Catch::Contains("TLS handshake failed"));

    // The handshake timeout frees the slots without any client going away: a TLS client gets in.
    int status = 0;
    const auto deadline = Clock::now() + milliseconds(15000);
    while (Clock::now() < deadline && status != 200) {
        try {
            TlsClient client(gw.port(), cert.certFile());
            status = client.request("GET", "/healthz").status;
        } catch (const std::runtime_error&) { std::this_thread::sleep_for(milliseconds(200)); }
    }
    CHECK(status == 200);
    for (auto& c : halfOpen) CHECK(c->waitForClose(milliseconds(5000)));
}
