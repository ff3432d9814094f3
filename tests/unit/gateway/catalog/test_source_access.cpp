// The source endpoint rules (gateway/catalog/source_access.hpp, gateway/config/sources.hpp): which
// conninfo strings are refused, by which rule, and the conninfo libpq is actually given. Host
// names are resolved by an injected resolver, so no DNS is involved.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "gateway/catalog/conninfo.hpp"
#include "gateway/catalog/source_access.hpp"
#include "gateway/config/config.hpp"

#include "unit/gateway/config_with_section.hpp"

using namespace custodian;
using catalog::checkSourceConninfo;
using catalog::refusedRule;
using config::IpAddress;

namespace {

config::SourcesConfig rulesWith(std::initializer_list<const char*> hosts) {
    config::SourcesConfig rules;
    for (const char* h : hosts) REQUIRE(config::addAllowedHost(h, "sources.allowed_hosts", rules.allowedHosts));
    return rules;
}

// A fake DNS: names map to fixed addresses; anything else does not resolve.
catalog::HostResolver fakeDns(std::map<std::string, std::vector<std::string>> table) {
    return [table](const std::string& host) -> Result<std::vector<IpAddress>> {
        auto it = table.find(host);
        if (it == table.end()) return unavailable("Name or service not known");
        std::vector<IpAddress> out;
        for (const auto& a : it->second) out.push_back(*IpAddress::parse(a));
        return out;
    };
}

const catalog::HostResolver kDns = fakeDns({{"db.agency.example", {"10.20.0.5"}},
                                            {"two.agency.example", {"10.20.0.6", "10.20.0.7"}},
                                            {"rebound.agency.example", {"127.0.0.1"}},
                                            {"evil.example", {"127.0.0.1"}},
                                            {"mixed.example", {"10.20.0.8", "192.168.9.9"}},
                                            {"outside.example", {"203.0.113.9"}}});

std::string ruleOf(const Result<std::string>& r) { return r ? std::string("(allowed)") : refusedRule(r.status()); }

// The value of `keyword` in a conninfo built by buildConninfo (keyword='value', no quotes inside
// the values used here). parseConninfo would refuse the keywords only the gateway sets.
std::string value(const std::string& conninfo, const std::string& keyword) {
    const std::string key = keyword + "='";
    size_t at = conninfo.rfind(" " + key) != std::string::npos ? conninfo.rfind(" " + key) + 1 : conninfo.find(key);
    if (conninfo.rfind(key, 0) == 0) at = 0;
    if (at == std::string::npos) return "(absent)";
    at += key.size();
    return conninfo.substr(at, conninfo.find('\'', at) - at);
}

}  // namespace

TEST_CASE("sources.allowed_hosts entries are classified and malformed ones are refused at start", "[config][sources]") {
    auto parsed = config::parseConfig(
        testing::configWithSection("sources", R"({"allowed_hosts": ["10.20.0.0/16", "192.0.2.7", "2001:db8::/32",
            "DB.Agency.Example.", "*.health.example", "/var/run//postgresql/"], "allow_unencrypted": true,
            "ssl_root_cert_dir": "cas"})"),
        "/etc/custodian");
    REQUIRE(parsed);
    const auto& s = parsed->sources;
    CHECK(s.allowedHosts.ranges.size() == 3);
    CHECK(s.allowedHosts.names == std::vector<std::string>{"db.agency.example"});
    CHECK(s.allowedHosts.domainSuffixes == std::vector<std::string>{".health.example"});
    CHECK(s.allowedHosts.socketDirectories == std::vector<std::string>{"/var/run/postgresql"});
    CHECK(s.allowUnencrypted);
    CHECK(s.sslRootCertDir == "/etc/custodian/cas");

    auto defaults = config::parseConfig(testing::configWithSection("sources", "{}"), "/etc/custodian");
    REQUIRE(defaults);
    CHECK(defaults->sources.allowedHosts.ranges.empty());
    CHECK(defaults->sources.allowedHosts.names.empty());
    CHECK_FALSE(defaults->sources.allowUnencrypted);

    for (const char* bad : {R"("10.0.0.1/8")", R"("10.0.0.0/33")", R"("/var/../tmp")", R"("*.example")",
                            R"("bad host")", R"("")", R"(7)"}) {
        auto r = config::parseConfig(
            testing::configWithSection("sources", std::string(R"({"allowed_hosts": [)") + bad + "]}"),
            "/etc/custodian");
        INFO(bad);
        REQUIRE_FALSE(r);
        CHECK(r.status().message().starts_with("sources.allowed_hosts[0]: "));
    }
    auto unknown =
        config::parseConfig(testing::configWithSection("sources", R"({"allowed_host": []})"), "/etc/custodian");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.status().message() == "sources.allowed_host: unknown field");
}

