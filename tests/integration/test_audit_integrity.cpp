// The gateway notices when its audit log is altered behind its back (issue 15, point 2): a superuser
// who disables the append-only triggers and rewrites a row — its bytes, or its bytes and its leaf
// hash — is found by the start-up check of a gateway started on the altered table and by the
// background check of a running one. Either way the gateway fails closed: /readyz 503, every
// audited request 503 `audit_log_untrusted`, no tree head signed, one log line naming the first bad
// index, and the metrics say so.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/audit/integrity.hpp"
#include "json/canonical.hpp"
#include "gateway/http/message.hpp"
#include "serve_process.hpp"
#include "support/wait_for.hpp"
#include "test_audit_harness.hpp"
#include "json/writer.hpp"

using namespace custodian;
using namespace custodian::testing;
using namespace std::chrono_literals;

namespace {

crypto::SigningKey testKey() {
    std::array<uint8_t, 32> seed{};
    seed.fill(9);
    return std::move(crypto::SigningKey::fromSeed(seed)).value();
}

int64_t count(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    return tx.exec(sql)[0][0].as<int64_t>();
}

// What the attacker did: a superuser disables the append-only triggers, rewrites, and
// enables them again.
void tamper(const AuditDatabase& db, const std::string& sql) {
    runPsql(db.adminConninfo(), "ALTER TABLE audit_entries DISABLE TRIGGER USER; "
                                "ALTER TABLE audit_tree_heads DISABLE TRIGGER USER; " +
                                    sql +
                                    "; ALTER TABLE audit_entries ENABLE TRIGGER USER; "
                                    "ALTER TABLE audit_tree_heads ENABLE TRIGGER USER;");
}

// Trial 1: an entry's bytes rewritten (its recorded leaf hash left alone).
std::string rewriteBytes(uint64_t index) {
    return "UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"allowed\"', "
           "'\"denied\"'), 'UTF8') WHERE entry_index = " +
           std::to_string(index);
}

// Trial 2: the bytes and the leaf hash rewritten, so that the row is consistent in itself.
std::string rewriteBytesAndLeafHash(uint64_t index) {
    return rewriteBytes(index) + "; UPDATE audit_entries SET leaf_hash = sha256('\\x00'::bytea || entry) WHERE " +
           "entry_index = " + std::to_string(index);
}

// Log messages of an AuditLog, collected.
struct Messages {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::function<void(const std::string&)> sink() {
        return [this](const std::string& line) {
            std::lock_guard lock(mutex);
            lines.push_back(line);
        };
    }
    std::string all() {
        std::lock_guard lock(mutex);
        std::string out;
        for (const auto& l : lines) out += l + "\n";
        return out;
    }
    size_t countContaining(const std::string& text) {
        std::lock_guard lock(mutex);
        size_t n = 0;
        for (const auto& l : lines) n += l.find(text) != std::string::npos ? 1 : 0;
        return n;
    }
};

audit::AuditLogOptions options(const AuditDatabase& db, Messages& messages) {
    audit::AuditLogOptions o;
    o.conninfo = db.gatewayConninfo();
    o.treeHeadEveryEntries = 1000000;  // heads only when a test asks for one
    o.treeHeadInterval = std::chrono::hours(1);
    o.integrityCheckInterval = std::chrono::hours(1);  // background checks only when a test asks
    o.logMessage = messages.sink();
    return o;
}

// n entries, a signed head after every `headEvery`.
void fill(audit::AuditLog& log, int n, int headEvery) {
    for (int i = 0; i < n; ++i) {
        REQUIRE(log.append(testEntry("partner-" + std::to_string(i % 3), "extract.requested", "patients")));
        if ((i + 1) % headEvery == 0) REQUIRE(log.signTreeHead());
    }
}

std::string errorCode(const HttpResult& r) {
    auto json = json::parseJson(r.body);
    if (!json || !json->isObject()) return "";
    const auto* error = json->find("error");
    if (error == nullptr || !error->isObject()) return "";
    const auto* code = error->find("code");
    return code != nullptr && code->isString() ? code->asString() : "";
}

// The value of an unlabelled metric in a Prometheus text page, or -1.
double metric(const std::string& page, const std::string& name) {
    size_t pos = 0;
    while ((pos = page.find(name + " ", pos)) != std::string::npos) {
        if (pos == 0 || page[pos - 1] == '\n') return std::stod(page.substr(pos + name.size() + 1));
        pos += name.size();
    }
    return -1;
}

}  // namespace

