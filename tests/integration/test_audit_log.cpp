// The database-backed audit log: gapless concurrent appends, signed tree heads, the append-only
// triggers, and tampering in PostgreSQL found by the offline verifier at the right index.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "gateway/audit/proof_verify.hpp"
#include "gateway/audit/verifier.hpp"
#include "json/canonical.hpp"
#include "test_audit_harness.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

audit::AuditLogOptions logOptions(const AuditDatabase& db) {
    audit::AuditLogOptions o;
    o.conninfo = db.gatewayConninfo();
    o.treeHeadEveryEntries = 1000000;  // heads only when a test asks for one
    o.treeHeadInterval = std::chrono::hours(1);
    return o;
}

crypto::SigningKey testKey() {
    std::array<uint8_t, 32> seed{};
    seed.fill(7);
    return std::move(crypto::SigningKey::fromSeed(seed)).value();
}

int64_t count(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    return tx.exec(sql)[0][0].as<int64_t>();
}

void exec(const std::string& conninfo, const std::string& sql) {
    pqxx::connection conn(conninfo);
    pqxx::work tx(conn);
    tx.exec(sql);
    tx.commit();
}

std::string exportOf(AuditGateway& gw) {
    auto r = gw.get("/v1/audit/export", gw.auditorToken);
    REQUIRE(r.status == 200);
    REQUIRE(r.complete);
    REQUIRE(r.header("content-type") == "application/x-ndjson");
    return r.body;
}

// Canonical bytes of a forged entry claiming `index`, and its leaf hash.
std::pair<std::string, audit::Hash> forgedEntry(uint64_t index) {
    audit::AuditEntry e = testEntry("mallory", "extract.requested", "patients");
    e.index = index;
    e.timeMs = 1700000000000;
    std::string bytes = *audit::canonicalEntryBytes(e);
    return {bytes, audit::leafHash(crypto::asBytes(bytes))};
}

std::string bytea(crypto::ByteView b) { return "'\\x" + crypto::toHex(b) + "'::bytea"; }

}  // namespace

TEST_CASE("audit appends from many threads get indices 0..n-1 without gaps, committed before append returns",
          "[integration][audit]") {
    AuditDatabase db;
    auto key = testKey();
    audit::AuditLog log(logOptions(db), key);

    constexpr int kThreads = 8, kPerThread = 150;
    std::vector<std::vector<uint64_t>> indices(kThreads);
    std::atomic<int> notCommitted{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            pqxx::connection check(db.adminConninfo());
            for (int i = 0; i < kPerThread; ++i) {
                auto index = log.append(testEntry("actor-" + std::to_string(t), "test.append"));
                if (!index) {  // Catch2 assertions are not thread-safe: count, check after join
                    ++failures;
                    continue;
                }
                indices[t].push_back(*index);
                // Visible to another connection the moment append returned: it was committed.
                pqxx::read_transaction tx(check);
                if (tx.exec_params("SELECT count(*) FROM audit_entries WHERE entry_index = $1",
                                   static_cast<int64_t>(*index))[0][0]
                        .as<int>() != 1)
                    ++notCommitted;
            }
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(failures == 0);
    CHECK(notCommitted == 0);

    std::vector<uint64_t> all;
    for (auto& v : indices) {
        CHECK(std::is_sorted(v.begin(), v.end()));  // one caller's appends keep their order
        all.insert(all.end(), v.begin(), v.end());
    }
    std::sort(all.begin(), all.end());
    const uint64_t n = kThreads * kPerThread;
    REQUIRE(all.size() == n);
    for (uint64_t i = 0; i < n; ++i) REQUIRE(all[i] == i);
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == static_cast<int64_t>(n));
    CHECK(count(db.adminConninfo(), "SELECT next_index FROM audit_log_head") == static_cast<int64_t>(n));

    // Stored bytes carry their own index, and the stored leaf hash is the hash of those bytes.
    auto rows = log.entriesInRange(0, n);
    REQUIRE(rows);
    REQUIRE(rows->size() == n);
    audit::MerkleTree tree;
    for (const auto& row : *rows) {
        auto entry = audit::entryFromJson(*json::parseJson(row.canonicalBytes));
        REQUIRE(entry);
        CHECK(entry->index == row.index);
        CHECK(audit::leafHash(crypto::asBytes(row.canonicalBytes)) == row.leafHash);
        tree.append(row.leafHash);
    }
    auto head = log.signTreeHead();
    REQUIRE(head);
    CHECK(head->head.treeSize == n);
    CHECK(head->head.rootHash == tree.root());
    CHECK(audit::verifyTreeHead(*head, key.publicKey()));
}

