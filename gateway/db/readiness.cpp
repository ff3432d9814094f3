#include "gateway/db/readiness.hpp"

#include <pqxx/pqxx>

#include <algorithm>

#include "gateway/db/pool.hpp"
#include "gateway/db/roles.hpp"

namespace custodian::db {

ReadinessMonitor::ReadinessMonitor(ReadinessOptions options) : options_(std::move(options)) {
    probeNow();
    thread_ = std::thread([this] { loop(); });
}

ReadinessMonitor::~ReadinessMonitor() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

std::string ReadinessMonitor::reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
}

void ReadinessMonitor::setState(bool ready, std::string reason) {
    std::lock_guard lock(mutex_);
    reason_ = std::move(reason);
    ready_.store(ready, std::memory_order_release);
}

void ReadinessMonitor::loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, options_.interval, [&] { return stopping_; });
        if (stopping_) break;
        lock.unlock();
        probeNow();
        lock.lock();
    }
}

namespace {

// Why an audit append would fail right now, or "" if it would go through. Audited requests fail
// closed with 503 when the log cannot be written; readiness says so before a load balancer sends
// any. Two checks:
//  - the role may UPDATE the append counter (a privilege check: a trial update would queue behind
//    every appender for the counter's row lock);
//  - a trial INSERT of one entry row, rolled back, meets everything a real append meets: the INSERT
//    privilege, constraints and triggers, a read-only or failing database (disk full surfaces as an
//    error on the write). Its index is one no append will reach (2^63 - 1 - backend pid, distinct
//    per probing session), and it is never committed, so it leaves no entry behind.
std::string auditAppendBlocked(pqxx::connection& conn, std::chrono::milliseconds lockTimeout) {
    {
        pqxx::nontransaction txn(conn);
        pqxx::result r =
            txn.exec("SELECT to_regclass('audit_entries') IS NOT NULL AND to_regclass('audit_log_head') IS NOT NULL "
                     "AND has_table_privilege('audit_log_head', 'UPDATE')");
        if (r.empty() || !r[0][0].as<bool>()) return "the gateway's role lacks UPDATE on audit_log_head";
    }
    try {
        pqxx::work trial(conn);
        trial.exec("SET LOCAL lock_timeout TO " + std::to_string(std::max<int64_t>(lockTimeout.count(), 1)));
        trial.exec(
            "INSERT INTO audit_entries (entry_index, entry, leaf_hash, recorded_at, actor, role, action, decision) "
            "VALUES (9223372036854775807 - pg_backend_pid(), '\\x00'::bytea, decode(repeat('00', 32), 'hex'), now(), "
            "'readiness-probe', 'system', 'readiness.probe', 'probe')");
        trial.abort();
        return "";
    } catch (const pqxx::broken_connection&) {
        throw;  // unreachable, not unwritable: the caller reports it as such
    } catch (const pqxx::sql_error& e) { return std::string("a trial append failed: ") + e.what(); }
}

}  // namespace

void ReadinessMonitor::probeNow() {
    std::lock_guard probe(probeMutex_);
    try {
        if (!connection_ || !connection_->is_open()) {
            connection_.reset();
            auto fresh = std::make_unique<pqxx::connection>(options_.conninfo);
            if (options_.instanceLease > 0) {
                pqxx::nontransaction txn(*fresh);
                pqxx::result r =
                    txn.exec_params("SELECT pg_try_advisory_lock($1, $2)", kInstanceLeaseClass, options_.instanceLease);
                if (r.empty() || !r[0][0].as<bool>()) {
                    setState(false, "another session holds this gateway's instance lease " +
                                        std::to_string(options_.instanceLease));
                    return;
                }
            }
            connection_ = std::move(fresh);
        }
        {
            pqxx::nontransaction txn(*connection_);
            txn.exec("SELECT 1");
        }
        auto state = migrationState(*connection_, options_.migrations);
        if (state && !state->current() && options_.applyPending) {
            auto applied = applyMigrations(*connection_, options_.migrations);
            if (!applied) {
                setState(false, applied.status().message());
                return;
            }
            state = migrationState(*connection_, options_.migrations);
        }
        if (!state) {
            if (state.status().code() == StatusCode::Unavailable) connection_.reset();
            setState(false, state.status().message());
        } else if (!state->current()) {
            setState(false, std::to_string(state->pending.size()) + " migration(s) pending (run custodian migrate)");
        } else if (auto excess = options_.requireLeastPrivilege ? runtimeRoleExcess(*connection_)
                                                                : Result<std::string>(std::string());
                   !excess || !excess->empty()) {
            if (!excess && excess.status().code() == StatusCode::Unavailable) connection_.reset();
            setState(false, excess ? "the gateway's database role may rewrite the audit log: " + *excess
                                   : excess.status().message());
        } else if (std::string blocked = auditAppendBlocked(*connection_, options_.lockTimeout); !blocked.empty()) {
            setState(false, "the audit log is not writable: " + blocked);
        } else {
            setState(true, "");
        }
    } catch (...) {
        connection_.reset();
        setState(false, statusFromException(std::current_exception(), "readiness probe").message());
    }
}

}  // namespace custodian::db
