#pragma once
// The "sources" section of the configuration: which agency database endpoints a publisher may
// register (PUT /v1/sources) and how the gateway must reach them. docs/configuration.md, "Source
// endpoints", describes the rules; gateway/catalog/source_access.hpp enforces them on every
// connection to a source.
//
// Kept apart from config.hpp so that the address types stay out of every other section.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::config {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are stored as IPv4, so a
// rule about 127.0.0.0/8 cannot be bypassed by spelling the address as ::ffff:127.0.0.1.
struct IpAddress {
    bool v4 = true;
    std::array<uint8_t, 16> bytes{};  // v4: the first 4 bytes

    // Strict numeric forms only (inet_pton): "192.0.2.1", "2001:db8::1", "::ffff:127.0.0.1".
    static std::optional<IpAddress> parse(std::string_view text);
    std::string text() const;
    // 127.0.0.0/8, ::1, 0.0.0.0/8, ::, 169.254.0.0/16, fe80::/10: addresses that reach this machine
    // (0.0.0.0 connects to the local host on Linux) or only its link.
    bool isLocalOrLinkLocal() const;
    bool isLoopback() const;  // 127.0.0.0/8, ::1
    bool operator==(const IpAddress&) const = default;
};

// A CIDR range; a bare address is a /32 or /128.
struct IpRange {
    IpAddress network;
    int prefixLength = 32;

    static std::optional<IpRange> parse(std::string_view text);
    bool contains(const IpAddress& address) const;
};

// One entry of sources.allowed_hosts, classified when the configuration is read.
struct AllowedHosts {
    std::vector<IpRange> ranges;                 // "10.20.0.0/16", "192.0.2.7", "2001:db8::/32"
    std::vector<std::string> names;              // "db.agency.example", lower case
    std::vector<std::string> domainSuffixes;     // "*.agency.example" → ".agency.example"
    std::vector<std::string> socketDirectories;  // "/var/run/postgresql", normalized (no trailing /)
};

struct SourcesConfig {
    AllowedHosts allowedHosts;  // empty: no source can be registered
    // sslmode disable, allow or prefer (no encryption guaranteed against an active attacker) on a
    // connection that leaves the machine.
    bool allowUnencrypted = false;
    // Where sslrootcert files live; a source names a file in it by its bare name. Empty: sslrootcert
    // is refused.
    std::string sslRootCertDir;
};

// Classifies one entry of sources.allowed_hosts; `field` names it in errors
// ("sources.allowed_hosts[2]: ...").
Status addAllowedHost(std::string_view entry, const std::string& field, AllowedHosts& out);

// A socket directory without repeated or trailing slashes; nullopt if it is not absolute or has a
// "." or ".." component (such a path could name another directory than the listed one).
std::optional<std::string> normalizeSocketDirectory(std::string_view path);

}  // namespace custodian::config