// --- the start-up check ------------------------------------------------------------------

TEST_CASE("the start-up check re-hashes every stored entry and compares the tree with every signed head",
          "[integration][audit][integrity]") {
    AuditDatabase db;
    auto key = testKey();
    Messages messages;
    {
        audit::AuditLog log(options(db, messages), key);
        fill(log, 40, 4);
    }
    Messages restart;
    audit::AuditLog log(options(db, restart), key);
    auto status = log.awaitStartCheck(30s);
    INFO(restart.all());
    REQUIRE(status.state == audit::IntegrityState::Trusted);
    auto stats = log.stats();
    CHECK(stats.integrityChecks == 1);
    CHECK(stats.integrityCheckedEntries == 40);
    CHECK(stats.integrityFailures == 0);
    CHECK(restart.countContaining("audit log checked at start: 40 entries") == 1);
    CHECK(restart.countContaining("10 signed tree heads verified") == 1);
    REQUIRE(log.append(testEntry("a", "test.append")));
    CHECK(log.signTreeHead());
}

TEST_CASE("a log started on an altered table is untrusted: nothing appended or signed, and it says where",
          "[integration][audit][integrity]") {
    AuditDatabase db;
    auto key = testKey();
    Messages first;
    {
        audit::AuditLog log(options(db, first), key);
        fill(log, 40, 4);  // heads at 4, 8, …, 40
    }
    std::string expected;
    bool exact = true;
    SECTION("trial 1: an entry's bytes rewritten: that entry, exactly") {
        tamper(db, rewriteBytes(9));
        expected = "first bad entry index 9";
    }
    SECTION("trial 2: an entry's bytes and leaf hash rewritten: between the heads around it") {
        tamper(db, rewriteBytesAndLeafHash(9));
        expected = "first bad entry in [8, 12)";
        exact = false;
    }
    SECTION("an entry deleted") {
        tamper(db, "DELETE FROM audit_entries WHERE entry_index = 17");
        expected = "first bad entry index 17";
    }
    SECTION("the tail deleted (the heads that covered it kept)") {
        tamper(db, "DELETE FROM audit_entries WHERE entry_index >= 30");
        expected = "first bad entry index 30";
    }
    SECTION("the tail and its heads deleted: the counter still knows") {
        tamper(db, "DELETE FROM audit_entries WHERE entry_index >= 30; DELETE FROM audit_tree_heads WHERE "
                   "tree_size > 30");
        expected = "first bad entry index 30";
    }
    SECTION("a forged tree head") {
        tamper(db, "UPDATE audit_tree_heads SET timestamp_ms = timestamp_ms + 1 WHERE tree_size = 20");
        expected = "first bad entry in [16, 20)";
        exact = false;
    }
    const int64_t heads = count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads");
    const int64_t entries = count(db.adminConninfo(), "SELECT count(*) FROM audit_entries");

    Messages messages;
    audit::AuditLog log(options(db, messages), key);
    auto status = log.awaitStartCheck(30s);
    INFO(messages.all());
    INFO(status.message);
    REQUIRE(status.state == audit::IntegrityState::Untrusted);
    REQUIRE(status.failure);
    CHECK(status.failure->exact() == exact);
    CHECK(status.message.find(expected) != std::string::npos);
    CHECK(status.message.find("found by the start-up check") != std::string::npos);
    // One log line names the first bad index.
    CHECK(messages.countContaining("AUDIT LOG UNTRUSTED") == 1);
    CHECK(messages.countContaining(expected) == 1);

    auto appended = log.append(testEntry("a", "test.append"));
    REQUIRE_FALSE(appended);
    CHECK(appended.status().code() == StatusCode::Unavailable);
    CHECK(appended.status().message().find(expected) != std::string::npos);
    auto signed_ = log.signTreeHead();
    REQUIRE_FALSE(signed_);
    CHECK(signed_.status().message().find("no tree head is signed over an untrusted audit log") != std::string::npos);
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads") == heads);
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == entries);
    auto stats = log.stats();
    CHECK(stats.integrity == audit::IntegrityState::Untrusted);
    CHECK(stats.integrityFailures >= 1);
    CHECK(stats.treeHeadFailures >= 1);
    REQUIRE(stats.firstBadIndex);
    CHECK(*stats.firstBadIndex == status.failure->firstBadIndex);
}

