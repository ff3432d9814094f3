// Audit entries, signed tree heads and the offline export verifier: every kind of tampering is
// reported at the right index.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/audit/entry.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/audit/verifier.hpp"

namespace custodian::cli {
int runAudit(int argc, char** argv);
}

using namespace custodian;
using namespace custodian::audit;
using json::JsonValue;

namespace {

crypto::SigningKey gatewayKey() {
    return crypto::SigningKey::fromSeed(
               crypto::fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").value())
        .value();
}

AuditEntry makeEntry(uint64_t index) {
    AuditEntry e;
    e.index = index;
    e.timeMs = 1795000000000 + static_cast<int64_t>(index) * 10;
    e.actor = index % 3 == 0 ? "publisher-b" : "partner-a";
    e.role = index % 3 == 0 ? "publisher" : "partner";
    e.action = index % 3 == 0 ? "policy.put" : "extract.completed";
    e.target.dataset = "hospital_visits";
    e.target.policy = "research";
    e.target.policyVersion = 3;
    e.purpose = "influenza study";
    e.decision = index % 5 == 4 ? "denied" : "allowed";
    if (index % 5 == 4) e.reason = "purpose not allowed";
    e.requestId = "req-" + std::to_string(index);
    e.clientAddress = "192.0.2.1";
    e.details = JsonValue::Object{{"rows_released", index * 100}, {"k", 10}};
    return e;
}

struct Log {
    std::vector<std::string> lines;  // the export, one record per element
    std::vector<size_t> entryLine;   // line position of entry i
    MerkleTree tree;
};

// n entries; a signed head after every `headEvery` entries and after the last one.
Log makeLog(uint64_t n, uint64_t headEvery, bool withLeafHash = true) {
    const auto key = gatewayKey();
    Log log;
    for (uint64_t i = 0; i < n; ++i) {
        const std::string bytes = canonicalEntryBytes(makeEntry(i)).value();
        log.tree.append(leafHash(crypto::asBytes(bytes)));
        log.entryLine.push_back(log.lines.size());
        log.lines.push_back(exportEntryLine(bytes, withLeafHash));
        if ((i + 1) % headEvery == 0 || i + 1 == n) {
            const TreeHead head{i + 1, log.tree.root(), 1795000000000 + (i + 1) * 10 + 5};
            log.lines.push_back(exportTreeHeadLine(signTreeHead(head, key)));
        }
    }
    return log;
}

std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

AuditVerification verify(const std::vector<std::string>& lines, const AuditVerifyOptions& options = {}) {
    return verifyAuditExport(join(lines), gatewayKey().publicKey(), options);
}

// Rewrites entry line `line` with a modified request id, keeping (stale) or recomputing its leaf hash.
std::string modifiedEntryLine(uint64_t index, bool recomputeLeafHash) {
    AuditEntry e = makeEntry(index);
    e.requestId += "-forged";
    const std::string bytes = canonicalEntryBytes(e).value();
    if (recomputeLeafHash) return exportEntryLine(bytes, true);
    const std::string stale = crypto::toHex(leafHash(crypto::asBytes(canonicalEntryBytes(makeEntry(index)).value())));
    return "{\"entry\":" + bytes + ",\"leaf_hash\":\"" + stale + "\",\"type\":\"entry\"}";
}

}  // namespace

TEST_CASE("canonical entry bytes and leaf hash (known answer)", "[audit][entry]") {
    AuditEntry e;
    e.index = 7;
    e.timeMs = 1795000000000;
    e.actor = "partner-a";
    e.role = "partner";
    e.action = "extract.completed";
    e.target.dataset = "hospital_visits";
    e.target.policy = "research";
    e.target.policyVersion = 3;
    e.purpose = "influenza \"study\"";
    e.decision = "completed";
    e.requestId = "req-7";
    e.clientAddress = "192.0.2.7";
    e.details = JsonValue::Object{{"rows_released", 99000}, {"k", 10}, {"t", "0.150"}, {"ciphertext_sha256", "00ff"}};
    const std::string expected =
        "{\"action\":\"extract.completed\",\"actor\":\"partner-a\",\"client_address\":\"192.0.2.7\","
        "\"decision\":\"completed\",\"details\":{\"ciphertext_sha256\":\"00ff\",\"k\":10,\"rows_released\":99000,"
        "\"t\":\"0.150\"},\"index\":7,\"purpose\":\"influenza \\\"study\\\"\",\"reason\":null,\"request_id\":\"req-7\","
        "\"role\":\"partner\",\"target\":{\"dataset\":\"hospital_visits\",\"policy\":\"research\",\"policy_version\":3,"
        "\"source\":null},\"time_ms\":1795000000000}";
    CHECK(canonicalEntryBytes(e).value() == expected);
    // SHA-256(0x00 ‖ bytes), computed independently with Python's hashlib.
    CHECK(crypto::toHex(entryLeafHash(e).value()) ==
          "db916241a262f0784076adb57e40411be8c098ebe9c30960e91d38a516fa21a9");
    auto back = entryFromJson(json::parseJson(expected).value());
    REQUIRE(back.isOk());
    CHECK(*back == e);
}

TEST_CASE("entries record any request text, replacing invalid UTF-8", "[audit][entry]") {
    AuditEntry e = makeEntry(1);
    e.purpose = std::string("bad \xff\xfe bytes");
    auto bytes = canonicalEntryBytes(e);
    REQUIRE(bytes.isOk());
    CHECK_THAT(*bytes, Catch::Contains("bad \xef\xbf\xbd\xef\xbf\xbd bytes"));
    CHECK_FALSE(entryFromJson(json::parseJson("{\"index\":1}").value()).isOk());
}

TEST_CASE("tree head signed bytes are the documented 71 bytes", "[audit][tree_head]") {
    TreeHead head{0x0102030405060708ULL, {}, 0x1112131415161718ULL};
    head.rootHash.fill(0xab);
    const auto bytes = treeHeadSignedBytes(head);
    REQUIRE(bytes.size() == 71);
    CHECK(std::string(bytes.begin(), bytes.begin() + 23) == "custodian-tree-head-v1\n");
    CHECK(crypto::toHex(crypto::ByteView(bytes).subspan(23, 16)) == "01020304050607081112131415161718");
    CHECK(bytes[39] == 0xab);
    const auto key = gatewayKey();
    const auto sth = signTreeHead(head, key);
    CHECK(verifyTreeHead(sth, key.publicKey()));
    auto back = treeHeadFromJson(treeHeadToJson(sth));
    REQUIRE(back.isOk());
    CHECK(*back == sth);
    SignedTreeHead moved = sth;
    moved.head.treeSize += 1;
    CHECK_FALSE(verifyTreeHead(moved, key.publicKey()));
}

TEST_CASE("an untouched export verifies, whatever its JSON formatting", "[audit][verifier]") {
    const Log log = makeLog(100, 16);
    auto report = verify(log.lines);
    INFO(report.problem);
    REQUIRE(report.ok);
    CHECK(report.entries == 100);
    CHECK(report.treeHeads == 7);
    CHECK(report.verifiedSize == 100);
    CHECK(report.root == log.tree.root());

    // Pretty-printed lines with members in another order hash the same (canonical form).
    std::vector<std::string> reformatted = log.lines;
    std::string& line = reformatted[log.entryLine[3]];
    const auto entryStart = line.find('{', 1);
    const auto entryEnd = line.find(",\"leaf_hash\"");
    const std::string entry = line.substr(entryStart, entryEnd - entryStart);
    line = "{ \"type\" : \"entry\" , \"entry\" : " + entry + " }";
    for (size_t p = line.find("\",\""); p != std::string::npos; p = line.find("\",\"", p + 4))
        line.replace(p, 3, "\" , \"");
    auto again = verify(reformatted);
    INFO(again.problem);
    CHECK(again.ok);
    CHECK(again.root == log.tree.root());
}

TEST_CASE("a modified entry with its recorded leaf hash left alone is named exactly", "[audit][verifier][tamper]") {
    const Log log = makeLog(60, 10);
    for (uint64_t i : {0u, 17u, 59u}) {
        auto lines = log.lines;
        lines[log.entryLine[i]] = modifiedEntryLine(i, false);
        auto report = verify(lines);
        REQUIRE_FALSE(report.ok);
        REQUIRE(report.firstBadIndex);
        CHECK(*report.firstBadIndex == i);
        CHECK(report.exactIndex);
        CHECK_THAT(report.problem, Catch::Contains("was modified"));
    }
}

TEST_CASE("a modified entry whose leaf hash was rewritten too is bounded by the signed heads",
          "[audit][verifier][tamper]") {
    const Log log = makeLog(60, 10);
    auto lines = log.lines;
    lines[log.entryLine[23]] = modifiedEntryLine(23, true);
    auto report = verify(lines);
    REQUIRE_FALSE(report.ok);
    REQUIRE(report.firstBadIndex);
    CHECK(*report.firstBadIndex == 20);
    CHECK(report.badRangeEnd == 30);
    CHECK_FALSE(report.exactIndex);

    // With a signed head after every entry the bound is the entry itself.
    const Log dense = makeLog(30, 1, false);
    auto denseLines = dense.lines;
    AuditEntry e = makeEntry(12);
    e.decision = "allowed-after-all";
    denseLines[dense.entryLine[12]] = exportEntryLine(canonicalEntryBytes(e).value(), false);
    auto denseReport = verify(denseLines);
    REQUIRE_FALSE(denseReport.ok);
    CHECK(*denseReport.firstBadIndex == 12);
    CHECK(denseReport.exactIndex);
}

TEST_CASE("deleted, inserted and reordered entries are named at the first index that differs",
          "[audit][verifier][tamper]") {
    const Log log = makeLog(50, 8);
    SECTION("deleted") {
        auto lines = log.lines;
        lines.erase(lines.begin() + static_cast<long>(log.entryLine[21]));
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 21);
        CHECK(r.exactIndex);
        CHECK_THAT(r.problem, Catch::Contains("missing"));
    }
    SECTION("inserted (a copy of an earlier entry)") {
        auto lines = log.lines;
        lines.insert(lines.begin() + static_cast<long>(log.entryLine[30]), lines[log.entryLine[5]]);
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 30);
        CHECK(r.exactIndex);
    }
    SECTION("reordered (two neighbours swapped)") {
        auto lines = log.lines;
        std::swap(lines[log.entryLine[40]], lines[log.entryLine[41]]);
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 40);
        CHECK(r.exactIndex);
    }
    SECTION("deleted and the rest renumbered with fresh leaf hashes: caught by the signed roots") {
        auto lines = log.lines;
        for (uint64_t i = 21; i + 1 < 50; ++i) {
            AuditEntry e = makeEntry(i + 1);
            e.index = i;
            lines[log.entryLine[i]] = exportEntryLine(canonicalEntryBytes(e).value(), true);
        }
        lines.erase(lines.begin() + static_cast<long>(log.entryLine[49]));
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 16);
        CHECK(r.badRangeEnd == 24);
    }
}

