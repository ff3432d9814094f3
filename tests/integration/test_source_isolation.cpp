// Source isolation (issue 13): a publisher cannot make the gateway connect to its own database or
// to an endpoint the configuration does not allow (sources.*, gateway/catalog/source_access.hpp).
// Every refusal is 422 {"error":{"code":"source_refused","details":{"rule":...}}}, audited as
// denied, and stores nothing. Real gateway, real PostgreSQL, both spellings of the test cluster:
// TCP 127.0.0.1:port and its Unix socket directory.

#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <memory>
#include <string>

#include "gateway/audit/log.hpp"
#include "gateway/http/message.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "test_extract_fixture.hpp"
#include "json/writer.hpp"

using namespace custodian;
using testing::createVisitsTable;
using testing::HttpResult;
using testing::visitsDatasetJson;
using testing::visitsPolicyJson;

namespace {

// The test cluster's port and socket directory, read from the server itself (the admin conninfo
// names only one of the two).
struct ClusterEndpoints {
    std::string port, socketDir;
};

ClusterEndpoints clusterEndpoints() {
    pqxx::connection conn(testing::adminConninfo());
    pqxx::nontransaction tx(conn);
    ClusterEndpoints e;
    e.port = tx.exec("SHOW port")[0][0].as<std::string>();
    std::string dirs = tx.exec("SHOW unix_socket_directories")[0][0].as<std::string>();
    e.socketDir = dirs.substr(0, dirs.find(','));
    return e;
}

std::string viaTcp(const ClusterEndpoints& e, const std::string& database) {
    return "host=127.0.0.1 port=" + e.port + " user=postgres dbname=" + database;
}
std::string viaSocket(const ClusterEndpoints& e, const std::string& database) {
    return "host=" + e.socketDir + " port=" + e.port + " user=postgres dbname=" + database;
}

// The superuser name of the test cluster (postgres as root, the OS user otherwise).
std::string clusterUser() {
    pqxx::connection conn(testing::adminConninfo());
    pqxx::nontransaction tx(conn);
    return tx.exec("SELECT current_user")[0][0].as<std::string>();
}

std::string withUser(std::string conninfo) {
    const std::string user = clusterUser();
    return conninfo.replace(conninfo.find("user=postgres"), 13, "user=" + user);
}

std::string sourceBody(const std::string& conninfo) { return "{\"conninfo\": " + json::quoted(conninfo) + "}"; }

struct IsolationWorld {
    testing::TestDatabase gatewayDb = testing::TestDatabase::create("isolation_gw");
    testing::TestDatabase agency = testing::TestDatabase::create("isolation_agency");
    ClusterEndpoints cluster = clusterEndpoints();
    std::unique_ptr<testing::RunningGateway> gw;
    std::string publisher, partner;

    // `allowed`: sources.allowed_hosts of the gateway (exactly these).
    explicit IsolationWorld(std::vector<std::string> allowed) {
        createVisitsTable(agency.conninfo(), 60);
        testing::GatewayOptions options;
        options.adjustConfig = [allowed](config::GatewayConfig& c) {
            c.sources = {};
            for (const auto& h : allowed) REQUIRE(config::addAllowedHost(h, "test", c.sources.allowedHosts));
        };
        gw = std::make_unique<testing::RunningGateway>(gatewayDb.conninfo(), options);
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        partner = gw->addPrincipal(auth::Role::Partner, "partner-a");
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return testing::httpRequest(gw->port(), method, target,
                                    {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}}, body);
    }

    size_t deniedSourcePuts() {
        audit::AuditQuery q;
        q.action = "source.put";
        q.decision = "denied";
        q.limit = 1000;
        auto page = gw->services().audit->query(q);
        REQUIRE(page);
        return page->entries.size();
    }

    int64_t storedSources() {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::read_transaction tx(conn);
        return tx.exec("SELECT count(*) FROM sources")[0][0].as<int64_t>();
    }

    // PUT /v1/sources/<name> is refused with 422 by `rule`, audited, and stores nothing.
    void requireRefused(const std::string& name, const std::string& conninfo, const std::string& rule) {
        const size_t deniedBefore = deniedSourcePuts();
        const int64_t storedBefore = storedSources();
        auto r = call("PUT", "/v1/sources/" + name, publisher, sourceBody(conninfo));
        INFO(conninfo << " -> " << r.body);
        CHECK(r.status == 422);
        CHECK(r.body.find("\"code\":\"source_refused\"") != std::string::npos);
        CHECK(r.body.find("\"rule\":\"" + rule + "\"") != std::string::npos);
        CHECK(r.body.find("\"message\":\"" + rule + ": ") != std::string::npos);
        CHECK(deniedSourcePuts() == deniedBefore + 1);
        CHECK(storedSources() == storedBefore);
    }
};

}  // namespace

TEST_CASE("the gateway's own database is refused as a source by TCP and by its Unix socket directory",
          "[integration][sources]") {
    IsolationWorld w({"127.0.0.1", clusterEndpoints().socketDir});
    w.requireRefused("own-tcp", withUser(viaTcp(w.cluster, w.gatewayDb.name())), "sources.own_database");
    w.requireRefused("own-socket", withUser(viaSocket(w.cluster, w.gatewayDb.name())), "sources.own_database");
    // Another database of the same cluster, by either spelling, is an ordinary source.
    CHECK(w.call("PUT", "/v1/sources/agency-tcp", w.publisher, sourceBody(withUser(viaTcp(w.cluster, w.agency.name()))))
              .status == 201);
    CHECK(w.call("PUT", "/v1/sources/agency-socket", w.publisher,
                 sourceBody(withUser(viaSocket(w.cluster, w.agency.name()))))
              .status == 201);
}

