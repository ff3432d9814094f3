#pragma once
// Extracts interrupted by the death of the process streaming them.
//
// An extract gets its row (status 'preparing', with "extract.requested" in the audit log) before
// the source is read, is set 'requested' just before its first byte, and is finished by the process
// serving it: "extract.completed" or "extract.aborted". A process killed with SIGKILL, or a machine
// that loses power, finishes nothing; without a sweeper those extracts would stay open forever and
// the log would never say what became of them.
//
// Every gateway process has a random instance number (Services::instance), stored in the extracts
// it streams, and holds the session advisory lock (db::kInstanceLeaseClass, instance) on its
// readiness connection while it runs. Every `release.sweep_interval_ms` the sweeper lists the
// extracts still 'preparing' or 'requested' whose instance holds no lock
// (gateway/release/extract_store.hpp) and records each one that was already listed by the previous
// sweep: "extract.aborted" with decision "interrupted", then the row 'not_released' (it was still
// preparing) or 'aborted', in one transaction that holds the row so two gateways never
// both record it (ExtractLifecycle::closeInterrupted, extract_lifecycle.hpp). Waiting for two sweeps in a row gives a
// live process whose readiness connection dropped at least one interval to take its lock again. Several gateways on one
// database are safe: a process never sweeps another's extracts while that one's lock is held.
//
// Its own extracts a process closes the same way (decision "interrupted", one entry, the row held)
// once the database is back, when their request has ended without closing them — a database
// outage cut it, so neither the closing entry nor the row update could be written — and at once:
// Services::liveExtracts (live_extracts.hpp) tells the ones whose request is over from the ones
// still being prepared or streamed, which are never touched.
//
// Thread-safety: one thread (the sweeper's own, or a test calling sweepOnce() with no thread).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "anonymizer/status.hpp"

namespace custodian::release {
struct ExtractRecord;
}

namespace custodian::api {

struct Services;

class ExtractSweeper {
public:
    // Does not start a thread; start() does.
    ExtractSweeper(Services& services, int32_t instance, std::chrono::milliseconds interval);
    ~ExtractSweeper();  // stops the thread
    ExtractSweeper(const ExtractSweeper&) = delete;
    ExtractSweeper& operator=(const ExtractSweeper&) = delete;

    void start();
    // One sweep: the number of extracts recorded as interrupted. Does nothing while the gateway is
    // not ready (the audit log would refuse the entries).
    Result<size_t> sweepOnce();

private:
    void loop();
    // Closes one extract (`own`: of this process, whose request has ended); counts it in `swept`.
    Status close(const release::ExtractRecord& extract, bool own, size_t& swept);

    Services& services_;
    int32_t instance_;
    std::chrono::milliseconds interval_;
    std::set<std::string> suspects_;  // listed by the previous sweep
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace custodian::api
