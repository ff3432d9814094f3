// Property tests on random small tables, random hierarchies and random models: the optimal search
// equals an exhaustive search written here (own grouping, own model checks, own metrics), and every
// release passes the final check with suppressed <= limit * n and released + suppressed = input.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <algorithm>
#include <random>

#include "anonymizer/engine.hpp"

using namespace custodian::anon;

namespace {

struct Instance {
    std::vector<std::vector<std::vector<std::string>>> hierarchyRows;  // per QI
    std::vector<std::vector<std::vector<uint32_t>>> gen;               // [qi][level][leaf] -> group id
    std::vector<std::vector<uint32_t>> rows;                           // leaf codes
    std::vector<uint32_t> sensitive;                                   // value code per row
    uint32_t sensitiveValues = 0;
    AnonymizationConfig config;
};

Instance randomInstance(std::mt19937& rng, int minQ = 1, int maxQ = 4) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    Instance in;
    const int q = pick(minQ, maxQ);
    for (int d = 0; d < q; ++d) {
        const int leaves = pick(2, 6);
        const int depth = pick(2, 4);
        std::vector<std::vector<uint32_t>> gen(static_cast<size_t>(depth));
        for (int leaf = 0; leaf < leaves; ++leaf) gen[0].push_back(static_cast<uint32_t>(leaf));
        uint32_t prevCount = static_cast<uint32_t>(leaves);
        for (int level = 1; level < depth; ++level) {
            const uint32_t count =
                std::max<uint32_t>(1, prevCount - static_cast<uint32_t>(pick(0, static_cast<int>(prevCount))));
            std::vector<uint32_t> groupOfPrev(prevCount);
            for (auto& g : groupOfPrev) g = static_cast<uint32_t>(pick(0, static_cast<int>(count) - 1));
            for (int leaf = 0; leaf < leaves; ++leaf)
                gen[static_cast<size_t>(level)].push_back(
                    groupOfPrev[gen[static_cast<size_t>(level) - 1][static_cast<size_t>(leaf)]]);
            // Renumber used groups densely so the next level's assignment is well defined.
            std::map<uint32_t, uint32_t> dense;
            for (auto& g : gen[static_cast<size_t>(level)])
                g = dense.emplace(g, static_cast<uint32_t>(dense.size())).first->second;
            prevCount = static_cast<uint32_t>(dense.size());
        }
        std::vector<std::vector<std::string>> rows;
        for (int leaf = 0; leaf < leaves; ++leaf) {
            std::vector<std::string> r;
            for (int level = 0; level < depth; ++level) {
                r.push_back(level == 0
                                ? "v" + std::to_string(leaf)
                                : "L" + std::to_string(level) + "g" +
                                      std::to_string(gen[static_cast<size_t>(level)][static_cast<size_t>(leaf)]));
            }
            rows.push_back(std::move(r));
        }
        auto h = Hierarchy::fromRows("q" + std::to_string(d), rows);
        REQUIRE(h.isOk());
        // Sometimes restrict the allowed levels (policies may pin a minimum or maximum level).
        int minLevel = 0, maxLevel = -1;
        if (pick(0, 3) == 0) {
            minLevel = pick(0, depth - 1);
            maxLevel = pick(minLevel, depth - 1);
        }
        in.config.quasiIdentifiers.push_back({"q" + std::to_string(d),
                                              std::make_shared<const Hierarchy>(std::move(h.value())), false, minLevel,
                                              maxLevel});
        in.hierarchyRows.push_back(std::move(rows));
        in.gen.push_back(std::move(gen));
    }
    in.sensitiveValues = static_cast<uint32_t>(pick(2, 5));
    std::vector<std::string> values;
    for (uint32_t v = 0; v < in.sensitiveValues; ++v) values.push_back(std::to_string(10 * (v + 1)));
    const bool ordered = pick(0, 1) == 1;
    auto dict = std::make_shared<const SensitiveDictionary>(SensitiveDictionary::build(values, ordered));
    in.config.sensitive.push_back({"s", dict, ordered ? TClosenessDistance::Ordered : TClosenessDistance::Equal});
    const int n = pick(10, 120);
    for (int i = 0; i < n; ++i) {
        std::vector<uint32_t> r;
        for (int d = 0; d < q; ++d) {
            const int leaves = static_cast<int>(in.hierarchyRows[static_cast<size_t>(d)].size());
            // Skewed: low codes are more frequent, so some classes are rare.
            r.push_back(static_cast<uint32_t>(std::min(pick(0, leaves - 1), pick(0, leaves - 1))));
        }
        in.rows.push_back(std::move(r));
        in.sensitive.push_back(static_cast<uint32_t>(pick(0, static_cast<int>(in.sensitiveValues) - 1)));
    }
    PrivacyModels& m = in.config.models;
    m.k = static_cast<uint64_t>(pick(1, 5));
    switch (pick(0, 3)) {
    case 1: m.lDiversity = LDiversity{LDiversityVariant::Distinct, static_cast<double>(pick(2, 3)), 1}; break;
    case 2: m.lDiversity = LDiversity{LDiversityVariant::Entropy, 1.5 + 0.5 * pick(0, 2), 1}; break;
    case 3:
        m.lDiversity =
            LDiversity{LDiversityVariant::Recursive, static_cast<double>(pick(2, 3)), static_cast<double>(pick(1, 3))};
        break;
    default: break;
    }
    if (pick(0, 2) == 0) m.tCloseness = TCloseness{0.2 + 0.1 * pick(0, 4)};
    const double limits[] = {0, 0.05, 0.1, 0.3};
    m.suppressionLimit = limits[pick(0, 3)];
    const Metric metrics[] = {Metric::NonUniformEntropy, Metric::Discernibility, Metric::AverageClassSize, Metric::Loss,
                              Metric::Height};
    in.config.metric = metrics[pick(0, 4)];
    return in;
}