TEST_CASE("a forged entry next to the genuine one with the same index: the signed heads say which one to blame",
          "[audit][verifier][tamper]") {
    const Log log = makeLog(50, 8);
    const auto position = [&](uint64_t i) { return log.lines.begin() + static_cast<long>(log.entryLine[i]); };
    SECTION("forged entry (leaf hash recomputed) inserted before the genuine one: the forged one is named") {
        auto lines = log.lines;
        lines.insert(lines.begin() + (position(21) - log.lines.begin()), modifiedEntryLine(21, true));
        auto r = verify(lines);
        INFO(r.problem);
        REQUIRE_FALSE(r.ok);
        REQUIRE(r.firstBadIndex);
        CHECK(*r.firstBadIndex == 21);
        CHECK(r.exactIndex);
        CHECK(r.line == log.entryLine[21] + 1);  // the forged line (1-based), not the genuine one after it
        CHECK_THAT(r.problem, Catch::Contains("a forged entry 21 was inserted before the genuine one"));
    }
    SECTION("forged entry inserted after the genuine one: the position it took is named") {
        auto lines = log.lines;
        lines.insert(lines.begin() + (position(21) - log.lines.begin()) + 1, modifiedEntryLine(21, true));
        auto r = verify(lines);
        INFO(r.problem);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 22);
        CHECK(r.exactIndex);
        CHECK(r.line == log.entryLine[21] + 2);
        CHECK_THAT(r.problem, Catch::Contains("was inserted"));
    }
    SECTION("the genuine entry replaced by two forged ones: neither gives the signed root") {
        auto lines = log.lines;
        AuditEntry other = makeEntry(21);
        other.actor = "mallory";
        lines[log.entryLine[21]] = modifiedEntryLine(21, true);
        lines.insert(lines.begin() + (position(21) - log.lines.begin()) + 1,
                     exportEntryLine(canonicalEntryBytes(other).value(), true));
        auto r = verify(lines);
        INFO(r.problem);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 16);  // the last head that verifies has size 16
        CHECK(r.badRangeEnd == 24);
        CHECK_FALSE(r.exactIndex);
    }
    SECTION("no signed head covers the pair: both positions are named as a range") {
        const Log unsignedTail = makeLog(30, 8);
        auto lines = unsignedTail.lines;
        lines.pop_back();  // the head of size 30: the last head left covers 24 entries
        lines.insert(lines.begin() + static_cast<long>(unsignedTail.entryLine[27]), modifiedEntryLine(27, true));
        auto r = verify(lines);
        INFO(r.problem);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 27);
        CHECK(r.badRangeEnd == 29);
        CHECK_FALSE(r.exactIndex);
        CHECK_THAT(r.problem, Catch::Contains("appears twice"));
    }
    SECTION("an exact copy of the previous line is a duplicate at once") {
        auto lines = log.lines;
        lines.insert(lines.begin() + (position(21) - log.lines.begin()) + 1, log.lines[log.entryLine[21]]);
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 22);
        CHECK(r.exactIndex);
    }
}