TEST_CASE("the start-up check waits for the database and appends wait for it", "[integration][audit][integrity]") {
    auto key = testKey();
    Messages messages;
    audit::AuditLogOptions o;
    o.conninfo = "host=127.0.0.1 port=" + std::to_string(freeTcpPort()) + " dbname=none connect_timeout=2";
    o.logMessage = messages.sink();
    audit::AuditLog log(o, key);
    auto status = log.awaitStartCheck(10s);
    CHECK(status.state == audit::IntegrityState::Checking);
    CHECK(status.message.find("could not run") != std::string::npos);
    auto r = log.append(testEntry("a", "test.append"));
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == StatusCode::Unavailable);
    CHECK(r.status().message().find("start-up integrity check") != std::string::npos);
    // The check that could not run is logged once, however often it is retried, and counted.
    CHECK(waitFor([&] { return log.stats().integrityCheckErrors >= 3; }, 30s));
    CHECK(messages.countContaining("audit log integrity check could not run") == 1);
    CHECK(log.stats().integrityCheckErrors >= 2);
}

// --- the background check ----------------------------------------------------------------

TEST_CASE("a running log finds an entry rewritten behind its back at the next background check",
          "[integration][audit][integrity]") {
    AuditDatabase db;
    auto key = testKey();
    Messages messages;
    auto o = options(db, messages);
    o.merkleBlockLevel = 3;          // blocks of 8 entries: 35 entries make 4 complete blocks + 3
    o.integrityRecheckBlocks = 100;  // every older block on every run
    audit::AuditLog log(o, key);
    REQUIRE(log.awaitStartCheck(30s).state == audit::IntegrityState::Trusted);
    fill(log, 35, 5);
    REQUIRE(log.checkIntegrityNow());  // checks the blocks completed so far: intact
    REQUIRE(log.integrity().state == audit::IntegrityState::Trusted);
    const int64_t heads = count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads");

    std::string expected;
    SECTION("trial 1 in the current block: exact") {
        tamper(db, rewriteBytes(33));
        expected = "first bad entry index 33";
    }
    SECTION("trial 2 in the current block: exact (the tree holds that block's leaf hashes)") {
        tamper(db, rewriteBytesAndLeafHash(33));
        expected = "first bad entry index 33";
    }
    SECTION("trial 1 in an old block: exact") {
        tamper(db, rewriteBytes(10));
        expected = "first bad entry index 10";
    }
    SECTION("trial 2 in an old block: the block") {
        tamper(db, rewriteBytesAndLeafHash(10));
        expected = "first bad entry in [8, 16)";
    }
    REQUIRE(log.checkIntegrityNow());
    auto status = log.integrity();
    INFO(messages.all());
    REQUIRE(status.state == audit::IntegrityState::Untrusted);
    CHECK(status.message.find(expected) != std::string::npos);
    CHECK(status.message.find("found by the background check") != std::string::npos);
    CHECK(messages.countContaining("AUDIT LOG UNTRUSTED") == 1);
    CHECK(messages.countContaining(expected) == 1);
    CHECK_FALSE(log.append(testEntry("a", "test.append")));
    CHECK_FALSE(log.signTreeHead());
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads") == heads);
}