TEST_CASE("IPv4-mapped IPv6 addresses are checked as IPv4 and CIDR ranges contain exactly their addresses",
          "[config][sources]") {
    auto mapped = IpAddress::parse("::ffff:127.0.0.1");
    REQUIRE(mapped);
    CHECK(mapped->v4);
    CHECK(mapped->isLoopback());
    CHECK(IpAddress::parse("0.0.0.0")->isLocalOrLinkLocal());
    CHECK(IpAddress::parse("fe80::1")->isLocalOrLinkLocal());
    CHECK_FALSE(IpAddress::parse("10.0.0.1")->isLocalOrLinkLocal());
    CHECK_FALSE(IpAddress::parse("127.1"));  // only strict numeric forms
    auto range = config::IpRange::parse("10.20.0.0/16");
    REQUIRE(range);
    CHECK(range->contains(*IpAddress::parse("10.20.255.1")));
    CHECK_FALSE(range->contains(*IpAddress::parse("10.21.0.1")));
    CHECK_FALSE(range->contains(*IpAddress::parse("::ffff:10.21.0.1")));
    auto v6 = config::IpRange::parse("2001:db8::/32");
    REQUIRE(v6);
    CHECK(v6->contains(*IpAddress::parse("2001:db8:ffff::1")));
    CHECK_FALSE(v6->contains(*IpAddress::parse("2001:db9::1")));
}

TEST_CASE("a source endpoint outside sources.allowed_hosts is refused by that rule", "[catalog][sources]") {
    const auto rules = rulesWith({"10.20.0.0/16", "db.agency.example", "*.health.example", "/var/run/postgresql"});
    auto check = [&](const std::string& conninfo) { return ruleOf(checkSourceConninfo(conninfo, rules, kDns)); };

    // Allowed: a listed name, an address in a range, a listed socket directory (any spelling of it).
    CHECK(check("host=db.agency.example dbname=a user=u password=p") == "(allowed)");
    CHECK(check("host=10.20.3.4 dbname=a") == "(allowed)");
    CHECK(check("host=/var/run/postgresql/ dbname=a") == "(allowed)");
    CHECK(check("host=two.agency.example dbname=a") == "(allowed)");  // unlisted name, every address in range

    // Refused.
    CHECK(check("dbname=a user=u") == "sources.allowed_hosts");                      // no host: PGHOST / default socket
    CHECK(check("host=10.20.0.5,,10.20.0.6 dbname=a") == "sources.allowed_hosts");   // empty entry in a list
    CHECK(check("host=10.20.0.5,203.0.113.1 dbname=a") == "sources.allowed_hosts");  // one bad entry in a list
    CHECK(check("host=outside.example dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=mixed.example dbname=a") == "sources.allowed_hosts");    // one address outside
    CHECK(check("host=no-such.example dbname=a") == "sources.allowed_hosts");  // unresolvable
    CHECK(check("host=127.0.0.1 dbname=a") == "sources.allowed_hosts");        // loopback, not listed
    CHECK(check("host=::1 dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=::ffff:127.0.0.1 dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=0.0.0.0 dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=localhost dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=/tmp dbname=a") == "sources.allowed_hosts");  // unlisted socket directory
    CHECK(check("host=/var/run/postgresql/../../tmp dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=@abstract dbname=a") == "sources.allowed_hosts");
    CHECK(check("host=db.agency.example hostaddr=127.0.0.1 dbname=a") == "sources.allowed_hosts");  // hostaddr decides
    CHECK(check("hostaddr=203.0.113.1 dbname=a") == "sources.allowed_hosts");
    // A listed name whose DNS entry now points at this machine (rebinding) is refused too.
    const auto withRebound = rulesWith({"rebound.agency.example"});
    CHECK(ruleOf(checkSourceConninfo("host=rebound.agency.example dbname=a", withRebound, kDns)) ==
          "sources.allowed_hosts");
    // An empty allow-list (the default) allows nothing.
    CHECK(ruleOf(checkSourceConninfo("host=10.20.0.5 dbname=a", config::SourcesConfig{}, kDns)) ==
          "sources.allowed_hosts");
}

TEST_CASE("loopback addresses and sockets are allowed only when listed", "[catalog][sources]") {
    const auto rules = rulesWith({"127.0.0.1", "/tmp/pg/sock"});
    CHECK(checkSourceConninfo("host=127.0.0.1 port=5432 dbname=a", rules, kDns));
    CHECK(checkSourceConninfo("host=/tmp/pg/sock dbname=a", rules, kDns));
    CHECK(ruleOf(checkSourceConninfo("host=127.0.0.2 dbname=a", rules, kDns)) == "sources.allowed_hosts");
    CHECK(ruleOf(checkSourceConninfo("host=evil.example dbname=a", rules, kDns)) ==
          "(allowed)");  // resolves to a listed address
}

