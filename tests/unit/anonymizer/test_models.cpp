// Privacy models on small hand-made tables with known answers, and the final check.
#include <catch2/catch.hpp>

#include <cmath>

#include "anonymizer/engine.hpp"

using namespace custodian::anon;
using custodian::StatusCode;

namespace {

std::shared_ptr<const Hierarchy> ageHierarchy() {
    auto h = Hierarchy::fromRows(
        "age", {{"20", "20-29", "*"}, {"25", "20-29", "*"}, {"30", "30-39", "*"}, {"35", "30-39", "*"}});
    REQUIRE(h.isOk());
    return std::make_shared<const Hierarchy>(std::move(h.value()));
}

struct Row {
    std::string age, disease;
};

// age 20: flu, flu | 25: cancer, flu | 30: hiv, flu | 35: hiv, cancer
const std::vector<Row> kRows = {{"20", "flu"}, {"25", "cancer"}, {"20", "flu"}, {"25", "flu"},
                                {"30", "hiv"}, {"35", "hiv"},    {"30", "flu"}, {"35", "cancer"}};

AnonymizationConfig diseaseConfig(PrivacyModels models, TClosenessDistance distance = TClosenessDistance::Equal) {
    AnonymizationConfig c;
    c.quasiIdentifiers.push_back({"age", ageHierarchy(), true, 0, -1});
    auto dict =
        std::make_shared<const SensitiveDictionary>(SensitiveDictionary::build({"flu", "cancer", "hiv"}, false));
    c.sensitive.push_back({"disease", dict, distance});
    c.models = models;
    c.metric = Metric::NonUniformEntropy;
    return c;
}

FrequencyTable tableFor(const AnonymizationConfig& c, const std::vector<Row>& rows) {
    auto b = newFrequencyTable(c);
    REQUIRE(b.isOk());
    for (const auto& r : rows) {
        const uint32_t qi[] = {*c.quasiIdentifiers[0].hierarchy->leafCode(r.age)};
        const uint32_t s[] = {c.sensitive[0].dictionary->codeOf(r.disease)};
        REQUIRE(b->add(qi, s).isOk());
    }
    return std::move(b.value()).finish();
}

// Runs the search and streams the rows through the plan and the final check.
struct Outcome {
    int level = -1;
    uint64_t suppressed = 0;
    custodian::Status finalCheck;
};

Outcome run(const AnonymizationConfig& c, const std::vector<Row>& rows) {
    const auto table = tableFor(c, rows);
    auto r = anonymizeGlobal(c, table);
    Outcome o;
    if (!r) {
        o.finalCheck = r.status();
        return o;
    }
    o.level = r->solution.best.levels[0];
    o.suppressed = r->solution.best.suppressedRecords;
    auto check = makeFinalCheck(c, rows.size(), &table);
    std::vector<std::string_view> labels;
    for (const auto& row : rows) {
        const uint32_t qi[] = {*c.quasiIdentifiers[0].hierarchy->leafCode(row.age)};
        if (!r->release(qi, labels)) continue;
        const std::string_view s[] = {row.disease};
        REQUIRE(check.addRow(std::span<const std::string_view>(labels), std::span<const std::string_view>(s)).isOk());
    }
    auto report = check.finish();
    o.finalCheck = report.isOk() ? custodian::Status::ok() : report.status();
    return o;
}

PrivacyModels withL(LDiversityVariant v, double l, double c = 1, uint64_t k = 2, double suppression = 0) {
    PrivacyModels m;
    m.k = k;
    m.lDiversity = LDiversity{v, l, c};
    m.suppressionLimit = suppression;
    return m;
}

}  // namespace

TEST_CASE("distinct l-diversity picks the lowest level with l distinct values per class", "[models]") {
    auto o = run(diseaseConfig(withL(LDiversityVariant::Distinct, 2)), kRows);
    CHECK(o.level == 1);
    CHECK(o.finalCheck.isOk());
    o = run(diseaseConfig(withL(LDiversityVariant::Distinct, 3)), kRows);
    CHECK(o.level == 2);
    CHECK(o.finalCheck.isOk());
}

