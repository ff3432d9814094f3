#include "gateway/release/final_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "anonymizer/value.hpp"

namespace custodian::release {

namespace {

void appendKeyPart(std::string& key, const anon::Column& column, size_t row, std::string& scratch) {
    uint32_t length = 0xFFFFFFFFu;  // NULL
    if (!column.isNull(row)) {
        scratch.clear();
        column.appendCanonical(scratch, row);
        length = static_cast<uint32_t>(scratch.size());
    }
    char prefix[4];
    std::memcpy(prefix, &length, 4);
    key.append(prefix, 4);
    if (length != 0xFFFFFFFFu) key += scratch;
}

std::string decimal(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// The global value order for ordered distances: numeric when every value is a number, else bytes.
std::vector<std::string> orderedDomain(const std::unordered_map<std::string, uint64_t>& counts, bool ordered) {
    std::vector<std::string> values;
    values.reserve(counts.size());
    for (const auto& [v, n] : counts) values.push_back(v);
    std::sort(values.begin(), values.end());
    if (!ordered) return values;
    std::vector<std::pair<double, std::string>> numbers;
    for (const auto& v : values) {
        auto n = anon::parseDecimal(v);
        if (!n) return values;
        numbers.emplace_back(*n, v);
    }
    std::stable_sort(numbers.begin(), numbers.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < numbers.size(); ++i) values[i] = numbers[i].second;
    return values;
}

}  // namespace

FinalCheck::FinalCheck(anon::PrivacyModels models, std::vector<SensitiveCheckInput> sensitive)
    : models_(models), sensitive_(std::move(sensitive)) {}

void FinalCheck::add(const anon::Batch& released, const std::vector<size_t>& qiOutputs, const anon::Batch& input,
                     const std::vector<size_t>& sensitiveInputs) {
    for (size_t r = 0; r < released.rows(); ++r) {
        if (released.isSuppressed(r)) continue;
        key_.clear();
        for (size_t c : qiOutputs) appendKeyPart(key_, released.column(c), r, value_);
        auto it = classes_.find(key_);
        if (it == classes_.end()) {
            it = classes_.emplace(key_, ClassCounts{}).first;
            it->second.sensitive.resize(sensitiveInputs.size());
        }
        ++it->second.rows;
        ++rows_;
        for (size_t s = 0; s < sensitiveInputs.size(); ++s) {
            const anon::Column& column = input.column(sensitiveInputs[s]);
            value_.clear();
            if (!column.isNull(r)) column.appendCanonical(value_, r);  // NULL counts as ""
            ++it->second.sensitive[s][value_];
        }
    }
}

FinalCheckResult FinalCheck::finish() const {
    FinalCheckResult result;
    result.rows = rows_;
    result.classes = classes_.size();
    auto fail = [&](std::string why) {
        if (result.satisfied) result.failure = std::move(why);
        result.satisfied = false;
    };
    uint64_t smallest = 0;
    for (const auto& [key, c] : classes_) smallest = smallest == 0 ? c.rows : std::min(smallest, c.rows);
    result.k = smallest;
    if (!classes_.empty() && smallest < models_.k)
        fail("k-anonymity with k = " + std::to_string(models_.k) + " does not hold on the released rows: a group has " +
             std::to_string(smallest) + " rows");

    std::vector<uint64_t> counts;
    for (size_t s = 0; s < sensitive_.size(); ++s) {
        const auto& attribute = sensitive_[s];
        uint64_t globalTotal = 0;
        for (const auto& [v, n] : attribute.globalCounts) globalTotal += n;
        const std::vector<std::string> domain = orderedDomain(attribute.globalCounts, attribute.ordered);
        for (const auto& [key, c] : classes_) {
            const auto& hist = c.sensitive[s];
            // l-diversity
            counts.clear();
            for (const auto& [v, n] : hist) counts.push_back(n);
            std::sort(counts.rbegin(), counts.rend());
            const uint64_t distinct = counts.size();
            double entropy = 0;
            for (uint64_t n : counts) {
                const double p = static_cast<double>(n) / static_cast<double>(c.rows);
                entropy -= p * std::log(p);
            }
            result.distinctL = result.distinctL ? std::min(*result.distinctL, distinct) : distinct;
            result.entropyL = result.entropyL ? std::min(*result.entropyL, std::exp(entropy)) : std::exp(entropy);
            if (models_.lDiversity) {
                const auto& l = *models_.lDiversity;
                const auto whole = static_cast<uint64_t>(std::floor(l.l + 1e-9));
                switch (l.variant) {
                case anon::LDiversityVariant::Distinct:
                    if (distinct < whole)
                        fail("distinct l-diversity with l = " + std::to_string(whole) + " does not hold on the released "
                             "rows of '" + attribute.name + "': a group has " + std::to_string(distinct) + " values");
                    break;
                case anon::LDiversityVariant::Entropy:
                    if (entropy < std::log(l.l) - 1e-9)
                        fail("entropy l-diversity with l = " + decimal(l.l, 2) + " does not hold on the released rows of '" +
                             attribute.name + "': a group reaches " + decimal(std::exp(entropy), 2));
                    break;
                case anon::LDiversityVariant::Recursive: {
                    bool holds = distinct >= whole && whole >= 1;
                    if (holds) {
                        uint64_t tail = 0;
                        for (size_t i = whole - 1; i < counts.size(); ++i) tail += counts[i];
                        holds = static_cast<double>(counts[0]) < l.c * static_cast<double>(tail);
                    }
                    if (!holds)
                        fail("recursive (c,l)-diversity with l = " + std::to_string(whole) + " and c = " + decimal(l.c, 2) +
                             " does not hold on the released rows of '" + attribute.name + "'");
                    break;
                }
                }
            }
            // t-closeness: Earth Mover's Distance to the global distribution.
            double emd = 0;
            if (attribute.ordered && domain.size() > 1) {
                double running = 0;
                for (const auto& v : domain) {
                    auto h = hist.find(v);
                    const double p = h == hist.end() ? 0 : static_cast<double>(h->second) / static_cast<double>(c.rows);
                    const double q = static_cast<double>(attribute.globalCounts.at(v)) / static_cast<double>(globalTotal);
                    running += p - q;
                    emd += std::fabs(running);
                }
                emd /= static_cast<double>(domain.size() - 1);
            } else if (!attribute.ordered) {
                for (const auto& v : domain) {
                    auto h = hist.find(v);
                    const double p = h == hist.end() ? 0 : static_cast<double>(h->second) / static_cast<double>(c.rows);
                    const double q = static_cast<double>(attribute.globalCounts.at(v)) / static_cast<double>(globalTotal);
                    emd += std::fabs(p - q);
                }
                // A released value outside the global domain cannot happen for true values.
                emd /= 2;
            }
            result.t = result.t ? std::max(*result.t, emd) : emd;
            if (models_.tCloseness && emd > models_.tCloseness->t + 1e-9)
                fail("t-closeness with t = " + decimal(models_.tCloseness->t, 3) + " does not hold on the released rows of '" +
                     attribute.name + "': a group is at distance " + decimal(emd, 3));
        }
    }
    return result;
}

}  // namespace custodian::release
