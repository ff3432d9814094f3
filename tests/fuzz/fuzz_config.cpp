// Fuzz target: the gateway configuration file (written by operators, but parsed before anything
// else runs, so a malformed file must produce an error naming the field — never a crash). Any
// outcome is fine except a crash, a sanitizer report, an error without a message, or an accepted
// configuration that violates the limits parseConfig promises to enforce.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace custodian;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    Result<config::GatewayConfig> parsed = config::parseConfig(text, "/etc/custodian");
    if (!parsed) {
        if (parsed.status().message().empty()) std::abort();
        return 0;
    }
    const config::GatewayConfig& c = *parsed;
    if (c.database.conninfo.empty()) std::abort();  // required
    if (c.threads < 1 || c.database.poolSize < 1) std::abort();
    if (c.maxHeaderBytes == 0) std::abort();
    if (c.timeouts.header.count() <= 0 || c.timeouts.body.count() <= 0 || c.timeouts.idle.count() <= 0 ||
        c.timeouts.write.count() <= 0)
        std::abort();
    // Relative paths are resolved against the base directory.
    if (!c.signingKeyFile.empty() && c.signingKeyFile.front() != '/') std::abort();
    if (!c.masterKeyFile.empty() && c.masterKeyFile.front() != '/') std::abort();
    return 0;
}
