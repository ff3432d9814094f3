// `custodian audit verify --export FILE.ndjson --gateway-key FILE [--tree-head FILE]`: offline
// verification of an audit export (docs/formats/audit.md). Exit 0: verified; 1: the log does not
// verify (the first bad index is printed); 2: usage error.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gateway/audit/verifier.hpp"
#include "gateway/cli/args.hpp"
#include "gateway/crypto/canonical_json.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/secure_file.hpp"

namespace custodian::cli {

namespace {

Result<audit::SignedTreeHead> readTreeHeadFile(const std::string& path) {
    auto text = crypto::readPublicFile(path);
    if (!text) return text.status();
    auto json = crypto::parseJson(*text);
    if (!json) return json.status().withContext(path);
    auto head = audit::treeHeadFromJson(*json);
    if (!head) return head.status().withContext(path);
    return head;
}

int runAuditVerify(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"export", true, true, "NDJSON export (GET /v1/audit/export)", "FILE.ndjson"},
        {"gateway-key", true, true, "the gateway's Ed25519 public key (base64 of 32 bytes, as GET /v1/keys serves it)",
         "FILE"},
        {"tree-head", true, false, "a signed tree head obtained separately (GET /v1/audit/tree-head) that the "
                                   "export must cover", "FILE"},
    };
    const std::string synopsis = "audit verify --export FILE.ndjson --gateway-key FILE [--tree-head FILE]";
    const std::string description =
        "Verifies an audit log export offline: recomputes every leaf hash and the Merkle root at each\n"
        "signed tree head, checks the heads' signatures and their consistency, and names the first\n"
        "entry index where the log was modified, removed, inserted, reordered or truncated.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian audit verify: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::printf("%s", usageText(synopsis, description, specs).c_str());
        return 0;
    }
    auto key = crypto::readGatewayPublicKeyFile(*args->get("gateway-key"));
    if (!key) {
        std::fprintf(stderr, "custodian audit verify: %s\n", key.status().message().c_str());
        return 2;
    }
    audit::AuditVerifyOptions options;
    if (auto path = args->get("tree-head")) {
        auto head = readTreeHeadFile(*path);
        if (!head) {
            std::fprintf(stderr, "custodian audit verify: %s\n", head.status().message().c_str());
            return 2;
        }
        options.latestHead = *head;
    }
    auto report = audit::verifyAuditExportFile(*args->get("export"), *key, options);
    if (!report) {
        std::fprintf(stderr, "custodian audit verify: %s\n", report.status().message().c_str());
        return 2;
    }
    if (!report->ok) {
        if (report->firstBadIndex) {
            if (report->exactIndex) {
                std::printf("FAILED at entry %llu\n", static_cast<unsigned long long>(*report->firstBadIndex));
            } else {
                std::printf("FAILED: first bad entry is in [%llu, %llu)\n",
                            static_cast<unsigned long long>(*report->firstBadIndex),
                            static_cast<unsigned long long>(report->badRangeEnd));
            }
        } else {
            std::printf("FAILED\n");
        }
        std::printf("%s\n", report->problem.c_str());
        return 1;
    }
    std::printf("OK: %llu entries, %llu signed tree heads verified; largest signed tree_size %llu\n",
                static_cast<unsigned long long>(report->entries), static_cast<unsigned long long>(report->treeHeads),
                static_cast<unsigned long long>(report->verifiedSize));
    std::printf("root of all %llu entries: %s\n", static_cast<unsigned long long>(report->entries),
                crypto::toHex(report->root).c_str());
    if (report->verifiedSize < report->entries) {
        std::printf("note: entries %llu..%llu are not yet covered by a signed tree head\n",
                    static_cast<unsigned long long>(report->verifiedSize),
                    static_cast<unsigned long long>(report->entries - 1));
    }
    return 0;
}

} // namespace

// `custodian audit <subcommand>`; the online mode (--url/--token) is added by the release/HTTP side.
int runAudit(int argc, char** argv) {
    if (argc >= 1 && std::strcmp(argv[0], "verify") == 0) return runAuditVerify(argc - 1, argv + 1);
    const bool help = argc >= 1 && (std::strcmp(argv[0], "--help") == 0 || std::strcmp(argv[0], "-h") == 0);
    std::fprintf(help ? stdout : stderr,
                 "usage: custodian audit verify --export FILE.ndjson --gateway-key FILE [--tree-head FILE]\n\n"
                 "subcommands:\n  verify   verify an audit log export (run `custodian audit verify --help`)\n");
    return help ? 0 : 2;
}

} // namespace custodian::cli
