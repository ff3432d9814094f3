// Overload protection without sockets: the configuration of the limits, the token buckets (with an
// injected clock), the in-flight extract slots, and the route table's extract flag.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/config/config.hpp"
#include "gateway/api/overload.hpp"
#include "gateway/api/router.hpp"
#include "gateway/api/routes.hpp"

#include "unit/gateway/config_with_section.hpp"

using namespace custodian;
using api::OverloadGuard;
using api::OverloadRefusal;
using custodian::config::parseConfig;
using Clock = OverloadGuard::Clock;
using std::chrono::milliseconds;

namespace {

std::string withLimits(const std::string& limits) { return custodian::testing::configWithSection("limits", limits); }

// A clock the test moves by hand.
struct ManualClock {
    Clock::time_point now = Clock::time_point(std::chrono::hours(1));
    std::function<Clock::time_point()> fn() {
        return [this] { return now; };
    }
};

config::OverloadConfig limits(uint32_t rate, uint32_t burst, uint32_t extracts = 16, uint32_t perPrincipal = 4) {
    config::OverloadConfig c;
    c.requestsPerSecond = rate;
    c.burst = burst;
    c.maxInflightExtracts = extracts;
    c.maxInflightExtractsPerPrincipal = perPrincipal;
    return c;
}

const OverloadRefusal* refusalOf(const std::variant<OverloadGuard::ExtractSlot, OverloadRefusal>& v) {
    return std::get_if<OverloadRefusal>(&v);
}

}  // namespace

TEST_CASE("overload limits default to 100 requests/s (burst 200) and 16 extracts (4 per principal)",
          "[config][limits][overload]") {
    auto c = parseConfig(withLimits("{}"), "/etc/custodian");
    REQUIRE(c);
    CHECK(c->overload.requestsPerSecond == 100);
    CHECK(c->overload.burst == 200);
    CHECK(c->overload.maxInflightExtracts == 16);
    CHECK(c->overload.maxInflightExtractsPerPrincipal == 4);

    auto set = parseConfig(withLimits(R"({"rate_limit": {"requests_per_second": 5, "burst": 7},
                                          "max_inflight_extracts": 3, "max_inflight_extracts_per_principal": 0})"),
                           "/etc/custodian");
    REQUIRE(set);
    CHECK(set->overload.requestsPerSecond == 5);
    CHECK(set->overload.burst == 7);
    CHECK(set->overload.maxInflightExtracts == 3);
    CHECK(set->overload.maxInflightExtractsPerPrincipal == 0);

    auto off = parseConfig(withLimits(R"({"rate_limit": null})"), "/etc/custodian");
    REQUIRE(off);
    CHECK(off->overload.requestsPerSecond == 0);

    // A smaller gateway-wide limit pulls the default per-principal one down with it.
    auto small = parseConfig(withLimits(R"({"max_inflight_extracts": 2})"), "/etc/custodian");
    REQUIRE(small);
    CHECK(small->overload.maxInflightExtractsPerPrincipal == 2);
}

TEST_CASE("overload limit errors name the field", "[config][limits][overload]") {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"rate_limit": {"requests_per_second": -1}})", "limits.rate_limit.requests_per_second"},
        {R"({"rate_limit": {"requests_per_second": 1000001}})", "limits.rate_limit.requests_per_second"},
        {R"({"rate_limit": {"burst": 0}})", "limits.rate_limit.burst"},
        {R"({"rate_limit": {"per_minute": 5}})", "limits.rate_limit.per_minute: unknown field"},
        {R"({"rate_limit": 100})", "limits.rate_limit: must be an object or null"},
        {R"({"max_inflight_extracts": 0})", "limits.max_inflight_extracts"},
        {R"({"max_inflight_extracts": "16"})", "limits.max_inflight_extracts"},
        {R"({"max_inflight_extracts_per_principal": -1})", "limits.max_inflight_extracts_per_principal"},
        {R"({"max_inflight_extracts": 2, "max_inflight_extracts_per_principal": 3})",
         "limits.max_inflight_extracts_per_principal: must not exceed limits.max_inflight_extracts"},
    };
    for (const auto& [limitsJson, field] : cases) {
        auto refused = parseConfig(withLimits(limitsJson), "/etc/custodian");
        INFO(limitsJson);
        REQUIRE_FALSE(refused);
        CHECK(refused.status().message().find(field) != std::string::npos);
    }
}

TEST_CASE("the rate limit lets a burst through, then refills at the configured rate, per principal", "[overload]") {
    ManualClock clock;
    OverloadGuard guard(limits(2, 3), clock.fn());
    for (int i = 0; i < 3; ++i) CHECK_FALSE(guard.admitRequest("alice"));
    auto refused = guard.admitRequest("alice");
    REQUIRE(refused);
    CHECK(refused->httpStatus == 429);
    CHECK(refused->code == "rate_limited");
    CHECK(refused->limit == "limits.rate_limit");
    CHECK(refused->limitValue == 2);
    CHECK(refused->retryAfter == std::chrono::seconds(1));  // half a second to the next token, rounded up
    CHECK(refused->message.find("'alice'") != std::string::npos);

    CHECK_FALSE(guard.admitRequest("bob"));  // a bucket of its own

    clock.now += milliseconds(499);
    CHECK(guard.admitRequest("alice"));  // 0.998 tokens: not yet
    clock.now += milliseconds(2);
    CHECK_FALSE(guard.admitRequest("alice"));
    CHECK(guard.admitRequest("alice"));

    // A long pause refills to the burst, never beyond it.
    clock.now += std::chrono::hours(1);
    for (int i = 0; i < 3; ++i) CHECK_FALSE(guard.admitRequest("alice"));
    CHECK(guard.admitRequest("alice"));
    CHECK(guard.stats().rateLimited == 4);
}

