#include "policies/row_filter.hpp"

#include "policies/sql_identifier.hpp"

namespace custodian::policies {

namespace {

constexpr int kMaxDepth = 64;

struct Compiler {
    size_t nextParameter;
    SqlFragment out;

    std::string bindParameter(const std::string& value) {
        out.parameters.push_back(value);
        return "$" + std::to_string(nextParameter++);
    }

    Status compile(const RowFilter& f, int depth, std::string& sql) {
        if (depth > kMaxDepth) return invalidArgument("the row filter is nested deeper than 64 levels");
        switch (f.kind) {
        case RowFilter::Kind::And:
        case RowFilter::Kind::Or: {
            if (f.children.empty())
                return invalidArgument("an \"and\"/\"or\" row filter needs at least one expression");
            sql += "(";
            for (size_t i = 0; i < f.children.size(); ++i) {
                if (i > 0) sql += f.kind == RowFilter::Kind::And ? " AND " : " OR ";
                if (auto s = compile(f.children[i], depth + 1, sql); !s) return s;
            }
            sql += ")";
            return Status::ok();
        }
        case RowFilter::Kind::Not: {
            if (f.children.size() != 1) return invalidArgument("a \"not\" row filter needs exactly one expression");
            sql += "(NOT ";
            if (auto s = compile(f.children[0], depth + 1, sql); !s) return s;
            sql += ")";
            return Status::ok();
        }
        case RowFilter::Kind::Comparison: return comparison(f, sql);
        }
        return internalError("unknown row filter node");
    }

    Status comparison(const RowFilter& f, std::string& sql) {
        if (auto s = validateSqlIdentifier(f.column); !s) return s.withContext("row filter column");
        const std::string column = quoteSqlIdentifier(f.column);
        auto needValues = [&](size_t min, size_t max) -> Status {
            if (f.values.size() < min || f.values.size() > max)
                return invalidArgument(std::string("row filter operator '") + filterOpName(f.op) + "' on column " +
                                       column + " has " + std::to_string(f.values.size()) + " values");
            return Status::ok();
        };
        const char* binary = nullptr;
        switch (f.op) {
        case FilterOp::Equal: binary = " = "; break;
        case FilterOp::NotEqual: binary = " <> "; break;
        case FilterOp::Less: binary = " < "; break;
        case FilterOp::LessOrEqual: binary = " <= "; break;
        case FilterOp::Greater: binary = " > "; break;
        case FilterOp::GreaterOrEqual: binary = " >= "; break;
        case FilterOp::In:
        case FilterOp::NotIn: {
            if (auto s = needValues(1, SIZE_MAX); !s) return s;
            sql += "(" + column + (f.op == FilterOp::In ? " IN (" : " NOT IN (");
            for (size_t i = 0; i < f.values.size(); ++i) {
                if (i > 0) sql += ", ";
                sql += bindParameter(f.values[i]);
            }
            sql += "))";
            return Status::ok();
        }
        case FilterOp::IsNull:
        case FilterOp::IsNotNull:
            if (auto s = needValues(0, 0); !s) return s;
            sql += "(" + column + (f.op == FilterOp::IsNull ? " IS NULL)" : " IS NOT NULL)");
            return Status::ok();
        }
        if (!binary) return internalError("unknown row filter operator");
        if (auto s = needValues(1, 1); !s) return s;
        sql += "(" + column + binary + bindParameter(f.values[0]) + ")";
        return Status::ok();
    }
};

}  // namespace

const char* filterOpName(FilterOp op) noexcept {
    switch (op) {
    case FilterOp::Equal: return "=";
    case FilterOp::NotEqual: return "!=";
    case FilterOp::Less: return "<";
    case FilterOp::LessOrEqual: return "<=";
    case FilterOp::Greater: return ">";
    case FilterOp::GreaterOrEqual: return ">=";
    case FilterOp::In: return "in";
    case FilterOp::NotIn: return "not_in";
    case FilterOp::IsNull: return "is_null";
    case FilterOp::IsNotNull: return "is_not_null";
    }
    return "?";
}

bool parseFilterOp(std::string_view name, FilterOp& op) noexcept {
    static constexpr FilterOp all[] = {
        FilterOp::Equal,          FilterOp::NotEqual, FilterOp::Less,  FilterOp::LessOrEqual, FilterOp::Greater,
        FilterOp::GreaterOrEqual, FilterOp::In,       FilterOp::NotIn, FilterOp::IsNull,      FilterOp::IsNotNull};
    for (FilterOp candidate : all) {
        if (name == filterOpName(candidate)) {
            op = candidate;
            return true;
        }
    }
    return false;
}

Result<SqlFragment> compileRowFilter(const RowFilter& filter, size_t firstParameter) {
    if (firstParameter == 0) return invalidArgument("SQL parameters are numbered from 1");
    Compiler compiler{firstParameter, {}};
    std::string sql;
    if (auto s = compiler.compile(filter, 0, sql); !s) return s;
    compiler.out.sql = std::move(sql);
    return std::move(compiler.out);
}

}  // namespace custodian::policies
