#include "gateway/config/config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace custodian::config {
namespace {

namespace fs = std::filesystem;
using Value = rapidjson::Value;

// Reads the members of one JSON object, remembering which were consumed so that unknown members
// can be reported by name at the end.
class ObjectReader {
public:
    ObjectReader(const Value& object, std::string path) : object_(object), path_(std::move(path)) {}

    std::string field(std::string_view name) const {
        return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
    }

    const Value* find(std::string_view name) {
        known_.insert(std::string(name));
        auto it = object_.FindMember(Value(name.data(), static_cast<rapidjson::SizeType>(name.size())));
        return it == object_.MemberEnd() ? nullptr : &it->value;
    }

    Status string(std::string_view name, std::string& out, bool required) {
        const Value* v = find(name);
        if (!v) return required ? invalidArgument(field(name) + ": is required") : Status::ok();
        if (!v->IsString()) return invalidArgument(field(name) + ": must be a string");
        out.assign(v->GetString(), v->GetStringLength());
        if (out.empty()) return invalidArgument(field(name) + ": must not be empty");
        return Status::ok();
    }

    Status integer(std::string_view name, int64_t& out, int64_t min, int64_t max) {
        const Value* v = find(name);
        if (!v) return Status::ok();
        if (!v->IsInt64()) return invalidArgument(field(name) + ": must be an integer");
        int64_t n = v->GetInt64();
        if (n < min || n > max)
            return invalidArgument(field(name) + ": must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + " (got " + std::to_string(n) + ")");
        out = n;
        return Status::ok();
    }

    template <typename Duration> Status duration(std::string_view name, Duration& out, int64_t min, int64_t max) {
        int64_t n = out.count();
        if (Status s = integer(name, n, min, max); !s) return s;
        out = Duration(n);
        return Status::ok();
    }

    Status boolean(std::string_view name, bool& out) {
        const Value* v = find(name);
        if (!v) return Status::ok();
        if (!v->IsBool()) return invalidArgument(field(name) + ": must be true or false");
        out = v->GetBool();
        return Status::ok();
    }

    Status rejectUnknown() const {
        for (auto it = object_.MemberBegin(); it != object_.MemberEnd(); ++it) {
            std::string name(it->name.GetString(), it->name.GetStringLength());
            if (!known_.count(name)) return invalidArgument(field(name) + ": unknown field");
        }
        return Status::ok();
    }

private:
    const Value& object_;
    std::string path_;
    std::set<std::string> known_;
};

std::string resolvePath(const std::string& path, const std::string& baseDir) {
    if (path.empty() || fs::path(path).is_absolute() || baseDir.empty()) return path;
    return (fs::path(baseDir) / path).lexically_normal().string();
}

Status readListen(const Value& v, const std::string& path, ListenAddress& out, bool mainListener) {
    if (!v.IsObject()) return invalidArgument(path + ": must be an object");
    ObjectReader r(v, path);
    if (Status s = r.string("address", out.address, false); !s) return s;
    if (mainListener) {
        if (Status s = r.boolean("behind_tls_proxy", out.behindTlsProxy); !s) return s;
    }
    int64_t port = out.port;
    if (Status s = r.integer("port", port, 0, 65535); !s) return s;
    if (!r.find("port")) return invalidArgument(path + ".port: is required");
    out.port = static_cast<uint16_t>(port);
    return r.rejectUnknown();
}

// The overload members of `limits` (read by `limits`'s reader, which then rejects unknown ones).
Status readOverload(ObjectReader& limits, OverloadConfig& out) {
    if (const Value* rl = limits.find("rate_limit"); rl && !rl->IsNull()) {
        if (!rl->IsObject()) return invalidArgument("limits.rate_limit: must be an object or null");
        ObjectReader r(*rl, "limits.rate_limit");
        int64_t rate = out.requestsPerSecond;
        if (Status s = r.integer("requests_per_second", rate, 0, 1000000); !s) return s;
        int64_t burst = out.burst;
        if (Status s = r.integer("burst", burst, 1, 1000000); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
        out.requestsPerSecond = static_cast<uint32_t>(rate);
        out.burst = static_cast<uint32_t>(burst);
    } else if (rl) {
        out.requestsPerSecond = 0;  // "rate_limit": null turns rate limiting off
    }
    int64_t extracts = out.maxInflightExtracts;
    if (Status s = limits.integer("max_inflight_extracts", extracts, 1, 100000); !s) return s;
    out.maxInflightExtracts = static_cast<uint32_t>(extracts);
    int64_t perPrincipal = out.maxInflightExtractsPerPrincipal;
    if (Status s = limits.integer("max_inflight_extracts_per_principal", perPrincipal, 0, 100000); !s) return s;
    out.maxInflightExtractsPerPrincipal = static_cast<uint32_t>(perPrincipal);
    const bool perPrincipalGiven = limits.find("max_inflight_extracts_per_principal") != nullptr;
    if (!perPrincipalGiven) {
        // The default per-principal limit follows a smaller gateway-wide one.
        out.maxInflightExtractsPerPrincipal = std::min(out.maxInflightExtractsPerPrincipal, out.maxInflightExtracts);
    } else if (out.maxInflightExtractsPerPrincipal > out.maxInflightExtracts) {
        return invalidArgument(
            "limits.max_inflight_extracts_per_principal: must not exceed limits.max_inflight_extracts (" +
            std::to_string(out.maxInflightExtracts) + "), got " + std::to_string(out.maxInflightExtractsPerPrincipal));
    }
    return Status::ok();
}

// The "sources" section (gateway/config/sources.hpp).
Status readSources(const Value& v, const std::string& baseDir, SourcesConfig& out) {
    if (!v.IsObject()) return invalidArgument("sources: must be an object");
    ObjectReader r(v, "sources");
    if (const Value* hosts = r.find("allowed_hosts")) {
        if (!hosts->IsArray()) return invalidArgument("sources.allowed_hosts: must be an array of strings");
        for (rapidjson::SizeType i = 0; i < hosts->Size(); ++i) {
            const std::string field = "sources.allowed_hosts[" + std::to_string(i) + "]";
            const Value& entry = (*hosts)[i];
            if (!entry.IsString()) return invalidArgument(field + ": must be a string");
            std::string_view text(entry.GetString(), entry.GetStringLength());
            if (Status s = addAllowedHost(text, field, out.allowedHosts); !s) return s;
        }
    }
    if (Status s = r.boolean("allow_unencrypted", out.allowUnencrypted); !s) return s;
    if (Status s = r.string("ssl_root_cert_dir", out.sslRootCertDir, false); !s) return s;
    if (Status s = r.rejectUnknown(); !s) return s;
    if (!out.sslRootCertDir.empty()) {
        out.sslRootCertDir = resolvePath(out.sslRootCertDir, baseDir);
        if (!fs::path(out.sslRootCertDir).is_absolute())
            return invalidArgument(
                "sources.ssl_root_cert_dir: must be an absolute path or relative to the configuration file");
    }
    return Status::ok();
}

}  // namespace

bool isLoopbackAddress(std::string_view address) {
    if (address == "localhost" || address == "::1") return true;
    // 127.0.0.0/8 in dotted-quad form (the only IPv4 form the listener accepts).
    if (!address.starts_with("127.")) return false;
    int parts = 0;
    size_t start = 0;
    while (start <= address.size()) {
        const size_t dot = std::min(address.find('.', start), address.size());
        const auto part = address.substr(start, dot - start);
        if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoi(std::string(part)) > 255)
            return false;
        ++parts;
        start = dot + 1;
    }
    return parts == 4;
}

Result<GatewayConfig> parseConfig(std::string_view json, const std::string& baseDir) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc.HasParseError())
        return invalidArgument("invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                               rapidjson::GetParseError_En(doc.GetParseError()));
    if (!doc.IsObject()) return invalidArgument("the configuration must be a JSON object");

    GatewayConfig c;
    ObjectReader root(doc, "");

    const Value* listen = root.find("listen");
    if (!listen) return invalidArgument("listen: is required");
    if (Status s = readListen(*listen, "listen", c.listen, true); !s) return s;

    int64_t threads = c.threads;
    if (Status s = root.integer("threads", threads, 1, 256); !s) return s;
    c.threads = static_cast<int>(threads);

    if (const Value* tls = root.find("tls"); tls && !tls->IsNull()) {
        if (!tls->IsObject()) return invalidArgument("tls: must be an object or null");
        ObjectReader r(*tls, "tls");
        TlsConfig t;
        if (Status s = r.string("cert_file", t.certFile, true); !s) return s;
        if (Status s = r.string("key_file", t.keyFile, true); !s) return s;
        if (Status s = r.duration("handshake_timeout_ms", t.handshakeTimeout, 1, 3600 * 1000); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
        t.certFile = resolvePath(t.certFile, baseDir);
        t.keyFile = resolvePath(t.keyFile, baseDir);
        c.tls = t;
    }
    if (!c.tls && !c.listen.behindTlsProxy && !isLoopbackAddress(c.listen.address))
        return invalidArgument("listen.address: " + c.listen.address +
                               " is reachable from other hosts and no tls section is configured; serve HTTPS "
                               "(tls), listen on 127.0.0.1, or set listen.behind_tls_proxy to true when a "
                               "trusted TLS-terminating proxy is the only client");
    if (c.tls && c.listen.behindTlsProxy)
        return invalidArgument("listen.behind_tls_proxy: must not be set together with tls (the gateway "
                               "terminates TLS itself)");

    const Value* db = root.find("database");
    if (!db) return invalidArgument("database: is required");
    if (!db->IsObject()) return invalidArgument("database: must be an object");
    {
        ObjectReader r(*db, "database");
        if (Status s = r.string("conninfo", c.database.conninfo, true); !s) return s;
        if (Status s = r.string("owner_conninfo", c.database.ownerConninfo, false); !s) return s;
        int64_t pool = c.database.poolSize;
        if (Status s = r.integer("pool_size", pool, 1, 256); !s) return s;
        c.database.poolSize = static_cast<int>(pool);
        if (Status s = r.duration("connect_timeout_s", c.database.connectTimeout, 1, 300); !s) return s;
        if (Status s = r.duration("acquire_timeout_ms", c.database.acquireTimeout, 1, 600000); !s) return s;
        if (Status s = r.string("migrations_dir", c.database.migrationsDir, false); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
        c.database.migrationsDir = c.database.migrationsDir.empty() ? std::string(CUSTODIAN_MIGRATIONS_DIR)
                                                                    : resolvePath(c.database.migrationsDir, baseDir);
    }

    const Value* keys = root.find("keys");
    if (!keys) return invalidArgument("keys: is required");
    if (!keys->IsObject()) return invalidArgument("keys: must be an object");
    {
        ObjectReader r(*keys, "keys");
        if (Status s = r.string("signing_key_file", c.signingKeyFile, true); !s) return s;
        if (Status s = r.string("master_key_file", c.masterKeyFile, true); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
        c.signingKeyFile = resolvePath(c.signingKeyFile, baseDir);
        c.masterKeyFile = resolvePath(c.masterKeyFile, baseDir);
        if (c.signingKeyFile == c.masterKeyFile)
            return invalidArgument("keys.master_key_file: must differ from keys.signing_key_file");
    }

    if (const Value* t = root.find("timeouts")) {
        if (!t->IsObject()) return invalidArgument("timeouts: must be an object");
        ObjectReader r(*t, "timeouts");
        constexpr int64_t kHour = 3600 * 1000;
        if (Status s = r.duration("header_ms", c.timeouts.header, 1, kHour); !s) return s;
        if (Status s = r.duration("body_ms", c.timeouts.body, 1, kHour); !s) return s;
        if (Status s = r.duration("idle_ms", c.timeouts.idle, 1, kHour); !s) return s;
        if (Status s = r.duration("write_ms", c.timeouts.write, 1, kHour); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* l = root.find("limits")) {
        if (!l->IsObject()) return invalidArgument("limits: must be an object");
        ObjectReader r(*l, "limits");
        int64_t body = static_cast<int64_t>(c.maxBodyBytes);
        if (Status s = r.integer("max_body_bytes", body, 0, int64_t{1} << 40); !s) return s;
        c.maxBodyBytes = static_cast<uint64_t>(body);
        int64_t header = c.maxHeaderBytes;
        if (Status s = r.integer("max_header_bytes", header, 1024, 1024 * 1024); !s) return s;
        c.maxHeaderBytes = static_cast<uint32_t>(header);
        int64_t connections = c.maxConnections;
        if (Status s = r.integer("max_connections", connections, 1, 1000000); !s) return s;
        c.maxConnections = static_cast<uint32_t>(connections);
        if (Status s = readOverload(r, c.overload); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* sd = root.find("shutdown")) {
        if (!sd->IsObject()) return invalidArgument("shutdown: must be an object");
        ObjectReader r(*sd, "shutdown");
        if (Status s = r.duration("deadline_ms", c.shutdownDeadline, 0, 3600 * 1000); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* m = root.find("metrics"); m && !m->IsNull()) {
        if (!m->IsObject()) return invalidArgument("metrics: must be an object or null");
        ObjectReader r(*m, "metrics");
        const Value* ml = r.find("listen");
        if (ml && !ml->IsNull()) {
            ListenAddress a;
            if (Status s = readListen(*ml, "metrics.listen", a, false); !s) return s;
            c.metricsListen = a;
        }
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* rd = root.find("readiness")) {
        if (!rd->IsObject()) return invalidArgument("readiness: must be an object");
        ObjectReader r(*rd, "readiness");
        if (Status s = r.duration("probe_interval_ms", c.readinessInterval, 50, 600000); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* lg = root.find("log")) {
        if (!lg->IsObject()) return invalidArgument("log: must be an object");
        ObjectReader r(*lg, "log");
        if (Status s = r.boolean("access_log", c.accessLog); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* au = root.find("audit")) {
        if (!au->IsObject()) return invalidArgument("audit: must be an object");
        ObjectReader r(*au, "audit");
        int64_t every = static_cast<int64_t>(c.audit.treeHeadEveryEntries);
        if (Status s = r.integer("tree_head_every_entries", every, 1, 100000000); !s) return s;
        c.audit.treeHeadEveryEntries = static_cast<uint64_t>(every);
        if (Status s = r.duration("tree_head_interval_ms", c.audit.treeHeadInterval, 100, 24 * 3600 * 1000); !s)
            return s;
        int64_t batch = static_cast<int64_t>(c.audit.maxBatch);
        if (Status s = r.integer("max_batch", batch, 1, 10000); !s) return s;
        c.audit.maxBatch = static_cast<uint64_t>(batch);
        if (Status s = r.duration("lock_timeout_ms", c.audit.lockTimeout, 1, 600000); !s) return s;
        if (Status s = r.duration("integrity_check_interval_ms", c.audit.integrityCheckInterval, 100, 24 * 3600 * 1000);
            !s)
            return s;
        int64_t recheck = static_cast<int64_t>(c.audit.integrityRecheckBlocks);
        if (Status s = r.integer("integrity_recheck_blocks", recheck, 0, 1000000); !s) return s;
        c.audit.integrityRecheckBlocks = static_cast<uint64_t>(recheck);
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* re = root.find("release")) {
        if (!re->IsObject()) return invalidArgument("release: must be an object");
        ObjectReader r(*re, "release");
        std::string where = c.release.groupCountsInDatabase ? "database" : "gateway";
        if (Status s = r.string("group_counts", where, false); !s) return s;
        if (where != "gateway" && where != "database")
            return invalidArgument("release.group_counts: must be \"gateway\" or \"database\"");
        c.release.groupCountsInDatabase = where == "database";
        if (Status s = r.duration("sweep_interval_ms", c.release.sweepInterval, 10, 86400000); !s) return s;
        int64_t budget = static_cast<int64_t>(c.release.memoryBudgetMiB);
        if (Status s = r.integer("memory_budget_mb", budget, 1, 1048576); !s) return s;
        c.release.memoryBudgetMiB = static_cast<uint64_t>(budget);
        int64_t perExtract = budget;
        if (Status s = r.integer("extract_memory_budget_mb", perExtract, 1, 1048576); !s) return s;
        if (perExtract > budget)
            return invalidArgument("release.extract_memory_budget_mb: must not exceed release.memory_budget_mb (" +
                                   std::to_string(budget) + "), got " + std::to_string(perExtract));
        c.release.extractMemoryBudgetMiB = static_cast<uint64_t>(perExtract);
        if (Status s = r.duration("memory_wait_ms", c.release.memoryWait, 0, 60000); !s) return s;
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* co = root.find("console")) {
        if (!co->IsObject()) return invalidArgument("console: must be an object");
        ObjectReader r(*co, "console");
        if (Status s = r.string("directory", c.consoleDirectory, false); !s) return s;
        c.consoleDirectory = resolvePath(c.consoleDirectory, baseDir);
        if (Status s = r.rejectUnknown(); !s) return s;
    }

    if (const Value* so = root.find("sources")) {
        if (Status s = readSources(*so, baseDir, c.sources); !s) return s;
    }

    if (Status s = root.rejectUnknown(); !s) return s;

    if (c.metricsListen && c.metricsListen->port != 0 && c.metricsListen->port == c.listen.port &&
        c.metricsListen->address == c.listen.address)
        return invalidArgument("metrics.listen.port: must differ from listen.port");
    return c;
}

Result<GatewayConfig> loadConfig(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return invalidArgument(path + ": cannot open the configuration file");
    std::stringstream text;
    text << in.rdbuf();
    std::error_code ec;
    std::string baseDir = fs::absolute(fs::path(path), ec).parent_path().string();
    auto parsed = parseConfig(text.str(), baseDir);
    if (!parsed) return parsed.status().withContext(path);
    return parsed;
}

}  // namespace custodian::config