TEST_CASE("distinct l-diversity suppresses failing classes within the limit", "[models]") {
    // Level 0 with class {20} (flu, flu) suppressed costs 2 * log2(8/2) = 4 bits, less than the 8 bits
    // of level 1, and 2 of 8 records fit a 25% limit.
    auto o = run(diseaseConfig(withL(LDiversityVariant::Distinct, 2, 1, 2, 0.25)), kRows);
    CHECK(o.level == 0);
    CHECK(o.suppressed == 2);
    CHECK(o.finalCheck.isOk());
    // One record less of allowance: suppression no longer fits.
    o = run(diseaseConfig(withL(LDiversityVariant::Distinct, 2, 1, 2, 0.2)), kRows);
    CHECK(o.level == 1);
    CHECK(o.suppressed == 0);
}

TEST_CASE("entropy l-diversity compares the class entropy with log l", "[models]") {
    // 20-29 has flu x3, cancer x1: entropy 0.562 < log 2, so only the root works.
    auto o = run(diseaseConfig(withL(LDiversityVariant::Entropy, 2)), kRows);
    CHECK(o.level == 2);
    CHECK(o.finalCheck.isOk());
    std::vector<SensitiveCount> hist = {{0, 3}, {1, 1}};
    CHECK(model::entropy(hist, 4) == Approx(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))));
    std::vector<uint64_t> scratch;
    std::vector<SensitiveCount> even = {{0, 2}, {1, 2}};
    CHECK(model::lDiverse({LDiversityVariant::Entropy, 2, 1}, even, 4, scratch));  // exactly log 2
}

TEST_CASE("recursive (c,l)-diversity requires r1 < c (r_l + ... + r_m)", "[models]") {
    // 20-29 counts (3,1): 3 < 2*1 fails with c = 2, holds with c = 4.
    auto o = run(diseaseConfig(withL(LDiversityVariant::Recursive, 2, 2)), kRows);
    CHECK(o.level == 2);
    CHECK(o.finalCheck.isOk());
    o = run(diseaseConfig(withL(LDiversityVariant::Recursive, 2, 4)), kRows);
    CHECK(o.level == 1);
    CHECK(o.finalCheck.isOk());
    std::vector<uint64_t> scratch;
    std::vector<SensitiveCount> hist = {{0, 5}, {1, 3}, {2, 2}};
    CHECK(model::recursiveHolds(hist, 10, 2, 2, scratch));          // 5 < 2 * (3 + 2)
    CHECK_FALSE(model::recursiveHolds(hist, 10, 1, 2, scratch));    // 5 < 1 * 5 is false
    CHECK_FALSE(model::recursiveHolds(hist, 10, 2, 3, scratch));    // 5 < 2 * 2 is false
    CHECK(model::recursiveHolds(hist, 10, 3, 3, scratch));          // 5 < 3 * 2
    CHECK_FALSE(model::recursiveHolds(hist, 10, 100, 4, scratch));  // fewer than 4 values
}

TEST_CASE("t-closeness with equal distance", "[models]") {
    PrivacyModels m;
    m.k = 1;
    m.tCloseness = TCloseness{0.3};
    // Level 1 classes are both at distance 0.25 from (0.5, 0.25, 0.25); class {20} at level 0 is at 0.5.
    auto o = run(diseaseConfig(m), kRows);
    CHECK(o.level == 1);
    CHECK(o.finalCheck.isOk());
    m.tCloseness = TCloseness{0.2};
    o = run(diseaseConfig(m), kRows);
    CHECK(o.level == 2);
    CHECK(o.finalCheck.isOk());
}

