#include <catch2/catch.hpp>

#include <sodium.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "anonymizer/hierarchy_io.hpp"
#include "anonymizer/transform.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

SchemaPtr schemaOf(std::vector<ColumnSpec> columns) {
    auto schema = Schema::make(std::move(columns));
    REQUIRE(schema.isOk());
    return std::make_shared<const Schema>(std::move(schema.value()));
}

Batch batchFrom(const std::string& csv, std::vector<ColumnSpec> columns) {
    auto reader = CsvReader::fromString(csv, CsvDialect{});
    REQUIRE(reader.isOk());
    auto table = Table::readCsv(std::move(reader.value()), schemaOf(std::move(columns)));
    REQUIRE(table.isOk());
    REQUIRE(table->batches().size() == 1);
    return std::move(table->batches()[0]);
}

const TransformRegistry& registry() {
    static const TransformRegistry r = [] {
        TransformRegistry reg;
        registerBuiltinTransforms(reg);
        return reg;
    }();
    return r;
}

// Builds the transform and applies it to column `column`.
ColumnPtr run(const std::string& name, const Params& params, const Batch& batch, size_t column,
              const TransformContext& context = {}) {
    auto transform = registry().create(name, params, context, batch.column(column).type());
    INFO(transform.status().message());
    REQUIRE(transform.isOk());
    auto out = (*transform)->apply(batch, column);
    INFO(out.status().message());
    REQUIRE(out.isOk());
    return *out;
}

std::vector<std::string> texts(const Column& c) {
    std::vector<std::string> out;
    for (size_t r = 0; r < c.size(); ++r) out.push_back(c.isNull(r) ? "<null>" : c.canonical(r));
    return out;
}

std::string createError(const std::string& name, const Params& params, ColumnType type,
                        const TransformContext& context = {}) {
    auto transform = registry().create(name, params, context, type);
    REQUIRE_FALSE(transform.isOk());
    return transform.status().message();
}

MasterKey fixedMasterKey() {
    uint8_t bytes[32];
    for (int i = 0; i < 32; ++i) bytes[i] = static_cast<uint8_t>(i);
    auto key = MasterKey::fromBytes(bytes);
    REQUIRE(key.isOk());
    return std::move(key.value());
}

// The documented key derivation, written out with libsodium calls (independent of the product code).
// The documented derivation (docs/formats/csv-and-hierarchies.md), written out: version 2 hashes
// the policy between the dataset and the recipient, version 1 (policy nullopt) does not.
void expectedReleaseKey(const char* context, const std::string& dataset, const std::optional<std::string>& policy,
                        const std::string& recipient, uint8_t (&subkey)[32]) {
    REQUIRE(sodium_init() >= 0);
    std::string message;
    auto le64 = [&](uint64_t v) {
        for (int i = 0; i < 8; ++i) message.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    le64(dataset.size());
    message += dataset;
    if (policy) {
        le64(policy->size());
        message += *policy;
    }
    le64(recipient.size());
    message += recipient;
    uint8_t digest[16];
    crypto_generichash(digest, sizeof digest, reinterpret_cast<const uint8_t*>(message.data()), message.size(), nullptr,
                       0);
    uint64_t subkeyId = 0;
    for (int i = 7; i >= 0; --i) subkeyId = (subkeyId << 8) | digest[i];
    uint8_t master[32];
    for (int i = 0; i < 32; ++i) master[i] = static_cast<uint8_t>(i);
    REQUIRE(crypto_kdf_derive_from_key(subkey, 32, subkeyId, context, master) == 0);
}

std::vector<uint8_t> base32Decode(const std::string& text) {
    std::vector<uint8_t> out;
    uint32_t buffer = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = c >= 'a' && c <= 'z' ? c - 'a' : c >= '2' && c <= '7' ? c - '2' + 26 : -1;
        REQUIRE(v >= 0);
        buffer = (buffer << 5) | static_cast<uint32_t>(v);
        bits += 5;
        if (bits >= 8) {
            out.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
            bits -= 8;
        }
    }
    return out;
}

// Deterministic bytes for noise tests (splitmix64).
class SeededRandom final : public RandomSource {
public:
    explicit SeededRandom(uint64_t seed) : state_(seed) {}
    void fill(std::span<uint8_t> out) override {
        for (auto& b : out) {
            if (available_ == 0) {
                uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
                word_ = z ^ (z >> 31);
                available_ = 8;
            }
            b = static_cast<uint8_t>(word_ >> (8 * --available_));
        }
    }

private:
    uint64_t state_;
    uint64_t word_ = 0;
    int available_ = 0;
};