// --- the independent exhaustive search ---

bool classPasses(const PrivacyModels& m, const std::vector<uint32_t>& values, const std::vector<double>& global,
                 bool ordered, uint32_t domain) {
    const double n = static_cast<double>(values.size());
    if (values.size() < m.k) return false;
    std::vector<double> count(domain, 0);
    for (uint32_t v : values) count[v] += 1;
    if (m.lDiversity) {
        std::vector<double> sorted;
        for (double c : count) {
            if (c > 0) sorted.push_back(c);
        }
        std::sort(sorted.rbegin(), sorted.rend());
        const auto l = static_cast<size_t>(m.lDiversity->l);
        if (m.lDiversity->variant == LDiversityVariant::Distinct && sorted.size() < l) return false;
        if (m.lDiversity->variant == LDiversityVariant::Entropy) {
            double h = 0;
            for (double c : sorted) h -= c / n * std::log(c / n);
            if (h < std::log(m.lDiversity->l) - 1e-10) return false;
        }
        if (m.lDiversity->variant == LDiversityVariant::Recursive) {
            if (sorted.size() < l) return false;
            double tail = 0;
            for (size_t i = l - 1; i < sorted.size(); ++i) tail += sorted[i];
            if (!(sorted[0] < m.lDiversity->c * tail)) return false;
        }
    }
    if (m.tCloseness) {
        double d = 0;
        if (!ordered) {
            for (uint32_t v = 0; v < domain; ++v) d += std::fabs(count[v] / n - global[v]) / 2;
        } else {
            // Over the values present in the input (Li et al.): absent codes are skipped.
            std::vector<uint32_t> present;
            for (uint32_t v = 0; v < domain; ++v) {
                if (global[v] > 0) present.push_back(v);
            }
            double carry = 0;
            for (size_t i = 0; i + 1 < present.size(); ++i) {
                carry += count[present[i]] / n - global[present[i]];
                d += std::fabs(carry);
            }
            d = present.size() > 1 ? d / static_cast<double>(present.size() - 1) : 0;
        }
        if (d > m.tCloseness->t + 1e-10) return false;
    }
    return true;
}