TEST_CASE("a stored leaf hash read back for a proof that no longer matches makes the log untrusted",
          "[integration][audit][integrity]") {
    AuditDatabase db;
    auto key = testKey();
    Messages messages;
    auto o = options(db, messages);
    o.merkleBlockLevel = 3;
    audit::AuditLog log(o, key);
    fill(log, 40, 40);
    runPsql(db.adminConninfo(), "ALTER TABLE audit_entries DISABLE TRIGGER USER; "
                                "UPDATE audit_entries SET leaf_hash = sha256(leaf_hash) WHERE entry_index = 5; "
                                "ALTER TABLE audit_entries ENABLE TRIGGER USER");
    REQUIRE_FALSE(log.inclusionProof(5, 40));
    auto status = log.integrity();
    REQUIRE(status.state == audit::IntegrityState::Untrusted);
    CHECK(status.message.find("first bad entry in [0, 8)") != std::string::npos);
    CHECK_FALSE(log.signTreeHead());
}

// --- the gateway, as `custodian serve` ---------------------------------------------------

namespace {

// A directory with the gateway's keys, principals in the database and a config for `serve`.
struct ServeSetup {
    AuditDatabase& db;
    std::filesystem::path dir = freshTempDir("custodian-integrity");
    std::string auditor, partner;
    uint16_t port = 0;  // the serve's, after started(): it binds port 0 and logs the port it got
    std::string config = (dir / "gateway.json").string();
    std::string logFile = (dir / "gateway.log").string();

    explicit ServeSetup(AuditDatabase& database) : db(database) {
        const std::string signingKeyFile = (dir / "gateway-signing.key").string();
        const std::string masterKeyFile = (dir / "gateway-master.key").string();
        REQUIRE(crypto::SigningKey::loadOrCreate(signingKeyFile));
        auto hasher = auth::TokenHasher::loadOrCreate(masterKeyFile);
        REQUIRE(hasher);
        pqxx::connection conn(db.gatewayConninfo());
        auth::NewPrincipal a{"auditor-ada", auth::Role::Auditor, "", std::nullopt};
        auth::NewPrincipal p{"partner-pat", auth::Role::Partner, "", std::nullopt};
        auditor = *auth::addPrincipal(conn, *hasher, a);
        partner = *auth::addPrincipal(conn, *hasher, p);
        writeTextFile(config, "{\"listen\":{\"address\":\"127.0.0.1\",\"port\":0},\"database\":{\"conninfo\":" +
                                  json::quoted(db.gatewayConninfo()) +
                                  ",\"pool_size\":4},\"keys\":{\"signing_key_file\":" + json::quoted(signingKeyFile) +
                                  ",\"master_key_file\":" + json::quoted(masterKeyFile) +
                                  "},\"log\":{\"access_log\":false},\"readiness\":{\"probe_interval_ms\":200},"
                                  "\"audit\":{\"tree_head_every_entries\":5,\"tree_head_interval_ms\":200,"
                                  "\"integrity_check_interval_ms\":200}}");
    }
    ~ServeSetup() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    // Learns the port of a serve started with this setup (its log file fresh) and waits until the
    // server answers; false if it did not start listening within `limit`.
    bool started(std::chrono::milliseconds limit) {
        port = waitListeningPort(logFile, limit);
        return port != 0;
    }
    HttpResult get(const std::string& target, const std::string& token = "") const {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
        return httpRequest(port, "GET", target, headers);
    }
};

// What a gateway whose log is untrusted must show, with `expected` naming the first bad index.
void requireFailsClosed(const ServeSetup& s, const std::string& expected) {
    INFO(readTextFile(s.logFile));
    auto ready = s.get("/readyz");
    INFO(ready.body);
    CHECK(ready.status == 503);
    CHECK(errorCode(ready) == "audit_log_untrusted");
    CHECK(ready.body.find(expected) != std::string::npos);
    // Audited requests: data, configuration and the auditor's own routes.
    for (const auto& [target, token] : {std::pair{std::string("/v1/audit/tree-head"), s.auditor},
                                        {std::string("/v1/audit/export"), s.auditor},
                                        {std::string("/v1/catalog"), s.partner},
                                        {std::string("/v1/audit"), s.partner},
                                        {std::string("/v1/sources"), std::string()}}) {
        auto r = s.get(target, token);
        INFO(target);
        CHECK(r.status == 503);
        CHECK(errorCode(r) == "audit_log_untrusted");
        CHECK(r.body.find(expected) != std::string::npos);
        CHECK(r.header("retry-after") == "1");
    }
    CHECK(s.get("/healthz").status == 200);
    CHECK(s.get("/v1/keys").status == 200);
    auto metrics = s.get("/metrics");
    CHECK(metric(metrics.body, "custodian_audit_log_trusted") == 0);
    CHECK(metric(metrics.body, "custodian_audit_integrity_failures_total") >= 1);
    CHECK(metric(metrics.body, "custodian_ready") == 0);
    // One log line names the first bad index.
    const std::string log = readTextFile(s.logFile);
    size_t lines = 0;
    for (size_t pos = 0; (pos = log.find("AUDIT LOG UNTRUSTED", pos)) != std::string::npos; ++pos) ++lines;
    CHECK(lines == 1);
    const size_t line = log.find("AUDIT LOG UNTRUSTED");
    REQUIRE(line != std::string::npos);
    CHECK(log.substr(line, log.find('\n', line) - line).find(expected) != std::string::npos);
}

// Waits until the signer has refused three more tree heads (it tries every 200 ms): several
// signing intervals have passed over the untrusted log.
bool signingRefusedSeveralTimes(const ServeSetup& s) {
    const auto refusals = [&] { return metric(s.get("/metrics").body, "custodian_audit_tree_head_failures_total"); };
    const double before = refusals();
    return waitFor([&] { return refusals() >= before + 3; }, 30s);
}

}  // namespace

