#include "gateway/db/readiness.hpp"

#include <pqxx/pqxx>

#include "gateway/db/pool.hpp"

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

// Whether the connected role may append to the audit log (migration 0002 creates both tables).
bool auditLogWritable(pqxx::connection& conn) {
    pqxx::nontransaction txn(conn);
    pqxx::result r = txn.exec(
        "SELECT to_regclass('audit_entries') IS NOT NULL AND to_regclass('audit_log_head') IS NOT NULL "
        "AND has_table_privilege('audit_entries', 'INSERT') AND has_table_privilege('audit_log_head', 'UPDATE')");
    return !r.empty() && r[0][0].as<bool>();
}

}  // namespace

void ReadinessMonitor::probeNow() {
    std::lock_guard probe(probeMutex_);
    try {
        if (!connection_ || !connection_->is_open()) {
            connection_.reset();
            connection_ = std::make_unique<pqxx::connection>(options_.conninfo);
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
        } else if (!auditLogWritable(*connection_)) {
            // Audited requests would fail closed with 503; say so before a load balancer sends any.
            setState(false, "the audit log is not writable: the gateway's role lacks INSERT on audit_entries or "
                            "UPDATE on audit_log_head");
        } else {
            setState(true, "");
        }
    } catch (...) {
        connection_.reset();
        setState(false, statusFromException(std::current_exception(), "readiness probe").message());
    }
}

}  // namespace custodian::db
