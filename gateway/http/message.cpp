#include "gateway/http/message.hpp"

#include <cstdio>

#include <sodium.h>

namespace custodian::http {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string HttpRequest::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (equalsIgnoreCase(n, name)) return v;
    return {};
}

std::optional<std::string> HttpRequest::queryParam(std::string_view name) const {
    std::string_view rest = query;
    while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        size_t eq = pair.find('=');
        auto key = percentDecode(pair.substr(0, eq), true);
        if (!key || *key != name) continue;
        if (eq == std::string_view::npos) return std::string();
        auto value = percentDecode(pair.substr(eq + 1), true);
        if (value) return *value;
    }
    return std::nullopt;
}

void HttpResponse::setHeader(std::string name, std::string value) {
    for (auto& [n, v] : headers) {
        if (equalsIgnoreCase(n, name)) {
            v = std::move(value);
            return;
        }
    }
    headers.emplace_back(std::move(name), std::move(value));
}

std::string HttpResponse::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (equalsIgnoreCase(n, name)) return v;
    return {};
}

HttpResponse HttpResponse::json(int status, std::string jsonBody) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(jsonBody);
    r.setHeader("Content-Type", "application/json");
    return r;
}

HttpResponse HttpResponse::text(int status, std::string body, std::string contentType) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.setHeader("Content-Type", std::move(contentType));
    return r;
}

HttpResponse HttpResponse::streaming(int status, std::string contentType, std::shared_ptr<BodyProducer> producer) {
    HttpResponse r;
    r.status = status;
    r.stream = std::move(producer);
    r.setHeader("Content-Type", std::move(contentType));
    return r;
}

Result<std::string> percentDecode(std::string_view s, bool plusIsSpace) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size()) return invalidArgument("truncated percent escape");
            int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
            if (hi < 0 || lo < 0) return invalidArgument("invalid percent escape");
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (plusIsSpace && s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string newRequestId() {
    unsigned char bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    char hex[sizeof bytes * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
    return hex;
}

bool acceptableRequestId(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace custodian::http
