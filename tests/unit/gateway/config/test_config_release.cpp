// The "release" section (docs/configuration.md): where the search's frequency table is counted.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/config/config.hpp"

#include "unit/gateway/config_with_section.hpp"

using custodian::config::parseConfig;

namespace {

std::string withRelease(const std::string& release) { return custodian::testing::configWithSection("release", release); }

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
