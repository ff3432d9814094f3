// `custodian extract` (the partner client) against a real `custodian serve` process: download,
// decrypt, verify the signed manifest, write atomically; and on failure exit non-zero leaving no
// plaintext behind.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <pqxx/pqxx>

#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway/http/message.hpp"
#include "runtime_role.hpp"
#include "serve_process.hpp"
#include "support/http_client.hpp"
#include "test_extract_fixture.hpp"
#include "test_source_endpoints.hpp"
#include "json/writer.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Files in `dir` whose name starts with `prefix` (the output and any temporary file next to it).
size_t filesStartingWith(const std::filesystem::path& dir, const std::string& prefix) {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
    return n;
}

}  // namespace

TEST_CASE("custodian extract downloads, decrypts and verifies an extract from custodian serve",
          "[integration][extract][cli]") {
    TestDatabase gatewayDb = TestDatabase::create("extract_cli_gateway");
    TestDatabase agency = TestDatabase::create("extract_cli_agency");
    createVisitsTable(agency.conninfo(), 1500);
    char tmpl[] = "/tmp/custodian-extract-cli-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::filesystem::path dir = tmpl;
    const std::string masterKeyFile = (dir / "master.key").string();
    const std::string signingKeyFile = (dir / "gateway.key").string();
    auto hasher = auth::TokenHasher::loadOrCreate(masterKeyFile);
    REQUIRE(hasher);
    auto signingKey = crypto::SigningKey::loadOrCreate(signingKeyFile);
    REQUIRE(signingKey);

    // The partner's key pair, as `custodian keygen` writes it.
    auto partnerKey = crypto::BoxSecretKey::generate();
    REQUIRE(partnerKey);
    const std::string prefix = (dir / "partner").string();
    REQUIRE(crypto::writeBoxKeyPair(*partnerKey, prefix));
    auto otherKey = crypto::BoxSecretKey::generate();
    REQUIRE(crypto::writeBoxKeyPair(*otherKey, (dir / "other").string()));

    // Migrations first, as the owner role; they grant the runtime role that serve runs as.
    RuntimeRole runtime(gatewayDb);
    std::string publisher, partner;
    {
        const std::string config = (dir / "migrate.json").string();
        std::ofstream(config) << "{\"listen\":{\"address\":\"127.0.0.1\",\"port\":0},\"database\":{\"conninfo\":"
                              << json::quoted(runtime.conninfo())
                              << ",\"owner_conninfo\":" << json::quoted(gatewayDb.conninfo())
                              << "},\"keys\":{\"signing_key_file\":" << json::quoted(signingKeyFile)
                              << ",\"master_key_file\":" << json::quoted(masterKeyFile) << "}}";
        REQUIRE(runCommand({CUSTODIAN_BINARY, "migrate", "--config", config}, (dir / "migrate.log").string()) == 0);
        pqxx::connection conn(gatewayDb.conninfo());
        publisher = *auth::addPrincipal(conn, *hasher, {"pub-health", auth::Role::Publisher, "health", std::nullopt});
        partner = *auth::addPrincipal(conn, *hasher, {"partner-a", auth::Role::Partner, "", partnerKey->publicKey()});
    }
    const uint16_t port = static_cast<uint16_t>(freeTcpPort());
    const std::string config = (dir / "gateway.json").string();
    std::ofstream(config) << "{\"listen\":{\"address\":\"127.0.0.1\",\"port\":" << port
                          << "},\"database\":{\"conninfo\":" << json::quoted(runtime.conninfo())
                          << "},\"keys\":{\"signing_key_file\":" << json::quoted(signingKeyFile)
                          << ",\"master_key_file\":" << json::quoted(masterKeyFile)
                          << "},\"log\":{\"access_log\":false}," << testSourcesJson() << "}";
    ServeProcess serve(config, (dir / "gateway.log").string());
    INFO(readFile(dir / "gateway.log"));
    REQUIRE(waitReady(port, std::chrono::seconds(60)));

    auto call = [&](const std::string& method, const std::string& target, const std::string& body) {
        return httpRequest(port, method, target,
                           {{"Authorization", "Bearer " + publisher}, {"Content-Type", "application/json"}}, body);
    };
    REQUIRE(call("PUT", "/v1/sources/health-db",
                 "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}")
                .status < 300);
    REQUIRE(call("PUT", "/v1/datasets/visits", visitsDatasetJson("health-db")).status < 300);
    REQUIRE(
        call("PUT", "/v1/datasets/visits/policies/research", visitsPolicyJson(R"({"k": 5, "suppression_limit": 0.05})"))
            .status < 300);

    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    auto extract = [&](const std::string& keyFile, const std::string& out, const std::string& purpose,
                       const std::string& log) {
        return runCommand({CUSTODIAN_BINARY, "extract", "--url", url, "--token", partner, "--dataset", "visits",
                           "--policy", "research", "--purpose", purpose, "--key", keyFile, "--out", out,
                           "--manifest-out", out + ".manifest.json"},
                          log);
    };

    SECTION("success: a verified, k-anonymous file and its manifest") {
        const std::string out = (dir / "visits.csv").string();
        const int rc = extract(prefix + ".key", out, "research", (dir / "extract.log").string());
        INFO(readFile(dir / "extract.log"));
        REQUIRE(rc == 0);
        ParsedCsv csv = parseCsv(readFile(out));
        CHECK(csv.rows.size() >= 1400);
        CHECK(smallestGroup(csv, {"age", "sex", "zip"}) >= 5);
        CHECK((std::filesystem::status(out).permissions() & std::filesystem::perms::others_read) ==
              std::filesystem::perms::none);
        auto manifest = crypto::verifyManifest(readFile(out + ".manifest.json"), signingKey->publicKey());
        REQUIRE(manifest);
        CHECK(manifest->rowsReleased == csv.rows.size());
        CHECK(readFile(dir / "extract.log").find("verified against the signed manifest") != std::string::npos);
        CHECK(filesStartingWith(dir, "visits.csv") == 2);  // the file and its manifest, no temporary left
    }
    SECTION("a wrong key: exit 1, no plaintext left") {
        const std::string out = (dir / "wrong.csv").string();
        const int rc = extract((dir / "other.key").string(), out, "research", (dir / "wrong.log").string());
        INFO(readFile(dir / "wrong.log"));
        CHECK(rc == 1);
        CHECK(filesStartingWith(dir, "wrong.csv") == 0);
        CHECK(readFile(dir / "wrong.log").find("decrypting") != std::string::npos);
    }
    SECTION("a refused purpose: exit 1 with the gateway's reason, no file") {
        const std::string out = (dir / "refused.csv").string();
        const int rc = extract(prefix + ".key", out, "marketing", (dir / "refused.log").string());
        INFO(readFile(dir / "refused.log"));
        CHECK(rc == 1);
        CHECK(filesStartingWith(dir, "refused.csv") == 0);
        CHECK(readFile(dir / "refused.log").find("403") != std::string::npos);
        CHECK(readFile(dir / "refused.log").find("purpose") != std::string::npos);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}