TEST_CASE("the fuzz corpus: a forged entry 5 before the genuine one is named by custodian audit verify",
          "[audit][verifier][tamper][cli]") {
    const std::string corpus = std::string(CUSTODIAN_SOURCE_DIR) + "/tests/fuzz/corpus/audit_export/";
    auto r = verifyAuditExportFile(corpus + "forged_before_genuine.ndjson", gatewayKey().publicKey());
    REQUIRE(r.isOk());
    INFO(r->problem);
    REQUIRE_FALSE(r->ok);
    REQUIRE(r->firstBadIndex);
    CHECK(*r->firstBadIndex == 5);
    CHECK(r->exactIndex);
    CHECK(r->line == 7);  // the forged line; the genuine entry 5 follows on line 8
    CHECK_THAT(r->problem, Catch::Contains("the entry 5 on line 8 is"));
    auto valid = verifyAuditExportFile(corpus + "valid.ndjson", gatewayKey().publicKey());
    REQUIRE(valid.isOk());
    CHECK(valid->ok);
}

TEST_CASE("a truncated tail is named at the first missing index", "[audit][verifier][tamper]") {
    const Log log = makeLog(40, 8);
    SECTION("entries removed, the head covering them kept") {
        auto lines = log.lines;
        // Drop entries 37..39, keep the final head (size 40).
        const std::string finalHead = lines.back();
        lines.resize(log.entryLine[37]);
        lines.push_back(finalHead);
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 37);
        CHECK(r.exactIndex);
        CHECK_THAT(r.problem, Catch::Contains("truncated"));
    }
    SECTION("entries and heads removed: only a separately obtained head reveals it") {
        auto lines = log.lines;
        lines.resize(log.entryLine[33]);  // entries 0..32 and heads 8..32 remain
        auto alone = verify(lines);
        CHECK(alone.ok);
        CHECK(alone.verifiedSize == 32);
        AuditVerifyOptions options;
        options.latestHead = treeHeadFromJson(json::parseJson(log.lines.back()).value()).value();
        auto r = verify(lines, options);
        REQUIRE_FALSE(r.ok);
        CHECK(*r.firstBadIndex == 33);
        CHECK(r.exactIndex);
    }
}

