#include "gateway/catalog/source_access.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "gateway/catalog/conninfo.hpp"
#include "gateway/db/pool.hpp"

namespace custodian::catalog {

namespace {

// libpq reads these files only when no value names them; a path below /dev/null can never exist,
// so libpq silently finds nothing (unlike /dev/null itself, which it warns about).
constexpr const char* kNoFile = "/dev/null/custodian-source-has-no-such-file";
// More targets than this after resolving host names is refused: a list is for a primary and a few
// standbys, not for making the gateway sweep a network.
constexpr size_t kMaxTargets = 16;

Status refuse(const char* rule, const std::string& message) {
    return failedPrecondition(std::string(rule) + ": " + message);
}

std::vector<std::string> splitList(const std::string& value) {
    std::vector<std::string> out;
    if (value.empty()) return out;
    size_t start = 0;
    while (true) {
        size_t comma = value.find(',', start);
        out.push_back(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

std::string joinList(const std::vector<std::string>& items) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        out += items[i];
    }
    return out;
}

// Printable for a message (values are never secrets here, but may be hostile bytes).
std::string shown(const std::string& value) {
    std::string out;
    for (char c : value.substr(0, 100)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    return "\"" + out + "\"";
}

bool inRanges(const config::SourcesConfig& rules, const config::IpAddress& address) {
    for (const auto& r : rules.allowedHosts.ranges)
        if (r.contains(address)) return true;
    return false;
}

bool nameListed(const config::SourcesConfig& rules, std::string name) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!name.empty() && name.back() == '.') name.pop_back();
    for (const auto& n : rules.allowedHosts.names)
        if (n == name) return true;
    for (const auto& suffix : rules.allowedHosts.domainSuffixes)
        if (name.size() > suffix.size() && name.ends_with(suffix)) return true;
    return false;
}

bool plausibleHostName(const std::string& name) {
    if (name.empty() || name.size() > 253) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return false;
    return true;
}

// One place libpq will try, in order.
struct Target {
    std::string host;      // socket directory, or the name TLS verifies the certificate against
    std::string hostaddr;  // empty for a socket
    std::string port;      // empty: the one port of the conninfo (or 5432)
    bool local = false;    // a Unix socket or a loopback address: the traffic never leaves the machine
};

Result<std::vector<Target>> targetsOf(const std::string& host, const std::string& hostaddr, const std::string& port,
                                      const config::SourcesConfig& rules, const HostResolver& resolve) {
    const auto hosts = splitList(host);
    const auto addrs = splitList(hostaddr);
    const auto ports = splitList(port);
    if (hosts.empty() && addrs.empty()) {
        return refuse(kAllowedHostsRule,
                      "the conninfo names no host; without one libpq would use the gateway's own default (PGHOST or "
                      "its local socket directory). Give host=");
    }
    if (!hosts.empty() && !addrs.empty() && hosts.size() != addrs.size())
        return invalidArgument("conninfo: host and hostaddr list different numbers of entries");
    const size_t n = std::max(hosts.size(), addrs.size());
    if (ports.size() > 1 && ports.size() != n)
        return invalidArgument("conninfo: port must be one port or one per host");

    std::vector<Target> out;
    for (size_t i = 0; i < n; ++i) {
        const std::string h = hosts.empty() ? std::string() : hosts[i];
        const std::string a = addrs.empty() ? std::string() : addrs[i];
        const std::string p = ports.size() > 1 ? ports[i] : std::string();
        if (!a.empty()) {
            auto ip = config::IpAddress::parse(a);
            if (!ip) return refuse(kAllowedHostsRule, "hostaddr " + shown(a) + " is not a numeric IP address");
            if (!inRanges(rules, *ip)) {
                return refuse(kAllowedHostsRule,
                              "hostaddr " + ip->text() + " is not inside a CIDR range listed in sources.allowed_hosts");
            }
            out.push_back({h.empty() ? ip->text() : h, ip->text(), p, ip->isLoopback()});
            continue;
        }
        if (h.empty()) {
            return refuse(kAllowedHostsRule,
                          "an empty host entry would make libpq use the gateway's own default (PGHOST or its local "
                          "socket directory)");
        }
        if (h.front() == '@') return refuse(kAllowedHostsRule, "abstract Unix sockets (host=@...) are not allowed");
        if (h.front() == '/') {
            auto dir = config::normalizeSocketDirectory(h);
            const auto& listed = rules.allowedHosts.socketDirectories;
            if (!dir || std::find(listed.begin(), listed.end(), *dir) == listed.end()) {
                return refuse(kAllowedHostsRule, "the Unix socket directory " + shown(h) +
                                                     " is not listed in sources.allowed_hosts (local sockets are "
                                                     "refused unless listed)");
            }
            out.push_back({*dir, "", p, true});
            continue;
        }
        if (auto ip = config::IpAddress::parse(h)) {
            if (!inRanges(rules, *ip)) {
                return refuse(kAllowedHostsRule, "host " + ip->text() +
                                                     " is not inside a CIDR range listed in "
                                                     "sources.allowed_hosts" +
                                                     (ip->isLocalOrLinkLocal() ? " (loopback and local addresses are "
                                                                                 "refused unless listed)"
                                                                               : ""));
            }
            out.push_back({h, ip->text(), p, ip->isLoopback()});
            continue;
        }
        if (!plausibleHostName(h)) return refuse(kAllowedHostsRule, "host " + shown(h) + " is not a host name");
        const bool listed = nameListed(rules, h);
        if (!listed && rules.allowedHosts.ranges.empty())
            return refuse(kAllowedHostsRule, "host " + shown(h) + " is not listed in sources.allowed_hosts");
        auto addresses = resolve(h);
        if (!addresses)
            return refuse(kAllowedHostsRule,
                          "host " + shown(h) + " cannot be resolved: " + addresses.status().message());
        if (addresses->empty()) return refuse(kAllowedHostsRule, "host " + shown(h) + " has no address");
        for (const auto& ip : *addresses) {
            if (inRanges(rules, ip)) continue;
            if (listed && !ip.isLocalOrLinkLocal()) continue;
            if (listed) {
                return refuse(kAllowedHostsRule, "host " + shown(h) + " resolves to the local address " + ip.text() +
                                                     ", which only a CIDR range in sources.allowed_hosts can allow");
            }
            return refuse(kAllowedHostsRule, "host " + shown(h) +
                                                 " is not listed in sources.allowed_hosts and its address " +
                                                 ip.text() + " is not inside a listed CIDR range");
        }
        for (const auto& ip : *addresses) out.push_back({h, ip.text(), p, ip.isLoopback()});
        if (out.size() > kMaxTargets) break;
    }
    if (out.size() > kMaxTargets)
        return refuse(kAllowedHostsRule,
                      "the hosts resolve to more than " + std::to_string(kMaxTargets) + " addresses");
    return out;
}

bool bareFileName(const std::string& name) {
    if (name.empty() || name.size() > 255 || name.front() == '.') return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return false;
    return true;
}

// Password values removed from a libpq or server message.
std::string scrub(std::string message, const std::string& password) {
    if (password.size() >= 3) {
        for (size_t at = message.find(password); at != std::string::npos; at = message.find(password, at)) {
            message.replace(at, password.size(), "***");
            at += 3;
        }
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

}  // namespace

std::string refusedRule(const Status& status) {
    if (status.code() != StatusCode::FailedPrecondition) return {};
    for (const char* rule :
         {kAllowedHostsRule, kAllowUnencryptedRule, kSslRootCertDirRule, kConninfoKeywordsRule, db::kOwnDatabaseRule}) {
        const std::string prefix = std::string(rule) + ": ";
        if (status.message().starts_with(prefix)) return rule;
    }
    return {};
}

HostResolver systemResolver() {
    return [](const std::string& host) -> Result<std::vector<config::IpAddress>> {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
        if (rc != 0) return unavailable(::gai_strerror(rc));
        std::vector<config::IpAddress> out;
        for (addrinfo* ai = found; ai; ai = ai->ai_next) {
            config::IpAddress a;
            if (ai->ai_family == AF_INET) {
                a.v4 = true;
                std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, 4);
            } else if (ai->ai_family == AF_INET6) {
                // Through text, so that a v4-mapped address is classified as IPv4.
                char text[64] = {};
                if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0)
                    continue;
                std::string s(text);
                if (auto percent = s.find('%'); percent != std::string::npos) s.resize(percent);
                auto parsed = config::IpAddress::parse(s);
                if (!parsed) continue;
                a = *parsed;
            } else {
                continue;
            }
            if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
        }
        ::freeaddrinfo(found);
        return out;
    };
}

Result<std::string> checkSourceConninfo(std::string_view conninfo, const config::SourcesConfig& rules,
                                        const HostResolver& resolve) {
    auto pairs = parseConninfo(conninfo);
    if (!pairs) return pairs.status();
    auto targets = targetsOf(conninfoValue(*pairs, "host"), conninfoValue(*pairs, "hostaddr"),
                             conninfoValue(*pairs, "port"), rules, resolve);
    if (!targets) return targets.status();
    const bool local = std::all_of(targets->begin(), targets->end(), [](const Target& t) { return t.local; });

    std::string sslmode = conninfoValue(*pairs, "sslmode");
    static const char* const kModes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
    if (!sslmode.empty() &&
        std::none_of(std::begin(kModes), std::end(kModes), [&](const char* m) { return sslmode == m; }))
        return invalidArgument(
            "conninfo: sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full");
    const bool unencrypted = sslmode == "disable" || sslmode == "allow" || sslmode == "prefer";
    if (unencrypted && !local && !rules.allowUnencrypted) {
        return refuse(kAllowUnencryptedRule,
                      "sslmode=" + sslmode +
                          " does not guarantee encryption on a connection that leaves the gateway's machine; use "
                          "verify-full (the default), verify-ca or require, or set sources.allow_unencrypted");
    }
    if (sslmode.empty() && !local) sslmode = "verify-full";

    std::string sslrootcert = conninfoValue(*pairs, "sslrootcert");
    if (!sslrootcert.empty()) {
        if (rules.sslRootCertDir.empty()) {
            return refuse(kSslRootCertDirRule, "sslrootcert needs a directory of trusted CA files in the configuration "
                                               "(sources.ssl_root_cert_dir)");
        }
        if (!bareFileName(sslrootcert)) {
            return refuse(kSslRootCertDirRule,
                          "sslrootcert must be the bare name of a file in sources.ssl_root_cert_dir "
                          "(letters, digits, . - _; no path)");
        }
        sslrootcert = rules.sslRootCertDir + "/" + sslrootcert;
    }

    std::vector<std::string> hosts, addrs, ports;
    for (const auto& t : *targets) {
        hosts.push_back(t.host);
        addrs.push_back(t.hostaddr);
        ports.push_back(t.port);
    }
    std::string port = conninfoValue(*pairs, "port");
    if (splitList(port).size() > 1) port = joinList(ports);
    if (port.empty()) port = "5432";  // not PGPORT from the gateway's environment

    ConninfoPairs out;
    out.emplace_back("host", joinList(hosts));
    out.emplace_back("hostaddr", joinList(addrs));  // even when empty: not PGHOSTADDR
    out.emplace_back("port", port);
    for (const auto& [k, v] : *pairs) {
        if (k == "host" || k == "hostaddr" || k == "port" || k == "sslmode" || k == "sslrootcert") continue;
        out.emplace_back(k, v);
    }
    if (conninfoValue(*pairs, "password").empty()) out.emplace_back("password", "");  // not PGPASSWORD
    if (!sslmode.empty()) out.emplace_back("sslmode", sslmode);
    if (!sslrootcert.empty()) out.emplace_back("sslrootcert", sslrootcert);
    out.emplace_back("passfile", kNoFile);
    out.emplace_back("sslcert", kNoFile);
    out.emplace_back("sslkey", kNoFile);
    out.emplace_back("gssencmode", "disable");
    out.emplace_back("options", "");  // not PGOPTIONS
    return buildConninfo(out);
}

Result<std::unique_ptr<pqxx::connection>> connectSource(const std::string& conninfo, const SourceAccess& access) {
    if (!access.rules) return internalError("no source rules configured");
    auto checked = checkSourceConninfo(conninfo, *access.rules, access.resolve);
    if (!checked) return checked.status();
    auto pairs = parseConninfo(conninfo);
    const std::string password = pairs ? conninfoValue(*pairs, "password") : std::string();
    std::unique_ptr<pqxx::connection> conn;
    try {
        conn = std::make_unique<pqxx::connection>(db::withConnectTimeout(*checked, access.timeout));
    } catch (const std::exception& e) {
        return failedPrecondition("cannot connect to the source database: " + scrub(e.what(), password));
    } catch (...) { return failedPrecondition("cannot connect to the source database"); }
    {
        pqxx::nontransaction tx(*conn);
        if (Status s = db::refuseOwnDatabase(tx, access.gateway); !s) return s;
    }
    return conn;
}

Result<db::ServerIdentity> gatewayIdentity(pqxx::connection& conn) {
    try {
        pqxx::nontransaction tx(conn);
        auto identity = db::readServerIdentity(tx);
        if (!identity) {
            return unavailable("cannot read the gateway database's identity, so no source is connected to (" +
                               identity.status().message() + ")");
        }
        return identity;
    } catch (const std::exception& e) {
        return unavailable(std::string("cannot read the gateway database's identity: ") + e.what());
    }
}

}  // namespace custodian::catalog
