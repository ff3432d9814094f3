#pragma once
// The frequency table of quasi-identifier combinations: every distinct combination of leaf codes with
// its record count and, per declared sensitive attribute, the distribution of sensitive values among
// those records. The optimal search runs from this table alone, so a database can compute it with
// GROUP BY and the rows can be streamed afterwards. Memory is proportional to distinct combinations
// (and distinct (combination, sensitive value) pairs), never to rows.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "anonymizer/flat_hash.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

struct SensitiveCount {
    uint32_t value;  // sensitive value code
    uint64_t count;
};

// The leaf codes of one quasi-identifier, one per combination, each in the fewest bytes (1, 2 or 4)
// that hold every code below the column's cardinality: a near-unique table of ten million
// combinations keeps its sex, household size and birth date columns in 10, 10 and 20 MB, not 40 each.
class CodeColumn {
public:
    CodeColumn() = default;
    // Narrows `codes` (each below `cardinality`, which the caller has checked) and frees them.
    static CodeColumn pack(std::vector<uint32_t>&& codes, uint32_t cardinality);

    size_t size() const noexcept { return size_; }
    unsigned bytesPerCode() const noexcept { return width_; }
    uint32_t operator[](size_t i) const noexcept {
        if (width_ == 1) return narrow_[i];
        if (width_ == 2) return medium_[i];
        return wide_[i];
    }
    // Calls f(codes) with a pointer to the codes [first, first + n) in their stored type (uint8_t,
    // uint16_t or uint32_t), for loops that read a block at a time.
    template <typename F> void visit(size_t first, F&& f) const {
        if (width_ == 1) f(narrow_.data() + first);
        else if (width_ == 2) f(medium_.data() + first);
        else f(wide_.data() + first);
    }
    size_t memoryBytes() const noexcept {
        return narrow_.capacity() + medium_.capacity() * sizeof(uint16_t) + wide_.capacity() * sizeof(uint32_t);
    }

private:
    std::vector<uint8_t> narrow_;
    std::vector<uint16_t> medium_;
    std::vector<uint32_t> wide_;
    unsigned width_ = 4;
    size_t size_ = 0;
};

// Immutable once built; safe to share across threads.
class FrequencyTable {
public:
    size_t qiCount() const noexcept { return qiCardinalities_.size(); }
    size_t sensitiveCount() const noexcept { return sensitiveCardinalities_.size(); }
    // Number of distinct quasi-identifier combinations.
    size_t size() const noexcept { return counts_.size(); }
    uint64_t totalRecords() const noexcept { return total_; }
    // Leaf codes of quasi-identifier d, one per combination (the table is stored column by column:
    // the search reads one column at a time).
    const CodeColumn& column(size_t d) const noexcept { return columns_[d]; }
    uint32_t code(size_t combo, size_t d) const noexcept { return columns_[d][combo]; }
    uint64_t count(size_t combo) const noexcept { return counts_[combo]; }
    // Sensitive value distribution of attribute s among the records of one combination, by value code.
    std::span<const SensitiveCount> sensitive(size_t s, size_t combo) const noexcept {
        const auto& d = sensitive_[s];
        return {d.entries.data() + d.offsets[combo], d.entries.data() + d.offsets[combo + 1]};
    }
    // Code domain sizes (codes are < cardinality).
    const std::vector<uint32_t>& qiCardinalities() const noexcept { return qiCardinalities_; }
    const std::vector<uint32_t>& sensitiveCardinalities() const noexcept { return sensitiveCardinalities_; }
    size_t memoryBytes() const noexcept;

    // A table of combinations already known to be distinct (a GROUP BY's result, with codes given by
    // an injective mapping), taken over without hashing or copying: one code column per
    // quasi-identifier and one count per combination. Codes out of range, columns of unequal length
    // and counts of 0 are refused (InvalidArgument); distinctness is the caller's promise.
    static Result<FrequencyTable> fromDistinct(std::vector<uint32_t> qiCardinalities,
                                               std::vector<std::vector<uint32_t>> columns,
                                               std::vector<uint64_t> counts);

private:
    friend class FrequencyTableBuilder;
    struct Distribution {
        std::vector<uint64_t> offsets;        // size()+1
        std::vector<SensitiveCount> entries;  // sorted by value within a combination
    };
    std::vector<uint32_t> qiCardinalities_, sensitiveCardinalities_;
    std::vector<CodeColumn> columns_;  // qiCount() columns of size() codes
    std::vector<uint64_t> counts_;
    std::vector<Distribution> sensitive_;
    uint64_t total_ = 0;
};

// Accumulates encoded records (or pre-aggregated GROUP BY rows) into a FrequencyTable.
// Single-threaded; build one per input stream.
class FrequencyTableBuilder {
public:
    // Cardinalities are the code domain sizes (e.g. Hierarchy::leafCount()) of each quasi-identifier
    // and sensitive attribute. At least one quasi-identifier is required.
    static Result<FrequencyTableBuilder> create(std::vector<uint32_t> qiCardinalities,
                                                std::vector<uint32_t> sensitiveCardinalities = {});

    // Adds `count` records with these codes; rejects codes out of range and count 0 (InvalidArgument).
    Status add(std::span<const uint32_t> qiCodes, std::span<const uint32_t> sensitiveCodes = {}, uint64_t count = 1);
    // Hot path without validation. Preconditions: as add() checks.
    void addUnchecked(const uint32_t* qiCodes, const uint32_t* sensitiveCodes, uint64_t count = 1);

    uint64_t totalRecords() const noexcept { return total_; }
    size_t distinctCombinations() const noexcept { return counts_.size(); }
    FrequencyTable finish() &&;

private:
    FrequencyTableBuilder() = default;
    uint32_t comboIndex(const uint32_t* codes);
    bool sameCodes(size_t combo, const uint32_t* codes) const noexcept;
    void grow();

    std::vector<uint32_t> qiCardinalities_, sensitiveCardinalities_;
    size_t q_ = 0;
    std::vector<std::vector<uint32_t>> columns_;  // column-major, as the table keeps them
    std::vector<uint64_t> counts_;
    std::vector<uint64_t> hashes_;
    std::vector<uint32_t> slots_;  // combo index + 1, 0 = empty
    size_t mask_ = 0;
    // One (combination << 32 | value) -> count accumulator per sensitive attribute.
    std::vector<detail::DenseIndexer<uint64_t>> pairIndex_;
    std::vector<std::vector<uint64_t>> pairKeys_, pairCounts_;
    uint64_t total_ = 0;
};

// Codes for the values of a sensitive attribute. With `ordered`, codes follow the value order (numeric
// when every value parses as a number, else byte-wise), as ordered-distance t-closeness requires.
struct SensitiveDictionary {
    std::vector<std::string> values;  // code -> value
    std::unordered_map<std::string, uint32_t> index;
    // Duplicates in distinctValues are merged.
    static SensitiveDictionary build(std::vector<std::string> distinctValues, bool ordered);
    // Code of value, or UINT32_MAX when absent.
    uint32_t codeOf(const std::string& value) const;
};

}  // namespace custodian::anon
