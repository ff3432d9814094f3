#include "gateway/api/overload.hpp"

#include "gateway/http/errors.hpp"
#include "json/writer.hpp"

#include <algorithm>
#include <cmath>

namespace custodian::api {
namespace {

// How often buckets that have refilled completely are dropped: such a bucket behaves exactly like
// a new one, so dropping it changes no decision and keeps memory bounded by the active principals.
constexpr std::chrono::seconds kPruneEvery{10};

std::chrono::seconds atLeastOneSecond(double seconds) {
    return std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds))));
}

}  // namespace

http::HttpResponse overloadResponse(const OverloadRefusal& refusal) {
    json::JsonValue::Object details = refusal.extraDetails;
    details["limit"] = refusal.limit;
    details["limit_value"] = refusal.limitValue;
    details["retry_after_s"] = static_cast<int64_t>(refusal.retryAfter.count());
    // Our own names and numbers: always valid UTF-8, so the encoding cannot fail.
    auto text = json::canonicalJson(json::JsonValue(std::move(details)));
    http::HttpResponse r =
        http::errorResponse(refusal.httpStatus, refusal.code, refusal.message, text ? text.value() : std::string());
    r.setHeader("Retry-After", std::to_string(refusal.retryAfter.count()));
    return r;
}

OverloadGuard::OverloadGuard(const config::OverloadConfig& limits, std::function<Clock::time_point()> clock)
    : limits_(limits), clock_(clock ? std::move(clock) : [] { return Clock::now(); }) {}

std::optional<OverloadRefusal> OverloadGuard::admitRequest(const std::string& principal) {
    if (limits_.requestsPerSecond == 0) return std::nullopt;
    const double rate = limits_.requestsPerSecond;
    const double burst = limits_.burst;
    std::lock_guard lock(bucketsMutex_);
    const Clock::time_point now = clock_();
    if (now - lastPrune_ >= kPruneEvery) pruneFullBucketsLocked(now);
    auto [it, created] = buckets_.try_emplace(principal, Bucket{burst, now});
    Bucket& b = it->second;
    if (!created) {
        const double elapsed = std::chrono::duration<double>(now - b.updated).count();
        if (elapsed > 0) b.tokens = std::min(burst, b.tokens + elapsed * rate);
        b.updated = std::max(b.updated, now);
    }
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return std::nullopt;
    }
    ++rateLimited_;
    OverloadRefusal r;
    r.httpStatus = 429;
    r.code = "rate_limited";
    r.limit = "limits.rate_limit";
    r.limitValue = limits_.requestsPerSecond;
    r.retryAfter = atLeastOneSecond((1 - b.tokens) / rate);
    r.message = "principal '" + principal + "' exceeded limits.rate_limit (" +
                std::to_string(limits_.requestsPerSecond) + " requests/s, burst " + std::to_string(limits_.burst) +
                "); retry after " + std::to_string(r.retryAfter.count()) + " s";
    return r;
}

void OverloadGuard::pruneFullBucketsLocked(Clock::time_point now) {
    lastPrune_ = now;
    const double rate = limits_.requestsPerSecond;
    std::erase_if(buckets_, [&](const auto& entry) {
        const double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
        return entry.second.tokens + elapsed * rate >= limits_.burst;
    });
}

std::variant<OverloadGuard::ExtractSlot, OverloadRefusal>
OverloadGuard::acquireExtractSlot(const std::string& principal) {
    std::lock_guard lock(slotsMutex_);
    OverloadRefusal r;
    r.httpStatus = 503;
    r.code = "overloaded";
    r.retryAfter = std::chrono::seconds(1);
    if (extractsInFlight_ >= limits_.maxInflightExtracts) {
        ++refusedGateway_;
        r.limit = "limits.max_inflight_extracts";
        r.limitValue = limits_.maxInflightExtracts;
        r.message = "the gateway is producing its maximum of " + std::to_string(limits_.maxInflightExtracts) +
                    " extracts at once (limits.max_inflight_extracts); retry shortly";
        return r;
    }
    const uint32_t perPrincipal = limits_.maxInflightExtractsPerPrincipal;
    auto it = extractsByPrincipal_.find(principal);
    if (perPrincipal > 0 && it != extractsByPrincipal_.end() && it->second >= perPrincipal) {
        ++refusedPrincipal_;
        r.limit = "limits.max_inflight_extracts_per_principal";
        r.limitValue = perPrincipal;
        r.message = "principal '" + principal + "' already has " + std::to_string(it->second) +
                    " extracts in flight (limits.max_inflight_extracts_per_principal); retry when one has finished";
        return r;
    }
    ++extractsInFlight_;
    ++extractsByPrincipal_[principal];
    return ExtractSlot(this, principal);
}

void OverloadGuard::releaseSlot(const std::string& principal) {
    std::lock_guard lock(slotsMutex_);
    --extractsInFlight_;
    auto it = extractsByPrincipal_.find(principal);
    if (it != extractsByPrincipal_.end() && --it->second == 0) extractsByPrincipal_.erase(it);
}

OverloadStats OverloadGuard::stats() const {
    OverloadStats s;
    {
        std::lock_guard lock(bucketsMutex_);
        s.rateLimited = rateLimited_;
        s.principalsTracked = buckets_.size();
    }
    std::lock_guard lock(slotsMutex_);
    s.refusedExtractsGateway = refusedGateway_;
    s.refusedExtractsPrincipal = refusedPrincipal_;
    s.extractsInFlight = extractsInFlight_;
    s.maxInflightExtracts = limits_.maxInflightExtracts;
    return s;
}

OverloadGuard::ExtractSlot::ExtractSlot(ExtractSlot&& other) noexcept
    : guard_(std::exchange(other.guard_, nullptr)), principal_(std::move(other.principal_)) {}

OverloadGuard::ExtractSlot& OverloadGuard::ExtractSlot::operator=(ExtractSlot&& other) noexcept {
    if (this != &other) {
        release();
        guard_ = std::exchange(other.guard_, nullptr);
        principal_ = std::move(other.principal_);
    }
    return *this;
}

OverloadGuard::ExtractSlot::~ExtractSlot() { release(); }

void OverloadGuard::ExtractSlot::release() {
    if (guard_) std::exchange(guard_, nullptr)->releaseSlot(principal_);
}

}  // namespace custodian::api
