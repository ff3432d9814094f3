#pragma once
// The linkage of a recipient's releases (docs/security.md, "Releases that could be joined"): which
// key scope a release's pseudonyms belong to, and whether a new release keeps k over the join of
// everything the recipient holds in that scope. Extracts refuse a release that would not (422,
// rule "linkage"); the preview reports it for a named recipient.

#include <optional>
#include <string>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/api/release_lookup.hpp"
#include "json/canonical.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway/release/linkage.hpp"
#include "gateway/release/stream.hpp"

namespace custodian::api {

struct Services;

// The policy's linkage group: its own name, or — with `linkable_with` — the sorted names of the
// policy and those it names, joined by '+' ("research+survey"). Every policy of a group must exist
// in the dataset and name all the others in its current version; FailedPrecondition otherwise.
Result<std::string> linkageGroup(Services& services, const Lookup& found);

// The scope the ledger files a release under: the group, or "*" for a release keyed with
// derivation 1 (per dataset and recipient: every such release of the dataset joins every other).
std::string ledgerScope(const Lookup& found, const std::string& group);

struct LinkageReport {
    std::string scope;                                 // ledger scope
    std::vector<release::LedgerEntry> earlier;         // every release the recipient holds in it
    std::vector<release::LedgerEntry> checkedAgainst;  // one per other (policy, version) among them
    std::optional<release::JoinCheck> join;            // when there was something to join
    std::string problem;                               // an earlier release that cannot be rebuilt now

    // The earlier releases under another policy version than the one checked (what the ledger's
    // start compares: release/extract_store.hpp, LedgerRow::releasesChecked).
    uint64_t otherVersionCount = 0;

    bool refuses() const noexcept { return !problem.empty() || (join && !join->keepsK()); }
    std::string message() const;
    // {"scope", "earlier_releases": [...], "checked_against": [...], "identity_column", "k",
    //  "persons", "classes", "smallest_class", "persons_below_k", "keeps_k"} (docs/openapi.yaml, Linkage)
    json::JsonValue toJson() const;
};

// Rebuilds, on the data as it is now, the release of `found` with `context` and every earlier
// release `recipient` holds in `scope` under another policy or policy version, and joins them.
// Releases under the same policy version are not rebuilt: on the same data they show the same.
Result<LinkageReport> checkLinkage(Services& services, const Lookup& found, const std::string& recipient,
                                   const std::string& scope, const release::ReleaseContext& context,
                                   const release::SourceLocation& location);

}  // namespace custodian::api
