#include "gateway/db/server_identity.hpp"

#include <pqxx/pqxx>

namespace custodian::db {

Result<ServerIdentity> readServerIdentity(pqxx::transaction_base& tx) {
    try {
        pqxx::result r = tx.exec("SELECT (SELECT system_identifier FROM pg_control_system())::text, "
                                 "(SELECT oid FROM pg_database WHERE datname = current_database())::text");
        if (r.size() != 1 || r[0][0].is_null() || r[0][1].is_null())
            return failedPrecondition("the server did not report its system identifier and database OID");
        return ServerIdentity{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
    } catch (const std::exception& e) {
        std::string message = e.what();
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        return failedPrecondition(message);
    }
}

Status refuseOwnDatabase(pqxx::transaction_base& tx, const ServerIdentity& gateway) {
    auto source = readServerIdentity(tx);
    if (!source) {
        return failedPrecondition(std::string(kOwnDatabaseRule) +
                                  ": cannot tell whether the source is the gateway's own database, so it is refused "
                                  "(reading pg_control_system() and pg_database failed: " +
                                  source.status().message() +
                                  "); grant the source role EXECUTE on pg_control_system()");
    }
    if (*source == gateway) {
        return failedPrecondition(std::string(kOwnDatabaseRule) +
                                  ": the source is the gateway's own database (same cluster system identifier and "
                                  "database OID); register the agency's database instead");
    }
    return Status::ok();
}

}  // namespace custodian::db
