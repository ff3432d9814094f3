#include "gateway/release/linkage.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

#include "json/canonical.hpp"
#include "policies/json_text.hpp"

namespace custodian::release {
namespace {

// A released value as the recipient reads it: a string's text, anything else its JSON.
std::string valueText(const rapidjson::Value& v) {
    if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    v.Accept(w);
    return std::string("\x1e") + out.GetString();  // never equal to a string's text
}

std::vector<std::string> pseudonymizedColumns(const ReleasePlan& plan) {
    std::vector<std::string> out;
    for (const auto& c : plan.policy().model().columns)
        if (c.transform.name == "pseudonymize") out.push_back(c.name);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

Result<ReleasedView> collectReleasedView(ReleaseStream& stream) {
    if (const ModelUnreachable* u = stream.unreachable())
        return failedPrecondition("its models cannot be met on the data as it is now: " + u->message);
    ReleasedView view;
    const ReleasePlan& plan = stream.plan();
    view.pseudonymColumns = pseudonymizedColumns(plan);
    view.k = std::max<uint64_t>(1, plan.models().k);
    std::vector<std::string> qis, sensitive;
    for (size_t i : plan.quasiIdentifiers()) qis.push_back(plan.inputColumns()[i].name);
    view.lDiversity = plan.models().lDiversity;
    view.tCloseness = plan.models().tCloseness;
    std::vector<anon::TClosenessDistance> distances;
    if (view.lDiversity || view.tCloseness)
        for (size_t i : plan.sensitiveAttributes()) {
            sensitive.push_back(plan.inputColumns()[i].name);
            distances.push_back(plan.orderedDistance(i) ? anon::TClosenessDistance::Ordered
                                                        : anon::TClosenessDistance::Equal);
        }
    for (const auto& c : view.pseudonymColumns) view.byPseudonym[c];
    if (Status s = stream.start(); !s) return s;
    // Only what the recipient receives counts: a sensitive column the policy drops is not checked.
    for (size_t i = 0; i < sensitive.size(); ++i) {
        const auto& columns = stream.columns();
        if (std::none_of(columns.begin(), columns.end(),
                         [&](const ReleasedColumn& c) { return c.name == sensitive[i] && c.released; }))
            continue;
        view.sensitiveDistance.push_back(distances[i]);
    }
    std::erase_if(sensitive, [&](const std::string& name) {
        const auto& columns = stream.columns();
        return std::none_of(columns.begin(), columns.end(),
                            [&](const ReleasedColumn& c) { return c.name == name && c.released; });
    });
    std::string pending;  // a line cut by the page boundary
    auto takeLine = [&](std::string_view line) -> Status {
        if (line.empty()) return Status::ok();
        rapidjson::Document row;
        row.Parse(line.data(), line.size());
        if (row.HasParseError() || !row.IsObject()) return internalError("a released NDJSON line does not parse");
        std::string labels;
        for (size_t i = 0; i < qis.size(); ++i) {
            if (i) labels += '\x1f';
            auto m = row.FindMember(qis[i].c_str());
            if (m != row.MemberEnd()) labels += valueText(m->value);
        }
        std::vector<std::string> values;
        for (const auto& c : sensitive) {
            auto m = row.FindMember(c.c_str());
            values.push_back(m == row.MemberEnd() ? std::string("\x1e") : valueText(m->value));
        }
        for (const auto& c : view.pseudonymColumns) {
            auto m = row.FindMember(c.c_str());
            if (m == row.MemberEnd() || !m->value.IsString()) continue;  // NULL identifiers join nothing
            std::string pseudonym(m->value.GetString(), m->value.GetStringLength());
            if (!sensitive.empty()) view.sensitiveOf[c][pseudonym] = values;
            view.byPseudonym[c][std::move(pseudonym)] = labels;
        }
        ++view.rows;
        return Status::ok();
    };
    while (true) {
        auto page = stream.nextPage();
        if (!page) return page.status();
        if (!*page) break;
        pending += **page;
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
            if (Status s = takeLine(std::string_view(pending).substr(start, nl - start)); !s) return s;
        pending.erase(0, start);
    }
    if (Status s = takeLine(pending); !s) return s;
    return view;
}

namespace {

// One sensitive attribute of one release for t-closeness: its values coded in value order (numbers
// by value when every value is one, else by text) and its distribution over the release's rows.
struct SensitiveScale {
    std::unordered_map<std::string, uint32_t> code;
    anon::SensitiveDomain domain;
};

SensitiveScale scaleOf(const std::unordered_map<std::string, std::vector<std::string>>& rows, size_t attribute,
                       anon::TClosenessDistance distance) {
    std::unordered_map<std::string, uint64_t> counts;
    for (const auto& [pseudonym, values] : rows) ++counts[values[attribute]];
    std::vector<std::string> order;
    for (const auto& [value, n] : counts) order.push_back(value);
    bool numeric = true;
    std::vector<double> numbers;
    for (const auto& v : order) {
        char* end = nullptr;
        const std::string text = v.starts_with('\x1e') ? v.substr(1) : v;
        const double d = std::strtod(text.c_str(), &end);
        numeric = numeric && !text.empty() && end == text.c_str() + text.size();
        numbers.push_back(d);
    }
    std::vector<size_t> index(order.size());
    for (size_t i = 0; i < index.size(); ++i) index[i] = i;
    std::sort(index.begin(), index.end(),
              [&](size_t a, size_t b) { return numeric ? numbers[a] < numbers[b] : order[a] < order[b]; });
    SensitiveScale scale;
    std::vector<uint64_t> frequency(order.size());
    for (size_t rank = 0; rank < index.size(); ++rank) {
        scale.code[order[index[rank]]] = static_cast<uint32_t>(rank);
        frequency[rank] = counts[order[index[rank]]];
    }
    scale.domain = anon::SensitiveDomain::fromFrequencies(frequency, distance);
    return scale;
}

}  // namespace

JoinCheck checkJoin(const std::vector<const ReleasedView*>& views) {
    JoinCheck out;
    if (views.empty()) return out;
    const ReleasedView& first = *views[0];
    // The identity: the first column the new release pseudonymizes that an earlier one does too.
    for (const auto& c : first.pseudonymColumns) {
        for (size_t v = 1; v < views.size() && out.identityColumn.empty(); ++v)
            if (std::binary_search(views[v]->pseudonymColumns.begin(), views[v]->pseudonymColumns.end(), c))
                out.identityColumn = c;
        if (!out.identityColumn.empty()) break;
    }
    out.joined.push_back(0);
    if (!out.identityColumn.empty())
        for (size_t v = 1; v < views.size(); ++v)
            if (std::binary_search(views[v]->pseudonymColumns.begin(), views[v]->pseudonymColumns.end(),
                                   out.identityColumn))
                out.joined.push_back(v);
    for (size_t v : out.joined) out.k = std::max(out.k, views[v]->k);

    // Every person's class: from each view joined, "\x1d" + its values, or "\x1c" when absent.
    std::unordered_map<std::string, std::string> classOf;
    if (out.identityColumn.empty()) {
        // Nothing to join on: the new release stands alone, and its own check holds.
        out.persons = first.rows;
        return out;
    }
    {
        for (size_t j = 0; j < out.joined.size(); ++j) {
            const auto& rows = views[out.joined[j]]->byPseudonym.at(out.identityColumn);
            for (const auto& [pseudonym, labels] : rows) {
                std::string& c = classOf[pseudonym];
                // Absent from the views before this one (a person first seen here).
                const size_t parts = static_cast<size_t>(
                    std::count_if(c.begin(), c.end(), [](char ch) { return ch == '\x1d' || ch == '\x1c'; }));
                for (size_t missing = parts; missing < j; ++missing) c += '\x1c';
                c += '\x1d';
                c += labels;
            }
        }
        for (auto& [pseudonym, c] : classOf) {
            const size_t parts = static_cast<size_t>(
                std::count_if(c.begin(), c.end(), [](char ch) { return ch == '\x1d' || ch == '\x1c'; }));
            for (size_t missing = parts; missing < out.joined.size(); ++missing) c += '\x1c';
        }
    }
    // A class's persons are in the same views: each must keep the k of every view it is in, so that
    // no release's promise is broken by another (the class key says which views: '\x1d' present).
    std::unordered_map<std::string, std::vector<const std::string*>> members;  // class → pseudonyms
    for (const auto& [pseudonym, c] : classOf) members[c].push_back(&pseudonym);
    out.persons = classOf.size();
    out.classes = members.size();
    std::vector<uint64_t> scratch;
    std::map<std::pair<size_t, size_t>, SensitiveScale> scales;  // (view, attribute), built when needed
    for (const auto& [c, persons] : members) {
        const uint64_t n = persons.size();
        uint64_t required = 1;
        std::vector<size_t> present;  // views the class is in
        size_t part = 0;
        for (char ch : c) {
            if (ch != '\x1d' && ch != '\x1c') continue;
            if (ch == '\x1d') {
                present.push_back(out.joined[part]);
                required = std::max(required, views[out.joined[part]]->k);
            }
            ++part;
        }
        out.smallestClass = out.smallestClass == 0 ? n : std::min(out.smallestClass, n);
        if (n < required) out.personsBelowK += n;
        // l-diversity and t-closeness of every release that declares them, over its sensitive
        // values in this class.
        bool diverse = true, close = true;
        for (size_t v : present) {
            const ReleasedView& view = *views[v];
            if (!view.lDiversity && !view.tCloseness) continue;
            auto values = view.sensitiveOf.find(out.identityColumn);
            if (values == view.sensitiveOf.end()) continue;
            const size_t attributes = values->second.empty() ? 0 : values->second.begin()->second.size();
            for (size_t a = 0; a < attributes; ++a) {
                std::unordered_map<std::string, uint64_t> counts;
                for (const std::string* p : persons) ++counts[values->second.at(*p)[a]];
                if (view.lDiversity && diverse) {
                    std::vector<anon::SensitiveCount> hist;
                    uint32_t code = 0;
                    for (const auto& [value, count] : counts) hist.push_back({code++, count});
                    diverse = anon::model::lDiverse(*view.lDiversity, hist, n, scratch);
                }
                if (view.tCloseness && close && a < view.sensitiveDistance.size()) {
                    auto& scale = scales[{v, a}];
                    if (scale.code.empty()) scale = scaleOf(values->second, a, view.sensitiveDistance[a]);
                    std::vector<anon::SensitiveCount> hist;
                    for (const auto& [value, count] : counts) hist.push_back({scale.code.at(value), count});
                    std::sort(hist.begin(), hist.end(), [](const auto& x, const auto& y) { return x.value < y.value; });
                    close = anon::model::earthMoversDistance(hist, n, scale.domain) <= view.tCloseness->t + 1e-12;
                }
            }
        }
        if (!diverse) out.personsNotLDiverse += n;
        if (!close) out.personsNotTClose += n;
    }
    return out;
}

json::JsonValue disclosedBy(const ReleaseStream& stream) {
    json::JsonValue::Object d;
    const ReleasePlan& plan = stream.plan();
    const PrivacyDecision* decision = stream.decision();
    json::JsonValue::Array qis;
    for (size_t i = 0; i < plan.quasiIdentifiers().size(); ++i) {
        json::JsonValue::Object q;
        q["column"] = plan.inputColumns()[plan.quasiIdentifiers()[i]].name;
        if (decision && !decision->local && i < decision->levels.size()) {
            q["level"] = static_cast<int64_t>(decision->levels[i]);
            q["levels"] = static_cast<int64_t>(decision->hierarchies[i]->levels());
        }
        qis.emplace_back(std::move(q));
    }
    d["quasi_identifiers"] = std::move(qis);
    if (decision && decision->local) {
        d["algorithm"] = decision->local->algorithm;
        d["partitions"] = static_cast<uint64_t>(decision->local->partitions.partitionSizes.size());
    } else {
        d["algorithm"] = "optimal";
    }
    json::JsonValue::Array pseudonyms;
    for (auto& c : pseudonymizedColumns(plan)) pseudonyms.emplace_back(std::move(c));
    d["pseudonymized"] = std::move(pseudonyms);
    d["k"] = std::max<uint64_t>(1, plan.models().k);
    // The row filter as the policy states it (canonical JSON text), or null.
    rapidjson::Document doc;
    const std::string& policyJson = plan.policy().canonicalJson();
    doc.Parse(policyJson.c_str(), policyJson.size());
    json::JsonValue filter;
    if (!doc.HasParseError() && doc.IsObject())
        if (auto f = doc.FindMember("row_filter"); f != doc.MemberEnd()) {
            // The policy's own canonical bytes, so this cannot fail; a filter that did is recorded as text.
            auto canonical = json::canonicalJson(f->value, json::Numbers::Decimal);
            filter = canonical ? std::move(canonical).value() : policies::compactJson(f->value);
        }
    d["row_filter"] = std::move(filter);
    return d;
}

}  // namespace custodian::release
