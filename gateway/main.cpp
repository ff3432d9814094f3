// `custodian`: one binary, one table of subcommands.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "gateway/cli/commands.hpp"

namespace custodian::cli {
// Declarations of the subcommands (defined in gateway/cli/*.cpp).
int runServe(int argc, char** argv);
int runMigrate(int argc, char** argv);
int runPrincipal(int argc, char** argv);
int runKeygen(int argc, char** argv);
int runDecrypt(int argc, char** argv);
int runAudit(int argc, char** argv);
int runPolicy(int argc, char** argv);
int runExtract(int argc, char** argv);
int runAnonymize(int argc, char** argv);
int runQuery(int argc, char** argv);
}  // namespace custodian::cli

namespace {

using custodian::cli::Command;

constexpr Command kCommands[] = {
    // {"name", "summary", &custodian::cli::runName},
    {"serve", "run the gateway (serve --config FILE)", &custodian::cli::runServe},
    {"migrate", "apply database migrations (migrate --config FILE)", &custodian::cli::runMigrate},
    {"principal", "add, disable or list principals and their API tokens", &custodian::cli::runPrincipal},
    {"anonymize", "anonymize a CSV file offline with a policy (anonymize --policy P --in X --out Y)",
     &custodian::cli::runAnonymize},
    {"policy", "validate a release policy (policy validate FILE.json [--dataset D.json])", &custodian::cli::runPolicy},
    {"keygen", "create a partner X25519 key pair (PREFIX.pub, PREFIX.key)", &custodian::cli::runKeygen},
    {"extract", "request, download, decrypt and verify an extract (partner client)", &custodian::cli::runExtract},
    {"decrypt", "decrypt an extract file with a partner key", &custodian::cli::runDecrypt},
    {"query", "ask for a differentially private count, sum or mean (partner client)", &custodian::cli::runQuery},
    {"audit", "verify the audit log (audit verify --export FILE --gateway-key FILE)", &custodian::cli::runAudit},
};

void printUsage(std::FILE* out) {
    std::fprintf(out, "usage: custodian <command> [options]\n\n"
                      "Custodian is a privacy-preserving data-sharing gateway: every release goes through a\n"
                      "versioned policy, is anonymized, proven, encrypted for one recipient and audited.\n\n"
                      "commands:\n");
    for (const auto& c : kCommands) std::fprintf(out, "  %-11s %s\n", c.name, c.summary);
    std::fprintf(out, "\nRun `custodian <command> --help` for the options of one command.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        printUsage(stderr);
        return 2;
    }
    const std::string_view name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        printUsage(stdout);
        return 0;
    }
    if (name == "--version") {
        std::printf("custodian %s\n", CUSTODIAN_VERSION);
        return 0;
    }
    for (const auto& c : kCommands) {
        if (name == c.name) return c.run(argc - 2, argv + 2);
    }
    std::fprintf(stderr, "custodian: unknown command '%s'\n\n", argv[1]);
    printUsage(stderr);
    return 2;
}