class FixedRandom final : public RandomSource {
public:
    explicit FixedRandom(uint8_t firstByte) : first_(firstByte) {}
    void fill(std::span<uint8_t> out) override {
        std::memset(out.data(), 0, out.size());
        for (size_t i = 0; i < out.size(); i += 8) out[i] = first_;
    }

private:
    uint8_t first_;
};

}  // namespace

TEST_CASE("the registry holds every built-in transform with descriptions", "[transforms]") {
    CHECK(registry().names() == std::vector<std::string>{"constant", "date_shift", "drop", "generalize", "keep",
                                                         "laplace_noise", "mask", "pseudonymize", "round", "set_null",
                                                         "top_bottom_coding"});
    for (const auto& spec : registry().specs()) {
        INFO(spec.name);
        CHECK_FALSE(spec.description.empty());
        for (const auto& p : spec.params) CHECK_FALSE(p.description.empty());
    }
    const TransformSpec* mask = registry().find("mask");
    REQUIRE(mask != nullptr);
    REQUIRE(mask->params.size() == 4);
    CHECK(mask->params[1].name == "keep_last");
    CHECK(mask->params[1].type == ParamType::Integer);
    TransformRegistry again;
    registerBuiltinTransforms(again);
    CHECK_FALSE(again.add(TransformSpec{"mask", "dup", {}, {}, registry().find("keep")->create}).isOk());
}

TEST_CASE("the registry validates parameters with messages a policy validator can prefix", "[transforms]") {
    CHECK(registry().validate("round", {}).message() == "round needs parameter 'base' (number)");
    CHECK(registry().validate("mask", {{"keep_lst", int64_t{2}}}).message() ==
          "mask: unknown parameter 'keep_lst' (known: keep_first, keep_last, mask_char, email)");
    CHECK(registry().validate("mask", {{"keep_last", std::string("2")}}).message() ==
          "mask: parameter 'keep_last' must be an integer, got a string");
    CHECK(registry().validate("drop", {{"x", true}}).message() == "drop: unknown parameter 'x' (it takes none)");
    CHECK(registry().validate("shuffle", {}).message().rfind("unknown transform 'shuffle' (known: constant, ", 0) == 0);
    CHECK(registry().validate("mask", {}, ColumnType::Integer).message() ==
          "mask does not apply to integer columns (applies to: text)");
    CHECK(registry().validate("round", {{"base", int64_t{5}}}, ColumnType::Decimal).isOk());  // integer for a number
}

TEST_CASE("keep shares the column, drop removes it, a plan needs a transform for every column", "[transforms]") {
    Batch batch = batchFrom("id,name,zip\n1,ann,12345\n2,bob,54321\n",
                            {{"id", ColumnType::Integer}, {"name", ColumnType::Text}, {"zip", ColumnType::Text}});
    batch.suppress(1);
    auto keep = registry().create("keep", {}, {}, ColumnType::Integer);
    auto drop = registry().create("drop", {}, {}, ColumnType::Text);
    auto mask = registry().create("mask", {{"keep_first", int64_t{2}}}, {}, ColumnType::Text);
    REQUIRE((keep.isOk() && drop.isOk() && mask.isOk()));
    CHECK((*keep)->apply(batch, 0).value() == batch.columnPtr(0));

    auto incomplete = TransformPlan::make(batch.schemaPtr(), {{"id", *keep}, {"name", *drop}});
    REQUIRE_FALSE(incomplete.isOk());
    CHECK(incomplete.status().message() == "column 'zip' has no transform (use 'keep' to release it as is)");

    auto plan = TransformPlan::make(batch.schemaPtr(), {{"id", *keep}, {"name", *drop}, {"zip", *mask}});
    REQUIRE(plan.isOk());
    CHECK(plan->outputSchema()->size() == 2);
    CHECK((*plan->outputSchema())[1].name == "zip");
    auto out = plan->apply(batch);
    REQUIRE(out.isOk());
    CHECK(out->columnCount() == 2);
    CHECK(texts(out->column(1)) == std::vector<std::string>{"12***", "54***"});
    CHECK(out->isSuppressed(1));
    CHECK(out->sourceLine(1) == 3);
}

