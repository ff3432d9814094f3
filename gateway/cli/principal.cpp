// `custodian principal add|disable|list`: manage who may call the gateway (recipient groups are
// managed over HTTP, audited: gateway/api/group_routes.hpp; `list` shows memberships).
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "gateway/auth/groups.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/cli/args.hpp"
#include "gateway/config/config.hpp"
#include "gateway/db/pool.hpp"

namespace custodian::cli {
namespace {

const std::string kDescription =
    "Manage principals (callers of the gateway) in the gateway database.\n\n"
    "  add      create a principal and print its API token ONCE (only a keyed hash is stored)\n"
    "  disable  disable a principal: its token stops working at once (401)\n"
    "  list     list principals with role, agency, state and recipient groups\n\n"
    "Roles: admin, publisher, partner, auditor. A partner needs --public-key (the .pub file from\n"
    "`custodian keygen`) so that extracts can be sealed to it.\n\n"
    "Partners can be gathered in recipient groups that policies name as \"group:NAME\"; admins\n"
    "manage them over HTTP, audited (PUT/DELETE /v1/groups/NAME[/members/PARTNER]; docs/policies.md).";

int fail(const Status& s) {
    std::fprintf(stderr, "custodian principal: %s\n", s.message().c_str());
    return s.code() == StatusCode::InvalidArgument ? 2 : 1;
}

Result<std::string> readTextFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return invalidArgument(path + ": cannot open");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

int runPrincipal(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"config", true, true, "gateway configuration (JSON)", "FILE"},
        {"role", true, false, "add: admin | publisher | partner | auditor", "ROLE"},
        {"name", true, false, "add, disable: the principal's unique name", "NAME"},
        {"public-key", true, false, "add: partner X25519 public key file (custodian keygen's PREFIX.pub)", "FILE"},
        {"agency", true, false, "add: the agency the principal belongs to", "AGENCY"},
    };
    const std::string synopsis = "principal (add --role ROLE --name NAME [--public-key FILE] [--agency A] | "
                                 "disable --name NAME | list) --config FILE";
    auto args = parseArgs(argc, argv, specs, 1);
    if (!args) {
        std::fprintf(stderr, "custodian principal: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, kDescription, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::fputs(usageText(synopsis, kDescription, specs).c_str(), stdout);
        return 0;
    }
    if (args->positional().size() != 1) {
        std::fprintf(stderr, "custodian principal: give one action: add, disable or list\n\n%s",
                     usageText(synopsis, kDescription, specs).c_str());
        return 2;
    }
    const std::string action = args->positional()[0];
    auto config = config::loadConfig(*args->get("config"));
    if (!config) return fail(config.status());

    db::PoolOptions options;
    options.conninfo = config->database.conninfo;
    options.size = 1;
    options.connectTimeout = config->database.connectTimeout;

    if (action == "add") {
        auth::NewPrincipal p;
        if (!args->has("role") || !args->has("name")) return fail(invalidArgument("add needs --role and --name"));
        auto role = auth::parseRole(*args->get("role"));
        if (!role) return fail(role.status());
        p.role = *role;
        p.name = *args->get("name");
        if (Status s = auth::validatePrincipalName(p.name); !s) return fail(s);
        p.agency = args->getOr("agency", "");
        if (auto file = args->get("public-key")) {
            auto text = readTextFile(*file);
            if (!text) return fail(text.status());
            auto key = auth::parsePartnerPublicKey(*text);
            if (!key) return fail(key.status().withContext(*file));
            p.publicKey = *key;
        }
        if (p.role == auth::Role::Partner && !p.publicKey)
            return fail(invalidArgument("a partner needs --public-key (create one with custodian keygen)"));
        auto hasher = auth::TokenHasher::loadOrCreate(config->masterKeyFile);
        if (!hasher) return fail(hasher.status().withContext("keys.master_key_file"));
        db::ConnectionPool pool(options);
        std::string token;
        Status s = pool.withConnection([&](pqxx::connection& conn) -> Status {
            auto t = auth::addPrincipal(conn, *hasher, p);
            if (!t) return t.status();
            token = std::move(t).value();
            return Status::ok();
        });
        if (!s) return fail(s);
        std::fprintf(stderr, "created %s '%s'; its API token is printed below, once; it cannot be shown again\n",
                     auth::roleName(p.role), p.name.c_str());
        std::printf("%s\n", token.c_str());
        return 0;
    }
    if (action == "disable") {
        if (!args->has("name")) return fail(invalidArgument("disable needs --name"));
        db::ConnectionPool pool(options);
        Status s = pool.withConnection(
            [&](pqxx::connection& conn) { return auth::disablePrincipal(conn, *args->get("name")); });
        if (!s) return fail(s);
        std::printf("disabled %s\n", args->get("name")->c_str());
        return 0;
    }
    if (action == "list") {
        db::ConnectionPool pool(options);
        std::vector<auth::Principal> all;
        std::map<std::string, std::string> groupsOf;  // principal -> "g1,g2"
        Status s = pool.withConnection([&](pqxx::connection& conn) -> Status {
            auto r = auth::listPrincipals(conn);
            if (!r) return r.status();
            all = std::move(r).value();
            auto groups = auth::listGroups(conn);
            if (!groups) return groups.status();
            for (const auto& g : *groups)
                for (const auto& m : g.members) groupsOf[m.name] += (groupsOf[m.name].empty() ? "" : ",") + g.name;
            return Status::ok();
        });
        if (!s) return fail(s);
        std::printf("%-24s %-10s %-20s %-9s %-8s %-20s %s\n", "NAME", "ROLE", "AGENCY", "STATE", "KEY", "CREATED",
                    "GROUPS");
        for (const auto& p : all) {
            auto g = groupsOf.find(p.name);
            std::printf("%-24s %-10s %-20s %-9s %-8s %-20s %s\n", p.name.c_str(), auth::roleName(p.role),
                        p.agency.empty() ? "-" : p.agency.c_str(), p.disabled ? "disabled" : "enabled",
                        p.publicKey ? "x25519" : "-", p.createdAt.c_str(),
                        g == groupsOf.end() ? "-" : g->second.c_str());
        }
        return 0;
    }
    return fail(invalidArgument("unknown action '" + action + "' (expected add, disable or list)"));
}

}  // namespace custodian::cli
