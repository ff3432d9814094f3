#pragma once
// The join a recipient can make of the releases it holds (docs/security.md, "Releases that could
// be joined"). Releases in one key scope — one policy, or a linkage group of policies that name
// each other in `linkable_with` — carry the same pseudonyms for the same person, so a recipient can
// join them on a pseudonymized column, and can also tell which persons are in one release and not
// in another (two row filters). The check rebuilds what each release lets the recipient see (its
// released rows, as the release pipeline produces them now) and counts the classes of the join:
// every person the recipient holds falls into the class of the released quasi-identifier values
// it has from each release, and "absent" from the releases it is not in. Every class must keep k.
//
// No network or database code: the caller prepares the releases (gateway/api/linkage.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "anonymizer/privacy_model.hpp"
#include "anonymizer/status.hpp"
#include "json/canonical.hpp"
#include "gateway/release/stream.hpp"

namespace custodian::release {

// What one release lets its recipient see, per released row: its pseudonyms and the released values
// of its quasi-identifiers.
struct ReleasedView {
    std::vector<std::string> pseudonymColumns;  // the policy's pseudonymized columns, sorted
    uint64_t k = 1;                             // the policy's k (1 without one)
    // Per pseudonymized column: pseudonym → the row's quasi-identifier values (joined by '\x1f').
    std::unordered_map<std::string, std::unordered_map<std::string, std::string>> byPseudonym;
    // With l-diversity or t-closeness: the policy's models, and per pseudonymized column, pseudonym
    // → the row's released sensitive values (one per released sensitive attribute, in plan order),
    // and each attribute's t-closeness distance.
    std::optional<anon::LDiversity> lDiversity;
    std::optional<anon::TCloseness> tCloseness;
    std::vector<anon::TClosenessDistance> sensitiveDistance;
    std::unordered_map<std::string, std::unordered_map<std::string, std::vector<std::string>>> sensitiveOf;
    uint64_t rows = 0;
};

// Streams a prepared (not started) release of NDJSON to its end, keeping only what the recipient
// could join on: FailedPrecondition when its models cannot be met on the data as it is now.
Result<ReleasedView> collectReleasedView(ReleaseStream& stream);

struct JoinCheck {
    std::string identityColumn;  // the pseudonymized column the join goes through ("" when none)
    std::vector<size_t> joined;  // the views joined (index into the argument; the first is always there)
    uint64_t k = 1;              // the largest k of the views joined
    uint64_t persons = 0;        // persons in at least one view joined
    uint64_t classes = 0;
    uint64_t smallestClass = 0;  // 0 when nobody is in any view
    // Persons in classes smaller than the largest k of the releases they are in: every release's k
    // must hold for its persons over the join.
    uint64_t personsBelowK = 0;
    // Persons in classes where a release they are in declares l-diversity and a sensitive attribute
    // of its falls short of it over the join.
    uint64_t personsNotLDiverse = 0;
    // The same for t-closeness: a class's distribution of a sensitive attribute further than t (Earth
    // Mover's Distance) from that release's distribution over all its rows.
    uint64_t personsNotTClose = 0;
    bool keepsK() const noexcept { return personsBelowK == 0 && personsNotLDiverse == 0 && personsNotTClose == 0; }
};

// The join of views[0] (the new release) with every other view that pseudonymizes the same column.
// The column is the first (by name) that views[0] pseudonymizes and at least one other view does;
// views that do not pseudonymize it cannot be joined on it and are left out.
JoinCheck checkJoin(const std::vector<const ReleasedView*>& views);

// What a release discloses, as the ledger keeps it (migrations/0010_release_ledger.sql): the
// algorithm, the quasi-identifiers with their levels (or the Mondrian partitioning), the
// pseudonymized columns and the row filter.
json::JsonValue disclosedBy(const ReleaseStream& stream);

}  // namespace custodian::release