struct Exhaustive {
    bool found = false;
    std::vector<int> levels;
    double loss = 0;
    std::vector<double> lossPerAttribute;  // of the best node, whatever the metric
};

Exhaustive exhaustive(const Instance& in) {
    const auto& m = in.config.models;
    const size_t q = in.gen.size();
    const double n = static_cast<double>(in.rows.size());
    const auto maxSuppressed = static_cast<uint64_t>(std::floor(m.suppressionLimit * n + 1e-9));
    std::vector<double> global(in.sensitiveValues, 0);
    for (uint32_t v : in.sensitive) global[v] += 1 / n;
    std::vector<std::map<uint32_t, double>> leafFreq(q);
    for (const auto& r : in.rows) {
        for (size_t d = 0; d < q; ++d) leafFreq[d][r[d]] += 1;
    }
    Exhaustive best;
    int bestHeight = 0;
    std::vector<int> lowest(q), highest(q);
    for (size_t d = 0; d < q; ++d) {
        lowest[d] = in.config.quasiIdentifiers[d].minLevel;
        const int top = static_cast<int>(in.gen[d].size()) - 1;
        highest[d] = in.config.quasiIdentifiers[d].maxLevel < 0 ? top : in.config.quasiIdentifiers[d].maxLevel;
    }
    std::vector<int> levels = lowest;
    for (;;) {
        std::map<std::vector<uint32_t>, std::vector<size_t>> classes;
        for (size_t i = 0; i < in.rows.size(); ++i) {
            std::vector<uint32_t> key;
            for (size_t d = 0; d < q; ++d) key.push_back(in.gen[d][static_cast<size_t>(levels[d])][in.rows[i][d]]);
            classes[key].push_back(i);
        }
        std::vector<char> suppressedRow(in.rows.size(), 0);
        uint64_t suppressed = 0;
        size_t keptClasses = 0;
        double dm = 0;
        for (const auto& [key, members] : classes) {
            std::vector<uint32_t> values;
            for (size_t i : members) values.push_back(in.sensitive[i]);
            if (classPasses(m, values, global, in.config.sensitive[0].distance == TClosenessDistance::Ordered,
                            in.sensitiveValues)) {
                ++keptClasses;
                dm += static_cast<double>(members.size()) * static_cast<double>(members.size());
            } else {
                suppressed += members.size();
                for (size_t i : members) suppressedRow[i] = 1;
            }
        }
        if (suppressed <= maxSuppressed) {
            // Loss of each attribute alone, row by row: a suppressed cell costs 1.
            std::vector<double> perAttribute(q, 0);
            for (size_t i = 0; i < in.rows.size(); ++i) {
                for (size_t d = 0; d < q; ++d) {
                    const auto& g = in.gen[d][static_cast<size_t>(levels[d])];
                    const uint32_t node = g[in.rows[i][d]];
                    double leavesUnder = 0;
                    for (uint32_t leaf = 0; leaf < g.size(); ++leaf) leavesUnder += g[leaf] == node ? 1 : 0;
                    const double leaves = static_cast<double>(g.size());
                    perAttribute[d] += suppressedRow[i] ? 1.0 : (leaves > 1 ? (leavesUnder - 1) / (leaves - 1) : 0);
                }
            }
            for (double& v : perAttribute) v /= n;
            double loss = 0;
            int height = 0;
            for (int l : levels) height += l;
            switch (in.config.metric) {
            case Metric::Discernibility: loss = dm + static_cast<double>(suppressed) * n; break;
            case Metric::AverageClassSize:
                loss = n / static_cast<double>(keptClasses + (suppressed > 0 ? 1 : 0));
                break;
            case Metric::Height: loss = height; break;
            case Metric::NonUniformEntropy:
            case Metric::Loss:
                for (size_t i = 0; i < in.rows.size(); ++i) {
                    for (size_t d = 0; d < q; ++d) {
                        const auto& g = in.gen[d][static_cast<size_t>(levels[d])];
                        const uint32_t node = g[in.rows[i][d]];
                        double genFreq = 0, leavesUnder = 0;
                        for (uint32_t leaf = 0; leaf < g.size(); ++leaf) {
                            if (g[leaf] != node) continue;
                            leavesUnder += 1;
                            auto f = leafFreq[d].find(leaf);
                            if (f != leafFreq[d].end()) genFreq += f->second;
                        }
                        const double leaves = static_cast<double>(g.size());
                        if (in.config.metric == Metric::NonUniformEntropy) {
                            loss += std::log2((suppressedRow[i] ? n : genFreq) / leafFreq[d][in.rows[i][d]]);
                        } else {
                            loss += suppressedRow[i] ? 1.0 : (leaves > 1 ? (leavesUnder - 1) / (leaves - 1) : 0);
                        }
                    }
                }
                if (in.config.metric == Metric::Loss) loss /= n * static_cast<double>(q);
                break;
            }
            const bool tie = best.found && std::fabs(loss - best.loss) <= 1e-9 * std::max(1.0, std::fabs(best.loss));
            if (!best.found || (!tie && loss < best.loss) || (tie && height < bestHeight)) {
                best = {true, levels, loss, perAttribute};
                bestHeight = height;
            }
        }
        size_t d = q;
        bool done = true;
        while (d > 0) {
            --d;
            if (++levels[d] <= highest[d]) {
                done = false;
                break;
            }
            levels[d] = lowest[d];
        }
        if (done) return best;
    }
}

