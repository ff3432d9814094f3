#include "gateway/release/memory_budget.hpp"

#include <algorithm>
#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace custodian::release {

std::string mebibytes(uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return text;
}

void configureAllocator() noexcept {
#if defined(__GLIBC__)
    (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
}

void returnFreedMemory() noexcept {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

MemoryCharge::~MemoryCharge() { releaseAll(); }

void MemoryCharge::releaseAll() noexcept {
    if (budget_ && total_ > 0) budget_->give(total_);
    structures_.clear();
    total_ = 0;
}

Status MemoryCharge::set(std::string_view structure, uint64_t bytes) {
    auto it = std::find_if(structures_.begin(), structures_.end(), [&](const auto& s) { return s.first == structure; });
    const uint64_t old = it == structures_.end() ? 0 : it->second;
    if (bytes == old) return Status::ok();
    const uint64_t from = total_;
    const uint64_t to = total_ - old + bytes;
    if (budget_) {
        if (Status s = budget_->resize(*this, structure, from, to); !s) return s;
    }
    total_ = to;
    peak_ = std::max(peak_, total_);
    if (it == structures_.end()) structures_.emplace_back(std::string(structure), bytes);
    else if (bytes == 0) structures_.erase(it);
    else it->second = bytes;
    return Status::ok();
}

std::string MemoryCharge::describe() const {
    auto sorted = structures_;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string out;
    for (const auto& [name, bytes] : sorted) {
        if (!out.empty()) out += ", ";
        out += name + " " + mebibytes(bytes);
    }
    return out.empty() ? "nothing" : out;
}

MemoryBudget::MemoryBudget(uint64_t totalBytes, uint64_t perExtractBytes, std::chrono::milliseconds wait)
    : totalBytes_(totalBytes), perExtractBytes_(perExtractBytes), wait_(wait) {}

std::shared_ptr<MemoryCharge> MemoryBudget::open() { return std::shared_ptr<MemoryCharge>(new MemoryCharge(this)); }

Status MemoryBudget::resize(MemoryCharge& charge, std::string_view structure, uint64_t from, uint64_t to) {
    std::unique_lock lock(mutex_);
    if (to <= from) {
        held_ -= from - to;
        lock.unlock();
        released_.notify_all();
        return Status::ok();
    }
    auto refuse = [&](MemoryRefusal r) {
        r.neededBytes = to;
        r.structure = std::string(structure);
        r.message = "the release would hold " + mebibytes(to) + " once its " + r.structure + " grows (now " +
                    charge.describe() + "), ";
        if (!r.retryable) {
            ++refusedExtract_;
            r.message += "more than release.extract_memory_budget_mb (" + std::to_string(r.limitMiB) +
                         " MiB) allows one release; retrying does not help until the gateway operator raises it "
                         "or the policy selects fewer distinct combinations";
        } else {
            ++refusedGateway_;
            r.message += "and the releases in progress hold " + mebibytes(r.othersBytes) +
                         " of release.memory_budget_mb (" + std::to_string(r.limitMiB) +
                         " MiB); retry when they have finished";
        }
        charge.refusal_ = r;
        return Status(StatusCode::ResourceExhausted, r.message);
    };
    if (perExtractBytes_ > 0 && to > perExtractBytes_) {
        MemoryRefusal r;
        r.limit = "release.extract_memory_budget_mb";
        r.limitMiB = perExtractBytes_ >> 20;
        r.othersBytes = held_ - from;
        r.retryable = false;
        return refuse(std::move(r));
    }
    const uint64_t growth = to - from;
    if (totalBytes_ > 0 && held_ + growth > totalBytes_) {
        ++waits_;
        const bool fits = released_.wait_for(lock, wait_, [&] { return held_ + growth <= totalBytes_; });
        if (!fits) {
            MemoryRefusal r;
            r.limit = "release.memory_budget_mb";
            r.limitMiB = totalBytes_ >> 20;
            r.othersBytes = held_ - from;
            return refuse(std::move(r));
        }
    }
    held_ += growth;
    peak_ = std::max(peak_, held_);
    return Status::ok();
}

void MemoryBudget::give(uint64_t bytes) noexcept {
    {
        std::lock_guard lock(mutex_);
        held_ -= std::min(held_, bytes);
    }
    released_.notify_all();
}

MemoryBudgetStats MemoryBudget::stats() const {
    std::lock_guard lock(mutex_);
    MemoryBudgetStats s;
    s.heldBytes = held_;
    s.peakBytes = peak_;
    s.limitBytes = totalBytes_;
    s.refusedGateway = refusedGateway_;
    s.refusedExtract = refusedExtract_;
    s.waits = waits_;
    return s;
}

}  // namespace custodian::release
