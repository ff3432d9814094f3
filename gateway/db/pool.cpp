#include "gateway/db/pool.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_acked (glibc's netinet/tcp.h lacks it)
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <string_view>

#include <pqxx/pqxx>

namespace custodian::db {
namespace {

// SQLSTATE lock_not_available: lock_timeout expired (or NOWAIT found the lock taken).
constexpr std::string_view kLockNotAvailable = "55P03";

// One TCP socket as the kernel sees it: which socket, and how many bytes the peer acknowledged.
struct WireMark {
    dev_t device = 0;
    ino_t inode = 0;
    uint64_t bytesAcked = 0;
};

// False when the kernel cannot tell (not a TCP socket, or a kernel without tcpi_bytes_acked).
bool readWireMark(int fd, WireMark& out) {
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    tcp_info info{};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return false;  // e.g. a Unix socket
    if (length < offsetof(tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked) return false;
    out = WireMark{st.st_dev, st.st_ino, info.tcpi_bytes_acked};
    return true;
}

// Watches the socket of a checked-out connection for the duration of one job. It holds its own
// duplicate of the descriptor because libpq closes its descriptor as soon as it sees the connection
// break, and the question "did the server acknowledge anything" is asked after that.
class SocketWatch {
public:
    SocketWatch() = default;
    ~SocketWatch() { release(); }
    SocketWatch(const SocketWatch&) = delete;
    SocketWatch& operator=(const SocketWatch&) = delete;

    void watch(pqxx::connection& conn) {
        release();
        if (const int fd = conn.sock(); fd >= 0) duplicate_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        known_ = readWireMark(duplicate_, before_);
    }

    // True if no byte sent since watch() was acknowledged by the server's TCP stack: it reached no
    // live session, so no statement sent since can have run. Reconnection inside libpqxx is
    // inhibited on pool connections, so every statement of a job goes over this one socket.
    bool nothingDelivered() const {
        WireMark after;
        return known_ && readWireMark(duplicate_, after) && after.inode == before_.inode &&
               after.device == before_.device && after.bytesAcked == before_.bytesAcked;
    }

private:
    void release() {
        if (duplicate_ >= 0) ::close(duplicate_);
        duplicate_ = -1;
        known_ = false;
    }
    int duplicate_ = -1;
    bool known_ = false;
    WireMark before_;
};

std::unique_ptr<pqxx::connection> openPoolConnection(const std::string& conninfo) {
    auto conn = std::make_unique<pqxx::connection>(conninfo);
    // libpqxx 6 silently reconnects a broken connection and re-issues BEGIN on the new session;
    // the pool replaces broken connections itself, and SocketWatch needs each job to stay on one
    // socket. The API is deprecated only because reactivation itself is going away in libpqxx 7.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    return conn;
}

}  // namespace

bool closedByServer(pqxx::connection& conn) {
    const int fd = conn.sock();
    if (fd < 0) return true;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    const int ready = ::poll(&p, 1, 0);
    return ready != 0;  // readable, hung up, in error — or poll itself failed: do not trust it
}

std::string withConnectTimeout(const std::string& conninfo, std::chrono::seconds timeout) {
    if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
    const std::string value = std::to_string(timeout.count());
    if (conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0)
        return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=" + value;
    return conninfo + " connect_timeout=" + value;
}

Status databaseUnavailable(std::string message) {
    return unavailable(std::move(message)).withReason(kDatabaseUnavailable);
}

Status statusFromException(std::exception_ptr error, const std::string& context) {
    try {
        std::rethrow_exception(error);
    } catch (const pqxx::broken_connection& e) {
        return databaseUnavailable(context + ": database unreachable: " + e.what());
    } catch (const pqxx::in_doubt_error& e) {
        // The connection was lost during COMMIT: the database went away; the transaction may or
        // may not have committed.
        return databaseUnavailable(context +
                                   ": the connection to the database was lost while committing; whether "
                                   "the change was stored is unknown: " +
                                   e.what());
    } catch (const pqxx::sql_error& e) {
        // Class 08 (connection exception) and 57P0x (the server is shutting down, restarting or
        // ended the session): the database went away, the statement was not at fault.
        const std::string& state = e.sqlstate();
        if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0)
            return databaseUnavailable(context + ": database unreachable: " + e.what());
        if (state == kLockNotAvailable)
            return unavailable(context +
                               ": a lock held by another database session was not released in time: " + e.what());
        return internalError(context + ": database error: " + e.what());
    } catch (const std::exception& e) { return internalError(context + ": " + e.what()); } catch (...) {
        return internalError(context + ": unknown error");
    }
}

bool isLockTimeout(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const pqxx::sql_error& e) { return e.sqlstate() == kLockNotAvailable; } catch (...) {
        return false;
    }
}