TEST_CASE("mask keeps first/last characters, masks e-mail local parts, never releases short values", "[transforms]") {
    Batch batch = batchFrom("v\nalice@example.org\nbob\nZürich\n\n\"\"\nno-at-sign\nab\n", {{"v", ColumnType::Text}});
    CHECK(texts(*run("mask", {{"keep_first", int64_t{1}}, {"keep_last", int64_t{1}}}, batch, 0)) ==
          std::vector<std::string>{"a***************g", "b*b", "Z****h", "<null>", "", "n********n", "**"});
    CHECK(
        texts(*run("mask", {{"email", true}, {"keep_first", int64_t{1}}, {"mask_char", std::string("x")}}, batch, 0)) ==
        std::vector<std::string>{"axxxx@example.org", "bxx", "Zxxxxx", "<null>", "", "nxxxxxxxxx", "ax"});
    CHECK(texts(*run("mask", {{"keep_last", int64_t{3}}, {"mask_char", std::string("•")}}, batch, 0))[2] == "•••ich");
    CHECK(createError("mask", {{"mask_char", std::string("ab")}}, ColumnType::Text) ==
          "mask: mask_char must be exactly one character other than CR and LF");
    CHECK(createError("mask", {{"keep_first", int64_t{-1}}}, ColumnType::Text) ==
          "mask: keep_first and keep_last must be >= 0");
}

