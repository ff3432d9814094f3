#include <catch2/catch.hpp>

#include <string>

#include "gateway/config/config.hpp"

using custodian::StatusCode;
using custodian::config::parseConfig;

namespace {

const std::string kMinimal = R"({
  "listen": {"address": "127.0.0.1", "port": 8080},
  "database": {"conninfo": "host=/tmp dbname=custodian"},
  "keys": {"signing_key_file": "var/gateway.key", "master_key_file": "var/master.key"}
})";

// Replaces the first occurrence of `from` in the minimal config.
std::string edit(const std::string& from, const std::string& to, std::string base = kMinimal) {
    auto at = base.find(from);
    REQUIRE(at != std::string::npos);
    return base.replace(at, from.size(), to);
}

std::string errorOf(const std::string& json) {
    auto c = parseConfig(json, "/etc/custodian");
    REQUIRE_FALSE(c.isOk());
    CHECK(c.status().code() == StatusCode::InvalidArgument);
    return c.status().message();
}

}  // namespace

TEST_CASE("a minimal configuration gets documented defaults and absolute paths", "[config]") {
    auto c = parseConfig(kMinimal, "/etc/custodian");
    REQUIRE(c.isOk());
    CHECK(c->listen.port == 8080);
    CHECK(c->threads == 2);
    CHECK(c->maxBodyBytes == 1024 * 1024);
    CHECK(c->database.poolSize == 4);
    CHECK_FALSE(c->tls.has_value());
    CHECK_FALSE(c->metricsListen.has_value());
    CHECK(c->signingKeyFile == "/etc/custodian/var/gateway.key");
    CHECK(c->masterKeyFile == "/etc/custodian/var/master.key");
    CHECK(c->shutdownDeadline.count() == 30000);
}

TEST_CASE("every optional section is read", "[config]") {
    auto c = parseConfig(R"({
      "listen": {"address": "0.0.0.0", "port": 0},
      "threads": 4,
      "tls": {"cert_file": "/pki/cert.pem", "key_file": "key.pem"},
      "database": {"conninfo": "x", "owner_conninfo": "y", "pool_size": 9, "connect_timeout_s": 3,
                   "acquire_timeout_ms": 700, "migrations_dir": "/opt/migrations"},
      "keys": {"signing_key_file": "/k/s", "master_key_file": "/k/m"},
      "timeouts": {"header_ms": 1000, "body_ms": 2000, "idle_ms": 3000, "write_ms": 4000},
      "limits": {"max_body_bytes": 10, "max_header_bytes": 2048},
      "shutdown": {"deadline_ms": 500},
      "metrics": {"listen": {"address": "127.0.0.1", "port": 9100}},
      "readiness": {"probe_interval_ms": 250},
      "log": {"access_log": false}
    })",
                         "/etc/custodian");
    REQUIRE(c.isOk());
    CHECK(c->threads == 4);
    REQUIRE(c->tls.has_value());
    CHECK(c->tls->keyFile == "/etc/custodian/key.pem");
    CHECK(c->database.poolSize == 9);
    CHECK(c->database.ownerConninfo == "y");
    CHECK(c->database.acquireTimeout.count() == 700);
    CHECK(c->database.migrationsDir == "/opt/migrations");
    CHECK(c->timeouts.header.count() == 1000);
    CHECK(c->timeouts.idle.count() == 3000);
    CHECK(c->maxBodyBytes == 10);
    CHECK(c->shutdownDeadline.count() == 500);
    REQUIRE(c->metricsListen.has_value());
    CHECK(c->metricsListen->port == 9100);
    CHECK(c->readinessInterval.count() == 250);
    CHECK_FALSE(c->accessLog);
}