FrequencyTable tableOf(const Instance& in) {
    auto builder = newFrequencyTable(in.config);
    REQUIRE(builder.isOk());
    for (size_t i = 0; i < in.rows.size(); ++i) {
        const uint32_t s[] = {in.sensitive[i]};
        REQUIRE(builder->add(in.rows[i], s).isOk());
    }
    return std::move(builder.value()).finish();
}

// Every node's levels, in lattice order.
std::vector<std::vector<int>> allLevels(const Instance& in) {
    std::vector<int> lo, hi;
    for (size_t d = 0; d < in.gen.size(); ++d) {
        lo.push_back(in.config.quasiIdentifiers[d].minLevel);
        const int top = static_cast<int>(in.gen[d].size()) - 1;
        hi.push_back(in.config.quasiIdentifiers[d].maxLevel < 0 ? top : in.config.quasiIdentifiers[d].maxLevel);
    }
    std::vector<std::vector<int>> out;
    std::vector<int> l = lo;
    for (;;) {
        out.push_back(l);
        size_t d = l.size();
        while (d > 0) {
            --d;
            if (++l[d] <= hi[d]) break;
            l[d] = lo[d];
            if (d == 0) return out;
        }
    }
}

bool generalizes(const std::vector<int>& upper, const std::vector<int>& lower) {
    for (size_t d = 0; d < upper.size(); ++d) {
        if (upper[d] < lower[d]) return false;
    }
    return true;
}

using ClassMultiset = std::map<std::vector<uint32_t>, uint64_t>;

}  // namespace