TEST_CASE("a running gateway whose audit entry is rewritten fails closed within the background check",
          "[integration][audit][integrity][processes]") {
    AuditDatabase db;
    ServeSetup s(db);
    ServeProcess serve(s.config, s.logFile);
    REQUIRE(s.started(60s));
    REQUIRE(waitReady(s.port, 60s));
    for (int i = 0; i < 12; ++i) REQUIRE(s.get("/v1/audit/tree-head", s.auditor).status == 200);
    REQUIRE(waitFor([&] { return count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads") > 0; }, 10s));

    bool leafHashToo = false;
    SECTION("trial 1: the entry's bytes") {}
    SECTION("trial 2: the entry's bytes and its leaf hash") { leafHashToo = true; }
    tamper(db, leafHashToo ? rewriteBytesAndLeafHash(7) : rewriteBytes(7));
    const auto tampered = std::chrono::steady_clock::now();
    REQUIRE(waitFor([&] { return s.get("/readyz").status == 503; }, 10s));
    // Within a few background checks (every 200 ms).
    CHECK(std::chrono::steady_clock::now() - tampered < 5s);
    const int64_t heads = count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads");
    const int64_t entries = count(db.adminConninfo(), "SELECT count(*) FROM audit_entries");
    requireFailsClosed(s, "first bad entry index 7");
    // Several signing intervals later: no new head, nothing appended; the refusal to sign is logged.
    REQUIRE(signingRefusedSeveralTimes(s));
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads") == heads);
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == entries);
    CHECK(readTextFile(s.logFile).find(
              "audit tree head not signed: no tree head is signed over an untrusted audit log") != std::string::npos);
    CHECK(metric(s.get("/metrics").body, "custodian_audit_integrity_first_bad_index") == 7);
}

TEST_CASE("a gateway started on an altered audit table refuses to be ready or to sign, and says why",
          "[integration][audit][integrity][processes]") {
    AuditDatabase db;
    ServeSetup s(db);
    {
        ServeProcess serve(s.config, s.logFile);
        REQUIRE(s.started(60s));
        REQUIRE(waitReady(s.port, 60s));
        for (int i = 0; i < 20; ++i) REQUIRE(s.get("/v1/audit/tree-head", s.auditor).status == 200);
        REQUIRE(s.get("/v1/audit/export", s.auditor).status == 200);  // signs a head over everything
    }
    std::string expected;
    SECTION("trial 1: an entry's bytes") {
        tamper(db, rewriteBytes(12));
        expected = "first bad entry index 12";
    }
    SECTION("trial 2: an entry's bytes and its leaf hash") {
        tamper(db, rewriteBytesAndLeafHash(12));
        // Only the signed roots reveal it: between the last head that verifies and the first that does not.
        pqxx::connection conn(db.adminConninfo());
        pqxx::read_transaction tx(conn);
        const auto below = tx.exec("SELECT coalesce(max(tree_size), 0) FROM audit_tree_heads WHERE tree_size <= 12");
        const auto above = tx.exec("SELECT min(tree_size) FROM audit_tree_heads WHERE tree_size > 12");
        // When heads happen to have been signed at both 12 and 13, the range pins the entry.
        const auto lo = below[0][0].as<uint64_t>(), hi = above[0][0].as<uint64_t>();
        expected = hi == lo + 1 ? "first bad entry index " + std::to_string(lo)
                                : "first bad entry in [" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
    }
    const int64_t heads = count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads");
    const int64_t entries = count(db.adminConninfo(), "SELECT count(*) FROM audit_entries");
    std::remove(s.logFile.c_str());
    ServeProcess serve(s.config, s.logFile);
    REQUIRE(s.started(60s));
    REQUIRE(waitFor(
        [&] {
            try {
                return errorCode(s.get("/readyz")) == "audit_log_untrusted";
            } catch (const std::exception&) {
                return false;  // not listening yet
            }
        },
        60s));
    requireFailsClosed(s, expected);
    CHECK(readTextFile(s.logFile).find("found by the start-up check") != std::string::npos);
    REQUIRE(signingRefusedSeveralTimes(s));
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads") == heads);
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == entries);
    CHECK(serve.alive());
}

TEST_CASE("an export whose covering tree head cannot be signed fails with the reason", "[integration][audit]") {
    AuditDatabase db;
    config::AuditConfig audit;
    audit.lockTimeout = 300ms;
    AuditGateway gw(db, audit);
    REQUIRE(gw.get("/v1/audit/export", gw.auditorToken).status == 200);
    // Another session holds the signers' advisory lock: signing times out.
    pqxx::connection holder(db.adminConninfo());
    pqxx::nontransaction tx(holder);
    tx.exec("SELECT pg_advisory_lock(" + std::to_string(0x637573746f646961LL) + ")");
    auto r = gw.get("/v1/audit/export", gw.auditorToken);
    CHECK(r.status == 503);
    CHECK(r.body.find("lock") != std::string::npos);
    tx.exec("SELECT pg_advisory_unlock_all()");
    CHECK(gw.get("/v1/audit/export", gw.auditorToken).status == 200);
}

TEST_CASE("an integrity read that failed before the migrations ran does not poison the next check",
          "[integration][audit][integrity]") {
    // A gateway can reach its database before `custodian migrate` (or the readiness monitor) has
    // created the audit tables: the first check's query fails on the open connection, which must
    // not leave an aborted transaction behind for every later check.
    auto db = TestDatabase::create();
    audit::StoredEntryReader reader(db.conninfo());
    REQUIRE(reader.start().isOk());
    auto missing = reader.treeHeads();
    REQUIRE_FALSE(missing);
    CHECK(missing.status().message().find("audit_tree_heads") != std::string::npos);

    {
        pqxx::connection conn(db.conninfo());
        auto migrations = db::loadMigrations(std::string(CUSTODIAN_SOURCE_DIR) + "/migrations");
        REQUIRE(migrations.isOk());
        REQUIRE(db::applyMigrations(conn, *migrations).isOk());
    }
    REQUIRE(reader.start().isOk());
    auto heads = reader.treeHeads();
    REQUIRE(heads);
    CHECK(heads->empty());
    auto next = reader.nextIndex();
    REQUIRE(next);
    CHECK(*next == 0);
    reader.finish();
}
