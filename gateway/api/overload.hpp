#pragma once
// Overload protection of the API (docs/security.md, docs/configuration.md "Overload protection"):
//
//  - per-principal rate limits: each authenticated principal has a token bucket of `burst` tokens
//    refilled at `requestsPerSecond`; a request without a token is refused with 429, Retry-After
//    (when the next token is due) and a JSON error naming limits.rate_limit;
//  - in-flight extracts: an extract holds an ExtractSlot from before its handler runs until its
//    body has been sent; beyond limits.max_inflight_extracts in the gateway, or
//    limits.max_inflight_extracts_per_principal for one principal, it is refused with 503 and
//    Retry-After.
//
// handleRequest (gateway/api/handler.cpp) applies both after authentication and records every
// refusal on an audited route in the audit log, like any other denial.
//
// Thread-safety: every member function may be called from any thread; slots may be released on
// any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include "gateway/config/config.hpp"
#include "gateway/http/message.hpp"
#include "json/canonical.hpp"

namespace custodian::api {

// Why a request was refused for overload, and what the client is told.
struct OverloadRefusal {
    int httpStatus = 503;                // 429 for the rate limit, 503 for capacity
    std::string code;                    // "rate_limited" or "overloaded"
    std::string limit;                   // the configuration field that refused the request
    uint64_t limitValue = 0;             // its configured value
    std::chrono::seconds retryAfter{1};  // ≥ 1 s
    std::string message;
    json::JsonValue::Object extraDetails;  // more members of error.details
};

// {"error":{"code":…,"message":…,"details":{"limit":…,"limit_value":…,"retry_after_s":…[, extra]}}}
// with the Retry-After header.
http::HttpResponse overloadResponse(const OverloadRefusal& refusal);

struct OverloadStats {
    uint64_t rateLimited = 0;               // requests refused by limits.rate_limit
    uint64_t refusedExtractsGateway = 0;    // … by limits.max_inflight_extracts
    uint64_t refusedExtractsPrincipal = 0;  // … by limits.max_inflight_extracts_per_principal
    uint64_t extractsInFlight = 0;
    uint32_t maxInflightExtracts = 0;
    size_t principalsTracked = 0;  // rate-limit buckets held in memory
};

class OverloadGuard {
public:
    using Clock = std::chrono::steady_clock;

    // `clock` defaults to the steady clock (tests inject one).
    explicit OverloadGuard(const config::OverloadConfig& limits, std::function<Clock::time_point()> clock = {});
    OverloadGuard(const OverloadGuard&) = delete;
    OverloadGuard& operator=(const OverloadGuard&) = delete;

    // Takes one token from `principal`'s bucket: nullopt when the request may proceed, otherwise
    // the 429 refusal with the time until the next token.
    std::optional<OverloadRefusal> admitRequest(const std::string& principal);

    // One in-flight extract. Releases its slot when destroyed; movable, not copyable. The guard
    // must outlive its slots.
    class ExtractSlot {
    public:
        ExtractSlot(ExtractSlot&& other) noexcept;
        ExtractSlot& operator=(ExtractSlot&& other) noexcept;
        ExtractSlot(const ExtractSlot&) = delete;
        ExtractSlot& operator=(const ExtractSlot&) = delete;
        ~ExtractSlot();

    private:
        friend class OverloadGuard;
        ExtractSlot(OverloadGuard* guard, std::string principal) : guard_(guard), principal_(std::move(principal)) {}
        void release();
        OverloadGuard* guard_ = nullptr;
        std::string principal_;
    };

    // A slot for an extract by `principal`, or the 503 refusal naming the limit that is reached.
    std::variant<ExtractSlot, OverloadRefusal> acquireExtractSlot(const std::string& principal);

    OverloadStats stats() const;
    const config::OverloadConfig& limits() const { return limits_; }

private:
    struct Bucket {
        double tokens = 0;
        Clock::time_point updated;
    };
    void releaseSlot(const std::string& principal);
    void pruneFullBucketsLocked(Clock::time_point now);

    const config::OverloadConfig limits_;
    std::function<Clock::time_point()> clock_;

    mutable std::mutex bucketsMutex_;
    std::unordered_map<std::string, Bucket> buckets_;
    Clock::time_point lastPrune_{};
    uint64_t rateLimited_ = 0;

    mutable std::mutex slotsMutex_;
    uint64_t extractsInFlight_ = 0;
    std::unordered_map<std::string, uint32_t> extractsByPrincipal_;  // only principals with slots
    uint64_t refusedGateway_ = 0;
    uint64_t refusedPrincipal_ = 0;
};

}  // namespace custodian::api