TEST_CASE("ordered distance EMD matches Li et al.'s salary example", "[models]") {
    // Salaries 3k..11k, one record each; P1 = {3k,4k,5k} is at 0.375, P2 = {6k,8k,11k} at 0.167.
    SensitiveDomain domain = SensitiveDomain::fromFrequencies(std::vector<uint64_t>(9, 1), TClosenessDistance::Ordered);
    std::vector<SensitiveCount> p1 = {{0, 1}, {1, 1}, {2, 1}};
    std::vector<SensitiveCount> p2 = {{3, 1}, {5, 1}, {8, 1}};
    CHECK(model::earthMoversDistance(p1, 3, domain) == Approx(0.375));
    CHECK(model::earthMoversDistance(p2, 3, domain) == Approx(0.1667).epsilon(1e-3));
    // Values absent from the input do not count in m: a tenth, never-seen code changes nothing.
    std::vector<uint64_t> withAbsent(9, 1);
    withAbsent.push_back(0);
    const auto sparse = SensitiveDomain::fromFrequencies(withAbsent, TClosenessDistance::Ordered);
    CHECK(model::earthMoversDistance(p1, 3, sparse) == Approx(0.375));
    domain.distance = TClosenessDistance::Equal;
    CHECK(model::earthMoversDistance(p1, 3, domain) == Approx(2.0 / 3));

    // The final check computes the same distances independently, ordering "10" after "9" numerically.
    PrivacyModels m;
    m.k = 3;
    m.tCloseness = TCloseness{0.3};
    FinalCheckSensitive s{"salary", TClosenessDistance::Ordered, {}};
    for (int v = 3; v <= 11; ++v) s.inputDistribution[std::to_string(v)] = 1;
    FinalCheck ok(m, {"zip"}, {s}, 9);
    for (const char* v : {"6", "8", "11"}) {
        const std::string q[] = {"476**"};
        const std::string sv[] = {v};
        REQUIRE(ok.addRow(std::span<const std::string>(q), std::span<const std::string>(sv)).isOk());
    }
    m.suppressionLimit = 1;
    FinalCheck tooFar(m, {"zip"}, {s}, 9);
    for (const char* v : {"3", "4", "5"}) {
        const std::string q[] = {"4767*"};
        const std::string sv[] = {v};
        REQUIRE(tooFar.addRow(std::span<const std::string>(q), std::span<const std::string>(sv)).isOk());
    }
    auto bad = tooFar.finish();
    REQUIRE_FALSE(bad.isOk());
    CHECK_THAT(bad.status().message(), Catch::Contains("0.375"));
}

TEST_CASE("the final check refuses a tampered release", "[models][final-check]") {
    PrivacyModels m;
    m.k = 2;
    m.lDiversity = LDiversity{LDiversityVariant::Distinct, 2, 1};
    const auto c = diseaseConfig(m);
    const auto table = tableFor(c, kRows);
    auto r = anonymizeGlobal(c, table);
    REQUIRE(r.isOk());
    auto release = [&](bool tamper) {
        auto check = makeFinalCheck(c, kRows.size(), &table);
        std::vector<std::string_view> labels;
        bool first = true;
        for (const auto& row : kRows) {
            const uint32_t qi[] = {*c.quasiIdentifiers[0].hierarchy->leafCode(row.age)};
            REQUIRE(r->release(qi, labels));
            if (tamper && first) labels[0] = row.age;  // leak one original value
            first = false;
            const std::string_view s[] = {row.disease};
            REQUIRE(
                check.addRow(std::span<const std::string_view>(labels), std::span<const std::string_view>(s)).isOk());
        }
        return check.finish();
    };
    auto good = release(false);
    REQUIRE(good.isOk());
    CHECK(good->minClassSize == 4);
    CHECK(good->suppressedRecords == 0);
    auto bad = release(true);
    REQUIRE_FALSE(bad.isOk());
    CHECK(bad.status().code() == StatusCode::FailedPrecondition);
    CHECK_THAT(bad.status().message(), Catch::Contains("age=20") && Catch::Contains("smaller than k=2"));
}

TEST_CASE("the final check refuses too many suppressed records", "[models][final-check]") {
    PrivacyModels m;
    m.k = 1;
    m.suppressionLimit = 0.1;
    FinalCheck check(m, {"age"}, {}, 10);
    for (int i = 0; i < 8; ++i) {
        const std::string q[] = {"*"};
        REQUIRE(check.addRow(std::span<const std::string>(q), std::span<const std::string>()).isOk());
    }
    auto r = check.finish();
    REQUIRE_FALSE(r.isOk());
    CHECK_THAT(r.status().message(), Catch::Contains("2 of 10 records suppressed"));
}

