// The content hash versions a policy: SHA-256 over canonical JSON (sorted members, no whitespace).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "json/canonical.hpp"
#include "policies/json_text.hpp"
#include "policies/policy.hpp"

using namespace custodian::policies;

namespace {

std::string canonicalOf(const char* json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseFullPrecisionFlag>(json);
    REQUIRE_FALSE(d.HasParseError());
    auto canonical = custodian::json::canonicalJson(d, custodian::json::Numbers::Decimal);
    REQUIRE(canonical);
    return canonical.value();
}

const char* kPolicy = R"({"dataset": "visits", "recipients": ["bob", "group:analysts"], "purposes": ["research"],
  "columns": [{"name": "ward", "type": "text", "role": "insensitive"},
              {"name": "cost", "type": "decimal", "role": "insensitive", "transform": {"name": "round", "params": {"base": 0.5}}}],
  "output": {"max_rows": 1000, "formats": ["csv"]}})";

// The same document with members reordered, other whitespace and an escaped character.
const char* kPolicyReordered = R"(
{
    "output" : { "formats" : [ "csv" ] , "max_rows" : 1000 } ,
    "columns" : [
        { "role" : "insensitive", "type" : "text", "name" : "ward" },
        { "transform" : { "params" : { "base" : 0.5 }, "name" : "round" }, "role" : "insensitive",
          "type" : "decimal", "name" : "\u0063ost" }
    ],
    "purposes" : [ "research" ], "recipients" : [ "bob", "group:analysts" ], "dataset" : "visits"
}
)";

}  // namespace

TEST_CASE("canonical JSON sorts members, drops whitespace and normalizes escapes", "[policies][hash]") {
    CHECK(canonicalOf(R"( { "b" : { "d" : -2 , "c" : 1.5 } , "a" : [ true , null , "x\u00e9" ] } )") ==
          "{\"a\":[true,null,\"x\xc3\xa9\"],\"b\":{\"c\":1.5,\"d\":-2}}");
    // Known answer (computed independently with Python's hashlib over the canonical bytes).
    CHECK(sha256Hex("{\"a\":[true,null,\"x\xc3\xa9\"],\"b\":{\"c\":1.5,\"d\":-2}}") ==
          "82184e557ab02ad3b0f1d7e1a3c63c97de671014c6d8add9226cff9e6cc7ba1d");
    CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // Array order is content; member order is not.
    CHECK(canonicalOf("[1,2]") != canonicalOf("[2,1]"));
    CHECK(canonicalOf(R"({"x":1,"y":2})") == canonicalOf(R"({"y":2,"x":1})"));
    // The one canonical encoder's rules (json/canonical.hpp), as for audit entries and manifests:
    // control characters without a short escape in lower-case hex; non-integers in their shortest
    // round-trip form, a fractional 1 stays a non-integer.
    CHECK(canonicalOf(R"(["a\u0001\u001F\t"])") == "[\"a\\u0001\\u001f\\t\"]");
    CHECK(canonicalOf("[0.2, 1.0, 1e-7, 0.000001, 25e2]") == "[0.2,1.0,1e-7,0.000001,2500.0]");
    rapidjson::Document fraction;
    fraction.Parse("{\"t\":0.5}");
    CHECK_FALSE(custodian::json::canonicalJson(fraction, custodian::json::Numbers::IntegersOnly));
    rapidjson::Document repeated;
    repeated.Parse("{\"a\":1,\"a\":2}");
    CHECK_FALSE(custodian::json::canonicalJson(repeated, custodian::json::Numbers::Decimal));
}

TEST_CASE("member order and whitespace do not change a policy's content hash", "[policies][hash]") {
    const auto a = loadPolicy(kPolicy);
    const auto b = loadPolicy(kPolicyReordered);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a.policy->contentHash() == b.policy->contentHash());
    CHECK(a.policy->canonicalJson() == b.policy->canonicalJson());
    CHECK(a.policy->contentHash() == sha256Hex(a.policy->canonicalJson()));
    CHECK(a.policy->canonicalJson().find(' ') == std::string::npos);
    // Loading twice gives the same version.
    CHECK(loadPolicy(kPolicy).policy->contentHash() == a.policy->contentHash());
}

TEST_CASE("any change of content changes the content hash", "[policies][hash]") {
    const auto base = loadPolicy(kPolicy);
    REQUIRE(base.ok());
    std::string changedValue = kPolicy;
    changedValue.replace(changedValue.find("1000"), 4, "1001");
    std::string changedOrder = kPolicy;
    changedOrder.replace(changedOrder.find(R"("bob", "group:analysts")"), 23, R"("group:analysts", "bob")");
    std::string withComment = kPolicy;
    withComment.insert(1, R"("$comment": "reviewed by the steward", )");
    for (const std::string& variant : {changedValue, changedOrder, withComment}) {
        const auto other = loadPolicy(variant);
        REQUIRE(other.ok());
        CHECK(other.policy->contentHash() != base.policy->contentHash());
    }
}

TEST_CASE("the shipped examples have stable canonical bytes", "[policies][hash]") {
    const auto path = std::filesystem::path(CUSTODIAN_SOURCE_DIR) / "policies/examples/hospital-visits.json";
    const auto first = loadPolicyFile(path);
    REQUIRE(first.ok());
    // Re-loading the canonical bytes is a fixed point.
    PolicyLoadOptions options;
    options.hierarchyBaseDirectory = path.parent_path();
    const auto again = loadPolicy(first.policy->canonicalJson(), options);
    REQUIRE(again.ok());
    CHECK(again.policy->canonicalJson() == first.policy->canonicalJson());
    CHECK(again.policy->contentHash() == first.policy->contentHash());
}

TEST_CASE("a version hashed by the earlier policy encoder keeps its hash as the legacy content hash",
          "[policies][hash]") {
    // The earlier encoder wrote \u001F (upper-case hex); the one canonical encoder writes \u001f.
    std::string commented = kPolicy;
    commented.insert(1, R"("$comment": "tab\t, unit separator \u001f and a backslash-u \\u001f", )");
    const auto p = loadPolicy(commented);
    REQUIRE(p.ok());
    const std::string& canonical = p.policy->canonicalJson();
    REQUIRE(canonical.find("separator \\u001f and a backslash-u \\\\u001f") != std::string::npos);
    std::string earlier = canonical;
    earlier.replace(earlier.find("separator \\u001f") + 15, 1, "F");
    CHECK(p.policy->legacyContentHash() == sha256Hex(earlier));
    CHECK(p.policy->legacyContentHash() != p.policy->contentHash());
    // Without such a character both are the same.
    const auto plain = loadPolicy(kPolicy);
    REQUIRE(plain.ok());
    CHECK(plain.policy->legacyContentHash() == plain.policy->contentHash());
}
