// The memory budget of releases (gateway/release/memory_budget.hpp): charges by structure, refusals
// by the limit that refused them, waiting for other releases, and everything given back.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "gateway/release/memory_budget.hpp"
#include "support/wait_for.hpp"

using namespace custodian;
using namespace custodian::release;
using std::chrono::milliseconds;

namespace {
constexpr uint64_t kMiB = 1 << 20;
}

TEST_CASE("a memory charge accounts its structures and gives them back when destroyed", "[release][memory]") {
    MemoryBudget budget(10 * kMiB, 10 * kMiB, milliseconds(0));
    {
        auto charge = budget.open();
        REQUIRE(charge->set("counting", 3 * kMiB));
        REQUIRE(charge->set("sink", 2 * kMiB));
        CHECK(charge->bytes() == 5 * kMiB);
        CHECK(budget.stats().heldBytes == 5 * kMiB);
        REQUIRE(charge->set("counting", 0));  // freed
        CHECK(charge->bytes() == 2 * kMiB);
        CHECK(charge->peakBytes() == 5 * kMiB);
        CHECK(charge->describe() == "sink 2.0 MiB");
        CHECK(budget.stats().heldBytes == 2 * kMiB);
    }
    CHECK(budget.stats().heldBytes == 0);
    CHECK(budget.stats().peakBytes == 5 * kMiB);
}

TEST_CASE("growth past release.extract_memory_budget_mb is refused at once and is not retryable", "[release][memory]") {
    MemoryBudget budget(10 * kMiB, 4 * kMiB, milliseconds(5000));
    auto charge = budget.open();
    REQUIRE(charge->set("sink", 3 * kMiB));
    const auto started = std::chrono::steady_clock::now();
    Status s = charge->set("frequency table", 2 * kMiB);
    CHECK(std::chrono::steady_clock::now() - started < milliseconds(1000));  // no waiting: it can never fit
    REQUIRE(s.code() == StatusCode::ResourceExhausted);
    REQUIRE(charge->refusal());
    const MemoryRefusal& r = *charge->refusal();
    CHECK(r.limit == "release.extract_memory_budget_mb");
    CHECK(r.limitMiB == 4);
    CHECK(r.neededBytes == 5 * kMiB);
    CHECK(r.structure == "frequency table");
    CHECK_FALSE(r.retryable);
    CHECK(s.message() ==
          "the release would hold 5.0 MiB once its frequency table grows (now sink 3.0 MiB), more than "
          "release.extract_memory_budget_mb (4 MiB) allows one release; retrying does not help until the gateway "
          "operator raises it or the policy selects fewer distinct combinations");
    // The refused structure stays at its old size.
    CHECK(charge->bytes() == 3 * kMiB);
    CHECK(budget.stats().heldBytes == 3 * kMiB);
    CHECK(budget.stats().refusedExtract == 1);
}

TEST_CASE("growth past release.memory_budget_mb waits for other releases, then is refused", "[release][memory]") {
    MemoryBudget budget(8 * kMiB, 8 * kMiB, milliseconds(50));
    auto other = budget.open();
    REQUIRE(other->set("sink", 6 * kMiB));
    auto charge = budget.open();
    Status s = charge->set("counting", 3 * kMiB);
    REQUIRE(s.code() == StatusCode::ResourceExhausted);
    const MemoryRefusal& r = *charge->refusal();
    CHECK(r.limit == "release.memory_budget_mb");
    CHECK(r.limitMiB == 8);
    CHECK(r.othersBytes == 6 * kMiB);
    CHECK(r.retryable);
    CHECK(s.message() == "the release would hold 3.0 MiB once its counting grows (now nothing), and the releases in "
                         "progress hold 6.0 MiB of release.memory_budget_mb (8 MiB); retry when they have finished");
    CHECK(budget.stats().refusedGateway == 1);
    CHECK(budget.stats().waits == 1);
    CHECK(budget.stats().heldBytes == 6 * kMiB);
}

TEST_CASE("a release that waits for memory proceeds once another release gives it back", "[release][memory]") {
    MemoryBudget budget(8 * kMiB, 8 * kMiB, milliseconds(10000));
    auto other = budget.open();
    REQUIRE(other->set("sink", 6 * kMiB));
    bool sawWait = false;
    std::thread finisher([&] {
        // Once the charge below is waiting for memory, that release ends.
        sawWait = custodian::testing::waitFor([&] { return budget.stats().waits == 1; }, milliseconds(10000));
        other.reset();
    });
    auto charge = budget.open();
    Status s = charge->set("counting", 3 * kMiB);
    finisher.join();
    CHECK(sawWait);
    REQUIRE(s);
    CHECK_FALSE(charge->refusal());
    CHECK(budget.stats().heldBytes == 3 * kMiB);
    CHECK(budget.stats().waits == 1);
}

TEST_CASE("a charge without a budget only keeps accounts", "[release][memory]") {
    MemoryCharge charge;
    REQUIRE(charge.set("frequency table", uint64_t{1} << 40));
    CHECK(charge.bytes() == uint64_t{1} << 40);
    charge.releaseAll();
    CHECK(charge.bytes() == 0);
    CHECK(charge.describe() == "nothing");
}