TEST_CASE("an unreachable model is a failed precondition", "[models]") {
    auto o = run(diseaseConfig(withL(LDiversityVariant::Distinct, 4)), kRows);
    CHECK(o.level == -1);
    CHECK(o.finalCheck.code() == StatusCode::FailedPrecondition);
}

namespace {

// The best-achievable figure `name` as text (integers in decimal), or "-" when absent.
std::string figure(const UnmetModels& u, const std::string& name) {
    for (const auto& f : u.bestAchievable) {
        if (f.name != name) continue;
        if (const auto* n = std::get_if<uint64_t>(&f.value)) return std::to_string(*n);
        return std::get<std::string>(f.value);
    }
    return "-";
}

}  // namespace

TEST_CASE("an unreachable model names the first requirement the most generalized release misses", "[models]") {
    // Every age at "*" is one class of 8: k = 8, flu 4, cancer 2, hiv 2 — three distinct diseases,
    // entropy l = exp(-(1/2 ln 1/2 + 2 * 1/4 ln 1/4)) = 2.83, and t = 0 against the whole input.
    const auto c = diseaseConfig(withL(LDiversityVariant::Distinct, 4));
    const auto table = tableFor(c, kRows);
    UnmetModels unmet;
    auto r = anonymizeGlobal(c, table, &unmet);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().code() == StatusCode::FailedPrecondition);
    CHECK(unmet.requirement == "distinct l-diversity with l = 4.00");
    CHECK(unmet.message == "distinct l-diversity with l = 4.00 cannot be met within the suppression limit of 0.00%: "
                           "the most generalized release reaches distinct l = 3");
    CHECK(r.status().message() == unmet.message);
    CHECK(figure(unmet, "rows") == "8");
    CHECK(figure(unmet, "k") == "8");
    CHECK(figure(unmet, "distinct_l") == "3");
    CHECK(figure(unmet, "entropy_l") == "2.83");
    CHECK(figure(unmet, "t") == "0.000");
    CHECK(figure(unmet, "suppression_needed_for_k") == "0.0000");

    // k = 9 asks for more rows than there are, and a 10 % limit suppresses none of 8.
    PrivacyModels k9;
    k9.k = 9;
    k9.suppressionLimit = 0.1;
    auto tooLarge = anonymizeGlobal(diseaseConfig(k9), table, &unmet);
    REQUIRE_FALSE(tooLarge.isOk());
    CHECK(unmet.requirement == "k-anonymity with k = 9");
    CHECK(unmet.message == "k-anonymity with k = 9 cannot be met within the suppression limit of 10.00%: the most "
                           "generalized release has a smallest group of 8 rows (8 rows selected)");
    CHECK(figure(unmet, "suppression_needed_for_k") == "1.0000");

    // Mondrian cannot suppress: the whole input as one class is the best it can do.
    std::vector<uint32_t> ages, diseases;
    for (const auto& row : kRows) {
        ages.push_back(*c.quasiIdentifiers[0].hierarchy->leafCode(row.age));
        diseases.push_back(c.sensitive[0].dictionary->codeOf(row.disease));
    }
    EncodedColumns columns;
    columns.qi.emplace_back(ages);
    columns.sensitive.emplace_back(diseases);
    auto mondrian = anonymizeMondrian(c, columns, &unmet);
    REQUIRE_FALSE(mondrian.isOk());
    CHECK(mondrian.status().code() == StatusCode::FailedPrecondition);
    CHECK(unmet.requirement == "distinct l-diversity with l = 4.00");
    CHECK(unmet.message.rfind("distinct l-diversity with l = 4.00 cannot be met: mondrian: ", 0) == 0);
    CHECK(mondrian.status().message() == unmet.message);
    CHECK(figure(unmet, "rows") == "8");
    CHECK(figure(unmet, "k") == "8");
    CHECK(figure(unmet, "distinct_l") == "3");

    // Without quasi-identifiers all rows are one class.
    CHECK_FALSE(unmetInOneClass(k9, 9).has_value());
    auto few = unmetInOneClass(k9, 8);
    REQUIRE(few.has_value());
    CHECK(few->message == "k-anonymity with k = 9 cannot be met: the policy selects only 8 rows");
    CHECK(figure(*few, "k") == "8");
}

