#include "gateway/api/linkage.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <memory>
#include <set>

#include "gateway/api/catalog_request.hpp"
#include "gateway/api/services.hpp"
#include "gateway/catalog/catalog.hpp"

namespace custodian::api {

Result<std::string> linkageGroup(Services& services, const Lookup& found) {
    const auto& links = found.policy.policy->model().linkableWith;
    const std::string& self = found.policy.name;
    if (links.empty()) return self;
    std::set<std::string> group(links.begin(), links.end());
    if (group.contains(self)) return failedPrecondition("policy \"" + self + "\" names itself in linkable_with");
    group.insert(self);
    if (!services.db || !services.catalog) return unavailable("the catalog is not available");
    // Every other member must exist and declare exactly this group in its current version.
    Status s = services.db->withConnection([&](pqxx::connection& conn) -> Status {
        for (const auto& other : group) {
            if (other == self) continue;
            auto p = services.catalog->loadCurrentPolicy(conn, found.dataset.name, other);
            if (!p) {
                if (p.status().code() == StatusCode::Unavailable) return p.status();
                return failedPrecondition("linkable_with names \"" + other +
                                          "\", which is not a usable policy of "
                                          "dataset \"" +
                                          found.dataset.name + "\": " + p.status().message());
            }
            const auto& theirs = p->policy->model().linkableWith;
            std::set<std::string> theirGroup(theirs.begin(), theirs.end());
            theirGroup.insert(other);
            if (theirGroup != group)
                return failedPrecondition("policy \"" + other +
                                          "\" does not name the same linkage group in its "
                                          "linkable_with (every policy of a group must name all the others)");
        }
        return Status::ok();
    });
    if (!s) return s;
    std::string name;
    for (const auto& member : group) name += (name.empty() ? "" : "+") + member;
    return name;
}

std::string ledgerScope(const Lookup& found, const std::string& group) {
    return found.keyDerivation == anon::KeyDerivation::DatasetRecipient ? "*" : group;
}

std::string LinkageReport::message() const {
    if (!problem.empty()) return problem;
    if (!join || join->keepsK()) return "the join of the recipient's releases keeps k";
    std::string ids;
    for (const auto& e : checkedAgainst) ids += (ids.empty() ? "" : ", ") + e.extractId;
    std::string what;
    if (join->personsBelowK > 0)
        what = std::to_string(join->personsBelowK) +
               " persons would fall into classes smaller than the k of a release they are in (k up to " +
               std::to_string(join->k) + "; the smallest class has " + std::to_string(join->smallestClass) + ")";
    if (join->personsNotLDiverse > 0)
        what += (what.empty() ? "" : ", and ") + std::to_string(join->personsNotLDiverse) +
                " persons into classes that are not l-diverse for a release they are in";
    if (join->personsNotTClose > 0)
        what += (what.empty() ? "" : ", and ") + std::to_string(join->personsNotTClose) +
                " persons into classes that are not t-close for a release they are in";
    return "joined on the pseudonyms of \"" + join->identityColumn + "\" with the recipient's earlier release(s) " +
           ids + ", " + what;
}

json::JsonValue LinkageReport::toJson() const {
    auto entries = [](const std::vector<release::LedgerEntry>& list) {
        json::JsonValue::Array out;
        for (const auto& e : list) {
            json::JsonValue::Object one;
            one["extract_id"] = e.extractId;
            one["policy"] = e.policy;
            one["policy_version"] = static_cast<int64_t>(e.policyVersion);
            one["started_at"] = e.createdAt;
            out.emplace_back(std::move(one));
        }
        return out;
    };
    json::JsonValue::Object o;
    o["scope"] = scope;
    o["earlier_releases"] = entries(earlier);
    o["checked_against"] = entries(checkedAgainst);
    o["keeps_k"] = !refuses();
    if (!problem.empty()) o["problem"] = problem;
    if (join) {
        o["identity_column"] = join->identityColumn.empty() ? json::JsonValue() : json::JsonValue(join->identityColumn);
        o["k"] = join->k;
        o["persons"] = join->persons;
        o["classes"] = join->classes;
        o["smallest_class"] = join->smallestClass;
        o["persons_below_k"] = join->personsBelowK;
        o["persons_not_l_diverse"] = join->personsNotLDiverse;
        o["persons_not_t_close"] = join->personsNotTClose;
    }
    return o;
}

namespace {

// One release rebuilt for the check, with a charge of its own on release.memory_budget_mb: the
// check's releases count against the budget like any other (a refusal fails the check: 503).
Result<release::ReleasedView> viewOf(Services& services, const release::SourceLocation& location,
                                     std::shared_ptr<const policies::Policy> policy,
                                     const release::ReleaseContext& context) {
    release::StreamOptions options;
    if (services.memoryBudget) options.memory = services.memoryBudget->open();
    auto stream =
        release::ReleaseStream::prepare(location, std::move(policy), context, release::ExtractFormat::Ndjson, options);
    if (!stream) return stream.status();
    return release::collectReleasedView(**stream);
}

}  // namespace

Result<LinkageReport> checkLinkage(Services& services, const Lookup& found, const std::string& recipient,
                                   const std::string& scope, const release::ReleaseContext& context,
                                   const release::SourceLocation& location) {
    if (!services.db || !services.catalog) return unavailable("the catalog is not available");
    LinkageReport report;
    report.scope = scope;
    // The earlier releases, and the other policy versions among them (with the dataset as it is).
    std::vector<std::shared_ptr<const policies::Policy>> others;
    Status s = services.db->withConnection([&](pqxx::connection& conn) -> Status {
        auto entries = release::ledgerEntries(conn, recipient, found.dataset.name, scope);
        if (!entries) return entries.status();
        report.earlier = std::move(entries).value();
        std::set<std::pair<std::string, int32_t>> seen{{found.policy.name, found.policy.version}};
        for (const auto& e : report.earlier)
            if (e.policy != found.policy.name || e.policyVersion != found.policy.version) ++report.otherVersionCount;
        for (const auto& e : report.earlier) {
            if (!seen.insert({e.policy, e.policyVersion}).second) continue;
            pqxx::read_transaction tx(conn);
            auto p = services.catalog->loadPolicyVersion(tx, found.dataset.name, e.policy, e.policyVersion);
            tx.commit();
            if (!p) {
                if (p.status().code() == StatusCode::Unavailable) return p.status();
                report.problem = "the earlier release " + e.extractId + " (policy \"" + e.policy + "\" version " +
                                 std::to_string(e.policyVersion) +
                                 ") cannot be rebuilt to check the join: " + p.status().message();
                return Status::ok();
            }
            report.checkedAgainst.push_back(e);
            others.push_back(p->policy);
        }
        return Status::ok();
    });
    if (!s) return s;
    if (!report.problem.empty() || others.empty()) return report;

    std::vector<release::ReleasedView> views;
    views.reserve(others.size() + 1);
    auto mine = viewOf(services, location, found.policy.policy, context);
    if (!mine) return mine.status();
    views.push_back(std::move(mine).value());
    for (size_t i = 0; i < others.size(); ++i) {
        auto view = viewOf(services, location, others[i], context);
        if (!view) {
            if (view.status().code() != StatusCode::FailedPrecondition) return view.status();
            const auto& e = report.checkedAgainst[i];
            report.problem = "the earlier release " + e.extractId + " (policy \"" + e.policy + "\" version " +
                             std::to_string(e.policyVersion) +
                             ") cannot be rebuilt to check the join: " + view.status().message();
            return report;
        }
        views.push_back(std::move(view).value());
    }
    std::vector<const release::ReleasedView*> pointers;
    for (const auto& v : views) pointers.push_back(&v);
    report.join = release::checkJoin(pointers);
    return report;
}

}  // namespace custodian::api
