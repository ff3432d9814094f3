#include "anonymizer/frequency_table.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include "anonymizer/heap_bytes.hpp"

namespace custodian::anon {

namespace {

uint64_t hashCodes(const uint32_t* codes, size_t q) noexcept {
    uint64_t h = 0x243f6a8885a308d3ULL;
    for (size_t i = 0; i < q; ++i)
        h = detail::mixHash(static_cast<uint64_t>(h ^ (codes[i] + uint64_t{0x9e3779b97f4a7c15ULL} * (i + 1))));
    return h;
}

std::optional<double> asNumber(const std::string& s) {
    double v = 0;
    const char* b = s.data();
    const char* e = s.data() + s.size();
    while (b < e && *b == ' ') ++b;
    while (e > b && e[-1] == ' ') --e;
    if (b < e && *b == '+') ++b;
    if (b == e) return std::nullopt;
    auto [ptr, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || ptr != e || !std::isfinite(v)) return std::nullopt;
    return v;
}

}  // namespace

CodeColumn CodeColumn::pack(std::vector<uint32_t>&& codes, uint32_t cardinality) {
    CodeColumn c;
    c.size_ = codes.size();
    if (cardinality <= 0x100U) {
        c.width_ = 1;
        c.narrow_.assign(codes.begin(), codes.end());
        heap::release(codes);
    } else if (cardinality <= 0x10000U) {
        c.width_ = 2;
        c.medium_.assign(codes.begin(), codes.end());
        heap::release(codes);
    } else {
        c.wide_ = std::move(codes);
        c.wide_.shrink_to_fit();
    }
    return c;
}

size_t FrequencyTable::memoryBytes() const noexcept {
    size_t bytes = counts_.capacity() * sizeof(uint64_t);
    for (const auto& c : columns_) bytes += c.memoryBytes();
    for (const auto& d : sensitive_) {
        bytes += d.offsets.capacity() * sizeof(uint64_t) + d.entries.capacity() * sizeof(SensitiveCount);
    }
    return bytes;
}

Result<FrequencyTableBuilder> FrequencyTableBuilder::create(std::vector<uint32_t> qiCardinalities,
                                                            std::vector<uint32_t> sensitiveCardinalities) {
    if (qiCardinalities.empty()) return invalidArgument("frequency table: no quasi-identifier");
    for (size_t i = 0; i < qiCardinalities.size(); ++i) {
        if (qiCardinalities[i] == 0) {
            return invalidArgument("frequency table: quasi-identifier " + std::to_string(i) + " has no values");
        }
    }
    for (size_t i = 0; i < sensitiveCardinalities.size(); ++i) {
        if (sensitiveCardinalities[i] == 0) {
            return invalidArgument("frequency table: sensitive attribute " + std::to_string(i) + " has no values");
        }
    }
    FrequencyTableBuilder b;
    b.q_ = qiCardinalities.size();
    b.qiCardinalities_ = std::move(qiCardinalities);
    b.sensitiveCardinalities_ = std::move(sensitiveCardinalities);
    b.columns_.resize(b.q_);
    b.pairIndex_.resize(b.sensitiveCardinalities_.size());
    b.pairKeys_.resize(b.sensitiveCardinalities_.size());
    b.pairCounts_.resize(b.sensitiveCardinalities_.size());
    b.slots_.assign(1024, 0);
    b.mask_ = b.slots_.size() - 1;
    return b;
}

Status FrequencyTableBuilder::add(std::span<const uint32_t> qiCodes, std::span<const uint32_t> sensitiveCodes,
                                  uint64_t count) {
    if (qiCodes.size() != q_) {
        return invalidArgument("frequency table: expected " + std::to_string(q_) + " quasi-identifier codes, got " +
                               std::to_string(qiCodes.size()));
    }
    if (sensitiveCodes.size() != sensitiveCardinalities_.size()) {
        return invalidArgument("frequency table: expected " + std::to_string(sensitiveCardinalities_.size()) +
                               " sensitive codes, got " + std::to_string(sensitiveCodes.size()));
    }
    if (count == 0) return invalidArgument("frequency table: record count 0");
    for (size_t i = 0; i < q_; ++i) {
        if (qiCodes[i] >= qiCardinalities_[i]) {
            return invalidArgument("frequency table: quasi-identifier " + std::to_string(i) + " code " +
                                   std::to_string(qiCodes[i]) + " out of range (" +
                                   std::to_string(qiCardinalities_[i]) + " values)");
        }
    }
    for (size_t i = 0; i < sensitiveCodes.size(); ++i) {
        if (sensitiveCodes[i] >= sensitiveCardinalities_[i]) {
            return invalidArgument("frequency table: sensitive attribute " + std::to_string(i) + " code " +
                                   std::to_string(sensitiveCodes[i]) + " out of range");
        }
    }
    if (counts_.size() >= UINT32_MAX - 1)
        return Status(StatusCode::ResourceExhausted, "frequency table: too many combinations");
    addUnchecked(qiCodes.data(), sensitiveCodes.data(), count);
    return Status::ok();
}

void FrequencyTableBuilder::grow() {
    slots_.assign(slots_.size() * 2, 0);
    mask_ = slots_.size() - 1;
    for (size_t c = 0; c < counts_.size(); ++c) {
        size_t i = hashes_[c] & mask_;
        while (slots_[i] != 0) i = (i + 1) & mask_;
        slots_[i] = static_cast<uint32_t>(c + 1);
    }
}

bool FrequencyTableBuilder::sameCodes(size_t combo, const uint32_t* codes) const noexcept {
    for (size_t d = 0; d < q_; ++d)
        if (columns_[d][combo] != codes[d]) return false;
    return true;
}

uint32_t FrequencyTableBuilder::comboIndex(const uint32_t* codes) {
    const uint64_t h = hashCodes(codes, q_);
    size_t i = h & mask_;
    for (;;) {
        const uint32_t s = slots_[i];
        if (s == 0) break;
        const size_t c = s - 1;
        if (hashes_[c] == h && sameCodes(c, codes)) return static_cast<uint32_t>(c);
        i = (i + 1) & mask_;
    }
    const auto c = static_cast<uint32_t>(counts_.size());
    for (size_t d = 0; d < q_; ++d) columns_[d].push_back(codes[d]);
    counts_.push_back(0);
    hashes_.push_back(h);
    slots_[i] = c + 1;
    if (counts_.size() * 2 > slots_.size()) grow();
    return c;
}

void FrequencyTableBuilder::addUnchecked(const uint32_t* qiCodes, const uint32_t* sensitiveCodes, uint64_t count) {
    const uint32_t c = comboIndex(qiCodes);
    counts_[c] += count;
    total_ += count;
    for (size_t s = 0; s < pairIndex_.size(); ++s) {
        const uint64_t key = (static_cast<uint64_t>(c) << 32) | sensitiveCodes[s];
        const uint32_t p = pairIndex_[s].indexOf(key);
        if (p == pairKeys_[s].size()) {
            pairKeys_[s].push_back(key);
            pairCounts_[s].push_back(0);
        }
        pairCounts_[s][p] += count;
    }
}

FrequencyTable FrequencyTableBuilder::finish() && {
    FrequencyTable t;
    t.qiCardinalities_ = std::move(qiCardinalities_);
    t.sensitiveCardinalities_ = std::move(sensitiveCardinalities_);
    for (size_t d = 0; d < q_; ++d)
        t.columns_.push_back(CodeColumn::pack(std::move(columns_[d]), t.qiCardinalities_[d]));
    heap::release(columns_);
    t.counts_ = std::move(counts_);
    t.total_ = total_;
    heap::release(hashes_);
    heap::release(slots_);
    const size_t combos = t.counts_.size();
    t.sensitive_.resize(pairKeys_.size());
    for (size_t s = 0; s < pairKeys_.size(); ++s) {
        pairIndex_[s] = {};
        auto& d = t.sensitive_[s];
        const auto& keys = pairKeys_[s];
        const auto& counts = pairCounts_[s];
        d.offsets.assign(combos + 1, 0);
        for (uint64_t k : keys) ++d.offsets[(k >> 32) + 1];
        for (size_t c = 0; c < combos; ++c) d.offsets[c + 1] += d.offsets[c];
        d.entries.resize(keys.size());
        std::vector<uint64_t> fill(d.offsets.begin(), d.offsets.end() - 1);
        for (size_t p = 0; p < keys.size(); ++p) {
            d.entries[fill[keys[p] >> 32]++] = {static_cast<uint32_t>(keys[p] & 0xffffffffU), counts[p]};
        }
        for (size_t c = 0; c < combos; ++c) {
            std::sort(d.entries.begin() + static_cast<std::ptrdiff_t>(d.offsets[c]),
                      d.entries.begin() + static_cast<std::ptrdiff_t>(d.offsets[c + 1]),
                      [](const SensitiveCount& a, const SensitiveCount& b) { return a.value < b.value; });
        }
        heap::release(pairKeys_[s]);
        heap::release(pairCounts_[s]);
    }
    return t;
}

Result<FrequencyTable> FrequencyTable::fromDistinct(std::vector<uint32_t> qiCardinalities,
                                                    std::vector<std::vector<uint32_t>> columns,
                                                    std::vector<uint64_t> counts) {
    if (qiCardinalities.empty()) return invalidArgument("frequency table: no quasi-identifier");
    if (columns.size() != qiCardinalities.size())
        return invalidArgument("frequency table: " + std::to_string(columns.size()) + " code columns for " +
                               std::to_string(qiCardinalities.size()) + " quasi-identifiers");
    if (counts.size() >= UINT32_MAX - 1)
        return Status(StatusCode::ResourceExhausted, "frequency table: too many combinations");
    FrequencyTable t;
    for (size_t d = 0; d < columns.size(); ++d) {
        if (columns[d].size() != counts.size())
            return invalidArgument("frequency table: quasi-identifier " + std::to_string(d) + " has " +
                                   std::to_string(columns[d].size()) + " codes for " + std::to_string(counts.size()) +
                                   " combinations");
        const uint32_t cardinality = qiCardinalities[d];
        for (uint32_t code : columns[d]) {
            if (code >= cardinality)
                return invalidArgument("frequency table: quasi-identifier " + std::to_string(d) + " code " +
                                       std::to_string(code) + " out of range (" + std::to_string(cardinality) +
                                       " values)");
        }
    }
    for (uint64_t count : counts) {
        if (count == 0) return invalidArgument("frequency table: record count 0");
        t.total_ += count;
    }
    for (size_t d = 0; d < columns.size(); ++d)
        t.columns_.push_back(CodeColumn::pack(std::move(columns[d]), qiCardinalities[d]));
    t.qiCardinalities_ = std::move(qiCardinalities);
    t.counts_ = std::move(counts);
    return t;
}

SensitiveDictionary SensitiveDictionary::build(std::vector<std::string> distinctValues, bool ordered) {
    std::sort(distinctValues.begin(), distinctValues.end());
    distinctValues.erase(std::unique(distinctValues.begin(), distinctValues.end()), distinctValues.end());
    if (ordered) {
        std::vector<double> numbers;
        numbers.reserve(distinctValues.size());
        bool numeric = true;
        for (const auto& v : distinctValues) {
            auto n = asNumber(v);
            if (!n) {
                numeric = false;
                break;
            }
            numbers.push_back(*n);
        }
        if (numeric) {
            std::vector<size_t> order(distinctValues.size());
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return numbers[a] < numbers[b]; });
            std::vector<std::string> sorted;
            sorted.reserve(order.size());
            for (size_t i : order) sorted.push_back(std::move(distinctValues[i]));
            distinctValues = std::move(sorted);
        }
    }
    SensitiveDictionary d;
    d.values = std::move(distinctValues);
    for (size_t i = 0; i < d.values.size(); ++i) d.index.emplace(d.values[i], static_cast<uint32_t>(i));
    return d;
}

uint32_t SensitiveDictionary::codeOf(const std::string& value) const {
    auto it = index.find(value);
    return it == index.end() ? UINT32_MAX : it->second;
}

}  // namespace custodian::anon
