#include "gateway/catalog/conninfo.hpp"

#include <array>
#include <cctype>

#include "gateway/catalog/catalog.hpp"

namespace custodian::catalog {

namespace {

// Everything else is refused, notably the keywords that name files the gateway would read or
// send (passfile, service, sslcert, sslkey, sslcrl, sslcrldir), settings applied on the server
// (options), and authentication machinery of the gateway's host (krbsrvname, gsslib, gssencmode).
// sslrootcert names a file too: source_access.cpp only accepts a bare name inside
// sources.ssl_root_cert_dir.
constexpr std::array<std::string_view, 11> kAllowedKeywords = {"host",
                                                               "hostaddr",
                                                               "port",
                                                               "dbname",
                                                               "user",
                                                               "password",
                                                               "sslmode",
                                                               "sslrootcert",
                                                               "connect_timeout",
                                                               "application_name",
                                                               "target_session_attrs"};

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

bool allowedConninfoKeyword(std::string_view keyword) {
    for (auto k : kAllowedKeywords)
        if (k == keyword) return true;
    return false;
}

Result<ConninfoPairs> parseConninfo(std::string_view s) {
    if (s.starts_with("postgres://") || s.starts_with("postgresql://")) {
        return invalidArgument(
            "conninfo: use the keyword=value form (host=... dbname=... user=... password=...), not a URI");
    }
    ConninfoPairs pairs;
    size_t i = 0;
    while (true) {
        while (i < s.size() && space(s[i])) ++i;
        if (i == s.size()) break;
        size_t keyStart = i;
        while (i < s.size() && !space(s[i]) && s[i] != '=') ++i;
        std::string key(s.substr(keyStart, i - keyStart));
        while (i < s.size() && space(s[i])) ++i;
        if (i == s.size() || s[i] != '=') {
            return invalidArgument("conninfo: expected '=' after keyword number " + std::to_string(pairs.size() + 1));
        }
        ++i;
        while (i < s.size() && space(s[i])) ++i;
        std::string value;
        if (i < s.size() && s[i] == '\'') {
            ++i;
            bool closed = false;
            while (i < s.size()) {
                char c = s[i++];
                if (c == '\\' && i < s.size()) {
                    value += s[i++];
                } else if (c == '\'') {
                    closed = true;
                    break;
                } else {
                    value += c;
                }
            }
            if (!closed) return invalidArgument("conninfo: unterminated quoted value for \"" + key + "\"");
        } else {
            while (i < s.size() && !space(s[i])) {
                char c = s[i++];
                if (c == '\\' && i < s.size()) c = s[i++];
                value += c;
            }
        }
        if (!allowedConninfoKeyword(key)) {
            bool printable = !key.empty() && key.size() <= 40;
            for (char c : key) printable = printable && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
            // FailedPrecondition (422) naming the rule, like the endpoint rules of source_access.hpp.
            return failedPrecondition("conninfo.keywords: keyword " + (printable ? "\"" + key + "\" " : std::string()) +
                                      "is not allowed (allowed: host, hostaddr, port, dbname, user, password, sslmode, "
                                      "sslrootcert, connect_timeout, application_name, target_session_attrs)");
        }
        for (const auto& [k, v] : pairs)
            if (k == key) return invalidArgument("conninfo: keyword \"" + key + "\" appears twice");
        for (char c : value)
            if (c == '\0') return invalidArgument("conninfo: value of \"" + key + "\" contains a NUL byte");
        pairs.emplace_back(std::move(key), std::move(value));
    }
    if (conninfoValue(pairs, "dbname").empty()) return invalidArgument("conninfo: dbname is required");
    return pairs;
}

std::string buildConninfo(const ConninfoPairs& pairs) {
    std::string out;
    for (const auto& [k, v] : pairs) {
        if (!out.empty()) out += ' ';
        out += k;
        out += "='";
        for (char c : v) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c;
        }
        out += '\'';
    }
    return out;
}

std::string conninfoValue(const ConninfoPairs& pairs, std::string_view keyword) {
    for (const auto& [k, v] : pairs)
        if (k == keyword) return v;
    return {};
}

std::string describeSourceConninfo(std::string_view conninfo) {
    auto pairs = parseConninfo(conninfo);
    if (!pairs) return "(unparseable connection string)";
    for (auto& [k, v] : *pairs)
        if (k == "password") v = "***";
    return buildConninfo(*pairs);
}

}  // namespace custodian::catalog