TEST_CASE("suppressed classes are found whether their keys pack into 64 bits or not", "[models][suppression]") {
    // `width` quasi-identifiers of 10,000 leaves (14 bits each): 4 pack into 64 bits, 5 do not.
    std::vector<std::vector<std::string>> rows;
    for (int v = 0; v < 10000; ++v) rows.push_back({std::to_string(v), "*"});
    auto h = Hierarchy::fromRows("wide", rows);
    REQUIRE(h.isOk());
    const auto hierarchy = std::make_shared<const Hierarchy>(std::move(h.value()));
    for (size_t width : {size_t{4}, size_t{5}}) {
        INFO(width << " quasi-identifiers");
        GeneralizationStats stats;
        stats.levels.assign(width, 0);
        // Three classes: (1, 1, ...), (9999, 9999, ...) suppressed, (2, 2, ...) kept.
        for (uint32_t code : {1u, 9999u, 2u}) {
            stats.classCodes.insert(stats.classCodes.end(), width, code);
            stats.classSizes.push_back(1);
            stats.classSuppressed.push_back(code != 2);
        }
        const SuppressedClasses suppressed(stats, std::vector<std::shared_ptr<const Hierarchy>>(width, hierarchy));
        CHECK(suppressed.size() == 2);
        const std::vector<uint32_t> first(width, 1), last(width, 9999), kept(width, 2);
        std::vector<uint32_t> mixed(width, 1);
        mixed.back() = 9999;
        CHECK(suppressed.contains(first.data()));
        CHECK(suppressed.contains(last.data()));
        CHECK_FALSE(suppressed.contains(kept.data()));
        CHECK_FALSE(suppressed.contains(mixed.data()));
    }
    CHECK_FALSE(SuppressedClasses().contains(nullptr));
}

TEST_CASE("risk before and after", "[models][risk]") {
    const uint64_t sizes[] = {1, 1, 2, 6};
    auto r = prosecutorRisk(sizes, 3);
    CHECK(r.records == 10);
    CHECK(r.classes == 4);
    CHECK(r.prosecutorMax == 1.0);
    CHECK(r.prosecutorAverage == Approx(0.4));
    CHECK(r.shareBelowThreshold == Approx(0.4));
    CHECK(r.sampleUniques == 2);
    CHECK(r.sampleUniqueShare == Approx(0.2));
    // The class-size distribution: 1 → bucket 0, 2 → bucket 1, 6 → bucket 3 (5–9).
    CHECK(r.classSizes[0].classes == 2);
    CHECK(r.classSizes[0].records == 2);
    CHECK(r.classSizes[1].classes == 1);
    CHECK(r.classSizes[3].classes == 1);
    CHECK(r.classSizes[3].records == 6);
    const uint64_t edges[] = {4, 5, 999, 1000, 123456};
    auto e = prosecutorRisk(edges, 5);
    CHECK(e.classSizes[2].classes == 1);  // 3–4
    CHECK(e.classSizes[3].classes == 1);  // 5–9
    CHECK(e.classSizes[7].classes == 1);  // 100–999
    CHECK(e.classSizes[8].classes == 2);  // 1000 and up
    CHECK(e.classSizes[8].records == 124456);

    // Before: the ages as stored (classes of 2); after: the chosen level (20-29, 30-39: classes of 4).
    PrivacyModels m;
    m.k = 4;
    const auto c = diseaseConfig(m);
    const auto table = tableFor(c, kRows);
    auto g = anonymizeGlobal(c, table);
    REQUIRE(g.isOk());
    OptimalSearchConfig open = optimalSearchConfig(c);
    open.models = PrivacyModels{};
    auto before = evaluateGeneralization(table, open, {0});
    auto after = evaluateGeneralization(table, optimalSearchConfig(c), g->levels());
    REQUIRE(before.isOk());
    REQUIRE(after.isOk());
    CHECK(releasedRisk(*before, m.k).prosecutorMax == Approx(0.5));
    CHECK(releasedRisk(*after, m.k).prosecutorMax == Approx(0.25));
    CHECK(releasedRisk(*after, m.k).shareBelowThreshold == 0);
}