TEST_CASE("forged, re-signed or out-of-order tree heads are rejected", "[audit][verifier][tamper]") {
    const Log log = makeLog(24, 8);
    const size_t headLine = log.entryLine[7] + 1;
    SECTION("root changed, signature kept") {
        auto lines = log.lines;
        auto& l = lines[headLine];
        const auto p = l.find("\"root_hash\":\"") + 13;
        l[p] = l[p] == '0' ? '1' : '0';
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK_THAT(r.problem, Catch::Contains("signature is not valid"));
        CHECK(r.line == headLine + 1);
    }
    SECTION("signed by another key") {
        auto lines = log.lines;
        auto other = crypto::SigningKey::generate().value();
        lines[headLine] = exportTreeHeadLine(signTreeHead({8, log.tree.rootAt(8).value(), 1}, other));
        CHECK_FALSE(verify(lines).ok);
    }
    SECTION("an older head after a newer one") {
        auto lines = log.lines;
        lines.push_back(lines[headLine]);
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK_THAT(r.problem, Catch::Contains("out of order"));
    }
    SECTION("a later head with an earlier timestamp") {
        auto lines = log.lines;
        lines.push_back(exportTreeHeadLine(signTreeHead({24, log.tree.root(), 1}, gatewayKey())));
        auto r = verify(lines);
        REQUIRE_FALSE(r.ok);
        CHECK_THAT(r.problem, Catch::Contains("earlier"));
    }
}

