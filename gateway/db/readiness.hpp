#pragma once
// Readiness: a background thread that probes the database on its own connection (so a busy pool
// never delays the answer) and checks that the schema is current and that an audit append would go
// through (a rolled-back trial insert: see readiness.cpp). GET /readyz reads the last
// result without blocking. When the database comes back the next probe reconnects, and pending
// migrations are applied if `applyPending` is set, so the gateway recovers without a restart.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/db/migrations.hpp"

namespace custodian::db {

// The first key of the session advisory locks that say a gateway process is alive ("cusi"); the
// second is the process's instance number (migrations/0005_extract_instances.sql).
constexpr int32_t kInstanceLeaseClass = 1668641641;

struct ReadinessOptions {
    std::string conninfo;  // with connect_timeout already applied
    std::chrono::milliseconds interval{1000};
    std::vector<Migration> migrations;
    bool applyPending = true;
    // Not ready while the role could rewrite the audit log (db::runtimeRoleExcess): a grant added
    // after start takes the gateway out of rotation.
    bool requireLeastPrivilege = false;
    // When positive: the monitor's connection holds the advisory lock (kInstanceLeaseClass,
    // instanceLease) for as long as it is open, and takes it again after reconnecting. Other
    // gateways read it as "this process is alive" (gateway/api/extract_sweeper.hpp).
    int32_t instanceLease = 0;
    // Longest wait of the trial append for a lock another session holds (audit.lock_timeout_ms):
    // a probe never hangs behind a LOCK TABLE, it reports the log unwritable.
    std::chrono::milliseconds lockTimeout{5000};
};

class ReadinessMonitor {
public:
    explicit ReadinessMonitor(ReadinessOptions options);  // probes once, then starts the thread
    ~ReadinessMonitor();
    ReadinessMonitor(const ReadinessMonitor&) = delete;
    ReadinessMonitor& operator=(const ReadinessMonitor&) = delete;

    bool ready() const { return ready_.load(std::memory_order_acquire); }
    std::string reason() const;  // why not ready; empty when ready
    void probeNow();             // runs one probe on the calling thread (tests, start-up)

private:
    void loop();
    void setState(bool ready, std::string reason);

    ReadinessOptions options_;
    std::atomic<bool> ready_{false};
    mutable std::mutex mutex_;
    std::string reason_ = "not probed yet";
    std::mutex probeMutex_;  // serialises probes (thread and probeNow)
    std::unique_ptr<pqxx::connection> connection_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace custodian::db
