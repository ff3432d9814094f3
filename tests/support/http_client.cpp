#include "http_client.hpp"

#include "openapi_contract.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace custodian::testing {
namespace {

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

std::string HttpResult::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
}

HttpClient::HttpClient(uint16_t port, const std::string& host) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("connect to port " + std::to_string(port) + " failed: " + std::strerror(err));
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void HttpClient::sendRaw(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

bool HttpClient::fill() {
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    if (ready == 0) throw std::runtime_error("timed out waiting for the server");
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == ECONNRESET) return false;
        throw std::runtime_error(std::string("recv failed: ") + std::strerror(errno));
    }
    if (n == 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
}

std::string HttpClient::readLine() {
    for (;;) {
        size_t eol = buffer_.find("\r\n");
        if (eol != std::string::npos) {
            std::string line = buffer_.substr(0, eol);
            buffer_.erase(0, eol + 2);
            return line;
        }
        if (!fill()) throw std::runtime_error("connection closed while reading a line");
    }
}

std::string HttpClient::readExact(size_t n) {
    while (buffer_.size() < n)
        if (!fill()) throw std::runtime_error("connection closed while reading the body");
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
}

HttpResult HttpClient::readResponse() {
    HttpResult r;
    std::string status = readLine();
    if (status.rfind("HTTP/1.", 0) != 0 || status.size() < 12) throw std::runtime_error("bad status line: " + status);
    r.status = std::stoi(status.substr(9, 3));
    for (;;) {
        std::string line = readLine();
        if (line.empty()) break;
        size_t colon = line.find(':');
        if (colon == std::string::npos) throw std::runtime_error("bad header line: " + line);
        r.headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
    }
    if (r.status == 100) return readResponse();
    if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
        r.chunked = true;
        try {
            for (;;) {
                size_t size = std::stoul(readLine(), nullptr, 16);
                if (size == 0) {
                    while (!readLine().empty()) {}
                    break;
                }
                r.body += readExact(size);
                readLine();
            }
        } catch (const std::runtime_error& e) {
            if (std::string(e.what()).find("connection closed") == std::string::npos) throw;
            r.complete = false;
        }
    } else if (!r.header("content-length").empty()) {
        r.body = readExact(std::stoul(r.header("content-length")));
    }
    return r;
}

HttpResult HttpClient::request(const std::string& method, const std::string& target,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& body) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [n, v] : headers) req += n + ": " + v + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    sendRaw(req);
    HttpResult result = readResponse();
    recordContract(method, target, result);
    return result;
}

bool HttpClient::waitForClose(std::chrono::milliseconds wait) {
    auto saved = timeout_;
    timeout_ = wait;
    bool closed = false;
    try {
        while (fill()) buffer_.clear();
        closed = true;
    } catch (const std::runtime_error&) {
        closed = false;  // timed out with the connection still open
    }
    timeout_ = saved;
    return closed;
}

HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body) {
    HttpClient client(port);
    return client.request(method, target, headers, body);
}

HttpResult bearerRequest(uint16_t port, const std::string& method, const std::string& target, const std::string& token,
                         const std::string& body) {
    std::vector<std::pair<std::string, std::string>> headers{{"Authorization", "Bearer " + token}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return httpRequest(port, method, target, headers, body);
}

}  // namespace custodian::testing
