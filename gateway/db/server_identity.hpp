#pragma once
// Which database a connection reached, however it was named: the cluster's system identifier
// (pg_control_system(), fixed at initdb and shared by its physical replicas) and the database's
// OID. Two connections with equal identities read the same tables — by TCP, by a Unix socket, by
// any host name or port that leads there, or through a replica.
//
// The gateway refuses to treat its own database as an agency source (a publisher could otherwise
// release the audit log, the principals or the sealed source secrets): catalog probes and
// extracts compare the source's identity with the gateway's before they read anything.
//
// Privileges: pg_control_system() is executable by PUBLIC in PostgreSQL 9.6 to 17 and pg_database
// is readable by every role, so any login role can read its identity unless a DBA revoked EXECUTE.
// When the source's identity cannot be read the source is refused ("cannot tell" fails closed).

#include <pqxx/transaction_base>

#include <string>

#include "anonymizer/status.hpp"

namespace custodian::db {

struct ServerIdentity {
    std::string systemIdentifier;  // decimal text of pg_control_system().system_identifier
    std::string databaseOid;       // decimal text of pg_database.oid of current_database()
    bool operator==(const ServerIdentity&) const = default;
};

// Reads the identity of the database `tx` is connected to. Errors carry the server's message.
Result<ServerIdentity> readServerIdentity(pqxx::transaction_base& tx);

// The name of the rule that keeps sources out of the gateway's own database.
inline constexpr const char* kOwnDatabaseRule = "sources.own_database";

// OK if `tx` is connected to another database than the one `gateway` identifies; otherwise (or
// when the source's identity cannot be read) FailedPrecondition "sources.own_database: ...".
Status refuseOwnDatabase(pqxx::transaction_base& tx, const ServerIdentity& gateway);

}  // namespace custodian::db