TEST_CASE("Retry-After covers the wait for the next token at slow rates", "[overload]") {
    ManualClock clock;
    config::OverloadConfig c = limits(1, 1);
    OverloadGuard guard(c, clock.fn());
    CHECK_FALSE(guard.admitRequest("alice"));
    clock.now += milliseconds(100);
    auto refused = guard.admitRequest("alice");
    REQUIRE(refused);
    CHECK(refused->retryAfter == std::chrono::seconds(1));  // 0.9 s, rounded up
    clock.now += refused->retryAfter;
    CHECK_FALSE(guard.admitRequest("alice"));
}

TEST_CASE("a rate of 0 turns the rate limit off", "[overload]") {
    OverloadGuard guard(limits(0, 1));
    for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(guard.admitRequest("alice"));
    CHECK(guard.stats().principalsTracked == 0);
}

TEST_CASE("buckets that have refilled are dropped, so memory follows the active principals", "[overload]") {
    ManualClock clock;
    OverloadGuard guard(limits(10, 5), clock.fn());
    for (int i = 0; i < 500; ++i) CHECK_FALSE(guard.admitRequest("p" + std::to_string(i)));
    CHECK(guard.stats().principalsTracked == 500);
    clock.now += std::chrono::seconds(11);  // every bucket is full again, and a prune is due
    CHECK_FALSE(guard.admitRequest("active"));
    CHECK(guard.stats().principalsTracked == 1);
}

TEST_CASE("extract slots are limited gateway-wide and per principal, and released by their holders", "[overload]") {
    OverloadGuard guard(limits(0, 1, 3, 2));
    auto a1 = guard.acquireExtractSlot("alice");
    auto a2 = guard.acquireExtractSlot("alice");
    REQUIRE_FALSE(refusalOf(a1));
    REQUIRE_FALSE(refusalOf(a2));

    auto a3 = guard.acquireExtractSlot("alice");
    REQUIRE(refusalOf(a3));
    CHECK(refusalOf(a3)->httpStatus == 503);
    CHECK(refusalOf(a3)->code == "overloaded");
    CHECK(refusalOf(a3)->limit == "limits.max_inflight_extracts_per_principal");
    CHECK(refusalOf(a3)->limitValue == 2);
    CHECK(refusalOf(a3)->retryAfter == std::chrono::seconds(1));

    auto b1 = guard.acquireExtractSlot("bob");
    REQUIRE_FALSE(refusalOf(b1));
    CHECK(guard.stats().extractsInFlight == 3);
    auto c1 = guard.acquireExtractSlot("carol");
    REQUIRE(refusalOf(c1));
    CHECK(refusalOf(c1)->limit == "limits.max_inflight_extracts");
    CHECK(refusalOf(c1)->limitValue == 3);

    // Moving a slot does not release it; destroying it does.
    {
        OverloadGuard::ExtractSlot moved = std::move(std::get<OverloadGuard::ExtractSlot>(a1));
        CHECK(guard.stats().extractsInFlight == 3);
    }
    CHECK(guard.stats().extractsInFlight == 2);
    auto a4 = guard.acquireExtractSlot("alice");
    CHECK_FALSE(refusalOf(a4));

    const api::OverloadStats s = guard.stats();
    CHECK(s.refusedExtractsPrincipal == 1);
    CHECK(s.refusedExtractsGateway == 1);
    CHECK(s.maxInflightExtracts == 3);
}

TEST_CASE("a refusal becomes a JSON error with Retry-After and the limit in details", "[overload]") {
    OverloadRefusal r;
    r.httpStatus = 429;
    r.code = "rate_limited";
    r.limit = "limits.rate_limit";
    r.limitValue = 100;
    r.retryAfter = std::chrono::seconds(2);
    r.message = "principal 'a' exceeded limits.rate_limit";
    http::HttpResponse response = api::overloadResponse(r);
    CHECK(response.status == 429);
    CHECK(response.header("Retry-After") == "2");
    CHECK(response.body == R"({"error":{"code":"rate_limited","message":"principal 'a' exceeded limits.rate_limit",)"
                           R"("details":{"limit":"limits.rate_limit","limit_value":100,"retry_after_s":2}}})");
}

TEST_CASE("only POST /v1/extracts holds an extract slot, and only token routes may", "[overload][routes]") {
    int withSlot = 0;
    for (const auto& r : api::builtinRoutes()) {
        if (!r.extractSlot) continue;
        ++withSlot;
        CHECK(r.method == "POST");
        CHECK(r.pattern == "/v1/extracts");
    }
    CHECK(withSlot == 1);

    api::Router router;
    api::Route publicExtract{
        "GET", "/x", api::Access::publicRoute(),
        [](api::RequestContext&) -> Result<http::HttpResponse> { return http::HttpResponse::text(200, "x"); }};
    publicExtract.extractSlot = true;
    router.add(publicExtract);
    Status s = router.validate();
    REQUIRE_FALSE(s);
    CHECK(s.message().find("extract route must require a token") != std::string::npos);
}