ConnectionPool::ConnectionPool(PoolOptions options)
    : options_(std::move(options)), conninfo_(withConnectTimeout(options_.conninfo, options_.connectTimeout)) {
    if (options_.size == 0) options_.size = 1;
    slots_.resize(options_.size);
    workers_.reserve(options_.size);
    runningWorkers_ = options_.size;
    for (size_t i = 0; i < options_.size; ++i) workers_.emplace_back([this] { workerLoop(); });
}

ConnectionPool::~ConnectionPool() { stopWorkers(); }

void ConnectionPool::stopWorkers() {
    {
        std::lock_guard lock(jobsMutex_);
        stopping_ = true;
    }
    jobReady_.notify_all();
    for (auto& w : workers_)
        if (w.joinable()) w.join();
}

void ConnectionPool::post(std::function<void()> job) {
    {
        std::lock_guard lock(jobsMutex_);
        // Workers drain the queue before they stop; once they have all stopped, a job runs here
        // rather than being dropped unseen.
        if (!stopping_ || runningWorkers_ > 0) {
            jobs_.push_back(std::move(job));
            job = nullptr;
        }
    }
    if (!job) {
        jobReady_.notify_one();
        return;
    }
    job();
}

void ConnectionPool::workerLoop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(jobsMutex_);
            jobReady_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) {  // stopping and drained
                --runningWorkers_;
                return;
            }
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
    for (int attempt = 0;; ++attempt) {
        bool reused = false;
        SocketWatch watch;
        try {
            if (slot.connection && (!slot.connection->is_open() || closedByServer(*slot.connection))) {
                if (slot.connection->is_open()) staleDiscarded_.fetch_add(1, std::memory_order_relaxed);
                slot.connection.reset();
            }
            reused = slot.connection != nullptr;
            if (!slot.connection) {
                try {
                    slot.connection = openPoolConnection(conninfo_);
                } catch (...) {
                    connectFailures_.fetch_add(1, std::memory_order_relaxed);
                    throw;
                }
            }
            if (reused) watch.watch(*slot.connection);
            result = work(*slot.connection);
        } catch (...) { result = statusFromException(std::current_exception(), "database"); }
        if (!slot.connection) break;  // could not connect
        if (!result.isOk() && !slot.connection->is_open() && result.reason() != kDatabaseUnavailable)
            // The job turned the lost connection into some other error (or failed as it broke).
            result = databaseUnavailable("database: the connection to the database was lost: " + result.message());
        if (slot.connection->is_open()) {
            // Unavailable with the connection still up (a timeout, say): start afresh next time.
            if (result.code() == StatusCode::Unavailable) slot.connection.reset();
            break;
        }
        // The connection broke during the job. Re-run it only when that is known to be harmless.
        slot.connection.reset();
        if (attempt > 0 || !reused || !watch.nothingDelivered()) break;
        jobsRetried_.fetch_add(1, std::memory_order_relaxed);
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
    s.staleDiscarded = staleDiscarded_.load(std::memory_order_relaxed);
    s.jobsRetried = jobsRetried_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace custodian::db
