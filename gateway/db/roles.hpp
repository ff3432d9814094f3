#pragma once
// Two database roles (docs/operations.md, "Database roles"):
//   owner    `custodian migrate` (database.owner_conninfo): creates and alters the schema, owns
//            every table, and grants the runtime role what `serve` needs — nothing more;
//   runtime  `custodian serve` and `custodian principal` (database.conninfo): reads and writes the
//            catalog, appends to the audit log (SELECT and INSERT on its tables, UPDATE of the
//            append counter only), and can neither own, alter, update, delete nor truncate it.
// `serve` refuses to run on a role that could rewrite the log (runtimeRoleExcess).

#include <pqxx/connection>

#include <string>

#include "anonymizer/status.hpp"

namespace custodian::db {

// The GRANT/REVOKE statements that give `role` exactly the runtime privileges on the current
// schema. Idempotent; `custodian migrate` runs them after every migration so that new tables are
// covered. `role` is quoted as an identifier.
std::string runtimeGrantSql(const std::string& role);

// Runs runtimeGrantSql(role) in one transaction on an owner connection.
Status grantRuntimeRole(pqxx::connection& owner, const std::string& role);

// The role a connection logs in as (current_user).
Result<std::string> currentRole(pqxx::connection& conn);

// Why the connection's role could rewrite the audit log — it is a superuser; it owns (or may act
// as the owner of) an audit table, the schema holding them or a trigger function guarding them; or
// it holds UPDATE, DELETE, TRUNCATE or TRIGGER where an append needs none — or "" when it cannot.
// Fails (Unavailable, Internal) only when the catalog cannot be read.
Result<std::string> runtimeRoleExcess(pqxx::connection& conn);

}  // namespace custodian::db