TEST_CASE("malformed exports fail with the line, and an unsigned export is not accepted", "[audit][verifier]") {
    const Log log = makeLog(10, 5);
    auto lines = log.lines;
    lines.insert(lines.begin() + 3, "{not json");
    auto r = verify(lines);
    REQUIRE_FALSE(r.ok);
    CHECK(r.line == 4);
    CHECK_THAT(r.problem, Catch::Contains("invalid JSON"));

    auto unknown = log.lines;
    unknown.insert(unknown.begin(), "{\"type\":\"comment\"}");
    CHECK_FALSE(verify(unknown).ok);

    std::vector<std::string> noHeads;
    for (size_t i = 0; i < 10; ++i) noHeads.push_back(log.lines[log.entryLine[i]]);
    auto unsigned_ = verify(noHeads);
    REQUIRE_FALSE(unsigned_.ok);
    CHECK_THAT(unsigned_.problem, Catch::Contains("no signed tree head"));

    CHECK(verify({}).ok);  // an empty log is trivially intact
}

TEST_CASE("custodian audit verify checks an export file offline", "[audit][verifier][cli]") {
    namespace fs = std::filesystem;
    std::string templ = (fs::temp_directory_path() / "custodian-audit-XXXXXX").string();
    const fs::path dir = ::mkdtemp(templ.data());
    const Log log = makeLog(50, 10);
    std::ofstream(dir / "good.ndjson") << join(log.lines);
    auto bad = log.lines;
    bad[log.entryLine[13]] = modifiedEntryLine(13, false);
    std::ofstream(dir / "bad.ndjson") << join(bad);
    std::ofstream(dir / "gateway.pub") << crypto::toBase64(gatewayKey().publicKey()) << "\n";

    const auto run = [&](const std::string& file) {
        std::string args[] = {"verify", "--export", (dir / file).string(), "--gateway-key",
                              (dir / "gateway.pub").string()};
        char* argv[5];
        for (int i = 0; i < 5; ++i) argv[i] = args[i].data();
        return cli::runAudit(5, argv);
    };
    CHECK(run("good.ndjson") == 0);
    CHECK(run("bad.ndjson") == 1);
    CHECK(run("missing.ndjson") == 2);
    fs::remove_all(dir);
}

