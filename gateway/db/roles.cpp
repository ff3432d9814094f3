#include "gateway/db/roles.hpp"

#include <pqxx/pqxx>

#include "gateway/db/guarded.hpp"

namespace custodian::db {

namespace {

std::string quoteIdentifier(const std::string& name) {
    std::string out = "\"";
    for (char ch : name) {
        if (ch == '"') out += '"';
        out += ch;
    }
    return out + "\"";
}

}  // namespace

std::string runtimeGrantSql(const std::string& role) {
    const std::string r = quoteIdentifier(role);
    return "GRANT USAGE ON SCHEMA public TO " + r +
           ";\n"
           "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " +
           r +
           ";\n"
           "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " +
           r +
           ";\n"
           "REVOKE CREATE ON SCHEMA public FROM " +
           r +
           ";\n"
           "REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM " +
           r +
           ";\n"
           // The log itself: read and append, never change.
           "REVOKE UPDATE, DELETE ON audit_entries, audit_tree_heads FROM " +
           r +
           ";\n"
           // The append counter: only moved forward (its trigger refuses anything else).
           "REVOKE INSERT, DELETE ON audit_log_head FROM " +
           r +
           ";\n"
           // Which migrations ran is the owner's record.
           "REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM " +
           r + ";\n";
}

Status grantRuntimeRole(pqxx::connection& owner, const std::string& role) {
    return guarded<bool>("granting the runtime role " + role,
                         [&]() -> Result<bool> {
                             pqxx::work txn(owner);
                             txn.exec(runtimeGrantSql(role));
                             txn.commit();
                             return true;
                         })
        .status();
}

Result<std::string> currentRole(pqxx::connection& conn) {
    return guarded<std::string>("reading the database role", [&]() -> Result<std::string> {
        pqxx::nontransaction txn(conn);
        return txn.exec("SELECT current_user::text")[0][0].as<std::string>();
    });
}

Result<std::string> runtimeRoleExcess(pqxx::connection& conn) {
    return guarded<std::string>("checking the gateway's database role", [&]() -> Result<std::string> {
        pqxx::nontransaction txn(conn);
        pqxx::result who = txn.exec("SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user");
        const std::string role = who.empty() ? std::string("?") : who[0][0].as<std::string>();
        const std::string prefix = "the database role \"" + role + "\" ";
        if (!who.empty() && who[0][1].as<bool>()) return prefix + "is a superuser";
        // Each audit table: its owner, its schema's owner (who may drop it), and privileges beyond an
        // append. The counter row needs UPDATE; the entries and heads need none.
        pqxx::result tables =
            txn.exec("SELECT c.relname::text, pg_has_role(current_user, c.relowner, 'MEMBER'), "
                     "       pg_has_role(current_user, n.nspowner, 'MEMBER'), n.nspname::text, "
                     "       has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'), "
                     "       has_table_privilege(c.oid, 'TRUNCATE'), has_table_privilege(c.oid, 'TRIGGER') "
                     "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE c.oid IN (to_regclass('audit_entries'), to_regclass('audit_tree_heads'), "
                     "                to_regclass('audit_log_head')) "
                     "ORDER BY c.relname");
        for (const auto& row : tables) {
            const std::string table = row[0].as<std::string>();
            if (row[1].as<bool>())
                return prefix + "owns " + table + " (or is a member of its owner) and could alter or drop it";
            if (row[2].as<bool>())
                return prefix + "owns the schema " + row[3].as<std::string>() + " that holds " + table +
                       " and could drop it";
            const bool counter = table == "audit_log_head";
            const char* names[] = {"UPDATE", "DELETE", "TRUNCATE", "TRIGGER"};
            for (int i = 0; i < 4; ++i) {
                if (i == 0 && counter) continue;
                if (row[4 + i].as<bool>()) return prefix + "holds " + names[i] + " on " + table;
            }
        }
        // The trigger functions that make the tables append-only: their owner could replace them.
        pqxx::result functions =
            txn.exec("SELECT p.proname::text FROM pg_proc p "
                     "WHERE p.proname IN ('audit_reject_change', 'audit_head_forward_only') "
                     "  AND pg_has_role(current_user, p.proowner, 'MEMBER') ORDER BY p.proname LIMIT 1");
        if (!functions.empty())
            return prefix + "owns the trigger function " + functions[0][0].as<std::string>() +
                   " that keeps the audit log append-only and could replace it";
        return std::string();
    });
}

}  // namespace custodian::db
