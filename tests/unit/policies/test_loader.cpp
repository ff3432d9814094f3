// Loading policies: the model with its defaults, hierarchies, options, and hostile input.
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include "anonymizer/transform.hpp"
#include "anonymizer/value.hpp"
#include "policies/policy.hpp"

using namespace custodian::policies;
namespace fs = std::filesystem;

namespace {

const fs::path kExamples = fs::path(CUSTODIAN_SOURCE_DIR) / "policies/examples";

std::string errorsOf(const PolicyLoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += (e.pointer.empty() ? "(document)" : e.pointer) + " :: " + e.message + "\n";
    return out;
}

std::shared_ptr<const Policy> example(const char* name) {
    auto r = loadPolicyFile(kExamples / name);
    INFO(errorsOf(r));
    REQUIRE(r.ok());
    return r.policy;
}

std::string minimal(const std::string& extra) {
    return R"({"dataset": "visits", "recipients": ["bob", "group:analysts"], "purposes": ["research"],
      "columns": [{"name": "ward", "type": "text", "role": "insensitive"}])" +
           extra + "}";
}

}  // namespace

TEST_CASE("the hospital example loads into the model with defaults filled in", "[policies][loader]") {
    const auto policy = example("hospital-visits.json");
    const PolicyModel& m = policy->model();
    CHECK(m.dataset == "hospital_visits");
    CHECK(m.recipients == std::vector<std::string>{"group:epidemiology-partners", "alice.researcher"});
    CHECK(m.allowsPurpose("public-health-research"));
    CHECK_FALSE(m.allowsPurpose("marketing"));
    CHECK(m.allowsRecipient("alice.researcher", {}));
    CHECK(m.allowsRecipient("carol", {"epidemiology-partners"}));
    CHECK_FALSE(m.allowsRecipient("carol", {"other"}));
    CHECK_FALSE(m.allowsRecipient("group:epidemiology-partners", {}));
    REQUIRE(m.validity.notBefore);
    CHECK(m.validity.contains(*m.validity.notBefore));
    CHECK_FALSE(m.validity.contains(*m.validity.expires));
    CHECK(m.inputDelimiter == ',');
    CHECK(m.privacy.k == std::optional<uint64_t>(5));
    REQUIRE(m.privacy.lDiversity);
    CHECK(m.privacy.lDiversity->variant == custodian::anon::LDiversityVariant::Entropy);
    CHECK(m.privacy.suppressionLimit == Approx(0.02));
    CHECK(m.output.encryptionRequired);
    CHECK(m.output.maxRows == std::optional<uint64_t>(500000));
    CHECK(m.extractsPerDayPerRecipient == std::optional<uint32_t>(5));

    const ColumnPolicy* id = m.column("patient_id");
    REQUIRE(id);
    CHECK(id->role == ColumnRole::Identifier);
    CHECK(id->transform.name == "pseudonymize");
    CHECK(std::get<std::string>(id->transform.params.at("encoding")) == "base32");
    CHECK(m.column("ward")->transform.name == "keep");
    CHECK_FALSE(m.column("ward")->transformDeclared);
    CHECK(m.column("birth_date")->transform.name == "generalize");
    CHECK(m.column("birth_date")->hierarchy->kind == HierarchySpec::Kind::Dates);
    CHECK(std::get<int64_t>(m.column("length_of_stay")->transform.params.at("top")) == 60);

    auto sql = policy->rowFilterSql();
    REQUIRE(sql.isOk());
    REQUIRE(sql->has_value());
    CHECK((*sql)->sql == R"((("admission_date" >= $1) AND ("ward" NOT IN ($2, $3)) AND (NOT ("diagnosis" IS NULL))))");
    CHECK((*sql)->parameters == std::vector<std::string>{"2024-01-01", "psychiatry", "child-psychiatry"});
}

TEST_CASE("an identifier without a transform is dropped", "[policies][loader]") {
    const auto r2 = loadPolicy(R"({"dataset": "v", "recipients": ["b"], "purposes": ["p"],
        "columns": [{"name": "ssn", "type": "text", "role": "identifier"}]})");
    REQUIRE(r2.ok());
    CHECK(r2.policy->model().column("ssn")->transform.name == "drop");
}

