// `custodian keygen --out PREFIX`: a partner's X25519 key pair for receiving extracts.
#include <cstdio>
#include <string>
#include <vector>

#include "gateway/cli/args.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::cli {

int runKeygen(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"out", true, true,
         "write PREFIX.pub (public, give it to the gateway admin) and PREFIX.key "
         "(secret, mode 0600)",
         "PREFIX"},
    };
    const std::string synopsis = "keygen --out PREFIX";
    const std::string description =
        "Creates an X25519 key pair for receiving encrypted extracts. Extracts are sealed to\n"
        "PREFIX.pub; only PREFIX.key can open them. Existing files are never overwritten.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian keygen: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::printf("%s", usageText(synopsis, description, specs).c_str());
        return 0;
    }
    const std::string prefix = *args->get("out");
    auto key = crypto::BoxSecretKey::generate();
    if (!key) {
        std::fprintf(stderr, "custodian keygen: %s\n", key.status().message().c_str());
        return 1;
    }
    if (auto st = crypto::writeBoxKeyPair(*key, prefix); !st) {
        std::fprintf(stderr, "custodian keygen: %s\n", st.message().c_str());
        return 1;
    }
    std::printf("wrote %s.pub (public key) and %s.key (secret key, mode 0600)\n", prefix.c_str(), prefix.c_str());
    return 0;
}

}  // namespace custodian::cli
