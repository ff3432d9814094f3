#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "adult_fixture.hpp"
#include "anonymizer/engine.hpp"

using namespace custodian::anon;

namespace {

const char* kMondrianColumns[] = {"age", "workclass", "education", "marital-status", "occupation", "race", "sex",
                                  "native-country"};

struct Columns {
    std::vector<std::vector<uint32_t>> qi;
    std::vector<std::vector<uint32_t>> sensitive;
    EncodedColumns view() const {
        EncodedColumns e;
        for (const auto& c : qi) e.qi.emplace_back(c);
        for (const auto& c : sensitive) e.sensitive.emplace_back(c);
        return e;
    }
};

MondrianConfig adultConfig(Columns& cols, uint64_t k) {
    const auto& a = testing::adult();
    MondrianConfig cfg;
    for (const char* name : kMondrianColumns) {
        const size_t c = static_cast<size_t>(std::find(a.columns.begin(), a.columns.end(), name) - a.columns.begin());
        REQUIRE(c < a.columns.size());
        cfg.hierarchies.push_back(a.hierarchies[c]);
        cfg.numeric.push_back(std::string(name) == "age");
        std::vector<uint32_t> codes;
        for (const auto& row : a.rows) codes.push_back(*a.hierarchies[c]->leafCode(row[c]));
        cols.qi.push_back(std::move(codes));
    }
    cfg.models.k = k;
    return cfg;
}

void checkPartitions(const MondrianConfig& cfg, const Columns& cols, const MondrianResult& r, uint64_t k) {
    const size_t n = cols.qi[0].size();
    REQUIRE(r.partitionOfRow.size() == n);
    std::vector<uint64_t> sizes(r.partitionSizes.size(), 0);
    for (uint32_t p : r.partitionOfRow) {
        REQUIRE(p < sizes.size());
        ++sizes[p];
    }
    CHECK(sizes == r.partitionSizes);
    uint64_t total = 0;
    for (uint64_t s : sizes) {
        CHECK(s >= k);
        total += s;
    }
    CHECK(total == n);
    CHECK(r.achievedK >= k);
    // Every released label covers the row's value.
    for (size_t i = 0; i < n; i += 7) {
        const auto& labels = r.labels[r.partitionOfRow[i]];
        for (size_t d = 0; d < cfg.hierarchies.size(); ++d) {
            const Hierarchy& h = *cfg.hierarchies[d];
            const uint32_t leaf = cols.qi[d][i];
            if (cfg.numeric[d]) {
                const double v = (*h.numericLeaves())[leaf];
                const std::string& l = labels[d];
                if (l.front() == '[') {
                    const size_t dash = l.find('-', 1);
                    CHECK(std::stod(l.substr(1, dash - 1)) <= v);
                    CHECK(std::stod(l.substr(dash + 1)) >= v);
                } else {
                    CHECK(std::stod(l) == v);
                }
            } else {
                bool ancestor = false;
                for (int level = 0; level < h.levels(); ++level) ancestor |= h.label(level, h.generalize(leaf, level)) == labels[d];
                CHECK(ancestor);
            }
        }
    }
}

} // namespace

TEST_CASE("strict Mondrian on Adult: every partition has at least k records and all are covered", "[mondrian][adult]") {
    Columns cols;
    const auto cfg = adultConfig(cols, 10);
    auto r = mondrianPartition(cfg, cols.view());
    REQUIRE(r.isOk());
    checkPartitions(cfg, cols, *r, 10);
    CHECK(r->partitionSizes.size() > 1000);
    CHECK(r->ncp > 0);
    CHECK(r->ncp < 0.5);
    // Deterministic.
    auto again = mondrianPartition(cfg, cols.view());
    REQUIRE(again.isOk());
    CHECK(again->partitionOfRow == r->partitionOfRow);
    CHECK(again->labels == r->labels);
}

TEST_CASE("relaxed Mondrian on Adult splits at least as finely as strict", "[mondrian][adult]") {
    Columns cols;
    auto cfg = adultConfig(cols, 10);
    auto strict = mondrianPartition(cfg, cols.view());
    cfg.mode = MondrianMode::Relaxed;
    auto relaxed = mondrianPartition(cfg, cols.view());
    REQUIRE(strict.isOk());
    REQUIRE(relaxed.isOk());
    checkPartitions(cfg, cols, *relaxed, 10);
    CHECK(relaxed->partitionSizes.size() >= strict->partitionSizes.size());
    CHECK(relaxed->ncp <= strict->ncp);
}

