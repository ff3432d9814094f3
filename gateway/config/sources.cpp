#include "gateway/config/sources.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace custodian::config {

namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool validHostName(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
        if (++label > 63) return false;
    }
    return label > 0;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::string s(text);
    IpAddress a;
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        a.v4 = true;
        std::memcpy(a.bytes.data(), &v4, 4);
        return a;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(a.bytes.data(), &v6, 16);
        if (std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), a.bytes.begin())) {
            std::array<uint8_t, 16> mapped{};
            std::copy(a.bytes.begin() + 12, a.bytes.end(), mapped.begin());
            a.bytes = mapped;
            a.v4 = true;
        } else {
            a.v4 = false;
        }
        return a;
    }
    return std::nullopt;
}

std::string IpAddress::text() const {
    char buffer[INET6_ADDRSTRLEN] = {};
    if (v4) {
        in_addr a{};
        std::memcpy(&a, bytes.data(), 4);
        ::inet_ntop(AF_INET, &a, buffer, sizeof buffer);
    } else {
        in6_addr a{};
        std::memcpy(&a, bytes.data(), 16);
        ::inet_ntop(AF_INET6, &a, buffer, sizeof buffer);
    }
    return buffer;
}

bool IpAddress::isLoopback() const {
    if (v4) return bytes[0] == 127;
    for (size_t i = 0; i < 15; ++i)
        if (bytes[i] != 0) return false;
    return bytes[15] == 1;
}

bool IpAddress::isLocalOrLinkLocal() const {
    if (isLoopback()) return true;
    if (v4) return bytes[0] == 0 || (bytes[0] == 169 && bytes[1] == 254);
    bool unspecified = true;
    for (uint8_t b : bytes) unspecified = unspecified && b == 0;
    return unspecified || (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80);
}

std::optional<IpRange> IpRange::parse(std::string_view text) {
    size_t slash = text.find('/');
    auto address = IpAddress::parse(text.substr(0, slash));
    if (!address) return std::nullopt;
    IpRange r;
    r.network = *address;
    const int maxPrefix = address->v4 ? 32 : 128;
    r.prefixLength = maxPrefix;
    if (slash != std::string_view::npos) {
        std::string_view digits = text.substr(slash + 1);
        int n = -1;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n < 0 || n > maxPrefix)
            return std::nullopt;
        r.prefixLength = n;
    }
    // Host bits set ("10.0.0.1/8") are a typo more often than not: refuse rather than guess.
    IpAddress masked = r.network;
    for (int bit = r.prefixLength; bit < maxPrefix; ++bit)
        masked.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    if (!(masked == r.network)) return std::nullopt;
    return r;
}

bool IpRange::contains(const IpAddress& address) const {
    if (address.v4 != network.v4) return false;
    for (int bit = 0; bit < prefixLength; ++bit) {
        const uint8_t mask = static_cast<uint8_t>(0x80u >> (bit % 8));
        if ((address.bytes[bit / 8] & mask) != (network.bytes[bit / 8] & mask)) return false;
    }
    return true;
}

std::optional<std::string> normalizeSocketDirectory(std::string_view path) {
    if (path.empty() || path.front() != '/') return std::nullopt;
    std::string out;
    size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/') ++i;
        size_t start = i;
        while (i < path.size() && path[i] != '/') ++i;
        std::string_view component = path.substr(start, i - start);
        if (component.empty()) break;
        if (component == "." || component == "..") return std::nullopt;
        for (char c : component)
            if (static_cast<unsigned char>(c) < 0x20 || c == ',') return std::nullopt;
        out += '/';
        out += component;
    }
    if (out.empty()) out = "/";
    return out;
}

Status addAllowedHost(std::string_view entry, const std::string& field, AllowedHosts& out) {
    if (entry.empty()) return invalidArgument(field + ": must not be empty");
    if (entry.front() == '/') {
        auto dir = normalizeSocketDirectory(entry);
        if (!dir)
            return invalidArgument(field + ": a socket directory must be an absolute path without . or .. components");
        out.socketDirectories.push_back(*dir);
        return Status::ok();
    }
    if (entry.find('/') != std::string_view::npos || entry.find(':') != std::string_view::npos ||
        IpAddress::parse(entry)) {
        auto range = IpRange::parse(entry);
        if (!range)
            return invalidArgument(field + ": \"" + std::string(entry) +
                                   "\" is not an address or CIDR range (e.g. 10.20.0.0/16, 2001:db8::/32; no host bits "
                                   "after the prefix)");
        out.ranges.push_back(*range);
        return Status::ok();
    }
    std::string name = lower(entry);
    if (name.back() == '.') name.pop_back();
    if (name.starts_with("*.")) {
        if (!validHostName(name.substr(2)) || name.substr(2).find('.') == std::string::npos)
            return invalidArgument(field +
                                   ": a wildcard must cover a domain of at least two labels (*.agency.example)");
        out.domainSuffixes.push_back(name.substr(1));
        return Status::ok();
    }
    if (!validHostName(name))
        return invalidArgument(field + ": \"" + std::string(entry) +
                               "\" is not a host name, *.domain, address, CIDR range or absolute socket directory");
    out.names.push_back(name);
    return Status::ok();
}

}  // namespace custodian::config
