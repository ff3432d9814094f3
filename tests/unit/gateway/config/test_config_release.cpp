// The "release" section (docs/configuration.md): where the search's frequency table is counted, and
// the memory budget of releases.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/config/config.hpp"

#include "unit/gateway/config_with_section.hpp"

using custodian::config::parseConfig;

namespace {

std::string withRelease(const std::string& release) {
    return custodian::testing::configWithSection("release", release);
}

}  // namespace

TEST_CASE("release.group_counts defaults to the gateway and accepts only gateway or database", "[config][release]") {
    auto defaults = parseConfig(withRelease("{}"), "/etc/custodian");
    REQUIRE(defaults);
    CHECK_FALSE(defaults->release.groupCountsInDatabase);

    auto database = parseConfig(withRelease(R"({"group_counts": "database"})"), "/etc/custodian");
    REQUIRE(database);
    CHECK(database->release.groupCountsInDatabase);
    auto gateway = parseConfig(withRelease(R"({"group_counts": "gateway"})"), "/etc/custodian");
    REQUIRE(gateway);
    CHECK_FALSE(gateway->release.groupCountsInDatabase);

    auto wrong = parseConfig(withRelease(R"({"group_counts": "postgres"})"), "/etc/custodian");
    REQUIRE_FALSE(wrong);
    CHECK(wrong.status().message() == "release.group_counts: must be \"gateway\" or \"database\"");
    auto notString = parseConfig(withRelease(R"({"group_counts": 1})"), "/etc/custodian");
    REQUIRE_FALSE(notString);
    CHECK(notString.status().message().find("release.group_counts") != std::string::npos);
    auto unknown = parseConfig(withRelease(R"({"groupcounts": "gateway"})"), "/etc/custodian");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.status().message().find("release.groupcounts") != std::string::npos);
}

TEST_CASE("release.memory_budget_mb bounds all releases, release.extract_memory_budget_mb one of them",
          "[config][release]") {
    auto defaults = parseConfig(withRelease("{}"), "/etc/custodian");
    REQUIRE(defaults);
    CHECK(defaults->release.memoryBudgetMiB == 1024);
    CHECK(defaults->release.extractMemoryBudgetMiB == 1024);
    CHECK(defaults->release.memoryWait == std::chrono::milliseconds(2000));

    // The per-release budget follows a smaller total when not given.
    auto total = parseConfig(withRelease(R"({"memory_budget_mb": 256})"), "/etc/custodian");
    REQUIRE(total);
    CHECK(total->release.memoryBudgetMiB == 256);
    CHECK(total->release.extractMemoryBudgetMiB == 256);
    auto both =
        parseConfig(withRelease(R"({"memory_budget_mb": 256, "extract_memory_budget_mb": 64, "memory_wait_ms": 0})"),
                    "/etc/custodian");
    REQUIRE(both);
    CHECK(both->release.extractMemoryBudgetMiB == 64);
    CHECK(both->release.memoryWait == std::chrono::milliseconds(0));

    auto larger =
        parseConfig(withRelease(R"({"memory_budget_mb": 256, "extract_memory_budget_mb": 512})"), "/etc/custodian");
    REQUIRE_FALSE(larger);
    CHECK(larger.status().message() ==
          "release.extract_memory_budget_mb: must not exceed release.memory_budget_mb (256), got 512");
    auto zero = parseConfig(withRelease(R"({"memory_budget_mb": 0})"), "/etc/custodian");
    REQUIRE_FALSE(zero);
    CHECK(zero.status().message() == "release.memory_budget_mb: must be between 1 and 1048576 (got 0)");
    auto text = parseConfig(withRelease(R"({"memory_budget_mb": "1G"})"), "/etc/custodian");
    REQUIRE_FALSE(text);
    CHECK(text.status().message() == "release.memory_budget_mb: must be an integer");
    auto wait = parseConfig(withRelease(R"({"memory_wait_ms": 600001})"), "/etc/custodian");
    REQUIRE_FALSE(wait);
    CHECK(wait.status().message() == "release.memory_wait_ms: must be between 0 and 60000 (got 600001)");
}