TEST_CASE("several audit logs on one database (as several processes) append to one gapless sequence and sign "
          "heads that increase in size and time",
          "[integration][audit]") {
    AuditDatabase db;
    auto key = testKey();
    std::vector<std::unique_ptr<audit::AuditLog>> logs;
    for (int i = 0; i < 3; ++i) {
        auto o = logOptions(db);
        o.treeHeadEveryEntries = 25;  // heads signed concurrently by all three
        o.treeHeadInterval = std::chrono::milliseconds(100);
        logs.push_back(std::make_unique<audit::AuditLog>(o, key));
    }
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 100; ++i)
                if (!logs[static_cast<size_t>(t % 3)]->append(testEntry("p" + std::to_string(t), "test.append")))
                    ++failures;
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(failures == 0);
    for (auto& l : logs) REQUIRE(l->signTreeHead());
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == 600);
    CHECK(count(db.adminConninfo(), "SELECT max(entry_index) FROM audit_entries") == 599);

    // Every process's tree agrees, and the heads form one increasing, consistent chain.
    auto heads = logs[0]->treeHeads(UINT64_MAX);
    REQUIRE(heads);
    REQUIRE(!heads->empty());
    CHECK(heads->back().head.treeSize == 600);
    for (size_t i = 1; i < heads->size(); ++i) {
        CHECK((*heads)[i].head.treeSize > (*heads)[i - 1].head.treeSize);
        CHECK((*heads)[i].head.timestampMs >= (*heads)[i - 1].head.timestampMs);
    }
    for (auto& l : logs) {
        auto p = l->consistencyProof(heads->front().head.treeSize, 600);
        REQUIRE(p);
        CHECK(p->secondRoot == heads->back().head.rootHash);
        CHECK(audit::verifyConsistency(p->first, p->second, heads->front().head.rootHash, heads->back().head.rootHash,
                                       p->path));
    }
}

TEST_CASE("the audit tables reject UPDATE, DELETE and TRUNCATE from a normal connection, and from a superuser "
          "until the triggers are disabled",
          "[integration][audit]") {
    AuditDatabase db;
    auto key = testKey();
    {
        audit::AuditLog log(logOptions(db), key);
        for (int i = 0; i < 3; ++i) REQUIRE(log.append(testEntry("a", "test.append")));
        REQUIRE(log.signTreeHead());
    }
    for (const std::string& conninfo : {db.gatewayConninfo(), db.adminConninfo()}) {
        for (const char* sql : {"UPDATE audit_entries SET actor = 'x' WHERE entry_index = 1",
                                "DELETE FROM audit_entries WHERE entry_index = 2", "TRUNCATE audit_entries",
                                "UPDATE audit_tree_heads SET timestamp_ms = 0", "DELETE FROM audit_tree_heads",
                                "TRUNCATE audit_tree_heads"}) {
            INFO(sql << " as " << conninfo);
            CHECK_THROWS_AS(exec(conninfo, sql), pqxx::sql_error);
        }
    }
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_entries") == 3);
    CHECK(count(db.adminConninfo(), "SELECT count(*) FROM audit_tree_heads") == 1);
    // The counter may only move forwards, whoever asks.
    for (const std::string& conninfo : {db.gatewayConninfo(), db.adminConninfo()}) {
        CHECK_THROWS_AS(exec(conninfo, "DELETE FROM audit_log_head"), pqxx::sql_error);
        CHECK_THROWS_AS(exec(conninfo, "TRUNCATE audit_log_head"), pqxx::sql_error);
        CHECK_THROWS_AS(exec(conninfo, "UPDATE audit_log_head SET next_index = 1"), pqxx::sql_error);
    }
    CHECK(count(db.adminConninfo(), "SELECT next_index FROM audit_log_head") == 3);
}