TEST_CASE("a policy's column rules follow the traits of the registry's transforms, not their names",
          "[policies][loader][transforms]") {
    namespace anon = custodian::anon;
    anon::TransformRegistry registry;
    anon::registerBuiltinTransforms(registry);
    const anon::TransformSpec::Factory keep = registry.find("keep")->create;
    // "redact" de-identifies, "echo" does not, "link" names another column through "partner".
    REQUIRE(registry.add({"redact", "test", {}, {}, registry.find("set_null")->create, {.deidentifies = true}}));
    REQUIRE(registry.add({"echo", "test", {}, {}, keep}));
    REQUIRE(registry.add({"link",
                          "test",
                          {{.name = "partner",
                            .type = anon::ParamType::String,
                            .required = true,
                            .description = "another column",
                            .namesColumn = true}},
                          {},
                          keep}));
    PolicyLoadOptions options;
    options.transforms = &registry;
    const auto load = [&](const std::string& idTransform, const std::string& partner) {
        return loadPolicy(R"({"dataset": "v", "recipients": ["b"], "purposes": ["p"], "columns": [
            {"name": "ssn", "type": "text", "role": "identifier", "transform": {"name": ")" +
                              idTransform + R"("}},
            {"name": "ward", "type": "text", "role": "insensitive",
             "transform": {"name": "link", "params": {"partner": ")" +
                              partner + R"("}}}]})",
                          options);
    };

    const auto ok = load("redact", "ssn");
    INFO(errorsOf(ok));
    CHECK(ok.ok());

    const auto echoed = load("echo", "ssn");
    REQUIRE(echoed.errors.size() == 1);
    CHECK(echoed.errors[0].pointer == "/columns/0/transform/name");
    CHECK(echoed.errors[0].message.find("the identifier column \"ssn\" would be released through echo") == 0);
    // The transforms it suggests are the registry's de-identifying ones, "redact" among them.
    const std::string& message = echoed.errors[0].message;
    CHECK(message.find("redact") != std::string::npos);
    CHECK(message.find("set_null") != std::string::npos);
    CHECK(message.find("keep") == std::string::npos);
    CHECK(message.find("echo)") == std::string::npos);

    const auto dangling = load("redact", "nobody");
    REQUIRE(dangling.errors.size() == 1);
    CHECK(dangling.errors[0].pointer == "/columns/1/transform/params/partner");
    CHECK(dangling.errors[0].message == "the column \"nobody\" is not declared in the policy");

    // Without the registry, the names are unknown transforms.
    const auto builtin = loadPolicy(R"({"dataset": "v", "recipients": ["b"], "purposes": ["p"], "columns": [
        {"name": "ssn", "type": "text", "role": "identifier", "transform": {"name": "redact"}}]})");
    REQUIRE(builtin.errors.size() == 1);
    CHECK(builtin.errors[0].message.find("\"redact\" is not a transform") == 0);
}

TEST_CASE("builder hierarchies are built from the data's values", "[policies][loader][hierarchy]") {
    const auto hospital = example("hospital-visits.json");
    CHECK(hospital->hierarchy("birth_date") == nullptr);  // depends on the data
    auto dates = hospital->buildHierarchy("birth_date", {"1980-03-14", "1985-11-02", "1991-07-30"});
    REQUIRE(dates.isOk());
    // day, year, decade, *
    CHECK((*dates)->levels() == 4);
    const auto leaf = (*dates)->leafCode("1985-11-02");
    REQUIRE(leaf);
    CHECK((*dates)->label(1, (*dates)->generalize(*leaf, 1)) == "1985");
    CHECK((*dates)->label(2, (*dates)->generalize(*leaf, 2)) == "1980s");

    // Groups are known with the policy; values outside them are an error naming the value.
    auto sex = hospital->hierarchy("sex");
    REQUIRE(sex);
    CHECK(sex->levels() == 2);
    CHECK(hospital->buildHierarchy("sex", {"F", "M"}).isOk());
    auto uncovered = hospital->buildHierarchy("sex", {"F", "unknown"});
    REQUIRE_FALSE(uncovered.isOk());
    CHECK(uncovered.status().message().find("unknown") != std::string::npos);
    CHECK(hospital->buildHierarchy("ward", {"a"}).status().code() == custodian::StatusCode::NotFound);

    const auto school = example("school-records.json");
    auto grades = school->buildHierarchy("grade_level", {"1", "2", "3", "4", "9", "12"});
    REQUIRE(grades.isOk());
    CHECK((*grades)->levels() == 5);  // value, 3, 6, 12, *
    auto schools = school->hierarchy("school_code");
    REQUIRE(schools);
    CHECK(schools->levels() == 4);  // school, district, half, *
}

TEST_CASE("hierarchy files are refused without a base directory", "[policies][loader][hierarchy]") {
    const std::string text = R"({"dataset": "adult", "recipients": ["b"], "purposes": ["p"],
        "columns": [{"name": "sex", "type": "text", "role": "quasi_identifier",
                     "hierarchy": {"file": "/etc/passwd"}}], "privacy": {"k": 2}})";
    const auto r = loadPolicy(text);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].pointer == "/columns/0/hierarchy/file");
    CHECK(r.errors[0].message.find("cannot be used here") != std::string::npos);
}

