#pragma once
// Row filters: a structured expression over columns ({"column","op","value"}, {"and": [...]},
// {"or": [...]}, {"not": {...}}) compiled to a PARAMETERIZED SQL WHERE fragment. Column names are
// validated and quoted with quoteSqlIdentifier; every value becomes a $n parameter and never SQL
// text, so neither a column name nor a value can inject SQL.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::policies {

enum class FilterOp { Equal, NotEqual, Less, LessOrEqual, Greater, GreaterOrEqual, In, NotIn, IsNull, IsNotNull };

// "=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null".
const char* filterOpName(FilterOp op) noexcept;
bool parseFilterOp(std::string_view name, FilterOp& op) noexcept;

// One node of the expression tree. Comparison values are kept as their canonical text (what is
// passed to PostgreSQL as a text parameter): strings as written, integers in decimal, decimals in
// shortest round-trip form.
struct RowFilter {
    enum class Kind { Comparison, And, Or, Not };
    Kind kind = Kind::Comparison;
    // Comparison only.
    std::string column;
    FilterOp op = FilterOp::Equal;
    std::vector<std::string> values;  // one for =,!=,<,..; one or more for in/not_in; none for is_null
    // And / Or: one or more children; Not: exactly one.
    std::vector<RowFilter> children;

    bool operator==(const RowFilter&) const = default;
};

struct SqlFragment {
    std::string sql;                      // e.g. ("age" >= $1 AND "region" IN ($2, $3))
    std::vector<std::string> parameters;  // parameters[i] is $(firstParameter + i)
};

// Compiles the filter. Parameters are numbered from `firstParameter` (>= 1) so the fragment can be
// combined with other parameterized SQL. InvalidArgument for an invalid column name, a malformed
// tree (wrong number of values or children) or a tree deeper than 64 levels.
Result<SqlFragment> compileRowFilter(const RowFilter& filter, size_t firstParameter = 1);

}  // namespace custodian::policies