TEST_CASE("tampering with the audit log in PostgreSQL is found by the verifier at the right index",
          "[integration][audit]") {
    AuditDatabase db;
    config::AuditConfig noBackgroundCheck;  // the gateway's own checks are test_audit_integrity.cpp's
    noBackgroundCheck.integrityCheckInterval = std::chrono::hours(1);
    AuditGateway gw(db, noBackgroundCheck);
    audit::AuditLog& log = gw.log();
    // 20 entries with a signed head after each one, so that even tampering only the signed roots
    // can reveal is pinned to one index.
    for (int i = 0; i < 20; ++i) {
        REQUIRE(log.append(testEntry("partner-" + std::to_string(i % 3), "extract.requested", "patients")));
        REQUIRE(log.signTreeHead());
    }
    const auto pk = gw.signingKey().publicKey();
    {
        auto clean = audit::verifyAuditExport(exportOf(gw), pk);
        INFO(clean.problem);
        REQUIRE(clean.ok);
        CHECK(clean.entries == 21);  // + the export's own entry
    }
    const std::string admin = db.adminConninfo();
    auto tamper = [&](const std::string& sql) {
        exec(admin,
             "ALTER TABLE audit_entries DISABLE TRIGGER USER; ALTER TABLE audit_tree_heads DISABLE TRIGGER USER; " +
                 sql +
                 "; ALTER TABLE audit_entries ENABLE TRIGGER USER; "
                 "ALTER TABLE audit_tree_heads ENABLE TRIGGER USER");
    };
    auto verify = [&] {
        auto r = audit::verifyAuditExport(exportOf(gw), pk);
        UNSCOPED_INFO(r.problem);
        return r;
    };

    SECTION("an entry's bytes modified: exact index from the recorded leaf hash") {
        tamper("UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'partner-1', "
               "'partner-9'), 'UTF8') WHERE entry_index = 7");
        auto r = verify();
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 7u);
        CHECK(r.exactIndex);
    }
    SECTION("an entry modified together with its leaf hash: the signed heads pin it") {
        tamper("UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'partner-1', "
               "'partner-9'), 'UTF8') WHERE entry_index = 7; "
               "UPDATE audit_entries SET leaf_hash = sha256('\\x00'::bytea || entry) WHERE entry_index = 7");
        auto r = verify();
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 7u);
        CHECK(r.badRangeEnd == 8u);
    }
    SECTION("an entry deleted") {
        tamper("DELETE FROM audit_entries WHERE entry_index = 11");
        auto r = verify();
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 11u);
        CHECK(r.exactIndex);
    }
    SECTION("an entry inserted (later rows renumbered)") {
        auto [bytes, leaf] = forgedEntry(5);
        tamper("UPDATE audit_entries SET entry_index = entry_index + 1000000 WHERE entry_index >= 5; "
               "UPDATE audit_entries SET entry_index = entry_index - 999999 WHERE entry_index >= 1000000; "
               "INSERT INTO audit_entries (entry_index, entry, leaf_hash, recorded_at, actor, role, action, dataset, "
               "decision) VALUES (5, " +
               bytea(crypto::asBytes(bytes)) + ", " + bytea(leaf) +
               ", now(), 'mallory', 'partner', 'extract.requested', 'patients', 'allowed'); "
               // a careful forger also moves the counter, or the next append would collide
               "UPDATE audit_log_head SET next_index = next_index + 1");
        auto r = verify();
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 5u);
        CHECK(r.badRangeEnd == 6u);
    }
    SECTION("two entries reordered") {
        tamper("UPDATE audit_entries SET entry_index = 1000003 WHERE entry_index = 3; "
               "UPDATE audit_entries SET entry_index = 3 WHERE entry_index = 4; "
               "UPDATE audit_entries SET entry_index = 4 WHERE entry_index = 1000003");
        auto r = verify();
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 3u);
        CHECK(r.exactIndex);
    }
    SECTION("the tail truncated, with the heads that covered it") {
        // Fetch the latest head first, as `audit verify --url` does, then truncate entries and heads.
        auto latest = log.latestTreeHead();
        REQUIRE(latest);
        tamper("DELETE FROM audit_entries WHERE entry_index >= 15; DELETE FROM audit_tree_heads WHERE tree_size > 15");
        audit::AuditVerifyOptions options;
        options.latestHead = *latest;
        auto r = audit::verifyAuditExport(exportOf(gw), pk, options);
        INFO(r.problem);
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 15u);
        CHECK(r.exactIndex);
    }
    SECTION("the tail truncated, heads kept") {
        tamper("DELETE FROM audit_entries WHERE entry_index >= 15");
        auto r = verify();
        REQUIRE_FALSE(r.ok);
        CHECK(r.firstBadIndex == 15u);
        CHECK(r.exactIndex);
    }
}

TEST_CASE("the audit log refuses to sign a head over a log that no longer matches an earlier head",
          "[integration][audit]") {
    AuditDatabase db;
    auto key = testKey();
    {
        audit::AuditLog log(logOptions(db), key);
        for (int i = 0; i < 6; ++i) REQUIRE(log.append(testEntry("a", "test.append")));
        REQUIRE(log.signTreeHead());
    }
    exec(db.adminConninfo(), "ALTER TABLE audit_entries DISABLE TRIGGER USER; "
                             "UPDATE audit_entries SET leaf_hash = sha256('forged'::bytea) WHERE entry_index = 2; "
                             "ALTER TABLE audit_entries ENABLE TRIGGER USER");
    // A log started on the tampered table: its start-up check finds entry 2, and it neither appends
    // nor signs.
    audit::AuditLog fresh(logOptions(db), key);
    auto appended = fresh.append(testEntry("a", "test.append"));
    REQUIRE_FALSE(appended);
    CHECK(appended.status().message().find("first bad entry index 2") != std::string::npos);
    auto head = fresh.signTreeHead();
    REQUIRE_FALSE(head);
    CHECK(head.status().message().find("no tree head is signed over an untrusted audit log") != std::string::npos);
}

