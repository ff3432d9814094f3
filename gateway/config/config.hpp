#pragma once
// The gateway's configuration: one JSON file, parsed and validated once at start into an immutable
// GatewayConfig. Every validation error names the offending field by its JSON path
// ("database.pool_size: must be between 1 and 256"), and unknown fields are errors so that a typo
// never silently falls back to a default. docs/configuration.md describes every field.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "anonymizer/status.hpp"
#include "gateway/config/sources.hpp"

namespace custodian::config {

struct ListenAddress {
    std::string address = "127.0.0.1";
    uint16_t port = 8080;  // 0 = any free port (tests)
    // Plain HTTP on a non-loopback address is refused unless the operator says a trusted
    // TLS-terminating proxy sits in front (main listener only; logged at start).
    bool behindTlsProxy = false;
};

// True for 127.0.0.0/8, ::1 and "localhost": addresses only this host can reach.
bool isLoopbackAddress(std::string_view address);

struct TlsConfig {
    std::string certFile;  // PEM certificate chain
    std::string keyFile;   // PEM private key
    // From accept to the end of the TLS handshake: a client that connects and never starts (or never
    // finishes) the handshake holds a connection slot for at most this long.
    std::chrono::milliseconds handshakeTimeout{5000};
};

struct DatabaseConfig {
    std::string conninfo;  // the runtime role (serve, principal): no ownership, audit tables append-only
    // The owner role that `custodian migrate` uses to create and alter the schema, then grants the
    // runtime role what it needs. Empty: migrate uses `conninfo` (a single-role setup, which
    // `serve` then refuses to run on).
    std::string ownerConninfo;
    int poolSize = 4;  // connections, and worker threads that run database work
    std::chrono::seconds connectTimeout{5};
    std::chrono::milliseconds acquireTimeout{5000};  // wait for a free connection before 503
    std::string migrationsDir;                       // default: the source tree's migrations/
};

struct TimeoutConfig {
    std::chrono::milliseconds header{10000};  // first byte to end of the request header
    std::chrono::milliseconds body{30000};    // end of header to end of the body
    std::chrono::milliseconds idle{60000};    // keep-alive: wait for the next request
    std::chrono::milliseconds write{30000};   // each write to the client
};

// The audit log (docs/audit.md): signed tree heads at least every `treeHeadEveryEntries` entries
// and every `treeHeadInterval` while there are unsigned entries; at most `maxBatch` entries per
// group-commit transaction; a group commit waits at most `lockTimeout` for a lock on the audit
// tables (PostgreSQL lock_timeout) before its entries fail with Unavailable (503, fail closed).
struct AuditConfig {
    uint64_t treeHeadEveryEntries = 1000;
    std::chrono::milliseconds treeHeadInterval{10000};
    uint64_t maxBatch = 1000;
    std::chrono::milliseconds lockTimeout{5000};
    // The background integrity check (docs/audit.md, "Integrity checks"): how often it runs, and how
    // many older blocks of 1024 entries each run re-reads in rotation besides the new ones.
    std::chrono::milliseconds integrityCheckInterval{10000};
    uint64_t integrityRecheckBlocks = 64;
};

// Overload protection (docs/configuration.md, "Overload protection"). Every authenticated request
// takes a token from its principal's bucket (`burst` tokens, refilled at `requestsPerSecond`);
// without one it is refused with 429 and Retry-After. An extract holds an in-flight slot from
// before its handler runs until its body has been sent; beyond `maxInflightExtracts` in the
// gateway, or `maxInflightExtractsPerPrincipal` for one principal, it is refused with 503 and
// Retry-After.
struct OverloadConfig {
    uint32_t requestsPerSecond = 100;              // per principal; 0 = no rate limit
    uint32_t burst = 200;                          // bucket size: requests allowed at once after a pause
    uint32_t maxInflightExtracts = 16;             // gateway-wide
    uint32_t maxInflightExtractsPerPrincipal = 4;  // 0 = only the gateway-wide limit
};

// Releases (docs/configuration.md, "release"). `group_counts`: where the frequency table of
// quasi-identifier combinations is counted — "gateway" (a COPY of the grouped columns, counted in
// the gateway) or "database" (GROUP BY in PostgreSQL); see GroupCounting in
// gateway/release/source.hpp for the trade-off.
// `sweep_interval_ms`: how often the gateway looks for extracts whose gateway process died; one is
// recorded as aborted once two looks in a row found it without a live process.
// `memory_budget_mb`: the memory every release of the gateway may hold together (counting tables,
// frequency sinks, frequency tables, search working sets, decisions; gateway/release/
// memory_budget.hpp); `extract_memory_budget_mb`: one release (default: the whole budget);
// `memory_wait_ms`: how long a release whose growth does not fit waits for others before 503.
struct ReleaseConfig {
    bool groupCountsInDatabase = false;
    std::chrono::milliseconds sweepInterval{30000};
    uint64_t memoryBudgetMiB = 1024;
    uint64_t extractMemoryBudgetMiB = 1024;
    std::chrono::milliseconds memoryWait{2000};
};

struct GatewayConfig {
    ListenAddress listen;
    int threads = 2;  // network threads
    std::optional<TlsConfig> tls;
    DatabaseConfig database;
    std::string signingKeyFile;  // Ed25519 gateway key, created on first start, mode 0600
    std::string masterKeyFile;   // 32-byte key for token hashing, created on first use, mode 0600
    TimeoutConfig timeouts;
    uint64_t maxBodyBytes = 1024 * 1024;
    uint32_t maxHeaderBytes = 16 * 1024;
    std::chrono::milliseconds shutdownDeadline{30000};
    std::optional<ListenAddress> metricsListen;  // absent: /metrics on the main listener
    std::chrono::milliseconds readinessInterval{1000};
    bool accessLog = true;
    AuditConfig audit;
    // limits.max_connections: open API connections beyond this are answered 503 with Retry-After
    // and closed at once, so a flood of connections cannot exhaust file descriptors (the metrics
    // listener is exempt).
    uint32_t maxConnections = 1000;
    // limits.rate_limit, limits.max_inflight_extracts, limits.max_inflight_extracts_per_principal.
    OverloadConfig overload;
    ReleaseConfig release;
    // sources.*: the agency database endpoints publishers may register (gateway/config/sources.hpp).
    SourcesConfig sources;
    // console.directory: serve the web console's files (/console/) from this folder instead of the
    // copy built into the binary (development, or an operator's own edition). Empty: built-in.
    std::string consoleDirectory;
};

// Parses and validates `json`. Relative file paths are resolved against `baseDir` (the directory
// of the config file) so a config works regardless of the working directory.
Result<GatewayConfig> parseConfig(std::string_view json, const std::string& baseDir);

// Reads and parses the file at `path`; errors are prefixed with the path.
Result<GatewayConfig> loadConfig(const std::string& path);

}  // namespace custodian::config
