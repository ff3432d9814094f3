// limits.max_connections (docs/configuration.md): default, accepted range, and the field named in
// errors.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/config/config.hpp"

#include "unit/gateway/config_with_section.hpp"

using custodian::config::parseConfig;

namespace {

std::string withLimits(const std::string& limits) { return custodian::testing::configWithSection("limits", limits); }

}  // namespace

TEST_CASE("limits.max_connections defaults to 1000 and accepts 1..1000000", "[config][limits]") {
    auto defaults = parseConfig(withLimits("{}"), "/etc/custodian");
    REQUIRE(defaults);
    CHECK(defaults->maxConnections == 1000);

    auto small = parseConfig(withLimits(R"({"max_connections": 1})"), "/etc/custodian");
    REQUIRE(small);
    CHECK(small->maxConnections == 1);
    auto large = parseConfig(withLimits(R"({"max_connections": 1000000})"), "/etc/custodian");
    REQUIRE(large);
    CHECK(large->maxConnections == 1000000);

    for (const char* bad : {R"({"max_connections": 0})", R"({"max_connections": 1000001})",
                            R"({"max_connections": -5})", R"({"max_connections": "many"})"}) {
        auto refused = parseConfig(withLimits(bad), "/etc/custodian");
        REQUIRE_FALSE(refused);
        CHECK(refused.status().message().find("limits.max_connections") != std::string::npos);
    }
}
