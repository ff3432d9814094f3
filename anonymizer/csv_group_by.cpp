#include "anonymizer/csv_group_by.hpp"

#include <algorithm>
#include <utility>

namespace custodian::anon {

Result<uint32_t> CsvColumnDictionary::code(const CsvRecords& records, size_t row) {
    const std::string_view value = records.field(row, field_);
    if (isCsvNull(value, records.quoted(row, field_), spec_.type)) return kNull;
    const auto [raw, isNew] = raw_.intern(value);
    if (isNew) {
        scratch_.clear();
        if (!appendCanonicalText(scratch_, spec_.type, value))
            return csvValueError(records.line(row), field_, spec_, value);
        canonicalOfRaw_.push_back(canonical_.intern(scratch_).first);
    }
    return canonicalOfRaw_[raw];
}

CsvGroupCounter::CsvGroupCounter(const SchemaPtr& schema, const std::vector<size_t>& sourceColumn,
                                 const std::vector<size_t>& groupColumns, const std::vector<size_t>& domainColumns)
    : groups_(groupColumns.size()) {
    auto dictionaryFor = [&](size_t column) {
        for (size_t d = 0; d < dictionaries_.size(); ++d)
            if (schemaColumn_[d] == column) return d;
        dictionaries_.emplace_back((*schema)[column], sourceColumn[column]);
        schemaColumn_.push_back(column);
        return dictionaries_.size() - 1;
    };
    for (size_t c : groupColumns) groupDictionary_.push_back(dictionaryFor(c));
    const size_t grouped = dictionaries_.size();
    for (size_t c : domainColumns) domainDictionary_.push_back(dictionaryFor(c));
    for (size_t d = grouped; d < dictionaries_.size(); ++d) domainOnly_.push_back(d);
}

Status CsvGroupCounter::add(const CsvRecords& records) {
    const size_t width = groupDictionary_.size();
    const size_t rows = records.rows();
    // Column by column (one dictionary stays in cache), then the rows' tuples with the group table's
    // slots prefetched a few rows ahead: most of the time goes to cache misses in a large table.
    codes_.resize(rows * width);
    for (size_t i = 0; i < width; ++i) {
        CsvColumnDictionary& d = dictionaries_[groupDictionary_[i]];
        for (size_t row = 0; row < rows; ++row) {
            auto code = d.code(records, row);
            if (!code) return code.status();
            codes_[row * width + i] = *code;
        }
    }
    for (size_t d : domainOnly_) {
        for (size_t row = 0; row < rows; ++row)
            if (auto code = dictionaries_[d].code(records, row); !code) return code.status();
    }
    hashes_.resize(rows);
    for (size_t row = 0; row < rows; ++row) hashes_[row] = groups_.hashOf(codes_.data() + row * width);
    constexpr size_t kPrefetchDistance = 8;
    for (size_t row = 0; row < rows; ++row) {
        if (row + kPrefetchDistance < rows) groups_.prefetch(hashes_[row + kPrefetchDistance]);
        const uint32_t group = groups_.indexOf(codes_.data() + row * width, hashes_[row]);
        counts_.add(group);
    }
    records_ += rows;
    return Status::ok();
}

Status CsvGroupCounter::forEachGroup(const GroupVisitor& visit) const {
    std::vector<std::optional<std::string_view>> values(groupDictionary_.size());
    for (size_t g = 0; g < counts_.size(); ++g) {
        for (size_t i = 0; i < values.size(); ++i) {
            const uint32_t code = groups_.code(static_cast<uint32_t>(g), i);
            if (code == CsvColumnDictionary::kNull) values[i] = std::nullopt;
            else values[i] = dictionaries_[groupDictionary_[i]].value(code);
        }
        if (Status s = visit(values, counts_.count(static_cast<uint32_t>(g))); !s) return s;
    }
    return Status::ok();
}

std::vector<std::string_view> CsvGroupCounter::domain(size_t i) const {
    const CsvColumnDictionary& d = dictionaries_[domainDictionary_[i]];
    std::vector<std::string_view> values;
    values.reserve(d.size());
    for (uint32_t code = 0; code < d.size(); ++code) values.push_back(d.value(code));
    return values;
}

}  // namespace custodian::anon