TEST_CASE("a signer whose tree no longer gives the latest signed root refuses, and the log becomes untrusted",
          "[integration][audit]") {
    AuditDatabase db;
    auto key = testKey();
    audit::AuditLog late(logOptions(db), key);  // started (and checked) on the empty log
    REQUIRE(late.awaitStartCheck(std::chrono::seconds(30)).state == audit::IntegrityState::Trusted);
    audit::AuditLog writer(logOptions(db), key);
    for (int i = 0; i < 6; ++i) REQUIRE(writer.append(testEntry("a", "test.append")));
    // Rewritten before `late` caught up with it, consistently (bytes and leaf hash)…
    exec(db.adminConninfo(),
         "ALTER TABLE audit_entries DISABLE TRIGGER USER; "
         "UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"a\"', '\"b\"'), "
         "'UTF8') WHERE entry_index = 2; "
         "UPDATE audit_entries SET leaf_hash = sha256('\\x00'::bytea || entry) WHERE entry_index = 2; "
         "ALTER TABLE audit_entries ENABLE TRIGGER USER");
    REQUIRE(writer.signTreeHead());  // …after `writer` appended it: its head has the genuine root
    REQUIRE(writer.append(testEntry("a", "test.append")));
    auto head = late.signTreeHead();
    REQUIRE_FALSE(head);
    CHECK(head.status().message().find("does not match the signed tree head of size 6") != std::string::npos);
    auto integrity = late.integrity();
    CHECK(integrity.state == audit::IntegrityState::Untrusted);
    CHECK(integrity.message.find("found by the tree-head signer") != std::string::npos);
    CHECK_FALSE(late.append(testEntry("a", "test.append")));
}

TEST_CASE("audit append fails with Unavailable when the database is unreachable", "[integration][audit]") {
    auto key = testKey();
    audit::AuditLogOptions o;
    o.conninfo = "host=127.0.0.1 port=" + std::to_string(freeTcpPort()) + " dbname=none connect_timeout=2";
    audit::AuditLog log(o, key);
    auto r = log.append(testEntry("a", "test.append"));
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == StatusCode::Unavailable);
}

TEST_CASE("proofs over blocks the log no longer holds in memory are read back from PostgreSQL and checked",
          "[integration][audit][compact]") {
    AuditDatabase db;
    auto key = testKey();
    audit::AuditLogOptions options = logOptions(db);
    options.merkleBlockLevel = 3;  // blocks of 8 entries, so 100 entries make 12 older blocks
    audit::AuditLog log(options, key);
    for (int i = 0; i < 100; ++i) REQUIRE(log.append(testEntry("partner-" + std::to_string(i % 4), "test.append")));
    auto rows = log.entriesInRange(0, 100);
    REQUIRE(rows);
    std::vector<audit::Hash> leaves;
    for (const auto& row : *rows) leaves.push_back(row.leafHash);
    const audit::MerkleTree full(leaves);

    // Another process's log on the same database builds its compact tree by catching up.
    audit::AuditLog other(options, key);
    for (audit::AuditLog* l : {&log, &other}) {
        for (uint64_t n : {1u, 9u, 37u, 64u, 100u}) {
            for (uint64_t i = 0; i < n; i += 5) {
                auto p = l->inclusionProof(i, n);
                REQUIRE(p);
                CHECK(p->path == full.inclusionProof(i, n).value());
                CHECK(audit::verifyInclusion(i, n, leaves[i], p->path, full.rootAt(n).value()));
            }
            for (uint64_t first = 1; first <= n; first += 6) {
                auto c = l->consistencyProof(first, n);
                REQUIRE(c);
                CHECK(c->path == full.consistencyProof(first, n).value());
                CHECK(audit::verifyConsistency(first, n, full.rootAt(first).value(), full.rootAt(n).value(), c->path));
            }
        }
    }

    // A stored leaf hash altered behind the log's back: proofs through its block are refused.
    exec(db.adminConninfo(), "ALTER TABLE audit_entries DISABLE TRIGGER USER; "
                             "UPDATE audit_entries SET leaf_hash = sha256(leaf_hash) WHERE entry_index = 5; "
                             "ALTER TABLE audit_entries ENABLE TRIGGER USER");
    auto altered = log.inclusionProof(5, 100);
    REQUIRE_FALSE(altered);
    CHECK(altered.status().code() == StatusCode::Internal);
    CHECK(altered.status().message().find("the audit table was altered") != std::string::npos);
    CHECK(log.inclusionProof(50, 100));  // other blocks still prove
}