TEST_CASE("pseudonymize: known answers from libsodium, stable per policy and recipient, unlinkable across "
          "recipients and policies",
          "[transforms][crypto]") {
    const MasterKey master = fixedMasterKey();
    const auto v2 = KeyDerivation::DatasetPolicyRecipient;
    TransformContext partnerA{{v2, "adult", "research", "partner-a"}, &master, {}, {}};
    TransformContext partnerB{{v2, "adult", "research", "partner-b"}, &master, {}, {}};
    Batch batch = batchFrom("email,n\nann@example.org,42\nbob@example.org,7\nann@example.org,\n",
                            {{"email", ColumnType::Text}, {"n", ColumnType::Integer}});

    uint8_t subkey[32];
    expectedReleaseKey("CUSTPSEU", "adult", "research", "partner-a", subkey);
    auto expectedHex = [&](const std::string& value, size_t bytes) {
        uint8_t digest[64];
        crypto_generichash(digest, bytes, reinterpret_cast<const uint8_t*>(value.data()), value.size(), subkey, 32);
        char hex[129];
        sodium_bin2hex(hex, sizeof hex, digest, bytes);
        return std::string(hex);
    };

    const auto a = texts(*run("pseudonymize", {}, batch, 0, partnerA));
    CHECK(a[0] == expectedHex("ann@example.org", 16));
    CHECK(a[1] == expectedHex("bob@example.org", 16));
    CHECK(a[0] == a[2]);
    CHECK(a[0].size() == 32);
    // Integers are hashed as their canonical text; null stays null.
    const auto n = texts(*run("pseudonymize", {{"bytes", int64_t{32}}}, batch, 1, partnerA));
    CHECK(n[0] == expectedHex("42", 32));
    CHECK(n[2] == "<null>");

    const auto b32 = texts(*run("pseudonymize", {{"encoding", std::string("base32")}}, batch, 0, partnerA));
    CHECK(b32[0].size() == 26);  // ceil(128 / 5)
    uint8_t digest[16];
    const std::string ann = "ann@example.org";
    crypto_generichash(digest, 16, reinterpret_cast<const uint8_t*>(ann.data()), ann.size(), subkey, 32);
    CHECK(base32Decode(b32[0]) == std::vector<uint8_t>(digest, digest + 16));

    const auto b = texts(*run("pseudonymize", {}, batch, 0, partnerB));
    CHECK(b[0] == b[2]);
    CHECK(b[0] != a[0]);
    CHECK(b[1] != a[1]);
    TransformContext otherDataset{{v2, "census", "research", "partner-a"}, &master, {}, {}};
    CHECK(texts(*run("pseudonymize", {}, batch, 0, otherDataset))[0] != a[0]);
    // Another policy of the same dataset, to the same recipient: pseudonyms that do not join.
    TransformContext otherPolicy{{v2, "adult", "marketing", "partner-a"}, &master, {}, {}};
    const auto p = texts(*run("pseudonymize", {}, batch, 0, otherPolicy));
    CHECK(p[0] == p[2]);
    CHECK(p[0] != a[0]);
    CHECK(p[1] != a[1]);
    // The policy is part of the scope as a length-prefixed field, not glued to its neighbours.
    TransformContext shifted{{v2, "adul", "tresearch", "partner-a"}, &master, {}, {}};
    CHECK(texts(*run("pseudonymize", {}, batch, 0, shifted))[0] != a[0]);

    // Derivation 1 (releases made before per-policy keys) reproduces its pseudonyms: per dataset and
    // recipient, the same under every policy, and unlike derivation 2's.
    uint8_t v1Subkey[32];
    expectedReleaseKey("CUSTPSEU", "adult", std::nullopt, "partner-a", v1Subkey);
    crypto_generichash(digest, 16, reinterpret_cast<const uint8_t*>(ann.data()), ann.size(), v1Subkey, 32);
    char v1Hex[33];
    sodium_bin2hex(v1Hex, sizeof v1Hex, digest, 16);
    const auto v1 = KeyDerivation::DatasetRecipient;
    TransformContext v1Research{{v1, "adult", "research", "partner-a"}, &master, {}, {}};
    TransformContext v1Marketing{{v1, "adult", "marketing", "partner-a"}, &master, {}, {}};
    TransformContext v1NoPolicy{{v1, "adult", "", "partner-a"}, &master, {}, {}};
    CHECK(texts(*run("pseudonymize", {}, batch, 0, v1Research))[0] == std::string(v1Hex));
    CHECK(texts(*run("pseudonymize", {}, batch, 0, v1Marketing))[0] == std::string(v1Hex));
    CHECK(texts(*run("pseudonymize", {}, batch, 0, v1NoPolicy))[0] == std::string(v1Hex));
    CHECK(std::string(v1Hex) != a[0]);

    TransformContext noPolicy{{v2, "adult", "", "partner-a"}, &master, {}, {}};
    CHECK(createError("pseudonymize", {}, ColumnType::Text, noPolicy) ==
          "pseudonymize needs the dataset, policy and recipient of the release");
    TransformContext v1NoRecipient{{v1, "adult", "research", ""}, &master, {}, {}};
    CHECK(createError("pseudonymize", {}, ColumnType::Text, v1NoRecipient) ==
          "pseudonymize needs the dataset and recipient of the release");

    CHECK(createError("pseudonymize", {}, ColumnType::Text) ==
          "pseudonymize needs the gateway's pseudonymization master key");
    CHECK(createError("pseudonymize", {{"encoding", std::string("b64")}}, ColumnType::Text, partnerA) ==
          "pseudonymize: encoding must be 'hex' or 'base32', got 'b64'");
    CHECK(createError("pseudonymize", {{"bytes", int64_t{8}}}, ColumnType::Text, partnerA) ==
          "pseudonymize: bytes must be between 16 and 64");
}

TEST_CASE("generalize releases a hierarchy level and refuses uncovered values", "[transforms]") {
    auto h = parseHierarchyCsv("age", "20;[20-30[;*\n25;[20-30[;*\n31;[30-40[;*\n");
    REQUIRE(h.isOk());
    auto shared = std::make_shared<const Hierarchy>(std::move(h.value()));
    TransformContext context;
    context.hierarchies = [&](std::string_view name) { return name == "age" ? shared : nullptr; };
    Batch batch = batchFrom("age\n31\n20\n25\n", {{"age", ColumnType::Integer}});
    CHECK(texts(*run("generalize", {{"hierarchy", std::string("age")}, {"level", int64_t{1}}}, batch, 0, context)) ==
          std::vector<std::string>{"[30-40[", "[20-30[", "[20-30["});
    CHECK(texts(*run("generalize", {{"hierarchy", std::string("age")}, {"level", int64_t{0}}}, batch, 0, context)) ==
          std::vector<std::string>{"31", "20", "25"});
    CHECK(createError("generalize", {{"hierarchy", std::string("age")}, {"level", int64_t{3}}}, ColumnType::Integer,
                      context) == "generalize: level 3 is outside hierarchy 'age' (levels 0 to 2)");
    CHECK(createError("generalize", {{"hierarchy", std::string("zip")}, {"level", int64_t{1}}}, ColumnType::Text,
                      context) == "generalize: unknown hierarchy 'zip'");
    Batch uncovered = batchFrom("age\n31\n77\n", {{"age", ColumnType::Integer}});
    auto transform = registry().create("generalize", {{"hierarchy", std::string("age")}, {"level", int64_t{1}}},
                                       context, ColumnType::Integer);
    REQUIRE(transform.isOk());
    auto out = (*transform)->apply(uncovered, 0);
    REQUIRE_FALSE(out.isOk());
    CHECK(out.status().message() == "column 'age': 1 value is not covered by hierarchy 'age': '77' (line 3)");
}