TEST_CASE("recipients can be checked against the known principals and groups", "[policies][loader]") {
    const std::set<std::string, std::less<>> known = {"bob", "group:analysts"};
    PolicyLoadOptions options;
    options.knownRecipients = &known;
    CHECK(loadPolicy(minimal(""), options).ok());
    const std::set<std::string, std::less<>> onlyBob = {"bob"};
    options.knownRecipients = &onlyBob;
    const auto r = loadPolicy(minimal(""), options);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].pointer == "/recipients/1");
    CHECK(r.errors[0].message == "no group named \"analysts\" exists");
    const std::set<std::string, std::less<>> onlyAnalysts = {"group:analysts"};
    options.knownRecipients = &onlyAnalysts;
    const auto p = loadPolicy(minimal(""), options);
    REQUIRE(p.errors.size() == 1);
    CHECK(p.errors[0].pointer == "/recipients/0");
    CHECK(p.errors[0].message.find("\"bob\" is not an enabled partner") == 0);
}

TEST_CASE("the admitting recipient is the partner's own name first, then the first listed group it is in",
          "[policies][loader][recipients]") {
    PolicyModel m;
    m.recipients = {"group:b", "carol", "group:a"};
    CHECK(m.admittingRecipient("carol", {"a", "b"}) == std::optional<std::string>("carol"));
    CHECK(m.admittingRecipient("dave", {"a", "b"}) == std::optional<std::string>("group:b"));
    CHECK(m.admittingRecipient("dave", {"a"}) == std::optional<std::string>("group:a"));
    CHECK_FALSE(m.admittingRecipient("dave", {"c"}));
    CHECK_FALSE(m.admittingRecipient("dave", {}));
    // A group entry never admits a principal by name, and a name entry never admits a group.
    CHECK_FALSE(m.admittingRecipient("group:b", {}));
    CHECK_FALSE(m.admittingRecipient("erin", {"carol"}));
}

TEST_CASE("validationStatus lists every error in one message", "[policies][loader]") {
    const auto status = validationStatus({{"", "a"}, {"/x", "b"}});
    CHECK(status.code() == custodian::StatusCode::InvalidArgument);
    CHECK(status.message() == "the policy has 2 errors: (document): a; /x: b");
}

TEST_CASE("hostile input is an error, never a crash", "[policies][loader][robustness]") {
    const std::string deep(100000, '[');
    const std::string deepObjects = [] {
        std::string s;
        for (int i = 0; i < 5000; ++i) s += "{\"a\":";
        return s;
    }();
    const std::vector<std::string> inputs = {
        "",
        " ",
        "null",
        "0",
        "\"text\"",
        "[]",
        "{}",
        deep,
        deepObjects,
        "{\"dataset\": \"\xff\xfe\"}",
        std::string("{\"dataset\"\0: 1}", 15),
        "{\"dataset\": 1e999999}",
        "{\"columns\": [" + std::string(5000, '1') + "]}",
        minimal(R"(, "privacy": {"k": 18446744073709551615})"),
        minimal(R"(, "row_filter": {"not": {"not": {"not": 1}}})"),
    };
    for (const auto& input : inputs) {
        INFO(input.substr(0, 60));
        const auto r = loadPolicy(input);
        CHECK_FALSE(r.ok());
        CHECK_FALSE(r.errors.empty());
        CHECK(r.policy == nullptr);
    }
    PolicyLoadOptions small;
    small.maxDocumentBytes = 10;
    CHECK(loadPolicy(minimal(""), small).errors.at(0).message.find("larger than") != std::string::npos);

    // Random mutations of a valid example never crash and always end valid or with errors.
    std::mt19937 rng(7);
    const auto base = example("transit-trips.json")->canonicalJson();
    std::uniform_int_distribution<size_t> position(0, base.size() - 1);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int round = 0; round < 300; ++round) {
        std::string mutated = base;
        for (int i = 0; i < 3; ++i) mutated[position(rng)] = static_cast<char>(byte(rng));
        const auto r = loadPolicy(mutated);
        CHECK(r.ok() == r.errors.empty());
    }
}