TEST_CASE("a node's classes rolled up from a specialization equal its classes counted from the frequency table",
          "[search][roll-up]") {
    std::mt19937 rng(20261205);
    int compared = 0;
    for (int iteration = 0; iteration < 300; ++iteration) {
        const Instance in = randomInstance(rng, 2, 5);
        const FrequencyTable table = tableOf(in);
        const OptimalSearchConfig cfg = optimalSearchConfig(in.config);
        const auto nodes = allLevels(in);
        const auto& from = nodes[std::uniform_int_distribution<size_t>(0, nodes.size() - 1)(rng)];
        for (const auto& to : nodes) {
            if (!generalizes(to, from) || to == from) continue;
            auto rolled = rollUpGeneralization(table, cfg, from, to);
            REQUIRE(rolled.isOk());
            CHECK(rolled->fromTable == 1);  // only `from` read the frequency table
            auto direct = evaluateGeneralization(table, cfg, to);
            REQUIRE(direct.isOk());
            const size_t q = to.size();
            ClassMultiset a, b;
            for (size_t i = 0; i < rolled->sizes.size(); ++i) {
                std::vector<uint32_t> key(rolled->codes.begin() + static_cast<ptrdiff_t>(i * q),
                                          rolled->codes.begin() + static_cast<ptrdiff_t>((i + 1) * q));
                CHECK(a.emplace(key, rolled->sizes[i]).second);  // each class once
            }
            for (size_t i = 0; i < direct->classSizes.size(); ++i) {
                std::vector<uint32_t> key(direct->classCodes.begin() + static_cast<ptrdiff_t>(i * q),
                                          direct->classCodes.begin() + static_cast<ptrdiff_t>((i + 1) * q));
                b.emplace(key, direct->classSizes[i]);
            }
            // And both equal the classes grouped here, row by row, from the hierarchies.
            ClassMultiset c;
            for (const auto& r : in.rows) {
                std::vector<uint32_t> key;
                for (size_t d = 0; d < q; ++d)
                    key.push_back(in.config.quasiIdentifiers[d].hierarchy->generalize(r[d], to[d]));
                ++c[key];
            }
            CHECK(a == b);
            CHECK(a == c);
            ++compared;
        }
    }
    CHECK(compared > 500);
    // A target that does not generalize the source is refused.
    std::mt19937 again(7);
    const Instance in = randomInstance(again, 2, 2);
    const auto nodes = allLevels(in);
    auto refused = rollUpGeneralization(tableOf(in), optimalSearchConfig(in.config), nodes.back(), nodes.front());
    if (nodes.size() > 1) {
        REQUIRE_FALSE(refused.isOk());
        CHECK(refused.status().message() == "roll-up: the target does not generalize the source");
    }
}

TEST_CASE("the two-QI projections the search seeds in one dense pass equal the classes grouped row by row",
          "[search][projections]") {
    std::mt19937 rng(20261207);
    int compared = 0, notSeeded = 0;
    for (int iteration = 0; iteration < 200; ++iteration) {
        const Instance in = randomInstance(rng, 3, 5);
        const FrequencyTable table = tableOf(in);
        const OptimalSearchConfig cfg = optimalSearchConfig(in.config);
        const size_t q = in.gen.size();
        bool singleTop = true;  // every QI's highest allowed level has one node
        for (size_t d = 0; d < q; ++d) {
            const auto& qi = in.config.quasiIdentifiers[d];
            const int top = qi.maxLevel < 0 ? qi.hierarchy->levels() - 1 : qi.maxLevel;
            singleTop = singleTop && qi.hierarchy->nodeCount(top) == 1;
        }
        for (size_t d = 0; d < q; ++d) {
            for (size_t e = d + 1; e < q; ++e) {
                auto seeded = projectionClasses(table, cfg, d, e);
                if (!singleTop) {
                    REQUIRE_FALSE(seeded.isOk());
                    CHECK(seeded.status().message() == "projection: not seeded (a highest level has several nodes)");
                    ++notSeeded;
                    continue;
                }
                REQUIRE(seeded.isOk());
                CHECK(seeded->fromTable == 1);  // all pairs in one pass over the table
                std::vector<int> levels(q);
                for (size_t f = 0; f < q; ++f) {
                    const auto& qi = in.config.quasiIdentifiers[f];
                    levels[f] = qi.maxLevel < 0 ? qi.hierarchy->levels() - 1 : qi.maxLevel;
                }
                levels[d] = in.config.quasiIdentifiers[d].minLevel;
                levels[e] = in.config.quasiIdentifiers[e].minLevel;
                ClassMultiset a, c;
                for (size_t i = 0; i < seeded->sizes.size(); ++i) {
                    std::vector<uint32_t> key(seeded->codes.begin() + static_cast<ptrdiff_t>(i * q),
                                              seeded->codes.begin() + static_cast<ptrdiff_t>((i + 1) * q));
                    CHECK(a.emplace(key, seeded->sizes[i]).second);  // each class once
                }
                for (const auto& r : in.rows) {
                    std::vector<uint32_t> key;
                    for (size_t f = 0; f < q; ++f)
                        key.push_back(in.config.quasiIdentifiers[f].hierarchy->generalize(r[f], levels[f]));
                    ++c[key];
                }
                CHECK(a == c);
                ++compared;
            }
        }
    }
    CHECK(compared > 300);
    CHECK(notSeeded > 0);
}

