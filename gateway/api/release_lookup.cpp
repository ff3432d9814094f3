#include "gateway/api/release_lookup.hpp"

#include <pqxx/pqxx>

#include "gateway/api/services.hpp"
#include "gateway/auth/groups.hpp"
#include "gateway/catalog/source_access.hpp"
#include "gateway/db/guarded.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway/release/key_scope.hpp"

namespace custodian::api {

Result<Lookup> lookup(Services& services, const std::string& dataset, const std::string& policy,
                      const std::optional<std::string>& recipient) {
    if (!services.db || !services.catalog) return unavailable("the catalog is not available");
    Lookup out;
    Status s = services.db->withConnection([&](pqxx::connection& conn) -> Status {
        auto d = services.catalog->loadDataset(conn, dataset);
        if (!d) return d.status();
        out.dataset = std::move(d).value();
        auto p = services.catalog->loadCurrentPolicy(conn, dataset, policy);
        if (!p) return p.status();
        out.policy = std::move(p).value();
        auto src = services.catalog->loadSource(conn, out.dataset.source);
        if (!src) return src.status();
        out.source = std::move(src).value();
        if (recipient) {
            auto n = release::countExtractsToday(conn, *recipient, dataset, policy);
            if (!n) return n.status();
            out.extractsToday = *n;
            auto groups = auth::groupsOfPrincipal(conn, *recipient);
            if (!groups) return groups.status();
            out.recipientGroups = std::move(groups).value();
            auto derivation = release::keyDerivationFor(conn, *recipient, dataset, policy);
            if (!derivation) return derivation.status();
            out.keyDerivation = *derivation;
        }
        return Status::ok();
    });
    if (!s) return s;
    return out;
}

Result<release::SourceLocation> sourceOf(const Services& services, const std::string& conninfo,
                                         const std::string& schema, const std::string& table) {
    static const config::SourcesConfig kNoSources;
    const config::SourcesConfig& rules = services.config ? services.config->sources : kNoSources;
    auto checked = catalog::checkSourceConninfo(conninfo, rules, catalog::systemResolver());
    if (!checked) return checked.status();
    release::SourceLocation location{std::move(checked).value(), schema, table};
    if (services.config) {
        location.connectTimeout = services.config->database.connectTimeout;
        if (services.config->release.groupCountsInDatabase) location.groupCounting = release::GroupCounting::Database;
    }
    if (!services.db) return unavailable("the database is not available");
    auto gateway = db::resultOnConnection<db::ServerIdentity>(
        *services.db, [](pqxx::connection& conn) { return catalog::gatewayIdentity(conn); });
    if (!gateway) return gateway.status();
    location.notDatabase = std::move(gateway).value();
    return location;
}

}  // namespace custodian::api
