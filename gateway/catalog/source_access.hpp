#pragma once
// The only way the gateway connects to an agency database. A stored conninfo (conninfo.hpp) is
// never handed to libpq as it is: checkSourceConninfo() applies the endpoint rules of the
// configuration (sources.*, docs/configuration.md "Source endpoints") and builds the conninfo that
// is actually used, and connectSource() then refuses the gateway's own database
// (db/server_identity.hpp). The rules run again on every connection — when a source is registered,
// when a dataset is probed and when an extract reads it — so a source stored before a rule
// tightened, or a host name whose DNS entry now points elsewhere, is refused at that moment too.
//
// What the built conninfo guarantees:
//   - every host is allowed (sources.allowed_hosts) and every TCP host name is resolved once and
//     pinned with hostaddr, so the address checked is the address connected to (no DNS rebinding
//     between check and connect); TLS still verifies the certificate against the host name;
//   - nothing is taken from the gateway's environment or files that the publisher did not name:
//     host is required (no PGHOST, no default socket), the password is always set (empty if none,
//     so PGPASSWORD is never sent to a source), passfile points at a path that cannot exist (no
//     ~/.pgpass), GSSAPI encryption is off (no Kerberos ticket of the gateway);
//   - sslmode is verify-full unless given, and a mode without guaranteed encryption (disable,
//     allow, prefer) on a connection that leaves the machine needs sources.allow_unencrypted;
//   - sslrootcert is a bare file name inside sources.ssl_root_cert_dir.
//
// Refusals are FailedPrecondition (422) whose message starts with the rule: "sources.allowed_hosts:
// ...", "sources.allow_unencrypted: ...", "sources.ssl_root_cert_dir: ...", "conninfo.keywords: ...",
// "sources.own_database: ..."; refusedRule() reads it back for the JSON error.

#include <pqxx/connection>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/config/sources.hpp"
#include "gateway/db/server_identity.hpp"

namespace custodian::catalog {

inline constexpr const char* kAllowedHostsRule = "sources.allowed_hosts";
inline constexpr const char* kAllowUnencryptedRule = "sources.allow_unencrypted";
inline constexpr const char* kSslRootCertDirRule = "sources.ssl_root_cert_dir";
inline constexpr const char* kConninfoKeywordsRule = "conninfo.keywords";

// The rule a refusal names, or empty if `status` is not a source rule's refusal.
std::string refusedRule(const Status& status);

// The addresses of a host name. The system resolver (getaddrinfo) in production; tests inject
// their own. An empty list or an error refuses the host.
using HostResolver = std::function<Result<std::vector<config::IpAddress>>(const std::string& host)>;
HostResolver systemResolver();

// The conninfo to hand libpq for the stored `conninfo`, or the refusal. Resolves host names with
// `resolve` (it may block for the resolver's timeout).
Result<std::string> checkSourceConninfo(std::string_view conninfo, const config::SourcesConfig& rules,
                                        const HostResolver& resolve);

// Everything a connection to a source needs. `gateway` is the identity of the gateway's own
// database, read on the gateway's own connection just before (see gatewayIdentity()).
struct SourceAccess {
    const config::SourcesConfig* rules = nullptr;
    db::ServerIdentity gateway;
    std::chrono::seconds timeout{5};
    HostResolver resolve = systemResolver();
};

// Checks the conninfo, connects (libpq connect_timeout = access.timeout) and refuses the gateway's
// own database. Errors: the rule refusals above, FailedPrecondition "cannot connect to the source
// database: ..." (server message without the password).
Result<std::unique_ptr<pqxx::connection>> connectSource(const std::string& conninfo, const SourceAccess& access);

// The identity of the database `conn` (the gateway's own connection) is on.
Result<db::ServerIdentity> gatewayIdentity(pqxx::connection& conn);

}  // namespace custodian::catalog