TEST_CASE("suppression lower bounds never exceed a node's metric and are exact at a checked node",
          "[search][suppression-bounds]") {
    std::mt19937 rng(20261206);
    int bounded = 0, tight = 0, raised = 0;
    for (int iteration = 0; iteration < 400; ++iteration) {
        Instance in = randomInstance(rng, 2, 5);
        in.config.metric = iteration % 3 == 0 ? Metric::Loss : Metric::NonUniformEntropy;
        in.config.models.suppressionLimit = 0.05 + 0.05 * (iteration % 4);
        const bool kOnly = iteration % 2 == 0;
        if (kOnly) {
            in.config.models.lDiversity.reset();
            in.config.models.tCloseness.reset();
        }
        const FrequencyTable table = tableOf(in);
        const OptimalSearchConfig cfg = optimalSearchConfig(in.config);
        const auto nodes = allLevels(in);
        std::vector<std::vector<int>> checked;
        for (const auto& n : nodes) {
            if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) checked.push_back(n);
        }
        for (const auto& n : nodes) {
            auto stats = evaluateGeneralization(table, cfg, n);
            REQUIRE(stats.isOk());
            auto bound = suppressionLowerBound(table, cfg, checked, n);
            REQUIRE(bound.isOk());
            if (!bound->has_value()) continue;  // no record can be suppressed
            auto withoutChecks = suppressionLowerBound(table, cfg, {}, n);
            REQUIRE(withoutChecks.isOk());
            const double metric = stats->metrics.get(in.config.metric);
            const double slack = 1e-9 * std::max(1.0, std::fabs(metric));
            CHECK(**withoutChecks <= **bound + slack);
            if (!stats->satisfies) continue;  // only solutions need a valid bound
            INFO("metric " << metricName(in.config.metric) << ", " << in.config.models.describe());
            CHECK(**bound <= metric + slack);
            ++bounded;
            if (**bound > **withoutChecks + slack) ++raised;
            // k-anonymity alone: at a checked node the suppressed records are exactly those failing M,
            // so the bound is the metric itself.
            if (kOnly && std::find(checked.begin(), checked.end(), n) != checked.end()) {
                CHECK(**bound == Approx(metric).epsilon(1e-9).margin(1e-9));
                ++tight;
            }
        }
    }
    CHECK(bounded > 1000);
    CHECK(raised > 100);
    CHECK(tight > 100);
    // Discernibility and average class size keep the classification: no suppression bounds.
    std::mt19937 again(11);
    Instance in = randomInstance(again, 2, 3);
    in.config.models.suppressionLimit = 0.1;
    in.config.metric = Metric::Discernibility;
    auto none = suppressionLowerBound(tableOf(in), optimalSearchConfig(in.config), {}, allLevels(in).front());
    REQUIRE(none.isOk());
    CHECK_FALSE(none->has_value());
}