TEST_CASE("top/bottom coding censors both tails", "[transforms]") {
    Batch batch = batchFrom("i,d\n-5,0.5\n50,99.9\n120,\n", {{"i", ColumnType::Integer}, {"d", ColumnType::Decimal}});
    CHECK(texts(*run("top_bottom_coding", {{"top", int64_t{90}}, {"bottom", int64_t{0}}}, batch, 0)) ==
          std::vector<std::string>{"0", "50", "90"});
    CHECK(texts(*run("top_bottom_coding", {{"top", 90.5}}, batch, 1)) ==
          std::vector<std::string>{"0.5", "90.5", "<null>"});
    CHECK(createError("top_bottom_coding", {}, ColumnType::Integer) ==
          "top_bottom_coding needs parameter 'top' or 'bottom' (number)");
    CHECK(createError("top_bottom_coding", {{"top", 2.5}}, ColumnType::Integer) ==
          "top_bottom_coding: bounds of an integer column must be integers");
    CHECK(createError("top_bottom_coding", {{"top", int64_t{1}}, {"bottom", int64_t{2}}}, ColumnType::Decimal) ==
          "top_bottom_coding: bottom must not exceed top");
}

TEST_CASE("round to multiples: nearest (ties away from zero), down, up, exact for integers", "[transforms]") {
    Batch batch = batchFrom("i,d\n12,1.26\n-12,-1.24\n15,2.5\n-15,\n9223372036854775807,0\n",
                            {{"i", ColumnType::Integer}, {"d", ColumnType::Decimal}});
    Batch small = batchFrom("i\n12\n-12\n15\n-15\n", {{"i", ColumnType::Integer}});
    CHECK(texts(*run("round", {{"base", int64_t{10}}}, small, 0)) ==
          std::vector<std::string>{"10", "-10", "20", "-20"});
    CHECK(texts(*run("round", {{"base", int64_t{10}}, {"mode", std::string("down")}}, small, 0)) ==
          std::vector<std::string>{"10", "-20", "10", "-20"});
    CHECK(texts(*run("round", {{"base", int64_t{10}}, {"mode", std::string("up")}}, small, 0)) ==
          std::vector<std::string>{"20", "-10", "20", "-10"});
    CHECK(texts(*run("round", {{"base", 0.5}}, batch, 1)) ==
          std::vector<std::string>{"1.5", "-1", "2.5", "<null>", "0"});
    auto overflow = registry().create("round", {{"base", int64_t{10}}}, {}, ColumnType::Integer);
    REQUIRE(overflow.isOk());
    auto out = (*overflow)->apply(batch, 0);
    REQUIRE_FALSE(out.isOk());
    CHECK(out.status().message() == "line 6: 9223372036854775807 cannot be rounded without overflow");
    CHECK(createError("round", {{"base", 2.5}}, ColumnType::Integer) ==
          "round: the base of an integer column must be an integer up to 10^18");
    CHECK(createError("round", {{"base", int64_t{0}}}, ColumnType::Integer) == "round: base must be a number > 0");
}