TEST_CASE("a dataset description is parsed with pointers to its problems", "[policies][dataset]") {
    auto ok = parseDatasetDescription(R"({"name": "visits", "table": "public.visits",
        "columns": [{"name": "age", "type": "integer", "role": "quasi_identifier"}, {"name": "ward", "type": "text"}]})");
    REQUIRE(ok.isOk());
    CHECK(ok->column("age")->role == std::optional<ColumnRole>(ColumnRole::QuasiIdentifier));
    CHECK_FALSE(ok->column("ward")->role.has_value());
    CHECK(ok->column("nope") == nullptr);
    auto bad = parseDatasetDescription(R"({"name": "visits", "columns": [{"name": "age", "type": "int"}]})");
    REQUIRE_FALSE(bad.isOk());
    CHECK(bad.status().message().find("/columns/0/type") != std::string::npos);
    CHECK_FALSE(parseDatasetDescription("[").isOk());
}

TEST_CASE("a document with thousands of errors reports a bounded list", "[policies][loader][robustness]") {
    std::string columns;
    for (int i = 0; i < 1500; ++i)
        columns += std::string(i ? "," : "") + R"({"name": "c", "type": "blob", "role": "x"})";
    const auto r =
        loadPolicy(R"({"dataset": "v", "recipients": ["b"], "purposes": ["p"], "columns": [)" + columns + "]}");
    REQUIRE(r.errors.size() == 1001);
    CHECK(r.errors[0].pointer == "/columns/0/type");
    CHECK(r.errors.back().message == "and 2000 more errors");
}

TEST_CASE("a number beyond the double range is refused with its pointer, not stored as infinity",
          "[policies][loader]") {
    // RapidJSON reads 2e308 as infinity; its canonical form would not be JSON.
    auto withC = [](const std::string& c) {
        return R"({"dataset": "visits", "recipients": ["bob"], "purposes": ["research"],
          "columns": [{"name": "ward", "type": "text", "role": "sensitive"},
                      {"name": "sex", "type": "text", "role": "quasi_identifier",
                       "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}}],
          "privacy": {"k": 2, "l_diversity": {"l": 2, "variant": "recursive", "c": )" +
               c + "}}}";
    };
    auto r = loadPolicy(withC("2e308"));
    REQUIRE_FALSE(r.ok());
    CHECK(errorsOf(r) ==
          "/privacy/l_diversity/c :: the number is too large: numbers must be finite doubles (below 1.8e308)\n");
    auto negative = loadPolicy(minimal(R"(, "privacy": {"k": 2, "suppression_limit": -2e308})"));
    REQUIRE_FALSE(negative.ok());
    INFO(errorsOf(negative));
    CHECK(errorsOf(negative).find("/privacy/suppression_limit :: the number is too large") != std::string::npos);
    // The largest finite double is still a number, and its content is JSON again.
    auto largest = loadPolicy(withC("1.7976931348623157e308"));
    INFO(errorsOf(largest));
    REQUIRE(largest.ok());
    rapidjson::Document content;
    content.Parse(largest.policy->canonicalJson().c_str());
    CHECK_FALSE(content.HasParseError());
    CHECK(content["privacy"]["l_diversity"]["c"].GetDouble() == 1.7976931348623157e308);
}

TEST_CASE("transparency defaults to summary and takes public, summary or private", "[policies][loader]") {
    auto defaulted = loadPolicy(minimal(""));
    INFO(errorsOf(defaulted));
    REQUIRE(defaulted.ok());
    CHECK(defaulted.policy->model().transparency == PolicyModel::Transparency::Summary);
    for (const char* name : {"public", "summary", "private"}) {
        auto r = loadPolicy(minimal(std::string(R"(, "transparency": ")") + name + "\""));
        INFO(errorsOf(r));
        REQUIRE(r.ok());
        CHECK(transparencyName(r.policy->model().transparency) == std::string(name));
        CHECK(transparencyFromName(name) == r.policy->model().transparency);
    }
    auto bad = loadPolicy(minimal(R"(, "transparency": "open")"));
    REQUIRE_FALSE(bad.ok());
    CHECK(errorsOf(bad).find("/transparency") != std::string::npos);
    CHECK_FALSE(transparencyFromName("Public").has_value());
}

TEST_CASE("linkable_with lists other policies by name", "[policies][loader]") {
    auto r = loadPolicy(minimal(R"(, "linkable_with": ["place", "survey"])"));
    INFO(errorsOf(r));
    REQUIRE(r.ok());
    CHECK(r.policy->model().linkableWith == std::vector<std::string>{"place", "survey"});
    CHECK(loadPolicy(minimal("")).policy->model().linkableWith.empty());
    CHECK(errorsOf(loadPolicy(minimal(R"(, "linkable_with": ["a", "a"])"))).find("/linkable_with") !=
          std::string::npos);
    CHECK(errorsOf(loadPolicy(minimal(R"(, "linkable_with": ["a+b"])"))).find("/linkable_with") != std::string::npos);
    CHECK_FALSE(loadPolicy(minimal(R"(, "linkable_with": "place")")).ok());
}
