// The "audit" section (docs/configuration.md): defaults, every field read, accepted ranges, and the
// field named in errors.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/config/config.hpp"

#include "unit/gateway/config_with_section.hpp"

using custodian::config::parseConfig;

namespace {

std::string withAudit(const std::string& audit) { return custodian::testing::configWithSection("audit", audit); }

}  // namespace

TEST_CASE("audit settings default as documented and every field is read", "[config][audit]") {
    auto defaults = parseConfig(withAudit("{}"), "/etc/custodian");
    REQUIRE(defaults);
    CHECK(defaults->audit.treeHeadEveryEntries == 1000);
    CHECK(defaults->audit.treeHeadInterval.count() == 10000);
    CHECK(defaults->audit.maxBatch == 1000);
    CHECK(defaults->audit.lockTimeout.count() == 5000);
    CHECK(defaults->audit.integrityCheckInterval.count() == 10000);
    CHECK(defaults->audit.integrityRecheckBlocks == 64);

    auto set = parseConfig(withAudit(R"({"tree_head_every_entries": 7, "tree_head_interval_ms": 250,
                                         "max_batch": 3, "lock_timeout_ms": 1,
                                         "integrity_check_interval_ms": 100, "integrity_recheck_blocks": 0})"),
                           "/etc/custodian");
    REQUIRE(set);
    CHECK(set->audit.treeHeadEveryEntries == 7);
    CHECK(set->audit.treeHeadInterval.count() == 250);
    CHECK(set->audit.maxBatch == 3);
    CHECK(set->audit.lockTimeout.count() == 1);
    CHECK(set->audit.integrityCheckInterval.count() == 100);
    CHECK(set->audit.integrityRecheckBlocks == 0);
    auto longest = parseConfig(withAudit(R"({"lock_timeout_ms": 600000})"), "/etc/custodian");
    REQUIRE(longest);
    CHECK(longest->audit.lockTimeout.count() == 600000);
}

TEST_CASE("audit.lock_timeout_ms refuses 0 (wait forever) and values beyond 10 minutes", "[config][audit]") {
    for (const char* bad : {R"({"lock_timeout_ms": 0})", R"({"lock_timeout_ms": 600001})", R"({"lock_timeout_ms": -1})",
                            R"({"lock_timeout_ms": "5s"})"}) {
        INFO(bad);
        auto refused = parseConfig(withAudit(bad), "/etc/custodian");
        REQUIRE_FALSE(refused);
        CHECK(refused.status().message().rfind("audit.lock_timeout_ms:", 0) == 0);
    }
    auto unknown = parseConfig(withAudit(R"({"lock_timeout": 5})"), "/etc/custodian");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.status().message().rfind("audit.lock_timeout: unknown field", 0) == 0);
}

TEST_CASE("audit integrity check settings are range-checked", "[config][audit]") {
    for (const auto& [bad, field] : {std::pair{R"({"integrity_check_interval_ms": 99})", "integrity_check_interval_ms"},
                                     {R"({"integrity_check_interval_ms": 86400001})", "integrity_check_interval_ms"},
                                     {R"({"integrity_recheck_blocks": -1})", "integrity_recheck_blocks"},
                                     {R"({"integrity_recheck_blocks": 1000001})", "integrity_recheck_blocks"}}) {
        INFO(bad);
        auto refused = parseConfig(withAudit(bad), "/etc/custodian");
        REQUIRE_FALSE(refused);
        CHECK(refused.status().message().rfind(std::string("audit.") + field + ":", 0) == 0);
    }
}
