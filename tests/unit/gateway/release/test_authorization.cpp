// Extract authorization: who is a recipient (by name or through a group), and that each refusal
// names the rule that refused.
#include <catch2/catch.hpp>

#include "gateway/release/authorization.hpp"

using namespace custodian;
using namespace custodian::release;

namespace {

policies::PolicyModel groupPolicy() {
    policies::PolicyModel m;
    m.recipients = {"alice", "group:epidemiology"};
    m.purposes = {"research"};
    return m;
}

ExtractRequest researchRequest() {
    ExtractRequest r;
    r.dataset = "visits";
    r.policy = "p";
    r.purpose = "research";
    return r;
}

AuthorizationFacts factsFor(std::string principal, std::vector<std::string> groups) {
    AuthorizationFacts f;
    f.principal = std::move(principal);
    f.groups = std::move(groups);
    f.hasPublicKey = true;
    f.nowMicros = 1'700'000'000'000'000;
    return f;
}

}  // namespace

TEST_CASE("a partner in a listed group is a recipient, one outside every listed group is refused by rule",
          "[authorization][groups]") {
    const auto policy = groupPolicy();
    const auto request = researchRequest();
    CHECK_FALSE(authorizeExtract(policy, request, factsFor("alice", {})));
    CHECK_FALSE(authorizeExtract(policy, request, factsFor("bob", {"other", "epidemiology"})));

    auto outside = authorizeExtract(policy, request, factsFor("bob", {"other"}));
    REQUIRE(outside);
    CHECK(outside->rule == kRuleRecipient);
    CHECK(outside->message.find("'bob' is not a recipient") != std::string::npos);
    CHECK(outside->message.find("group") != std::string::npos);

    // Removed from the group (the caller passes the memberships read now): refused again.
    CHECK(authorizeExtract(policy, request, factsFor("bob", {}))->rule == kRuleRecipient);
}

TEST_CASE("a group member still meets every other rule of the policy", "[authorization][groups]") {
    auto policy = groupPolicy();
    auto request = researchRequest();
    request.purpose = "marketing";
    auto refusal = authorizeExtract(policy, request, factsFor("bob", {"epidemiology"}));
    REQUIRE(refusal);
    CHECK(refusal->rule == kRulePurpose);

    request.purpose = "research";
    policy.extractsPerDayPerRecipient = 1;
    auto facts = factsFor("bob", {"epidemiology"});
    facts.extractsToday = 1;
    refusal = authorizeExtract(policy, request, facts);
    REQUIRE(refusal);
    CHECK(refusal->rule == kRulePerDay);

    facts = factsFor("bob", {"epidemiology"});
    facts.policyRetired = true;
    CHECK(authorizeExtract(policy, request, facts)->rule == kRuleRetired);
}