TEST_CASE("Laplace noise uses scale sensitivity/epsilon and the injected random source", "[transforms]") {
    Batch batch = batchFrom("i,d\n100,100\n", {{"i", ColumnType::Integer}, {"d", ColumnType::Decimal}});
    const double b = 2.0;  // sensitivity 1, epsilon 0.5
    const Params params = {{"epsilon", 0.5}, {"sensitivity", int64_t{1}}};
    TransformContext lowest;
    lowest.random = std::make_shared<FixedRandom>(0x00);  // u = 0: p = 2^-54, the far left tail
    const double left = b * std::log(2 * (0.5 / 9007199254740992.0));
    CHECK(run("laplace_noise", params, batch, 1, lowest)->decimal(0) == Approx(100 + left));
    CHECK(run("laplace_noise", params, batch, 0, lowest)->integer(0) == static_cast<int64_t>(std::round(100 + left)));
    TransformContext highest;
    highest.random = std::make_shared<FixedRandom>(0xff);  // p just below 1: the far right tail (bytes ff 00 ...)
    const double p = (static_cast<double>(0xff00000000000000ULL >> 11) + 0.5) / 9007199254740992.0;
    CHECK(run("laplace_noise", params, batch, 1, highest)->decimal(0) == Approx(100 - b * std::log(2 * (1 - p))));

    // Distribution: mean 0, mean absolute deviation b.
    auto zeroColumn = std::make_shared<Column>(ColumnType::Decimal);
    for (int i = 0; i < 20000; ++i) zeroColumn->appendDecimal(0);
    auto zerosBatch = Batch::make(schemaOf({{"d", ColumnType::Decimal}}), {zeroColumn});
    REQUIRE(zerosBatch.isOk());
    const Batch& zeros = *zerosBatch;
    TransformContext seeded;
    seeded.random = std::make_shared<SeededRandom>(42);
    auto noisy = run("laplace_noise", params, zeros, 0, seeded);
    double sum = 0, sumAbs = 0;
    for (size_t r = 0; r < noisy->size(); ++r) {
        sum += noisy->decimal(r);
        sumAbs += std::fabs(noisy->decimal(r));
    }
    CHECK(std::fabs(sum / 20000) < 0.05);
    CHECK(sumAbs / 20000 == Approx(b).epsilon(0.03));
    // With the system source two runs differ.
    auto first = run("laplace_noise", params, zeros, 0);
    auto second = run("laplace_noise", params, zeros, 0);
    CHECK(first->decimal(0) != second->decimal(0));
    CHECK(createError("laplace_noise", {{"epsilon", int64_t{0}}, {"sensitivity", int64_t{1}}}, ColumnType::Decimal) ==
          "laplace_noise: epsilon must be > 0");
}

TEST_CASE("date shift moves one individual's dates by one keyed offset within the bound", "[transforms][crypto]") {
    const MasterKey master = fixedMasterKey();
    const auto v2 = KeyDerivation::DatasetPolicyRecipient;
    TransformContext partnerA{{v2, "visits", "study", "partner-a"}, &master, {}, {}};
    TransformContext partnerB{{v2, "visits", "study", "partner-b"}, &master, {}, {}};
    TransformContext otherPolicy{{v2, "visits", "audit", "partner-a"}, &master, {}, {}};
    Batch batch =
        batchFrom("patient,visit,at\np1,2021-03-14,2021-03-14T10:00:00Z\np2,2021-03-14,\n"
                  "p1,2021-04-01,2021-04-01T00:00:00Z\n,2021-05-05,\n",
                  {{"patient", ColumnType::Text}, {"visit", ColumnType::Date}, {"at", ColumnType::Timestamp}});
    const Params params = {{"max_days", int64_t{30}}, {"key_column", std::string("patient")}};
    auto shifted = run("date_shift", params, batch, 1, partnerA);

    uint8_t subkey[32];
    expectedReleaseKey("CUSTDSHF", "visits", "study", "partner-a", subkey);
    auto expectedOffset = [&](const std::string& key) {
        uint8_t digest[16];
        crypto_generichash(digest, 16, reinterpret_cast<const uint8_t*>(key.data()), key.size(), subkey, 32);
        uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | digest[i];
        return static_cast<int64_t>(v % 61) - 30;
    };
    const int64_t p1 = expectedOffset("p1");
    CHECK(shifted->date(0) - batch.column(1).date(0) == p1);
    CHECK(shifted->date(2) - batch.column(1).date(2) == p1);
    CHECK(shifted->date(1) - batch.column(1).date(1) == expectedOffset("p2"));
    CHECK(shifted->isNull(3));  // no key, no consistent offset: withheld
    auto stamps = run("date_shift", params, batch, 2, partnerA);
    CHECK(stamps->timestamp(0) - batch.column(2).timestamp(0) == p1 * kMicrosPerDay);
    CHECK(stamps->isNull(1));

    // Offsets stay within ±max_days and differ between recipients for some individuals.
    std::string csv = "k,d\n";
    for (int i = 0; i < 200; ++i) csv += "person" + std::to_string(i) + ",2000-01-01\n";
    Batch many = batchFrom(csv, {{"k", ColumnType::Text}, {"d", ColumnType::Date}});
    const Params manyParams = {{"max_days", int64_t{30}}, {"key_column", std::string("k")}};
    auto a = run("date_shift", manyParams, many, 1, partnerA);
    auto b = run("date_shift", manyParams, many, 1, partnerB);
    auto c = run("date_shift", manyParams, many, 1, otherPolicy);
    std::set<int64_t> offsets;
    size_t differing = 0, differingPolicy = 0;
    for (size_t r = 0; r < many.rows(); ++r) {
        const int64_t offset = a->date(r) - many.column(1).date(r);
        CHECK(std::llabs(offset) <= 30);
        offsets.insert(offset);
        differing += a->date(r) != b->date(r) ? 1 : 0;
        differingPolicy += a->date(r) != c->date(r) ? 1 : 0;
    }
    CHECK(offsets.size() > 40);  // 200 draws over 61 values cover most of them
    CHECK(differing > 150);
    CHECK(differingPolicy > 150);  // two policies' offsets are independent too

    auto missingKey = registry().create("date_shift", {{"max_days", int64_t{3}}, {"key_column", std::string("nope")}},
                                        partnerA, ColumnType::Date);
    REQUIRE(missingKey.isOk());
    CHECK((*missingKey)->apply(batch, 1).status().message() == "date_shift: key column 'nope' is not in the data");
    CHECK(createError("date_shift", {{"max_days", int64_t{0}}, {"key_column", std::string("k")}}, ColumnType::Date,
                      partnerA) == "date_shift: max_days must be between 1 and 1000000");
}

