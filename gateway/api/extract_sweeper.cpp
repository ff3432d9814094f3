#include "gateway/api/extract_sweeper.hpp"

#include <cstdio>

#include <pqxx/pqxx>

#include "gateway/api/extract_lifecycle.hpp"
#include "gateway/api/services.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway/release/live_extracts.hpp"

namespace custodian::api {

ExtractSweeper::ExtractSweeper(Services& services, int32_t instance, std::chrono::milliseconds interval)
    : services_(services), instance_(instance), interval_(interval) {}

ExtractSweeper::~ExtractSweeper() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ExtractSweeper::start() {
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void ExtractSweeper::loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait_for(lock, interval_, [&] { return stopping_; });
        if (stopping_) return;
        lock.unlock();
        auto swept = sweepOnce();
        if (!swept)
            std::fprintf(stderr, "custodian: interrupted-extract sweep failed: %s\n", swept.status().message().c_str());
        else if (*swept > 0)
            std::fprintf(stderr, "custodian: recorded %zu interrupted extract(s) as aborted\n", *swept);
        lock.lock();
    }
}

Status ExtractSweeper::close(const release::ExtractRecord& extract, bool own, size_t& swept) {
    auto closed = ExtractLifecycle::closeInterrupted(services_, extract, instance_, own);
    if (!closed) return closed.status();
    if (*closed) ++swept;
    return Status::ok();
}

Result<size_t> ExtractSweeper::sweepOnce() {
    if (!services_.db || !services_.audit) return size_t{0};
    if (services_.readiness && !services_.readiness->ready()) return size_t{0};
    std::vector<release::ExtractRecord> interrupted, own;
    Status listed = services_.db->withConnection([&](pqxx::connection& conn) -> Status {
        auto found = release::findInterruptedExtracts(conn, instance_);
        if (!found) return found.status();
        interrupted = std::move(found).value();
        if (services_.liveExtracts) {
            auto mine = release::findOwnOpenExtracts(conn, instance_);
            if (!mine) return mine.status();
            own = std::move(mine).value();
        }
        return Status::ok();
    });
    if (!listed) return listed;

    std::set<std::string> suspects;
    size_t swept = 0;
    Status failure;
    for (const release::ExtractRecord& extract : interrupted) {
        if (!suspects_.count(extract.id)) {
            suspects.insert(extract.id);  // first sighting: wait one more interval
            continue;
        }
        if (Status s = close(extract, false, swept); !s) {
            suspects.insert(extract.id);  // still interrupted: the next sweep retries at once
            if (failure) failure = s;
        }
    }
    // This process's own: listed after their ids were made live, so an id not live now belongs to
    // a request that has ended and will not touch the row again (live_extracts.hpp).
    for (const release::ExtractRecord& extract : own) {
        if (services_.liveExtracts->contains(extract.id)) continue;
        if (Status s = close(extract, true, swept); !s && failure) failure = s;
    }
    suspects_ = std::move(suspects);
    if (!failure) return failure;
    return swept;
}

}  // namespace custodian::api
