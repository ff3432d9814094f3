#include "gateway/auth/groups.hpp"

#include <pqxx/pqxx>

#include <map>

#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway/db/guarded.hpp"

namespace custodian::auth {

using db::guarded;

namespace {

constexpr size_t kMaxDescriptionBytes = 1000;

std::string iso(const std::string& column) {
    return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

Status noGroup(std::string_view name) { return notFound("no group named '" + std::string(name) + "'"); }

}  // namespace

Status validateGroupName(std::string_view name) {
    if (name.empty() || name.size() > 128) return invalidArgument("a group name has 1 to 128 characters");
    if (!validatePrincipalName(name).isOk())
        return invalidArgument("group name '" + json::sanitizeUtf8(name) +
                               "': use letters, digits and . _ @ - (starting with a letter or digit)");
    return Status::ok();
}

Status validateGroupDescription(std::string_view description) {
    if (description.size() > kMaxDescriptionBytes)
        return invalidArgument("a group description has at most " + std::to_string(kMaxDescriptionBytes) + " bytes");
    if (!json::isValidUtf8(description)) return invalidArgument("a group description must be UTF-8 text");
    for (unsigned char c : description)
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            return invalidArgument("a group description must not contain control characters");
    return Status::ok();
}

Result<bool> putGroup(pqxx::connection& conn, const std::string& name, const std::string& description,
                      const std::string& actor, const GroupChangeHook& beforeCommit) {
    if (Status s = validateGroupName(name); !s) return s;
    if (Status s = validateGroupDescription(description); !s) return s;
    return guarded<bool>("storing group", [&]() -> Result<bool> {
        pqxx::work tx(conn);
        // xmax = 0 only for a freshly inserted row: tells creation from update in one statement,
        // without a check-then-insert race between gateway processes.
        pqxx::result r =
            tx.exec_params("INSERT INTO principal_groups (name, description, created_by) VALUES ($1, $2, $3) "
                           "ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, updated_at = now() "
                           "RETURNING (xmax = 0)",
                           name, description, actor);
        GroupChange change;
        change.action = "group.put";
        change.group = name;
        change.created = r[0][0].as<bool>();
        if (Status s = beforeCommit(change); !s) return s;  // rolls back
        tx.commit();
        return change.created;
    });
}

Status deleteGroup(pqxx::connection& conn, const std::string& name, const GroupChangeHook& beforeCommit) {
    auto done = guarded<bool>("deleting group", [&]() -> Result<bool> {
        pqxx::work tx(conn);
        pqxx::result g = tx.exec_params("SELECT 1 FROM principal_groups WHERE name = $1 FOR UPDATE", name);
        if (g.empty()) return noGroup(name);
        // The current versions of policies in force that name the group. Stored documents passed the
        // loader (valid JSON without duplicate members), so jsonb reads them exactly.
        pqxx::result users = tx.exec_params(
            "SELECT p.dataset || '/' || p.name FROM policies p JOIN policy_versions v ON v.dataset = p.dataset AND "
            "v.name = p.name AND v.version = p.current_version WHERE p.retired_at IS NULL AND "
            "(v.document::jsonb -> 'recipients') ? $1 ORDER BY 1",
            std::string(kGroupRecipientPrefix) + name);
        if (!users.empty()) {
            std::string list;
            for (const auto& row : users) list += (list.empty() ? "" : ", ") + row[0].as<std::string>();
            return Status(StatusCode::Aborted, "the group '" + name + "' is a recipient of policies in force (" + list +
                                                   "); retire or update them first");
        }
        tx.exec_params("DELETE FROM principal_groups WHERE name = $1", name);
        GroupChange change;
        change.action = "group.delete";
        change.group = name;
        if (Status s = beforeCommit(change); !s) return s;
        tx.commit();
        return true;
    });
    return done ? Status::ok() : done.status();
}

Result<bool> addGroupMember(pqxx::connection& conn, const std::string& group, const std::string& principal,
                            const std::string& actor, const GroupChangeHook& beforeCommit) {
    return guarded<bool>("adding group member", [&]() -> Result<bool> {
        pqxx::work tx(conn);
        // FOR SHARE: the group cannot be deleted, nor the principal disabled, until we commit.
        if (tx.exec_params("SELECT 1 FROM principal_groups WHERE name = $1 FOR SHARE", group).empty())
            return noGroup(group);
        pqxx::result p = tx.exec_params(
            "SELECT id, role, disabled_at IS NOT NULL FROM principals WHERE name = $1 FOR SHARE", principal);
        if (p.empty()) return notFound("no principal named '" + principal + "'");
        const std::string role = p[0][1].as<std::string>();
        if (role != roleName(Role::Partner))
            return failedPrecondition("only partners can be group members; '" + principal + "' is " +
                                      (role == "admin" || role == "auditor" ? "an " : "a ") + role);
        if (p[0][2].as<bool>()) return failedPrecondition("the partner '" + principal + "' is disabled");
        pqxx::result added = tx.exec_params(
            "INSERT INTO principal_group_members (group_name, principal_id, added_by) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            group, p[0][0].as<int64_t>(), actor);
        GroupChange change;
        change.action = "group.member.add";
        change.group = group;
        change.member = principal;
        change.changed = !added.empty();
        if (Status s = beforeCommit(change); !s) return s;
        tx.commit();
        return change.changed;
    });
}

Status removeGroupMember(pqxx::connection& conn, const std::string& group, const std::string& principal,
                         const GroupChangeHook& beforeCommit) {
    auto done = guarded<bool>("removing group member", [&]() -> Result<bool> {
        pqxx::work tx(conn);
        if (tx.exec_params("SELECT 1 FROM principal_groups WHERE name = $1 FOR SHARE", group).empty())
            return noGroup(group);
        pqxx::result removed =
            tx.exec_params("DELETE FROM principal_group_members m USING principals p WHERE m.group_name = $1 AND "
                           "m.principal_id = p.id AND p.name = $2 RETURNING 1",
                           group, principal);
        if (removed.empty()) return notFound("'" + principal + "' is not a member of the group '" + group + "'");
        GroupChange change;
        change.action = "group.member.remove";
        change.group = group;
        change.member = principal;
        if (Status s = beforeCommit(change); !s) return s;
        tx.commit();
        return true;
    });
    return done ? Status::ok() : done.status();
}

namespace {

// Groups (optionally one) with their members, in two read-committed queries: a change that commits
// between them may show only in the next read.
std::vector<Group> readGroups(pqxx::transaction_base& tx, const std::optional<std::string>& only) {
    const std::string groupSql = "SELECT name, description, created_by, " + iso("created_at") + ", " +
                                 iso("updated_at") + " FROM principal_groups";
    pqxx::result g = only ? tx.exec_params(groupSql + " WHERE name = $1", *only) : tx.exec(groupSql + " ORDER BY name");
    std::vector<Group> out;
    for (const auto& row : g) {
        out.push_back({row[0].as<std::string>(),
                       row[1].as<std::string>(),
                       row[2].as<std::string>(),
                       row[3].as<std::string>(),
                       row[4].as<std::string>(),
                       {}});
    }
    const std::string memberSql = "SELECT m.group_name, p.name, p.disabled_at IS NOT NULL, m.added_by, " +
                                  iso("m.added_at") +
                                  " FROM principal_group_members m JOIN principals p ON p.id = m.principal_id";
    pqxx::result m = only ? tx.exec_params(memberSql + " WHERE m.group_name = $1 ORDER BY p.name", *only)
                          : tx.exec(memberSql + " ORDER BY m.group_name, p.name");
    std::map<std::string, size_t, std::less<>> indexOf;
    for (size_t i = 0; i < out.size(); ++i) indexOf.emplace(out[i].name, i);
    for (const auto& row : m) {
        auto it = indexOf.find(row[0].as<std::string>());
        if (it == indexOf.end()) continue;  // a group created between the two queries
        out[it->second].members.push_back(
            {row[1].as<std::string>(), row[2].as<bool>(), row[3].as<std::string>(), row[4].as<std::string>()});
    }
    return out;
}

}  // namespace

Result<std::vector<Group>> listGroups(pqxx::connection& conn) {
    return guarded<std::vector<Group>>("listing groups", [&]() -> Result<std::vector<Group>> {
        pqxx::read_transaction tx(conn);
        auto groups = readGroups(tx, std::nullopt);
        tx.commit();
        return groups;
    });
}

Result<Group> findGroup(pqxx::connection& conn, std::string_view name) {
    return guarded<Group>("reading group", [&]() -> Result<Group> {
        pqxx::read_transaction tx(conn);
        auto groups = readGroups(tx, std::string(name));
        tx.commit();
        if (groups.empty()) return noGroup(name);
        return std::move(groups.front());
    });
}

Result<std::vector<std::string>> groupsOfPrincipal(pqxx::connection& conn, std::string_view principal) {
    return guarded<std::vector<std::string>>("reading group memberships", [&]() -> Result<std::vector<std::string>> {
        static const std::string sql = std::string(kGroupsOfPrincipalSql) + " ORDER BY m.group_name";
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec_params(sql, std::string(principal));
        tx.commit();
        std::vector<std::string> out;
        for (const auto& row : r) out.push_back(row[0].as<std::string>());
        return out;
    });
}

Result<std::set<std::string, std::less<>>> groupNames(pqxx::connection& conn) {
    return guarded<std::set<std::string, std::less<>>>(
        "listing groups", [&]() -> Result<std::set<std::string, std::less<>>> {
            pqxx::read_transaction tx(conn);
            pqxx::result r = tx.exec("SELECT name FROM principal_groups");
            tx.commit();
            std::set<std::string, std::less<>> out;
            for (const auto& row : r) out.insert(row[0].as<std::string>());
            return out;
        });
}

}  // namespace custodian::auth
