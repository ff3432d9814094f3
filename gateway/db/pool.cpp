#include "gateway/db/pool.hpp"

#include <pqxx/pqxx>

namespace custodian::db {

std::string withConnectTimeout(const std::string& conninfo, std::chrono::seconds timeout) {
    if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
    const std::string value = std::to_string(timeout.count());
    if (conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0)
        return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=" + value;
    return conninfo + " connect_timeout=" + value;
}

Status statusFromException(std::exception_ptr error, const std::string& context) {
    try {
        std::rethrow_exception(error);
    } catch (const pqxx::broken_connection& e) {
        return unavailable(context + ": database unreachable: " + e.what());
    } catch (const pqxx::sql_error& e) {
        return internalError(context + ": database error: " + e.what());
    } catch (const std::exception& e) {
        return internalError(context + ": " + e.what());
    } catch (...) {
        return internalError(context + ": unknown error");
    }
}

ConnectionPool::ConnectionPool(PoolOptions options)
    : options_(std::move(options)), conninfo_(withConnectTimeout(options_.conninfo, options_.connectTimeout)) {
    if (options_.size == 0) options_.size = 1;
    slots_.resize(options_.size);
    workers_.reserve(options_.size);
    for (size_t i = 0; i < options_.size; ++i) workers_.emplace_back([this] { workerLoop(); });
}

ConnectionPool::~ConnectionPool() {
    {
        std::lock_guard lock(jobsMutex_);
        stopping_ = true;
    }
    jobReady_.notify_all();
    for (auto& w : workers_) w.join();
}

void ConnectionPool::post(std::function<void()> job) {
    {
        std::lock_guard lock(jobsMutex_);
        jobs_.push_back(std::move(job));
    }
    jobReady_.notify_one();
}

void ConnectionPool::workerLoop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(jobsMutex_);
            jobReady_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stopping and drained
            job = std::move(jobs_.front());
            jobs_.pop_front();
            ++busyWorkers_;
        }
        job();
        std::lock_guard lock(jobsMutex_);
        --busyWorkers_;
    }
}

Status ConnectionPool::withConnection(const std::function<Status(pqxx::connection&)>& work) {
    size_t index = 0;
    {
        std::unique_lock lock(slotsMutex_);
        auto freeSlot = [&] {
            for (size_t i = 0; i < slots_.size(); ++i) {
                if (!slots_[i].inUse) {
                    index = i;
                    return true;
                }
            }
            return false;
        };
        ++waiting_;
        bool got = slotFreed_.wait_for(lock, options_.acquireTimeout, freeSlot);
        --waiting_;
        if (!got)
            return Status(StatusCode::Unavailable, "database pool exhausted: no connection free within " +
                                                       std::to_string(options_.acquireTimeout.count()) + " ms");
        slots_[index].inUse = true;
    }
    // The slot is ours: connect and run outside the lock.
    Slot& slot = slots_[index];
    Status result;
    try {
        if (!slot.connection || !slot.connection->is_open()) {
            slot.connection.reset();
            try {
                slot.connection = std::make_unique<pqxx::connection>(conninfo_);
            } catch (...) {
                connectFailures_.fetch_add(1, std::memory_order_relaxed);
                throw;
            }
        }
        result = work(*slot.connection);
    } catch (...) {
        result = statusFromException(std::current_exception(), "database");
        // After a broken connection (or anything unexpected) start afresh next time.
        if (result.code() == StatusCode::Unavailable || !slot.connection || !slot.connection->is_open())
            slot.connection.reset();
    }
    {
        std::lock_guard lock(slotsMutex_);
        slot.inUse = false;
    }
    slotFreed_.notify_one();
    return result;
}

PoolStats ConnectionPool::stats() const {
    PoolStats s;
    {
        std::lock_guard lock(slotsMutex_);
        s.size = slots_.size();
        for (const auto& slot : slots_) {
            if (slot.inUse) ++s.inUse;
            // Reading `connection` of a slot in use is not safe; count those as open.
            if (slot.inUse || slot.connection) ++s.open;
        }
        s.waiting = waiting_;
    }
    {
        std::lock_guard lock(jobsMutex_);
        s.queuedJobs = jobs_.size();
        s.busyWorkers = busyWorkers_;
    }
    s.connectFailures = connectFailures_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace custodian::db
