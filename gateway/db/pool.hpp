#pragma once
// A libpqxx connection pool with its own worker threads.
//
// Network threads never touch the database: they post a job (post()) and resume when it finishes
// (gateway/http does this with a coroutine). Jobs run on the pool's worker threads, where blocking
// is allowed; a job takes a connection with withConnection() for as long as it needs it.
//
// Connections are created lazily and re-created after a failure: when the database goes away, the
// affected call returns Unavailable and the next call reconnects, so the gateway recovers on its
// own when the database comes back.
//
// Stale connections (the server restarted or terminated the session while the connection sat idle
// in the pool) must not cost a request its answer:
//   - at checkout, an idle connection whose socket is readable or hung up is discarded unused: an
//     idle session receives nothing unless the server is closing it (we never LISTEN);
//   - if a job fails because its connection broke and the server acknowledged none of the bytes the
//     job sent (TCP only: the kernel's count of acknowledged bytes did not move), nothing reached a
//     live session, so nothing can have been executed or committed: the job runs once more on a
//     fresh connection. A job that got anything through to the server is never re-run; its failure
//     is returned (Unavailable), since whether its statements committed is unknown.
//
// Thread-safety: every member function may be called from any thread.

#include <pqxx/connection>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::db {

struct PoolOptions {
    std::string conninfo;
    size_t size = 4;  // connections and worker threads
    std::chrono::seconds connectTimeout{5};
    std::chrono::milliseconds acquireTimeout{5000};
};

struct PoolStats {
    size_t size = 0;         // maximum connections
    size_t inUse = 0;        // connections checked out
    size_t open = 0;         // connections currently established
    size_t waiting = 0;      // callers waiting for a connection
    size_t queuedJobs = 0;   // jobs posted and not yet started
    size_t busyWorkers = 0;  // worker threads running a job
    uint64_t connectFailures = 0;
    uint64_t staleDiscarded = 0;  // idle connections found closed by the server at checkout
    uint64_t jobsRetried = 0;     // jobs re-run on a fresh connection (see above)
};

// True if the server has closed (or is closing) this idle connection: its socket is readable or hung
// up while no query is outstanding. Never blocks. Also used by the audit log's own connections.
bool closedByServer(pqxx::connection& conn);

// Adds connect_timeout to a conninfo string (keyword=value or URI form) unless it sets one.
std::string withConnectTimeout(const std::string& conninfo, std::chrono::seconds timeout);

// The reason (Status::reason()) of every loss of the gateway's database: the connection broke, the
// server went away or is starting, or a commit was cut off. Error responses carry it as their code
// (503 with Retry-After, docs/operations.md).
inline constexpr const char* kDatabaseUnavailable = "database_unavailable";
Status databaseUnavailable(std::string message);

// Turns an exception thrown by libpqxx (or anything else) into a Status. Broken connections, a
// server going away or not yet accepting connections, and a commit whose connection was lost
// (pqxx::in_doubt_error: whether it committed is unknown) are databaseUnavailable(); a lock wait
// cut short by lock_timeout is Unavailable (transient: the statement was not at fault); other SQL
// errors are Internal with the server's message.
Status statusFromException(std::exception_ptr error, const std::string& context);

// True if `error` is PostgreSQL's lock_not_available (SQLSTATE 55P03): lock_timeout expired while
// waiting for a lock another session holds (or a NOWAIT lock was taken).
bool isLockTimeout(std::exception_ptr error);

class ConnectionPool {
public:
    explicit ConnectionPool(PoolOptions options);
    ~ConnectionPool();  // finishes queued jobs, then joins the workers
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    // Runs `work` with an exclusive, open connection; blocks the calling thread (call it from a
    // worker job or from the command line, never from a network thread). Exceptions thrown by
    // `work` become a Status; after a broken connection the connection is discarded. Whatever
    // `work` made of it, a failure whose connection is no longer open is the loss of the database:
    // databaseUnavailable() (so is a connection that cannot be made).
    // `work` may be called a second time, on a fresh connection, when its first call broke down
    // before the server received anything from it (see the top of this file): it must leave its
    // outputs in a state a second call overwrites.
    Status withConnection(const std::function<Status(pqxx::connection&)>& work);

    // Queues `job` for a worker thread and returns at once. Jobs run in FIFO order on `size`
    // workers. A job must not throw. After stopWorkers() has returned, `job` runs on the caller.
    void post(std::function<void()> job);

    // Runs every queued job, then stops and joins the workers (the destructor does it too). The
    // owner of what jobs use calls it before destroying any of that (GatewayRuntime).
    void stopWorkers();

    PoolStats stats() const;
    const PoolOptions& options() const { return options_; }

private:
    struct Slot {
        std::unique_ptr<pqxx::connection> connection;
        bool inUse = false;
    };
    void workerLoop();

    PoolOptions options_;
    std::string conninfo_;

    mutable std::mutex slotsMutex_;
    std::condition_variable slotFreed_;
    std::vector<Slot> slots_;
    size_t waiting_ = 0;
    std::atomic<uint64_t> connectFailures_{0};
    std::atomic<uint64_t> staleDiscarded_{0};
    std::atomic<uint64_t> jobsRetried_{0};

    mutable std::mutex jobsMutex_;
    std::condition_variable jobReady_;
    std::deque<std::function<void()>> jobs_;
    size_t busyWorkers_ = 0;
    size_t runningWorkers_ = 0;  // worker threads that have not returned
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

}  // namespace custodian::db
