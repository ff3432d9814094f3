// `custodian audit verify (--url URL --token T | --export FILE.ndjson) --gateway-key FILE [--tree-head FILE]`:
// verification of an audit export (docs/formats/audit.md), downloaded from a gateway (online) or
// from a file (offline). Exit 0: verified; 1: the log does not
// verify (the first bad index is printed); 2: usage error.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <cstring>
#include <string>
#include <vector>

#include "gateway/audit/verifier.hpp"
#include "gateway/cli/args.hpp"
#include "gateway/cli/http_get.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/secure_file.hpp"

namespace custodian::cli {

namespace {

Result<audit::SignedTreeHead> readTreeHeadFile(const std::string& path) {
    auto text = crypto::readPublicFile(path);
    if (!text) return text.status();
    auto json = json::parseJson(*text);
    if (!json) return json.status().withContext(path);
    auto head = audit::treeHeadFromJson(*json);
    if (!head) return head.status().withContext(path);
    return head;
}

// The online mode's download: the latest head, then the export into a private temporary file
// (removed on destruction unless the auditor asked to keep it).
struct OnlineExport {
    std::string path;
    bool remove = true;
    audit::SignedTreeHead latestHead;
    ~OnlineExport() {
        if (remove && !path.empty()) std::remove(path.c_str());
    }
};

Result<std::unique_ptr<OnlineExport>> fetchOnline(std::string base, const std::string& token, const std::string& caFile,
                                                  const std::string& keep) {
    while (!base.empty() && base.back() == '/') base.pop_back();
    HttpGetOptions http;
    http.bearerToken = token;
    http.caFile = caFile;
    auto describe = [](const HttpGetResult& r) {
        auto json = json::parseJson(r.body);
        const json::JsonValue* message = json ? json->find("error") : nullptr;
        if (message) message = message->find("message");
        return "HTTP " + std::to_string(r.status) +
               (message && message->isString() ? ": " + message->asString() : std::string());
    };
    // The head first: everything it covers must be in the export fetched after it.
    auto headResponse = httpGet(base + "/v1/audit/tree-head", http);
    if (!headResponse) return headResponse.status();
    if (headResponse->status != 200) return unavailable("GET /v1/audit/tree-head: " + describe(*headResponse));
    auto headJson = json::parseJson(headResponse->body);
    if (!headJson) return headJson.status().withContext("GET /v1/audit/tree-head");
    auto head = audit::treeHeadFromJson(*headJson);
    if (!head) return head.status().withContext("GET /v1/audit/tree-head");

    auto out = std::make_unique<OnlineExport>();
    out->latestHead = *head;
    if (!keep.empty()) {
        out->path = keep;
        out->remove = false;
    } else {
        std::string pattern = "/tmp/custodian-audit-export.XXXXXX";
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) return unavailable("cannot create a temporary file for the export");
        ::close(fd);
        out->path = pattern;
    }
    auto exported = httpGet(base + "/v1/audit/export", http, out->path);
    if (!exported) return exported.status().withContext("GET /v1/audit/export");
    if (exported->status != 200) {
        // The error body went to the file; read it back for the message.
        auto text = crypto::readPublicFile(out->path);
        HttpGetResult r = *exported;
        if (text) r.body = *text;
        return unavailable("GET /v1/audit/export: " + describe(r));
    }
    return out;
}

int runAuditVerify(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"export", true, false, "NDJSON export (GET /v1/audit/export) to verify offline", "FILE.ndjson"},
        {"url", true, false, "online: the gateway's base URL (downloads the latest tree head, then the export)", "URL"},
        {"token", true, false, "online: an auditor's API token", "TOKEN"},
        {"ca-file", true, false, "online, https: PEM CA bundle to trust instead of the system's", "FILE"},
        {"keep", true, false, "online: keep the downloaded export in this file", "FILE.ndjson"},
        {"gateway-key", true, true, "the gateway's Ed25519 public key (base64 of 32 bytes, as GET /v1/keys serves it)",
         "FILE"},
        {"tree-head", true, false,
         "a signed tree head obtained separately (GET /v1/audit/tree-head) that the "
         "export must cover",
         "FILE"},
    };
    const std::string synopsis =
        "audit verify (--url URL --token TOKEN | --export FILE.ndjson) --gateway-key FILE [--tree-head FILE]";
    const std::string description =
        "Verifies an audit log export offline: recomputes every leaf hash and the Merkle root at each\n"
        "signed tree head, checks the heads' signatures and their consistency, and names the first\n"
        "entry index where the log was modified, removed, inserted, reordered or truncated.\n"
        "Online (--url, --token): fetches the latest signed tree head first, then the export, and\n"
        "verifies that the export covers that head (a truncated tail cannot hide behind it).";
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
    const bool online = args->has("url") || args->has("token");
    if (online == args->has("export") || (online && !(args->has("url") && args->has("token")))) {
        std::fprintf(stderr, "custodian audit verify: give either --url and --token, or --export\n\n%s",
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    audit::AuditVerifyOptions options;
    std::string exportPath = args->getOr("export", "");
    std::unique_ptr<OnlineExport> download;
    if (online) {
        auto fetched =
            fetchOnline(*args->get("url"), *args->get("token"), args->getOr("ca-file", ""), args->getOr("keep", ""));
        if (!fetched) {
            std::fprintf(stderr, "custodian audit verify: %s\n", fetched.status().message().c_str());
            return 2;
        }
        download = std::move(fetched).value();
        exportPath = download->path;
        if (!audit::verifyTreeHead(download->latestHead, *key)) {
            std::printf("FAILED\nthe tree head served by %s is not signed by the given gateway key\n",
                        args->get("url")->c_str());
            return 1;
        }
        options.latestHead = download->latestHead;
        // Fetched before the export, which records itself and signs a fresh head: the export is
        // larger, and must be consistent with this head (checked below).
        std::printf("tree head served before the export: tree_size %llu, root %s\n",
                    static_cast<unsigned long long>(download->latestHead.head.treeSize),
                    crypto::toHex(download->latestHead.head.rootHash).c_str());
    }
    if (auto path = args->get("tree-head")) {
        auto head = readTreeHeadFile(*path);
        if (!head) {
            std::fprintf(stderr, "custodian audit verify: %s\n", head.status().message().c_str());
            return 2;
        }
        options.latestHead = *head;
    }
    auto report = audit::verifyAuditExportFile(exportPath, *key, options);
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
    std::printf("OK: %llu entries and %llu signed tree heads in the export verified\n",
                static_cast<unsigned long long>(report->entries), static_cast<unsigned long long>(report->treeHeads));
    if (report->verifiedSize > 0)
        std::printf("the newest signed tree head covers entries 0..%llu (tree_size %llu)%s\n",
                    static_cast<unsigned long long>(report->verifiedSize - 1),
                    static_cast<unsigned long long>(report->verifiedSize),
                    options.latestHead ? " and is consistent with the head served before the export" : "");
    std::printf("root of all %llu entries: %s\n", static_cast<unsigned long long>(report->entries),
                crypto::toHex(report->root).c_str());
    if (report->verifiedSize < report->entries) {
        std::printf("note: entries %llu..%llu are not yet covered by a signed tree head\n",
                    static_cast<unsigned long long>(report->verifiedSize),
                    static_cast<unsigned long long>(report->entries - 1));
    }
    return 0;
}

}  // namespace

// `custodian audit <subcommand>`.
int runAudit(int argc, char** argv) {
    if (argc >= 1 && std::strcmp(argv[0], "verify") == 0) return runAuditVerify(argc - 1, argv + 1);
    const bool help = argc >= 1 && (std::strcmp(argv[0], "--help") == 0 || std::strcmp(argv[0], "-h") == 0);
    std::fprintf(help ? stdout : stderr,
                 "usage: custodian audit verify (--url URL --token TOKEN | --export FILE.ndjson) --gateway-key FILE\n\n"
                 "subcommands:\n  verify   verify an audit log export (run `custodian audit verify --help`)\n");
    return help ? 0 : 2;
}

}  // namespace custodian::cli
