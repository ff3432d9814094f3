#include "gateway/release/aggregate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "dp/samplers.hpp"
#include "json/canonical.hpp"
#include "gateway/release/privacy_budget.hpp"
#include "policies/json_text.hpp"

namespace custodian::release {

namespace {

using rapidjson::Value;

std::string str(const Value& v) { return std::string(v.GetString(), v.GetStringLength()); }

Status notAllowed(const std::string& message) { return invalidArgument(message); }

std::string quotedName(const std::string& name) { return "\"" + policies::printableForMessage(name) + "\""; }

// One mechanism calibrated for one figure (in integer steps of the figure).
struct Calibrated {
    NoiseMechanism mechanism = NoiseMechanism::Laplace;
    dp::Rational parameter;   // Laplace: the scale t; Gaussian: sigma^2
    double scale = 0;         // t or sigma, in steps
    double stddev = 0;        // of the noise, in steps
    double halfWidth95 = 0;   // in steps
    double halfWidth975 = 0;  // in steps (a mean's two figures)

    int64_t draw(dp::RandomSource& random) const {
        return mechanism == NoiseMechanism::Laplace ? dp::sampleDiscreteLaplace(parameter, random)
                                                    : dp::sampleDiscreteGaussian(parameter, random);
    }
};

Result<Calibrated> calibrate(NoiseMechanism mechanism, uint64_t sensitivity, double epsilon, double delta) {
    try {
        Calibrated c;
        c.mechanism = mechanism;
        const dp::Rational eps = dp::epsilonFromDouble(epsilon);
        if (mechanism == NoiseMechanism::Laplace) {
            c.parameter = dp::laplaceScaleFor(sensitivity, eps);
            c.scale = dp::toDouble(c.parameter);
            c.stddev = dp::discreteLaplaceStandardDeviation(c.parameter);
            c.halfWidth95 = static_cast<double>(dp::discreteLaplaceHalfWidth95(c.parameter));
            // P(|X| > w) = 2 q^(w+1) / (1 + q) <= 0.025
            const double q = std::exp(-1 / c.scale);
            c.halfWidth975 = std::max(0.0, std::ceil(c.scale * std::log(2 / (0.025 * (1 + q)))) - 1);
        } else {
            c.parameter = dp::gaussianSigmaSquaredFor(sensitivity, eps, delta);
            c.scale = std::sqrt(dp::toDouble(c.parameter));
            c.stddev = dp::discreteGaussianStandardDeviation(c.parameter);
            c.halfWidth95 = static_cast<double>(dp::discreteGaussianHalfWidth95(c.parameter));
            // The normal quantile of 97.5 % two-sided (2.2414), rounded up: the discrete Gaussian's
            // tails are no heavier than the continuous one's at these widths.
            c.halfWidth975 = std::ceil(2.2414 * c.scale);
        }
        return c;
    } catch (const std::exception& e) {
        return invalidArgument(std::string("the noise cannot be calibrated: ") + e.what());
    }
}

}  // namespace

const char* aggregateKindName(AggregateKind kind) noexcept {
    switch (kind) {
    case AggregateKind::Count: return "count";
    case AggregateKind::Sum: return "sum";
    case AggregateKind::Mean: return "mean";
    }
    return "?";
}

const char* noiseMechanismName(NoiseMechanism mechanism) noexcept {
    return mechanism == NoiseMechanism::Laplace ? "laplace" : "gaussian";
}

Result<QueryRequest> parseQueryRequest(const Value& body) {
    if (!body.IsObject()) return invalidArgument("the request body must be a JSON object");
    static const std::set<std::string, std::less<>> kMembers{"dataset",  "policy",     "purpose", "aggregate", "column",
                                                             "group_by", "row_filter", "epsilon", "mechanism", "delta"};
    for (auto m = body.MemberBegin(); m != body.MemberEnd(); ++m) {
        const std::string name = str(m->name);
        if (!kMembers.count(name))
            return invalidArgument("unknown member \"" + policies::printableForMessage(name) +
                                   "\"; a query has dataset, policy, purpose, aggregate, column, group_by, row_filter, "
                                   "epsilon, mechanism and delta");
    }
    auto text = [&](const char* name, bool required, std::string& out) -> Status {
        auto it = body.FindMember(name);
        if (it == body.MemberEnd())
            return required ? invalidArgument(std::string("\"") + name + "\" is required") : Status::ok();
        if (!it->value.IsString() || it->value.GetStringLength() == 0)
            return invalidArgument(std::string("\"") + name + "\" must be a non-empty string");
        if (it->value.GetStringLength() > 256) return invalidArgument(std::string("\"") + name + "\" is too long");
        out = str(it->value);
        return Status::ok();
    };
    auto number = [&](const char* name, bool required, double& out) -> Status {
        auto it = body.FindMember(name);
        if (it == body.MemberEnd())
            return required ? invalidArgument(std::string("\"") + name + "\" is required") : Status::ok();
        if (!it->value.IsNumber() || !std::isfinite(it->value.GetDouble()) || !(it->value.GetDouble() > 0))
            return invalidArgument(std::string("\"") + name + "\" must be a number above 0");
        out = it->value.GetDouble();
        return Status::ok();
    };
    QueryRequest r;
    if (Status s = text("dataset", true, r.dataset); !s) return s;
    if (Status s = text("policy", true, r.policy); !s) return s;
    if (Status s = text("purpose", true, r.purpose); !s) return s;
    std::string aggregate;
    if (Status s = text("aggregate", true, aggregate); !s) return s;
    if (aggregate == "count") r.kind = AggregateKind::Count;
    else if (aggregate == "histogram") r.kind = AggregateKind::Count, r.histogram = true;
    else if (aggregate == "sum") r.kind = AggregateKind::Sum;
    else if (aggregate == "mean") r.kind = AggregateKind::Mean;
    else return invalidArgument("\"aggregate\" must be \"count\", \"histogram\", \"sum\" or \"mean\"");
    std::string column;
    if (Status s = text("column", false, column); !s) return s;
    if (!column.empty()) r.column = column;
    if (r.kind == AggregateKind::Count && r.column)
        return invalidArgument("a " + aggregate + " counts rows; it takes no \"column\"");
    if (r.kind != AggregateKind::Count && !r.column)
        return invalidArgument("a " + aggregate + " needs the \"column\" to " +
                               (r.kind == AggregateKind::Sum ? "sum" : "average"));
    if (auto it = body.FindMember("group_by"); it != body.MemberEnd()) {
        if (!it->value.IsArray()) return invalidArgument("\"group_by\" must be a list of column names");
        for (const auto& g : it->value.GetArray()) {
            if (!g.IsString() || g.GetStringLength() == 0 || g.GetStringLength() > 63)
                return invalidArgument("\"group_by\" must be a list of column names");
            if (std::find(r.groupBy.begin(), r.groupBy.end(), str(g)) != r.groupBy.end())
                return invalidArgument("\"group_by\" lists " + quotedName(str(g)) + " twice");
            r.groupBy.push_back(str(g));
        }
    }
    if (r.histogram && r.groupBy.empty()) return invalidArgument("a histogram needs at least one \"group_by\" column");
    if (auto it = body.FindMember("row_filter"); it != body.MemberEnd()) r.rowFilter = &it->value;
    if (Status s = number("epsilon", true, r.epsilon); !s) return s;
    std::string mechanism = "laplace";
    if (Status s = text("mechanism", false, mechanism); !s) return s;
    if (mechanism == "laplace") r.mechanism = NoiseMechanism::Laplace;
    else if (mechanism == "gaussian") r.mechanism = NoiseMechanism::Gaussian;
    else return invalidArgument("\"mechanism\" must be \"laplace\" or \"gaussian\"");
    if (Status s = number("delta", r.mechanism == NoiseMechanism::Gaussian, r.delta); !s) return s;
    if (r.mechanism == NoiseMechanism::Laplace && body.HasMember("delta"))
        return invalidArgument("the laplace mechanism spends no \"delta\"; remove it or use \"gaussian\"");
    // Spends are whole budget units (privacy_budget.hpp), rounded down: what is charged, stated
    // and audited is what the noise is calibrated to. (An epsilon beyond any budget stays as
    // written, for planQuery's refusal.)
    if (r.epsilon <= 1e6) {
        const uint64_t units = budgetUnits(r.epsilon, kEpsilonUnits);
        if (units == 0) return invalidArgument("\"epsilon\" must be at least 0.000001");
        r.epsilon = static_cast<double>(units) / static_cast<double>(kEpsilonUnits);
    }
    if (r.delta >= 1) return invalidArgument("\"delta\" must be below 1");
    if (r.delta > 0) {
        const uint64_t units = budgetUnits(r.delta, kDeltaUnits);
        if (units == 0) return invalidArgument("\"delta\" must be at least 0.000000000001");
        r.delta = static_cast<double>(units) / static_cast<double>(kDeltaUnits);
    }
    return r;
}

Result<QueryPlan> planQuery(const policies::Policy& policy, QueryRequest request) {
    const policies::PolicyModel& model = policy.model();
    if (!model.aggregates) return failedPrecondition("the policy declares no aggregates; it answers no queries");
    const policies::AggregatesSpec& spec = *model.aggregates;
    QueryPlan plan;
    if (budgetUnits(request.epsilon, kEpsilonUnits) > budgetUnits(spec.epsilon, kEpsilonUnits) || request.epsilon > 1e6)
        return notAllowed(
            "\"epsilon\" " +
            (request.epsilon > 1e6 ? std::string("above 1000000") : budgetDecimal(request.epsilon, kEpsilonUnits)) +
            " is more than the whole budget of " + budgetDecimal(spec.epsilon, kEpsilonUnits) + " per " +
            policies::budgetPeriodName(spec.period));
    if (request.mechanism == NoiseMechanism::Gaussian) {
        if (!spec.delta)
            return notAllowed("the policy declares no delta budget; only the laplace mechanism is allowed");
        if (budgetUnits(request.delta, kDeltaUnits) > budgetUnits(*spec.delta, kDeltaUnits))
            return notAllowed("\"delta\" " + budgetDecimal(request.delta, kDeltaUnits) +
                              " is more than the policy's whole delta budget of " +
                              budgetDecimal(*spec.delta, kDeltaUnits));
    }
    auto typeOf = [&](const std::string& column) {
        const policies::ColumnPolicy* c = model.column(column);
        return c ? c->type : anon::ColumnType::Text;
    };
    plan.columns.push_back({spec.personKey, typeOf(spec.personKey)});
    plan.sql.personKey = 0;
    for (const std::string& g : request.groupBy) {
        const policies::AggregateGroupBy* declared = spec.groupByColumn(g);
        if (!declared) {
            std::string allowed;
            for (const auto& d : spec.groupBy) allowed += (allowed.empty() ? "" : ", ") + d.column;
            return notAllowed("the policy does not allow grouping by " + quotedName(g) +
                              (allowed.empty() ? "; it allows no grouping" : "; it allows " + allowed));
        }
        plan.groups.push_back({declared->column, declared->level, declared->values});
        plan.sql.groupColumns.push_back(plan.columns.size());
        plan.columns.push_back({g, typeOf(g)});
        if (declared->values.empty() || plan.cells > kMaxAnswerGroups / declared->values.size())
            return notAllowed("the answer would have more than " + std::to_string(kMaxAnswerGroups) + " groups");
        plan.cells *= declared->values.size();
    }
    plan.maxRowsPerPerson = spec.maxRowsPerPerson;
    plan.sql.maxRowsPerPerson = spec.maxRowsPerPerson;
    plan.countSensitivity = spec.maxRowsPerPerson;
    if (request.column) {
        const policies::AggregateMeasure* measure = spec.measure(*request.column);
        if (!measure) {
            std::string allowed;
            for (const auto& m : spec.measures) allowed += (allowed.empty() ? "" : ", ") + m.column;
            return notAllowed("the policy does not allow summing or averaging " + quotedName(*request.column) +
                              (allowed.empty() ? "; it declares no measures" : "; its measures are " + allowed));
        }
        plan.lower = measure->lower;
        plan.upper = measure->upper;
        // The grid: whole numbers where the column and its bounds are, while a person's largest
        // contribution stays below 2^20 steps; otherwise the power of two that brings it there.
        const double largest = std::max(std::fabs(plan.lower), std::fabs(plan.upper)) * spec.maxRowsPerPerson;
        constexpr double kSteps = 1 << 20;
        const bool whole = typeOf(measure->column) == anon::ColumnType::Integer &&
                           std::floor(plan.lower) == plan.lower && std::floor(plan.upper) == plan.upper;
        plan.granularity = whole && largest <= kSteps ? 1.0 : std::exp2(std::ceil(std::log2(largest / kSteps)));
        // A row's value in grid steps stays within [lowerSteps, upperSteps] (the database clamps it
        // there after rounding), so one person moves a sum by at most the larger of their absolute
        // values times its rows: the sensitivity is exact, whatever the rounding.
        int64_t lowerSteps = static_cast<int64_t>(std::ceil(plan.lower / plan.granularity));
        int64_t upperSteps = static_cast<int64_t>(std::floor(plan.upper / plan.granularity));
        if (lowerSteps > upperSteps)  // bounds narrower than one step: their midpoint's step
            lowerSteps = upperSteps = std::llround((plan.lower + plan.upper) / 2 / plan.granularity);
        plan.sumSensitivity =
            static_cast<uint64_t>(std::max(std::llabs(lowerSteps), std::llabs(upperSteps))) * spec.maxRowsPerPerson;
        plan.sql.measure = plan.columns.size();
        plan.sql.lower = plan.lower;
        plan.sql.upper = plan.upper;
        plan.sql.granularity = plan.granularity;
        plan.sql.lowerSteps = lowerSteps;
        plan.sql.upperSteps = upperSteps;
        plan.columns.push_back({measure->column, typeOf(measure->column)});
    }
    // The policy's own row filter always applies; the query's narrows it.
    plan.filter = model.rowFilter;
    if (request.rowFilter) {
        auto checked = policies::checkRowFilter(*request.rowFilter, "/row_filter", model);
        if (!checked.errors.empty())
            return invalidArgument(
                "\"row_filter\" at " +
                (checked.errors.front().pointer.empty() ? std::string("/row_filter") : checked.errors.front().pointer) +
                ": " + checked.errors.front().message);
        if (plan.filter) {
            policies::RowFilter both;
            both.kind = policies::RowFilter::Kind::And;
            both.children = {*plan.filter, std::move(*checked.filter)};
            plan.filter = std::move(both);
        } else {
            plan.filter = std::move(checked.filter);
        }
    }
    // The noise is calibrated now, before the source is read: an epsilon too small to calibrate
    // is refused without touching the data.
    const double share = request.kind == AggregateKind::Mean ? 0.5 : 1.0;
    if (auto c = calibrate(request.mechanism, plan.countSensitivity, request.epsilon * share, request.delta * share);
        !c)
        return notAllowed(c.status().message());
    if (request.column) {
        if (auto c = calibrate(request.mechanism, plan.sumSensitivity, request.epsilon * share, request.delta * share);
            !c)
            return notAllowed(c.status().message());
    }
    plan.request = std::move(request);
    return plan;
}

Result<Figures> readFigures(SourceSnapshot& snapshot, const policies::Policy& policy, const std::string& schema,
                            const std::string& table, const QueryPlan& plan) {
    std::optional<policies::SqlFragment> filter;
    if (plan.filter) {
        auto sql = policies::compileRowFilter(*plan.filter);
        if (!sql) return sql.status();
        filter = std::move(sql).value();
    }
    auto query = SourceQuery::make(schema, table, plan.columns, std::move(filter));
    if (!query) return query.status();
    AggregateSql sql = plan.sql;
    auto unique = snapshot.columnIsUnique(*query, sql.personKey);
    if (!unique) return unique.status();
    if (*unique) sql.maxRowsPerPerson.reset();  // one row per person already

    // The database's groups (distinct source values), then mapped onto the public domains.
    struct Row {
        std::vector<std::optional<std::string>> values;
        uint64_t rows, measured;
        int64_t gridSum;
    };
    std::vector<Row> rows;
    Status s = snapshot.forEachAggregate(
        *query, sql,
        [&](std::span<const SourceValue> values, uint64_t n, uint64_t measured, int64_t gridSum) -> Status {
            Row row{{}, n, measured, gridSum};
            for (const SourceValue& v : values)
                row.values.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
            rows.push_back(std::move(row));
            return Status::ok();
        });
    if (!s) return s;

    // Per group column: source value → index in its domain (absent: outside the domain, dropped).
    std::vector<std::map<std::string, size_t, std::less<>>> toDomain(plan.groups.size());
    for (size_t g = 0; g < plan.groups.size(); ++g) {
        const PlannedGroup& group = plan.groups[g];
        std::map<std::string, size_t, std::less<>> index;
        for (size_t i = 0; i < group.values.size(); ++i) index.emplace(group.values[i], i);
        std::set<std::string> distinct;
        for (const Row& row : rows)
            if (row.values[g]) distinct.insert(*row.values[g]);
        if (!group.level || *group.level == 0) {
            for (const std::string& v : distinct)
                if (auto it = index.find(v); it != index.end()) toDomain[g].emplace(v, it->second);
            continue;
        }
        // Through the column's hierarchy at the level. A loaded hierarchy (file, groups) is the
        // policy's: a value it does not cover is outside every group. A built one (dates,
        // intervals, prefix) is built for each value alone, so a value's group never depends on
        // the other rows, and a value the builder cannot place, or too short for the level, is
        // outside every group: nothing the data holds can make the query fail (a failure that
        // depends on the rows matched would tell the caller about them, and spend nothing).
        auto place = [&](const anon::Hierarchy& h, const std::string& v) {
            auto leaf = h.leafCode(v);
            if (!leaf || *group.level >= h.levels()) return;
            const std::string& label = h.label(*group.level, h.generalize(*leaf, *group.level));
            if (auto it = index.find(label); it != index.end()) toDomain[g].emplace(v, it->second);
        };
        if (std::shared_ptr<const anon::Hierarchy> loaded = policy.hierarchy(group.column)) {
            for (const std::string& v : distinct) place(*loaded, v);
            continue;
        }
        for (const std::string& v : distinct)
            if (auto built = policy.buildHierarchy(group.column, std::vector<std::string>{v})) place(**built, v);
    }
    Figures f;
    f.rows.assign(plan.cells, 0);
    f.measured.assign(plan.cells, 0);
    f.gridSums.assign(plan.cells, 0);
    for (const Row& row : rows) {
        size_t cell = 0;
        bool inDomain = true;
        for (size_t g = 0; g < plan.groups.size() && inDomain; ++g) {
            auto it = row.values[g] ? toDomain[g].find(*row.values[g]) : toDomain[g].end();
            inDomain = it != toDomain[g].end();
            if (inDomain) cell = cell * plan.groups[g].values.size() + it->second;
        }
        if (!inDomain) continue;
        f.rows[cell] += row.rows;
        f.measured[cell] += row.measured;
        f.gridSums[cell] += row.gridSum;
    }
    return f;
}

// ---- noise ----------------------------------------------------------------------------------------

Result<Answer> noisyAnswer(const QueryPlan& plan, const Figures& figures, dp::RandomSource& random) {
    const QueryRequest& q = plan.request;
    const bool mean = q.kind == AggregateKind::Mean;
    const double share = mean ? 0.5 : 1.0;  // a mean spends half on its sum, half on its count
    Answer out;
    out.cells.resize(plan.cells);
    auto counts = calibrate(q.mechanism, plan.countSensitivity, q.epsilon * share, q.delta * share);
    if (!counts) return counts.status();
    if (q.kind == AggregateKind::Count) {
        out.noiseScale = counts->scale;
        out.noiseStddev = counts->stddev;
        out.halfWidth95 = counts->halfWidth95;
        for (size_t i = 0; i < plan.cells; ++i) {
            const double v = static_cast<double>(figures.rows[i]) + static_cast<double>(counts->draw(random));
            out.cells[i] = {v, v - counts->halfWidth95, v + counts->halfWidth95};
        }
        return out;
    }
    auto sums = calibrate(q.mechanism, plan.sumSensitivity, q.epsilon * share, q.delta * share);
    if (!sums) return sums.status();
    const double step = plan.granularity;
    out.noiseScale = sums->scale * step;
    out.noiseStddev = sums->stddev * step;
    out.halfWidth95 = sums->halfWidth95 * step;
    if (mean) out.countNoiseScale = counts->scale;
    for (size_t i = 0; i < plan.cells; ++i) {
        const double sum = (static_cast<double>(figures.gridSums[i]) + static_cast<double>(sums->draw(random))) * step;
        if (!mean) {
            out.cells[i] = {sum, sum - out.halfWidth95, sum + out.halfWidth95};
            continue;
        }
        const double count = static_cast<double>(figures.measured[i]) + static_cast<double>(counts->draw(random));
        NoisyFigure& cell = out.cells[i];
        if (count > 0) cell.value = std::clamp(sum / count, plan.lower, plan.upper);
        // Both figures in their 97.5 % intervals (together at least 95 %): the quotient lies
        // between the extreme corners, and always within the clamping bounds.
        const double sLo = sum - sums->halfWidth975 * step, sHi = sum + sums->halfWidth975 * step;
        const double cLo = count - counts->halfWidth975, cHi = count + counts->halfWidth975;
        cell.intervalLow = plan.lower;
        cell.intervalHigh = plan.upper;
        if (cLo > 0) {
            const double corners[] = {sLo / cLo, sLo / cHi, sHi / cLo, sHi / cHi};
            cell.intervalLow = std::max(plan.lower, *std::min_element(std::begin(corners), std::end(corners)));
            cell.intervalHigh = std::min(plan.upper, *std::max_element(std::begin(corners), std::end(corners)));
        }
    }
    return out;
}

void writeAnswerMembers(rapidjson::Writer<rapidjson::StringBuffer>& w, const QueryPlan& plan, const Answer& answer) {
    const QueryRequest& q = plan.request;
    auto text = [&](const std::string& s) {
        const std::string clean = json::sanitizeUtf8(s);
        w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
    };
    w.Key("aggregate");
    w.String(q.histogram ? "histogram" : aggregateKindName(q.kind));
    w.Key("column");
    if (q.column) text(*q.column);
    else w.Null();
    w.Key("group_by");
    w.StartArray();
    for (const auto& g : plan.groups) text(g.column);
    w.EndArray();
    w.Key("mechanism");
    w.String(noiseMechanismName(q.mechanism));
    w.Key("epsilon");
    w.Double(q.epsilon);
    w.Key("delta");
    w.Double(q.delta);
    w.Key("contribution_bound");
    w.Uint(plan.maxRowsPerPerson);
    w.Key("sensitivity");
    if (q.kind == AggregateKind::Count) w.Uint64(plan.countSensitivity);
    else w.Double(static_cast<double>(plan.sumSensitivity) * plan.granularity);
    w.Key("noise_scale");
    w.Double(answer.noiseScale);
    w.Key("noise_stddev");
    w.Double(answer.noiseStddev);
    if (answer.countNoiseScale) {
        w.Key("count_noise_scale");
        w.Double(*answer.countNoiseScale);
        // The split of the spend between the mean's two noisy figures, in half (docs/aggregates.md).
        w.Key("split");
        w.StartObject();
        for (const char* figure : {"sum", "count"}) {
            w.Key(figure);
            w.StartObject();
            w.Key("epsilon");
            w.Double(q.epsilon / 2);
            w.Key("delta");
            w.Double(q.delta / 2);
            w.EndObject();
        }
        w.EndObject();
    }
    w.Key("confidence");
    w.Double(0.95);
    w.Key("groups");
    w.StartArray();
    for (size_t cell = 0; cell < answer.cells.size(); ++cell) {
        w.StartObject();
        w.Key("key");
        w.StartObject();
        // The cell's group of each column: row-major, the last column varies fastest.
        std::vector<size_t> at(plan.groups.size());
        size_t rest = cell;
        for (size_t g = plan.groups.size(); g-- > 0;) {
            at[g] = rest % plan.groups[g].values.size();
            rest /= plan.groups[g].values.size();
        }
        for (size_t g = 0; g < plan.groups.size(); ++g) {
            text(plan.groups[g].column);
            text(plan.groups[g].values[at[g]]);
        }
        w.EndObject();
        const NoisyFigure& f = answer.cells[cell];
        w.Key("value");
        if (f.value) w.Double(*f.value);
        else w.Null();
        w.Key("interval");
        w.StartArray();
        w.Double(f.intervalLow);
        w.Double(f.intervalHigh);
        w.EndArray();
        w.EndObject();
    }
    w.EndArray();
}

std::string answerJson(const QueryPlan& plan, const Answer& answer) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    writeAnswerMembers(w, plan, answer);
    w.EndObject();
    return buffer.GetString();
}

}  // namespace custodian::release