TEST_CASE("Mondrian with l-diversity keeps every partition l-diverse", "[mondrian]") {
    std::mt19937 rng(7);
    auto h = Hierarchy::fromRows("n", [] {
        std::vector<std::vector<std::string>> rows;
        for (int v = 0; v < 50; ++v) rows.push_back({std::to_string(v), std::to_string(v / 10 * 10) + "-" + std::to_string(v / 10 * 10 + 9), "*"});
        return rows;
    }());
    REQUIRE(h.isOk());
    auto hier = std::make_shared<const Hierarchy>(std::move(h.value()));
    Columns cols;
    cols.qi.resize(2);
    cols.sensitive.resize(1);
    for (int i = 0; i < 2000; ++i) {
        cols.qi[0].push_back(static_cast<uint32_t>(rng() % 50));
        cols.qi[1].push_back(static_cast<uint32_t>(rng() % 50));
        cols.sensitive[0].push_back(static_cast<uint32_t>(rng() % 4));
    }
    MondrianConfig cfg;
    cfg.hierarchies = {hier, hier};
    cfg.numeric = {true, false};
    cfg.models.k = 5;
    cfg.models.lDiversity = LDiversity{LDiversityVariant::Distinct, 3, 1};
    cfg.sensitiveCardinalities = {4};
    auto r = mondrianPartition(cfg, cols.view());
    REQUIRE(r.isOk());
    checkPartitions(cfg, cols, *r, 5);
    std::vector<std::set<uint32_t>> values(r->partitionSizes.size());
    for (size_t i = 0; i < cols.qi[0].size(); ++i) values[r->partitionOfRow[i]].insert(cols.sensitive[0][i]);
    for (const auto& v : values) CHECK(v.size() >= 3);
    CHECK(*r->distinctL >= 3);
}

TEST_CASE("Mondrian refuses an input that cannot satisfy k", "[mondrian]") {
    auto h = Hierarchy::fromRows("x", {{"a", "*"}, {"b", "*"}});
    REQUIRE(h.isOk());
    MondrianConfig cfg;
    cfg.hierarchies = {std::make_shared<const Hierarchy>(std::move(h.value()))};
    cfg.models.k = 5;
    const std::vector<uint32_t> codes = {0, 1, 0};
    EncodedColumns cols;
    cols.qi.emplace_back(codes);
    auto r = mondrianPartition(cfg, cols);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().code() == custodian::StatusCode::FailedPrecondition);
    const std::vector<uint32_t> bad = {0, 7, 0};
    EncodedColumns badCols;
    badCols.qi.emplace_back(bad);
    CHECK(mondrianPartition(cfg, badCols).status().code() == custodian::StatusCode::InvalidArgument);
}

TEST_CASE("Mondrian release passes the final check through the engine", "[mondrian][final-check]") {
    Columns cols;
    const auto mc = adultConfig(cols, 10);
    AnonymizationConfig cfg;
    for (size_t d = 0; d < mc.hierarchies.size(); ++d) {
        cfg.quasiIdentifiers.push_back({kMondrianColumns[d], mc.hierarchies[d], mc.numeric[d], 0, -1});
    }
    cfg.models.k = 10;
    cfg.algorithm = Algorithm::Mondrian;
    auto r = anonymizeMondrian(cfg, cols.view());
    REQUIRE(r.isOk());
    CHECK(r->riskBefore.prosecutorMax == 1.0);
    CHECK(r->riskAfter.prosecutorMax <= 0.1);
    auto check = makeFinalCheck(cfg, cols.qi[0].size(), cols.view());
    for (size_t i = 0; i < cols.qi[0].size(); ++i) {
        REQUIRE(check.addRow(std::span<const std::string>(r->mondrian.labels[r->mondrian.partitionOfRow[i]]),
                             std::span<const std::string>())
                    .isOk());
    }
    auto report = check.finish();
    INFO((report.isOk() ? std::string() : report.status().message()));
    REQUIRE(report.isOk());
    CHECK(report->minClassSize >= 10);
}

TEST_CASE("Mondrian's non-uniform entropy equals a per-cell recount over the released labels", "[mondrian][adult][metrics]") {
    Columns cols;
    auto cfg = adultConfig(cols, 10);
    auto r = mondrianPartition(cfg, cols.view());
    REQUIRE(r.isOk());
    // Independent recount: per column, records per released label and per (label, original leaf).
    double expected = 0;
    const size_t n = cols.qi[0].size();
    for (size_t d = 0; d < cols.qi.size(); ++d) {
        std::map<std::string, uint64_t> perLabel;
        std::map<std::pair<std::string, uint32_t>, uint64_t> perLabelAndValue;
        for (size_t row = 0; row < n; ++row) {
            const std::string& label = r->labels[r->partitionOfRow[row]][d];
            ++perLabel[label];
            ++perLabelAndValue[{label, cols.qi[d][row]}];
        }
        for (const auto& [key, count] : perLabelAndValue)
            expected += static_cast<double>(count) * std::log2(static_cast<double>(perLabel[key.first]) / static_cast<double>(count));
    }
    CHECK(expected > 0);
    CHECK(r->nonUniformEntropy == Approx(expected).epsilon(1e-9));
}