TEST_CASE("the own-database check works when the source role is not a superuser", "[integration][sources]") {
    IsolationWorld w({"127.0.0.1"});
    const std::string role = "isolation_reader_" + w.gatewayDb.name();
    testing::runPsql(testing::adminConninfo(), "CREATE ROLE \"" + role + "\" LOGIN");
    struct DropRole {
        std::string name;
        ~DropRole() {
            try {
                testing::runPsql(testing::adminConninfo(), "DROP ROLE IF EXISTS \"" + name + "\"");
            } catch (...) {}
        }
    } dropRole{role};
    std::string own = viaTcp(w.cluster, w.gatewayDb.name());
    own.replace(own.find("user=postgres"), 13, "user=" + role);
    w.requireRefused("own-plain-role", own, "sources.own_database");

    // A source role that may not call pg_control_system(): the gateway cannot tell, so it refuses.
    // Function privileges live in each database's catalog: this changes only the agency database.
    testing::runPsql(w.agency.conninfo(), "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC");
    std::string agency = viaTcp(w.cluster, w.agency.name());
    agency.replace(agency.find("user=postgres"), 13, "user=" + role);
    w.requireRefused("cannot-tell", agency, "sources.own_database");
}

TEST_CASE("source endpoints outside sources.allowed_hosts, and loopback not listed, are refused",
          "[integration][sources]") {
    IsolationWorld w({clusterEndpoints().socketDir, "192.0.2.0/24"});
    w.requireRefused("tcp-loopback", withUser(viaTcp(w.cluster, w.agency.name())), "sources.allowed_hosts");
    w.requireRefused("ipv6-loopback", "host=::1 dbname=x user=u", "sources.allowed_hosts");
    w.requireRefused("localhost", "host=localhost dbname=x user=u", "sources.allowed_hosts");
    w.requireRefused("unlisted", "host=203.0.113.5 dbname=x user=u", "sources.allowed_hosts");
    w.requireRefused("no-host", "dbname=" + w.agency.name(), "sources.allowed_hosts");
    w.requireRefused("other-socket", "host=/tmp dbname=x user=u", "sources.allowed_hosts");
    // Unencrypted to a host that is allowed but not on this machine; refused before connecting.
    w.requireRefused("plain", "host=192.0.2.10 dbname=x user=u sslmode=disable", "sources.allow_unencrypted");
    w.requireRefused("plain-allow", "host=192.0.2.10 dbname=x user=u sslmode=allow", "sources.allow_unencrypted");
    // Keywords that make the gateway read its own files.
    w.requireRefused("passfile", "host=192.0.2.10 dbname=x passfile=/etc/shadow", "conninfo.keywords");
    w.requireRefused("service", "service=gateway dbname=x", "conninfo.keywords");
    w.requireRefused("rootcert", "host=192.0.2.10 dbname=x sslrootcert=/etc/custodian/master.key",
                     "sources.ssl_root_cert_dir");
    // The listed socket directory reaches the agency: allowed.
    CHECK(w.call("PUT", "/v1/sources/agency", w.publisher, sourceBody(withUser(viaSocket(w.cluster, w.agency.name()))))
              .status == 201);
}

TEST_CASE("an extract from a stored source that the rules now refuse is refused before anything is read",
          "[integration][sources]") {
    // Registered while 127.0.0.1 was allowed; a second gateway on the same database (same keys)
    // runs with a configuration that no longer lists it.
    IsolationWorld w({"127.0.0.1"});
    REQUIRE(
        w.call("PUT", "/v1/sources/health-db", w.publisher, sourceBody(withUser(viaTcp(w.cluster, w.agency.name()))))
            .status == 201);
    REQUIRE(w.call("PUT", "/v1/datasets/visits", w.publisher, visitsDatasetJson("health-db")).status == 201);
    REQUIRE(w.call("PUT", "/v1/datasets/visits/policies/research", w.publisher,
                   visitsPolicyJson(R"({"k": 2, "suppression_limit": 0.5})"))
                .status < 300);
    const std::string extract = R"({"dataset":"visits","policy":"research","purpose":"research"})";
    REQUIRE(w.call("POST", "/v1/extracts", w.partner, extract).status == 200);

    testing::GatewayOptions options;
    const config::GatewayConfig& first = w.gw->config();
    options.adjustConfig = [&first](config::GatewayConfig& c) {
        c.signingKeyFile = first.signingKeyFile;
        c.masterKeyFile = first.masterKeyFile;
        c.sources = {};
        REQUIRE(config::addAllowedHost("10.0.0.0/8", "test", c.sources.allowedHosts));
    };
    testing::RunningGateway tightened(w.gatewayDb.conninfo(), options);
    auto r =
        testing::httpRequest(tightened.port(), "POST", "/v1/extracts",
                             {{"Authorization", "Bearer " + w.partner}, {"Content-Type", "application/json"}}, extract);
    INFO(r.body);
    CHECK(r.status == 422);
    CHECK(r.body.find("sources.allowed_hosts") != std::string::npos);
    pqxx::connection conn(w.gatewayDb.conninfo());
    pqxx::read_transaction tx(conn);
    CHECK(tx.exec("SELECT count(*) FROM audit_entries WHERE action = 'extract.aborted' AND "
                  "convert_from(entry, 'UTF8') LIKE '%\"rule\":\"sources.allowed_hosts\"%'")[0][0]
              .as<int64_t>() == 1);
}