TEST_CASE("the conninfo given to libpq pins every checked address and reads nothing of the gateway's",
          "[catalog][sources]") {
    const auto rules = rulesWith({"10.20.0.0/16", "/var/run/postgresql"});
    auto built = checkSourceConninfo("host=two.agency.example,10.20.0.9 port=5433,5434 dbname=a user=u", rules, kDns);
    REQUIRE(built);
    INFO(*built);
    // One entry per address, the host name kept for TLS verification, ports following their host.
    CHECK(value(*built, "host") == "two.agency.example,two.agency.example,10.20.0.9");
    CHECK(value(*built, "hostaddr") == "10.20.0.6,10.20.0.7,10.20.0.9");
    CHECK(value(*built, "port") == "5433,5433,5434");
    CHECK(value(*built, "sslmode") == "verify-full");
    // parseConninfo refuses these keywords from a publisher; they appear only as the gateway sets them.
    CHECK(built->find("passfile='/dev/null/") != std::string::npos);
    CHECK(built->find("sslcert='/dev/null/") != std::string::npos);
    CHECK(built->find("sslkey='/dev/null/") != std::string::npos);
    CHECK(built->find("gssencmode='disable'") != std::string::npos);
    CHECK(built->find("password=''") != std::string::npos);  // never PGPASSWORD
    CHECK(built->find("options=''") != std::string::npos);   // never PGOPTIONS

    auto socket = checkSourceConninfo("host=/var/run/postgresql dbname=a password=secret", rules, kDns);
    REQUIRE(socket);
    CHECK(socket->find("sslmode") == std::string::npos);  // local: libpq never uses TLS on a socket
    CHECK(socket->find("password='secret'") != std::string::npos);
    CHECK(socket->find("port='5432'") != std::string::npos);  // never PGPORT
}

TEST_CASE("unencrypted sslmodes leave the machine only with sources.allow_unencrypted", "[catalog][sources]") {
    auto rules = rulesWith({"10.20.0.0/16", "127.0.0.1"});
    for (const char* mode : {"disable", "allow", "prefer"}) {
        INFO(mode);
        CHECK(ruleOf(checkSourceConninfo(std::string("host=10.20.0.5 dbname=a sslmode=") + mode, rules, kDns)) ==
              "sources.allow_unencrypted");
        CHECK(checkSourceConninfo(std::string("host=127.0.0.1 dbname=a sslmode=") + mode, rules, kDns));  // stays local
    }
    for (const char* mode : {"require", "verify-ca", "verify-full"})
        CHECK(checkSourceConninfo(std::string("host=10.20.0.5 dbname=a sslmode=") + mode, rules, kDns));
    auto bogus = checkSourceConninfo("host=10.20.0.5 dbname=a sslmode=maybe", rules, kDns);
    REQUIRE_FALSE(bogus);
    CHECK(bogus.status().code() == StatusCode::InvalidArgument);

    rules.allowUnencrypted = true;
    auto plain = checkSourceConninfo("host=10.20.0.5 dbname=a sslmode=disable", rules, kDns);
    REQUIRE(plain);
    CHECK(value(*plain, "sslmode") == "disable");
}

TEST_CASE("sslrootcert is a bare file name inside sources.ssl_root_cert_dir", "[catalog][sources]") {
    auto rules = rulesWith({"10.20.0.0/16"});
    CHECK(ruleOf(checkSourceConninfo("host=10.20.0.5 dbname=a sslrootcert=agency.pem", rules, kDns)) ==
          "sources.ssl_root_cert_dir");
    rules.sslRootCertDir = "/etc/custodian/source-cas";
    auto ok = checkSourceConninfo("host=10.20.0.5 dbname=a sslrootcert=agency.pem", rules, kDns);
    REQUIRE(ok);
    CHECK(value(*ok, "sslrootcert") == "/etc/custodian/source-cas/agency.pem");
    for (const char* evil : {"/etc/custodian/master.key", "../master.key", "..", ".hidden", "a/b.pem"}) {
        INFO(evil);
        CHECK(ruleOf(checkSourceConninfo(std::string("host=10.20.0.5 dbname=a sslrootcert='") + evil + "'", rules,
                                         kDns)) == "sources.ssl_root_cert_dir");
    }
}

TEST_CASE("conninfo keywords that read the gateway's files are refused by conninfo.keywords", "[catalog][sources]") {
    const auto rules = rulesWith({"10.20.0.0/16"});
    for (const char* keyword : {"passfile=/etc/shadow", "service=gateway", "sslkey=/k", "sslcert=/c", "sslcrl=/c",
                                "options='-c search_path=x'", "krbsrvname=x", "gssencmode=require", "requiressl=1"}) {
        INFO(keyword);
        auto r = checkSourceConninfo(std::string("host=10.20.0.5 dbname=a ") + keyword, rules, kDns);
        REQUIRE_FALSE(r);
        CHECK(r.status().code() == StatusCode::FailedPrecondition);
        CHECK(refusedRule(r.status()) == "conninfo.keywords");
    }
}
