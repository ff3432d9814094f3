// The policy schema: the embedded copy is the file, and it is a schema RapidJSON accepts.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "policies/json_schema.hpp"

using namespace custodian::policies;

namespace {
std::string readText(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

ValidationErrors check(const char* json) {
    rapidjson::Document d;
    d.Parse(json);
    REQUIRE_FALSE(d.HasParseError());
    return policySchemaChecker().check(d);
}
}  // namespace

TEST_CASE("the embedded policy schema is byte-identical to policies/schema/policy.schema.json", "[policies][schema]") {
    const auto file = readText(std::filesystem::path(CUSTODIAN_POLICY_SCHEMA_DIR) / "policy.schema.json");
    REQUIRE_FALSE(file.empty());
    CHECK(policySchemaText() == file);
}

TEST_CASE("the policy schema is draft-04 JSON Schema", "[policies][schema]") {
    rapidjson::Document d;
    d.Parse(policySchemaText().data(), policySchemaText().size());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["$schema"].GetString()) == "http://json-schema.org/draft-04/schema#");
    CHECK(d["definitions"].HasMember("expression"));
}

TEST_CASE("schema errors are all reported, each with its pointer", "[policies][schema]") {
    const auto errors = check(R"({"dataset": "bad name!", "recipients": [], "purposes": ["ok"],
        "columns": [{"name": "a", "type": "text", "role": "insensitive", "extra": 1},
                    {"name": "b", "type": "blob", "role": "insensitive"}]})");
    std::vector<std::string> pointers;
    for (const auto& e : errors) pointers.push_back(e.pointer);
    std::sort(pointers.begin(), pointers.end());
    CHECK(pointers == std::vector<std::string>{"/columns/0/extra", "/columns/1/type", "/dataset", "/recipients"});
    CHECK(check(R"({"dataset": "ok", "recipients": ["r"], "purposes": ["p"],
        "columns": [{"name": "a", "type": "text", "role": "insensitive"}]})")
              .empty());
}

TEST_CASE("JSON pointers escape '~' and '/' in member names", "[policies][schema]") {
    const auto errors = check(R"({"dataset": "ok", "recipients": ["r"], "purposes": ["p"], "a/b~c": 1,
        "columns": [{"name": "a", "type": "text", "role": "insensitive"}]})");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].pointer == "/a~1b~0c");
}

TEST_CASE("a schema checker reports a broken schema as an error, not a crash", "[policies][schema]") {
    CHECK_FALSE(JsonSchemaChecker::fromText("{not json").isOk());
    auto checker =
        JsonSchemaChecker::fromText(R"({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}})");
    REQUIRE(checker.isOk());
    rapidjson::Document d;
    d.Parse(R"({"a": 1})");
    // RapidJSON treats an unresolvable reference as an empty schema: the document is valid.
    CHECK((*checker)->check(d).empty());
}
