#include "anonymizer/final_check.hpp"

#include <cstring>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace custodian::anon {

namespace {

bool parseDouble(const std::string& s, double& out) {
    const char* b = s.data();
    const char* e = s.data() + s.size();
    while (b < e && *b == ' ') ++b;
    while (e > b && e[-1] == ' ') --e;
    if (b < e && *b == '+') ++b;
    if (b == e) return false;
    auto r = std::from_chars(b, e, out);
    return r.ec == std::errc() && r.ptr == e && std::isfinite(out);
}

// Values of the domain in ordered-distance order.
std::vector<std::string> orderedDomain(const std::map<std::string, uint64_t>& reference) {
    std::vector<std::string> values;
    values.reserve(reference.size());
    for (const auto& [v, c] : reference) values.push_back(v);  // std::map: byte-wise order
    std::vector<std::pair<double, std::string>> numeric;
    for (const auto& v : values) {
        double d = 0;
        if (!parseDouble(v, d)) return values;
        numeric.emplace_back(d, v);
    }
    std::stable_sort(numeric.begin(), numeric.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    values.clear();
    for (auto& [d, v] : numeric) values.push_back(std::move(v));
    return values;
}

// A class key: each label as a 4-byte length and its bytes (no separator can make two different
// label tuples collide).
void appendKeyPart(std::string& key, std::string_view label) {
    const auto n = static_cast<uint32_t>(label.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    key.append(label);
}

std::string describeClass(const std::vector<std::string>& names, std::string_view key) {
    // Rendered as name=label pairs.
    std::string out = "{";
    size_t pos = 0;
    for (size_t i = 0; i < names.size() && pos + sizeof(uint32_t) <= key.size(); ++i) {
        uint32_t n = 0;
        std::memcpy(&n, key.data() + pos, sizeof n);
        pos += sizeof n;
        out += (i ? ", " : "") + names[i] + "=" + std::string(key.substr(pos, n));
        pos += n;
    }
    return out + "}";
}

}  // namespace

FinalCheck::FinalCheck(PrivacyModels models, std::vector<std::string> qiNames,
                       std::vector<FinalCheckSensitive> sensitive, uint64_t inputRecords)
    : models_(models), qiNames_(std::move(qiNames)), sensitive_(std::move(sensitive)), inputRecords_(inputRecords) {}

Status FinalCheck::addRow(std::span<const std::string> qiLabels, std::span<const std::string> sensitiveValues) {
    std::vector<std::string_view> q(qiLabels.begin(), qiLabels.end());
    std::vector<std::string_view> s(sensitiveValues.begin(), sensitiveValues.end());
    return addRow(std::span<const std::string_view>(q), std::span<const std::string_view>(s));
}

Status FinalCheck::addRow(std::span<const std::string_view> qiLabels,
                          std::span<const std::string_view> sensitiveValues) {
    return addRows(qiLabels, sensitiveValues, 1);
}

Status FinalCheck::addRows(std::span<const std::string_view> qiLabels,
                           std::span<const std::string_view> sensitiveValues, uint64_t count) {
    if (qiLabels.size() != qiNames_.size()) {
        return invalidArgument("final check: row has " + std::to_string(qiLabels.size()) +
                               " quasi-identifiers, expected " + std::to_string(qiNames_.size()));
    }
    if (sensitiveValues.size() != sensitive_.size()) {
        return invalidArgument("final check: row has " + std::to_string(sensitiveValues.size()) +
                               " sensitive values, expected " + std::to_string(sensitive_.size()));
    }
    if (count == 0) return Status::ok();
    key_.clear();
    for (std::string_view label : qiLabels) appendKeyPart(key_, label);
    const auto [id, inserted] = classKeys_.intern(key_);
    if (inserted) classes_.emplace_back().values.resize(sensitive_.size());
    ReleasedClass& c = classes_[id];
    c.size += count;
    for (size_t s = 0; s < sensitiveValues.size(); ++s) {
        auto& values = c.values[s];
        auto v = values.find(sensitiveValues[s]);
        if (v == values.end()) v = values.emplace(std::string(sensitiveValues[s]), 0).first;
        v->second += count;
    }
    released_ += count;
    return Status::ok();
}

Result<FinalCheckReport> FinalCheck::finish() const {
    FinalCheckReport report;
    report.releasedRecords = released_;
    if (released_ > inputRecords_) {
        return failedPrecondition("final check: " + std::to_string(released_) + " rows released from " +
                                  std::to_string(inputRecords_) + " input records");
    }
    report.suppressedRecords = inputRecords_ - released_;
    const long double allowed =
        static_cast<long double>(models_.suppressionLimit) * static_cast<long double>(inputRecords_);
    if (static_cast<long double>(report.suppressedRecords) > allowed + 1e-9L) {
        return failedPrecondition("final check: " + std::to_string(report.suppressedRecords) + " of " +
                                  std::to_string(inputRecords_) + " records suppressed, the limit allows " +
                                  std::to_string(static_cast<uint64_t>(allowed + 1e-9L)));
    }
    report.classes = classes_.size();

    // Reference distributions for t-closeness.
    std::vector<std::vector<std::string>> domain(sensitive_.size());
    std::vector<std::vector<double>> reference(sensitive_.size());
    std::vector<std::unordered_map<std::string, size_t>> position(sensitive_.size());
    if (models_.tCloseness) {
        for (size_t s = 0; s < sensitive_.size(); ++s) {
            std::map<std::string, uint64_t> ref = sensitive_[s].inputDistribution;
            if (ref.empty()) {
                for (const ReleasedClass& c : classes_) {
                    for (const auto& [v, n] : c.values[s]) ref[v] += n;
                }
            }
            domain[s] = sensitive_[s].distance == TClosenessDistance::Ordered ? orderedDomain(ref) : [&] {
                std::vector<std::string> v;
                v.reserve(ref.size());
                for (const auto& e : ref) v.push_back(e.first);
                return v;
            }();
            uint64_t total = 0;
            for (const auto& [v, n] : ref) total += n;
            for (size_t i = 0; i < domain[s].size(); ++i) {
                position[s][domain[s][i]] = i;
                reference[s].push_back(total ? static_cast<double>(ref.at(domain[s][i])) / static_cast<double>(total)
                                             : 0);
            }
        }
    }

    for (uint32_t id = 0; id < classes_.size(); ++id) {
        const ReleasedClass& c = classes_[id];
        const std::string where = "final check: class " + describeClass(qiNames_, classKeys_.value(id)) + " (" +
                                  std::to_string(c.size) + " records)";
        report.minClassSize = report.minClassSize == 0 ? c.size : std::min(report.minClassSize, c.size);
        if (c.size < models_.k) {
            return failedPrecondition(where + " is smaller than k=" + std::to_string(models_.k));
        }
        for (size_t s = 0; s < sensitive_.size(); ++s) {
            const auto& values = c.values[s];
            std::vector<uint64_t> counts;
            for (const auto& [v, n] : values) counts.push_back(n);
            std::sort(counts.begin(), counts.end(), [](uint64_t a, uint64_t b) { return a > b; });
            double entropy = 0;
            for (uint64_t n : counts) {
                const double p = static_cast<double>(n) / static_cast<double>(c.size);
                entropy -= p * std::log(p);
            }
            const double distinct = static_cast<double>(counts.size());
            report.minDistinctL = report.minDistinctL ? std::min(*report.minDistinctL, distinct) : distinct;
            report.minEntropyL =
                report.minEntropyL ? std::min(*report.minEntropyL, std::exp(entropy)) : std::exp(entropy);
            if (models_.lDiversity) {
                const auto& l = *models_.lDiversity;
                const auto lInt = static_cast<size_t>(std::floor(l.l));
                bool ok = true;
                if (l.variant == LDiversityVariant::Distinct) {
                    ok = counts.size() >= lInt;
                } else if (l.variant == LDiversityVariant::Entropy) {
                    ok = entropy >= std::log(l.l) - 1e-9;
                } else {
                    uint64_t tail = 0;
                    for (size_t i = lInt == 0 ? 0 : lInt - 1; i < counts.size(); ++i) tail += counts[i];
                    ok = lInt == 0 ||
                         (counts.size() >= lInt && static_cast<double>(counts[0]) < l.c * static_cast<double>(tail));
                }
                if (!ok) {
                    return failedPrecondition(where + " is not " + models_.describe() + " on '" + sensitive_[s].name +
                                              "' (" + std::to_string(counts.size()) + " distinct values)");
                }
            }
            if (models_.tCloseness) {
                const auto& dom = domain[s];
                std::vector<double> share(dom.size(), 0);
                for (const auto& [v, n] : values) {
                    auto pos = position[s].find(v);
                    if (pos == position[s].end()) {
                        return failedPrecondition(where + ": sensitive value '" + v + "' of '" + sensitive_[s].name +
                                                  "' is not in the input distribution");
                    }
                    share[pos->second] = static_cast<double>(n) / static_cast<double>(c.size);
                }
                double distance = 0;
                if (sensitive_[s].distance == TClosenessDistance::Equal) {
                    for (size_t i = 0; i < dom.size(); ++i) distance += std::fabs(share[i] - reference[s][i]);
                    distance /= 2;
                } else if (dom.size() > 1) {
                    double carry = 0;
                    for (size_t i = 0; i < dom.size(); ++i) {
                        carry += share[i] - reference[s][i];
                        distance += std::fabs(carry);
                    }
                    distance /= static_cast<double>(dom.size() - 1);
                }
                report.maxT = report.maxT ? std::max(*report.maxT, distance) : distance;
                if (distance > models_.tCloseness->t + 1e-9) {
                    return failedPrecondition(where + " has distance " + std::to_string(distance) + " on '" +
                                              sensitive_[s].name +
                                              "', more than t=" + std::to_string(models_.tCloseness->t));
                }
            }
        }
    }
    return report;
}

}  // namespace custodian::anon