TEST_CASE("configuration errors name the bad field", "[config]") {
    CHECK(errorOf("{").find("invalid JSON") != std::string::npos);
    CHECK(errorOf("[]").find("JSON object") != std::string::npos);
    CHECK(errorOf(edit(R"("port": 8080)", R"("port": 70000)")).rfind("listen.port: must be between 0 and 65535", 0) ==
          0);
    CHECK(errorOf(edit(R"("port": 8080)", R"("port": "80")")).rfind("listen.port: must be an integer", 0) == 0);
    CHECK(errorOf(edit(R"("address": "127.0.0.1", )", R"("address": 7, )"))
              .rfind("listen.address: must be a string", 0) == 0);
    CHECK(errorOf(edit(R"("conninfo": "host=/tmp dbname=custodian")", R"("conninfo": "")"))
              .rfind("database.conninfo: must not be empty", 0) == 0);
    CHECK(errorOf(edit(R"("conninfo": "host=/tmp dbname=custodian")", R"("conninfo": "x", "pool_size": 0)"))
              .rfind("database.pool_size:", 0) == 0);
    CHECK(errorOf(edit(R"("conninfo": "host=/tmp dbname=custodian")", R"("conninfo": "x", "pool": 3)"))
              .rfind("database.pool: unknown field", 0) == 0);
    CHECK(errorOf(edit(R"("master_key_file": "var/master.key")", R"("master_key_file": 3)"))
              .rfind("keys.master_key_file: must be a string", 0) == 0);
    CHECK(errorOf(edit(R"("master_key_file": "var/master.key")", R"("master_key_file": "var/gateway.key")"))
              .rfind("keys.master_key_file: must differ", 0) == 0);
    CHECK(errorOf(edit("{", R"({"threads": 0,)")).rfind("threads:", 0) == 0);
    CHECK(errorOf(edit("{", R"({"thread": 2,)")).rfind("thread: unknown field", 0) == 0);
    CHECK(errorOf(edit("{", R"({"tls": {"cert_file": "c.pem"},)")).rfind("tls.key_file: is required", 0) == 0);
    CHECK(errorOf(edit("{", R"({"timeouts": {"header_ms": 0},)")).rfind("timeouts.header_ms:", 0) == 0);
    CHECK(errorOf(edit("{", R"({"limits": {"max_body_bytes": -1},)")).rfind("limits.max_body_bytes:", 0) == 0);
    CHECK(errorOf(edit("{", R"({"shutdown": {"deadline": 5},)")).rfind("shutdown.deadline: unknown field", 0) == 0);
    CHECK(errorOf(edit("{", R"({"metrics": {"listen": {"address": "127.0.0.1"}},)"))
              .rfind("metrics.listen.port: is required", 0) == 0);
    CHECK(errorOf(edit("{", R"({"metrics": {"listen": {"address": "127.0.0.1", "port": 8080}},)"))
              .rfind("metrics.listen.port: must differ", 0) == 0);
    CHECK(errorOf(edit("{", R"({"log": {"access_log": "yes"},)")).rfind("log.access_log: must be true or false", 0) ==
          0);
    CHECK(errorOf(R"({"listen": {"address": "127.0.0.1", "port": 1}, "keys": {}})").rfind("database: is required", 0) ==
          0);
}

TEST_CASE("the API listener defaults to loopback and refuses plain HTTP elsewhere unless behind a TLS proxy",
          "[config][security]") {
    auto c = parseConfig(edit(R"("address": "127.0.0.1", )", ""), "/etc/custodian");
    REQUIRE(c.isOk());
    CHECK(c->listen.address == "127.0.0.1");
    CHECK_FALSE(c->listen.behindTlsProxy);
    for (const char* address : {"0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "fe80::1", "128.0.0.1", "127.0.0",
                                "127.0.0.1.5", "127.0.0.256"}) {
        INFO(address);
        const std::string config = edit(R"("address": "127.0.0.1")", std::string(R"("address": ")") + address + "\"");
        CHECK(errorOf(config).rfind(std::string("listen.address: ") + address +
                                        " is reachable from other hosts and no tls section is configured",
                                    0) == 0);
        auto proxied = parseConfig(edit(R"("address": "127.0.0.1")",
                                        std::string(R"("address": ")") + address + R"(", "behind_tls_proxy": true)"),
                                   "/etc/custodian");
        REQUIRE(proxied.isOk());
        CHECK(proxied->listen.behindTlsProxy);
        auto tls = parseConfig(std::string(config).replace(0, 1, R"({"tls": {"cert_file": "c", "key_file": "k"},)"),
                               "/etc/custodian");
        CHECK(tls.isOk());
    }
    for (const char* address : {"127.0.0.1", "127.3.2.1", "::1", "localhost"}) {
        INFO(address);
        CHECK(parseConfig(edit(R"("address": "127.0.0.1")", std::string(R"("address": ")") + address + "\""),
                          "/etc/custodian")
                  .isOk());
    }
    CHECK(errorOf(edit(R"("address": "127.0.0.1")", R"("address": "0.0.0.0", "behind_tls_proxy": true)")
                      .replace(0, 1, R"({"tls": {"cert_file": "c", "key_file": "k"},)"))
              .rfind("listen.behind_tls_proxy: must not be set together with tls", 0) == 0);
    CHECK(errorOf(edit("{", R"({"metrics": {"listen": {"port": 9100, "behind_tls_proxy": true}},)"))
              .rfind("metrics.listen.behind_tls_proxy: unknown field", 0) == 0);
}

TEST_CASE("loadConfig prefixes errors with the file", "[config]") {
    auto c = custodian::config::loadConfig("/nonexistent/custodian.json");
    REQUIRE_FALSE(c.isOk());
    CHECK(c.status().message().find("/nonexistent/custodian.json") != std::string::npos);
}

TEST_CASE("console.directory is resolved against the configuration's folder", "[config]") {
    auto builtIn = parseConfig(kMinimal, "/etc/custodian");
    REQUIRE(builtIn.isOk());
    CHECK(builtIn->consoleDirectory.empty());
    auto own =
        parseConfig(edit("\"listen\"", R"("console": {"directory": "web/console"}, "listen")"), "/etc/custodian");
    REQUIRE(own.isOk());
    CHECK(own->consoleDirectory == "/etc/custodian/web/console");
    CHECK(errorOf(edit("\"listen\"", R"("console": {"folder": "x"}, "listen")")).find("console.folder") !=
          std::string::npos);
    CHECK(errorOf(edit("\"listen\"", R"("console": "x", "listen")")).find("console") != std::string::npos);
}