TEST_CASE("set_null and constant keep the column type", "[transforms]") {
    Batch batch = batchFrom("i,t,d\n1,a,2020-01-01\n,b,\n",
                            {{"i", ColumnType::Integer}, {"t", ColumnType::Text}, {"d", ColumnType::Date}});
    auto nulls = run("set_null", {}, batch, 0);
    CHECK(nulls->type() == ColumnType::Integer);
    CHECK(nulls->nullCount() == 2);
    CHECK(texts(*run("constant", {{"value", std::string("0")}}, batch, 0)) == std::vector<std::string>{"0", "0"});
    CHECK(texts(*run("constant", {{"value", std::string("n/a")}}, batch, 1)) == std::vector<std::string>{"n/a", "n/a"});
    CHECK(texts(*run("constant", {{"value", std::string("1900-01-01")}}, batch, 2)) ==
          std::vector<std::string>{"1900-01-01", "1900-01-01"});
    CHECK(createError("constant", {{"value", std::string("zero")}}, ColumnType::Integer) ==
          "constant: 'zero' is not a valid integer value");
}

TEST_CASE("transform traits say which built-ins de-identify, use a hierarchy or remove the column",
          "[unit][transforms]") {
    const std::set<std::string> deidentifying = {"drop", "pseudonymize", "mask", "set_null", "constant"};
    for (const auto& spec : builtinTransforms().specs()) {
        INFO(spec.name);
        CHECK(spec.traits.deidentifies == (deidentifying.count(spec.name) == 1));
        CHECK(spec.traits.usesHierarchy == (spec.name == "generalize"));
        CHECK(spec.traits.removesColumn == (spec.name == "drop"));
        CHECK(builtinTraits(spec.name).deidentifies == spec.traits.deidentifies);
    }
    CHECK(builtinTransforms().specs().size() == 11);
    const auto unknown = builtinTraits("no_such_transform");
    CHECK_FALSE(unknown.deidentifies);
    CHECK_FALSE(unknown.usesHierarchy);
    CHECK_FALSE(unknown.removesColumn);
}

TEST_CASE("a parameter that names another column says so in its descriptor", "[unit][transforms]") {
    for (const auto& spec : builtinTransforms().specs()) {
        for (const auto& p : spec.params) {
            INFO(spec.name << " " << p.name);
            CHECK(p.namesColumn == (spec.name == "date_shift" && p.name == "key_column"));
            CHECK(spec.param(p.name) == &p);
        }
        CHECK(spec.param("no_such_parameter") == nullptr);
    }
    REQUIRE(builtinTransforms().find("date_shift")->param("key_column"));
    CHECK(builtinTransforms().find("date_shift")->param("key_column")->type == ParamType::String);
}