TEST_CASE("the verifier reads files in blocks with lines across block boundaries", "[audit][verifier]") {
    namespace fs = std::filesystem;
    std::string templ = (fs::temp_directory_path() / "custodian-audit-XXXXXX").string();
    const fs::path dir = ::mkdtemp(templ.data());
    const Log log = makeLog(20000, 1000);  // ≈ 8 MB: spans several 4 MiB blocks
    std::ofstream(dir / "big.ndjson") << join(log.lines);
    auto report = verifyAuditExportFile((dir / "big.ndjson").string(), gatewayKey().publicKey());
    REQUIRE(report.isOk());
    INFO(report->problem);
    CHECK(report->ok);
    CHECK(report->entries == 20000);
    CHECK(report->root == log.tree.root());

    // The batched two-thread path names the same first index as the line-by-line one.
    auto lines = log.lines;
    lines[log.entryLine[15000]] = modifiedEntryLine(15000, false);
    lines.erase(lines.begin() + static_cast<long>(log.entryLine[17000]));
    std::ofstream(dir / "bad.ndjson") << join(lines);
    auto bad = verifyAuditExportFile((dir / "bad.ndjson").string(), gatewayKey().publicKey());
    REQUIRE(bad.isOk());
    REQUIRE_FALSE(bad->ok);
    CHECK(*bad->firstBadIndex == 15000);
    CHECK(bad->line == verify(lines).line);
    fs::remove_all(dir);
}

TEST_CASE("the verifier's canonical encoding equals canonicalJson for any JSON entry", "[audit][verifier][json]") {
    const char* entries[] = {
        R"({"index":0})",
        R"({"z":1,"index":0,"a":{"y":[3,2,{"b":null,"a":false}],"x":"\u00e9\n\u0001\/"}})",
        R"({"index":0,"s":"\ud83d\udd12 tab\t quote\" backslash\\ del)"
        "\x7f"
        R"(","n":-9223372036854775808,"u":18446744073709551615})",
        R"(  { "index" : 0 , "é" : "x" , "e" : [ ] , "E" : { } }  )",
        // Already canonical (the gateway's own output): the verifier's streaming fast path.
        R"({"a":[[],[1,[2,{}]],{"b":[null,true,false,-1,"\u0000"]}],"index":12,"z":{"y":{"x":{}}}})",
        R"({"index":3,"s":"\ud83d\udd12","t":[{"a":1},{"a":2}]})",
        R"({"a":{"index":99},"index":4})",
    };
    for (const char* text : entries) {
        auto parsed = json::parseJson(text);
        REQUIRE(parsed.isOk());
        const Hash expected = leafHash(crypto::asBytes(json::canonicalJson(*parsed).value()));
        for (const std::string& line :
             {std::string("{\"type\":\"entry\",\"entry\":") + text + "}",
              std::string("{\"entry\":") + text + ",\"other\":[{\"index\":7}],\"type\":\"entry\"}"}) {
            std::string copy = line;
            LineParser parser;
            const ParsedLine result = parser.parse(copy);
            INFO(line << " -> " << result.error);
            REQUIRE(result.kind == ParsedLine::Kind::Entry);
            CHECK(result.computed == expected);
            CHECK(result.index == parsed->find("index")->asUint64());
        }
    }
    // Inputs that have no canonical form are errors in both.
    for (const char* text : {R"({"index":0,"a":1.5})", R"({"index":0,"a":1,"a":1})", "{\"index\":0,\"a\":\"\xff\"}",
                             R"({"a":1,"index":-1})"}) {
        std::string line = std::string("{\"type\":\"entry\",\"entry\":") + text + "}";
        LineParser parser;
        CHECK(parser.parse(line).kind == ParsedLine::Kind::Error);
    }
}
