#pragma once
// Named groups of partner principals (migrations/0004_groups.sql). A policy names a group as the
// recipient "group:NAME"; a partner is a recipient through the group while it is a member.
//
// Membership is read from the database on every request that needs it (extract authorization, the
// partner catalog), never cached, so a change takes effect at once in every gateway process.
//
// Rules: group names follow the principal name rules (validateGroupName); only enabled partners
// can be added (they are the only role that receives extracts); a group that a policy in force
// (not retired, current version) names cannot be deleted — retire or update those policies first.
//
// Audit before commit: each change calls `beforeCommit` with its facts after the rows are written
// and before COMMIT; if that fails (the audit entry could not be written) the change is rolled
// back, so no membership change is ever in effect without its audit entry.
//
// Each function runs its own transaction on `conn` (no transaction may be open on it) and turns
// libpqxx exceptions into Status: NotFound for an absent group or principal, FailedPrecondition or
// Aborted for a rule above (see each function), Unavailable for a lost database.

#include <pqxx/connection>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::auth {

// The names of the groups of the principal named $1 (one column, group_name), as SQL for the
// statements that read memberships together with other facts.
inline constexpr char kGroupsOfPrincipalSql[] =
    "SELECT m.group_name FROM principal_group_members m JOIN principals p ON p.id = m.principal_id "
    "WHERE p.name = $1";

// The prefix that marks a group among a policy's recipients.
inline constexpr std::string_view kGroupRecipientPrefix = "group:";

struct GroupMember {
    std::string name;
    bool disabled = false;  // a disabled partner stays listed but cannot authenticate
    std::string addedBy;
    std::string addedAt;  // ISO 8601 UTC
};

struct Group {
    std::string name;
    std::string description;
    std::string createdBy;
    std::string createdAt;  // ISO 8601 UTC
    std::string updatedAt;
    std::vector<GroupMember> members;  // by name
};

// A change, for the audit entry.
struct GroupChange {
    std::string action;  // "group.put", "group.delete", "group.member.add", "group.member.remove"
    std::string group;
    std::optional<std::string> member;  // the partner added or removed
    bool changed = true;                // false: the request asked for the state that already held
    bool created = false;               // group.put: the group is new
};
using GroupChangeHook = std::function<Status(const GroupChange&)>;

// Group names: the principal name rules (1–128 of [A-Za-z0-9._@-], starting with a letter or digit).
Status validateGroupName(std::string_view name);
// Descriptions: at most 1000 bytes of UTF-8 without control characters other than tab and newline.
Status validateGroupDescription(std::string_view description);

// Creates the group or updates its description. Returns true if it was created.
Result<bool> putGroup(pqxx::connection& conn, const std::string& name, const std::string& description,
                      const std::string& actor, const GroupChangeHook& beforeCommit);

// Deletes the group and its memberships. NotFound if absent; Aborted (a conflict) naming the
// policies in force that list "group:NAME" as a recipient.
Status deleteGroup(pqxx::connection& conn, const std::string& name, const GroupChangeHook& beforeCommit);

// Adds the partner `principal` to the group. Returns false if it already was a member (nothing is
// written, but the hook still sees the request with changed = false). NotFound for an absent group
// or principal; FailedPrecondition for a principal that is not an enabled partner.
Result<bool> addGroupMember(pqxx::connection& conn, const std::string& group, const std::string& principal,
                            const std::string& actor, const GroupChangeHook& beforeCommit);

// Removes `principal` from the group. NotFound if the group is absent or the principal is not a
// member.
Status removeGroupMember(pqxx::connection& conn, const std::string& group, const std::string& principal,
                         const GroupChangeHook& beforeCommit);

Result<std::vector<Group>> listGroups(pqxx::connection& conn);
Result<Group> findGroup(pqxx::connection& conn, std::string_view name);

// The groups `principal` is a member of, by name (empty for an unknown principal).
Result<std::vector<std::string>> groupsOfPrincipal(pqxx::connection& conn, std::string_view principal);

// Every group name, for policy validation ("group:NAME" recipients must exist).
Result<std::set<std::string, std::less<>>> groupNames(pqxx::connection& conn);

}  // namespace custodian::auth
