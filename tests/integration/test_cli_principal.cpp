// The `custodian` binary: migrate and principal add/disable/list against a real database, and the
// token it prints working (then not working) against a server.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <stdio.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

struct CommandResult {
    int exitCode;
    std::string out;
};

CommandResult run(const std::string& args) {
    std::string cmd = std::string(CUSTODIAN_BINARY) + " " + args + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string lastLine(const std::string& text) {
    std::string t = text;
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t.substr(t.find_last_of('\n') + 1);
}

}  // namespace

TEST_CASE("custodian migrate and principal add/disable/list", "[integration][cli]") {
    auto db = TestDatabase::create();
    char tmpl[] = "/tmp/custodian-cli-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    std::string configPath = dir + "/custodian.json";
    std::ofstream(configPath) << R"({"listen": {"address": "127.0.0.1", "port": 0},
      "database": {"conninfo": ")"
                              << db.conninfo() << R"(", "migrations_dir": ")" CUSTODIAN_SOURCE_DIR R"(/migrations"},
      "keys": {"signing_key_file": "gateway.key", "master_key_file": "master.key"}})";

    auto migrate = run("migrate --config " + configPath);
    REQUIRE(migrate.exitCode == 0);
    CHECK(migrate.out.find("applied 0001_core.sql") != std::string::npos);
    auto again = run("migrate --config " + configPath);
    CHECK(again.exitCode == 0);
    CHECK(again.out.find("schema is current") != std::string::npos);

    CHECK(run("principal --help").exitCode == 0);
    CHECK(run("principal add --config " + configPath + " --role wizard --name x").exitCode == 2);
    CHECK(run("principal add --config " + configPath + " --role partner --name nokey").exitCode == 2);

    auto added = run("principal add --config " + configPath + " --role auditor --name carol --agency Stats");
    REQUIRE(added.exitCode == 0);
    std::string token = lastLine(added.out);
    CHECK(token.rfind("cus_", 0) == 0);
    CHECK(run("principal add --config " + configPath + " --role auditor --name carol").exitCode == 1);  // taken

    std::ofstream(dir + "/partner.pub") << "custodian-x25519-public:" << std::string(43, 'A') << "=\n";
    CHECK(
        run("principal add --config " + configPath + " --role partner --name pia --public-key " + dir + "/partner.pub")
            .exitCode == 0);

    {
        pqxx::connection conn(db.conninfo());
        pqxx::work tx(conn);
        tx.exec("INSERT INTO principal_groups (name, created_by) VALUES ('epi', 'test'), ('census', 'test')");
        tx.exec("INSERT INTO principal_group_members (group_name, principal_id, added_by) "
                "SELECT g, id, 'test' FROM principals, unnest(ARRAY['census', 'epi']) AS g WHERE name = 'pia'");
        tx.commit();
    }
    auto list = run("principal list --config " + configPath);
    CHECK(list.exitCode == 0);
    CHECK(list.out.find("GROUPS") != std::string::npos);
    CHECK(list.out.find("census,epi") != std::string::npos);  // pia's recipient groups
    CHECK(list.out.find("carol") != std::string::npos);
    CHECK(list.out.find("Stats") != std::string::npos);
    CHECK(list.out.find("x25519") != std::string::npos);
    CHECK(list.out.find(token) == std::string::npos);  // tokens are never shown again

    // The printed token authenticates against a gateway sharing the master key file.
    GatewayOptions options;
    options.extraRoutes = {{"GET", "/test/whoami", api::Access::only({auth::Role::Auditor}),
                            [](api::RequestContext& ctx) -> Result<http::HttpResponse> {
                                return http::HttpResponse::text(200, ctx.principal->name);
                            },
                            false, "test.whoami"}};
    options.adjustConfig = [&](config::GatewayConfig& c) {
        c.masterKeyFile = dir + "/master.key";
        c.signingKeyFile = dir + "/gateway.key";
    };
    RunningGateway gw(db.conninfo(), options);
    std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + token}};
    auto who = httpRequest(gw.port(), "GET", "/test/whoami", auth);
    CHECK(who.status == 200);
    CHECK(who.body == "carol");

    CHECK(run("principal disable --config " + configPath + " --name carol").exitCode == 0);
    CHECK(httpRequest(gw.port(), "GET", "/test/whoami", auth).status == 401);
    CHECK(run("principal disable --config " + configPath + " --name nobody").exitCode == 1);
    std::filesystem::remove_all(dir);
}
