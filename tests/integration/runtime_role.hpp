#pragma once
// The gateway's runtime database role for tests that run `custodian serve` (which refuses a
// superuser): a login role `<db>_rt` with no privileges of its own. `custodian migrate` with
// database.owner_conninfo grants it; tests that apply the migrations in-process call grant(), which
// runs the same statements. Roles are cluster-wide, so the destructor drops this one's privileges
// in the test database and then the role.

#include <string>

#include "gateway/db/roles.hpp"
#include "support/pg_cluster.hpp"

namespace custodian::testing {

class RuntimeRole {
public:
    explicit RuntimeRole(const TestDatabase& db) : admin_(db.conninfo()), name_(db.name() + "_rt") {
        runPsql(admin_, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + name_ +
                            "') THEN CREATE ROLE \"" + name_ + "\" LOGIN; END IF; END $$;");
    }
    ~RuntimeRole() {
        try {
            runPsql(admin_, "DROP OWNED BY \"" + name_ + "\"; DROP ROLE \"" + name_ + "\";");
        } catch (...) {}
    }
    RuntimeRole(const RuntimeRole&) = delete;
    RuntimeRole& operator=(const RuntimeRole&) = delete;

    const std::string& name() const { return name_; }
    // The test database as this role (a later keyword wins in a libpq conninfo).
    std::string conninfo() const { return admin_ + " user=" + name_; }
    // What `custodian migrate` grants, for tests that applied the migrations themselves.
    void grant() const { runPsql(admin_, db::runtimeGrantSql(name_)); }

private:
    std::string admin_;
    std::string name_;
};

}  // namespace custodian::testing
