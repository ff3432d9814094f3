// `custodian serve --config FILE`: run the gateway in the foreground until SIGTERM/SIGINT.
#include <cstdio>

#include "gateway/cli/args.hpp"
#include "gateway/config/config.hpp"
#include "gateway/http/server.hpp"
#include "gateway/api/services.hpp"
#include "gateway/release/memory_budget.hpp"

namespace custodian::cli {

int runServe(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"config", true, true, "gateway configuration (JSON, see docs/configuration.md)", "FILE"},
    };
    const std::string synopsis = "serve --config FILE";
    const std::string description =
        "Run the gateway in the foreground: creates the gateway signing key on first start, serves HTTP(S)\n"
        "until SIGTERM or SIGINT, then drains in-flight requests within shutdown.deadline_ms. Access log\n"
        "lines (JSON) go to stderr. Runs as the runtime database role (database.conninfo) and refuses to\n"
        "start on a role that could rewrite the audit log; run `custodian migrate` first (it applies the\n"
        "schema as the owner role and grants the runtime role). Plain HTTP is served on loopback only,\n"
        "unless listen.behind_tls_proxy says a trusted TLS-terminating proxy is in front.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian serve: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::fputs(usageText(synopsis, description, specs).c_str(), stdout);
        return 0;
    }
    release::configureAllocator();
    auto config = config::loadConfig(*args->get("config"));
    if (!config) {
        std::fprintf(stderr, "custodian serve: %s\n", config.status().message().c_str());
        return 2;
    }
    auto runtime = api::GatewayRuntime::create(std::move(config).value());
    if (!runtime) {
        std::fprintf(stderr, "custodian serve: %s\n", runtime.status().message().c_str());
        return 1;
    }
    auto& rt = **runtime;
    http::Server server(rt.serverParts());
    if (Status s = server.start(); !s) {
        std::fprintf(stderr, "custodian serve: %s\n", s.message().c_str());
        return 1;
    }
    server.installSignalHandlers();
    const auto& c = rt.config();
    std::fprintf(stderr, "custodian: listening on %s://%s:%u (%d threads, %d database connections)\n",
                 c.tls ? "https" : "http", c.listen.address.c_str(), server.port(), c.threads, c.database.poolSize);
    if (!c.tls && c.listen.behindTlsProxy)
        std::fprintf(stderr,
                     "custodian: plain HTTP on %s, reachable from other hosts: listen.behind_tls_proxy says a "
                     "trusted TLS-terminating proxy is the only client; nothing here encrypts the traffic\n",
                     c.listen.address.c_str());
    if (c.metricsListen)
        std::fprintf(stderr, "custodian: metrics on http://%s:%u/metrics\n", c.metricsListen->address.c_str(),
                     server.metricsPort());
    std::fflush(stderr);
    server.run();
    std::fprintf(stderr, "custodian: stopped\n");
    return 0;
}

}  // namespace custodian::cli
