#include "anonymizer/csv_group_by.hpp"

#include <algorithm>
#include <utility>

namespace custodian::anon {

CsvGroupCounter::CsvGroupCounter(SchemaPtr schema, std::vector<size_t> sourceColumn, std::vector<size_t> groupColumns,
                                 std::vector<size_t> domainColumns)
    : schema_(std::move(schema)), groups_(groupColumns.size()), tuple_(groupColumns.size()) {
    auto dictionaryFor = [&](size_t column) {
        for (size_t d = 0; d < dictionaries_.size(); ++d)
            if (dictionaries_[d].schemaColumn == column) return d;
        ColumnDictionary& d = dictionaries_.emplace_back();
        d.schemaColumn = column;
        d.field = sourceColumn[column];
        return dictionaries_.size() - 1;
    };
    for (size_t c : groupColumns) groupDictionary_.push_back(dictionaryFor(c));
    const size_t grouped = dictionaries_.size();
    for (size_t c : domainColumns) domainDictionary_.push_back(dictionaryFor(c));
    for (size_t d = grouped; d < dictionaries_.size(); ++d) domainOnly_.push_back(d);
}

Result<uint32_t> CsvGroupCounter::codeOf(ColumnDictionary& d, const CsvRecords& records, size_t row) {
    const ColumnSpec& spec = (*schema_)[d.schemaColumn];
    const std::string_view value = records.field(row, d.field);
    if (isCsvNull(value, records.quoted(row, d.field), spec.type)) return kNull;
    const auto [raw, isNew] = d.raw.intern(value);
    if (isNew) {
        d.scratch.clear();
        if (!appendCanonicalText(d.scratch, spec.type, value)) return csvValueError(records.line(row), d.field, spec, value);
        d.canonicalOfRaw.push_back(d.canonical.intern(d.scratch).first);
    }
    return d.canonicalOfRaw[raw];
}

Status CsvGroupCounter::add(const CsvRecords& records) {
    const size_t width = groupDictionary_.size();
    for (size_t row = 0; row < records.rows(); ++row) {
        for (size_t i = 0; i < width; ++i) {
            auto code = codeOf(dictionaries_[groupDictionary_[i]], records, row);
            if (!code) return code.status();
            tuple_[i] = *code;
        }
        for (size_t d : domainOnly_) {
            if (auto code = codeOf(dictionaries_[d], records, row); !code) return code.status();
        }
        const uint32_t group = groups_.indexOf(tuple_.data());
        if (group == counts_.size()) counts_.push_back(0);
        ++counts_[group];
    }
    records_ += records.rows();
    return Status::ok();
}

Status CsvGroupCounter::forEachGroup(const GroupVisitor& visit) const {
    std::vector<std::optional<std::string_view>> values(groupDictionary_.size());
    for (size_t g = 0; g < counts_.size(); ++g) {
        const uint32_t* codes = groups_.tuple(static_cast<uint32_t>(g));
        for (size_t i = 0; i < values.size(); ++i) {
            if (codes[i] == kNull) values[i] = std::nullopt;
            else values[i] = dictionaries_[groupDictionary_[i]].canonical.value(codes[i]);
        }
        if (Status s = visit(values, counts_[g]); !s) return s;
    }
    return Status::ok();
}

std::vector<std::string_view> CsvGroupCounter::domain(size_t i) const {
    const ColumnDictionary& d = dictionaries_[domainDictionary_[i]];
    std::vector<std::string_view> values;
    values.reserve(d.canonical.size());
    for (uint32_t id = 0; id < d.canonical.size(); ++id) values.push_back(d.canonical.value(id));
    return values;
}

} // namespace custodian::anon