TEST_CASE("optimal search with suppression equals exhaustive search on instances with up to six quasi-identifiers",
          "[search][property][suppression-bounds]") {
    std::mt19937 rng(20261207);
    int solved = 0;
    for (int iteration = 0; iteration < 250; ++iteration) {
        Instance in = randomInstance(rng, 3, 6);
        if (in.config.models.suppressionLimit == 0) in.config.models.suppressionLimit = 0.1;
        INFO("iteration " << iteration << ": " << in.config.models.describe() << ", suppression "
                          << in.config.models.suppressionLimit << ", metric " << metricName(in.config.metric));
        const FrequencyTable table = tableOf(in);
        auto result = anonymizeGlobal(in.config, table);
        const Exhaustive expected = exhaustive(in);
        if (!expected.found) {
            REQUIRE_FALSE(result.isOk());
            continue;
        }
        REQUIRE(result.isOk());
        CHECK(result->solution.best.levels == expected.levels);
        CHECK(result->solution.objective == Approx(expected.loss).epsilon(1e-9).margin(1e-9));
        ++solved;
    }
    CHECK(solved > 100);
}

TEST_CASE("optimal search equals exhaustive search on random instances and passes the final check",
          "[search][property]") {
    std::mt19937 rng(20261127);
    int solved = 0, unsatisfiable = 0;
    for (int iteration = 0; iteration < 1500; ++iteration) {
        const Instance in = randomInstance(rng);
        INFO("iteration " << iteration << ": " << in.config.models.describe() << ", suppression "
                          << in.config.models.suppressionLimit << ", metric " << metricName(in.config.metric)
                          << ", rows " << in.rows.size());
        auto builder = newFrequencyTable(in.config);
        REQUIRE(builder.isOk());
        for (size_t i = 0; i < in.rows.size(); ++i) {
            const uint32_t s[] = {in.sensitive[i]};
            REQUIRE(builder->add(in.rows[i], s).isOk());
        }
        const FrequencyTable table = std::move(builder.value()).finish();
        auto result = anonymizeGlobal(in.config, table);
        const Exhaustive expected = exhaustive(in);
        if (!expected.found) {
            ++unsatisfiable;
            REQUIRE_FALSE(result.isOk());
            CHECK(result.status().code() == custodian::StatusCode::FailedPrecondition);
            continue;
        }
        ++solved;
        REQUIRE(result.isOk());
        CHECK(result->solution.best.levels == expected.levels);
        CHECK(result->solution.objective == Approx(expected.loss).epsilon(1e-9).margin(1e-9));
        // The loss of each attribute of the chosen node, and their mean as the loss metric.
        REQUIRE(result->solution.best.lossPerAttribute.size() == expected.lossPerAttribute.size());
        double mean = 0;
        for (size_t d = 0; d < expected.lossPerAttribute.size(); ++d) {
            CHECK(result->solution.best.lossPerAttribute[d] == Approx(expected.lossPerAttribute[d]).margin(1e-12));
            mean += result->solution.best.lossPerAttribute[d] / static_cast<double>(expected.lossPerAttribute.size());
        }
        CHECK(result->solution.best.metrics.loss == Approx(mean).margin(1e-12));

        // Stream the rows through the plan and the final check.
        auto check = makeFinalCheck(in.config, in.rows.size(), &table);
        std::vector<std::string_view> labels;
        uint64_t released = 0, suppressed = 0;
        for (size_t i = 0; i < in.rows.size(); ++i) {
            if (!result->release(in.rows[i], labels)) {
                ++suppressed;
                continue;
            }
            ++released;
            const std::string_view s[] = {in.config.sensitive[0].dictionary->values[in.sensitive[i]]};
            REQUIRE(
                check.addRow(std::span<const std::string_view>(labels), std::span<const std::string_view>(s)).isOk());
        }
        CHECK(released + suppressed == in.rows.size());
        CHECK(suppressed == result->solution.best.suppressedRecords);
        CHECK(static_cast<double>(suppressed) <=
              in.config.models.suppressionLimit * static_cast<double>(in.rows.size()) + 1e-9);
        auto report = check.finish();
        INFO((report.isOk() ? std::string("ok") : report.status().message()));
        CHECK(report.isOk());
    }
    CHECK(solved > 100);
    CHECK(unsatisfiable > 0);
}
