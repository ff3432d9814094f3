#include "policies/policy.hpp"

#include <cctype>

#include "anonymizer/hierarchy_io.hpp"
#include "policies/hierarchy_specs.hpp"
#include "policies/json_text.hpp"
#include "policies/policy_internal.hpp"

namespace custodian::policies {

void PolicyBuilder::setContent(std::string canonical) {
    policy_.contentHash_ = sha256Hex(canonical);
    policy_.canonicalJson_ = std::move(canonical);
}

std::shared_ptr<const anon::Hierarchy> Policy::hierarchy(std::string_view column) const {
    auto it = hierarchies_.find(column);
    return it == hierarchies_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<const anon::Hierarchy>> Policy::buildHierarchy(std::string_view column,
                                                                      const std::vector<std::string>& values) const {
    const ColumnPolicy* c = model_.column(column);
    if (!c || !c->hierarchy)
        return notFound("the policy declares no hierarchy for the column '" + std::string(column) + "'");
    if (auto loaded = hierarchy(column)) {
        if (auto s = anon::checkCoverage(*loaded, values, column); !s) return s;
        return loaded;
    }
    return buildHierarchyFromValues(c->name, c->type, *c->hierarchy, values);
}

Result<std::optional<SqlFragment>> Policy::rowFilterSql(size_t firstParameter) const {
    if (!model_.rowFilter) return std::optional<SqlFragment>();
    auto sql = compileRowFilter(*model_.rowFilter, firstParameter);
    if (!sql) return sql.status();
    return std::optional<SqlFragment>(std::move(sql).value());
}

std::string Policy::legacyContentHash() const {
    std::string legacy = canonicalJson_;
    for (size_t i = 0; i + 1 < legacy.size(); ++i) {
        if (legacy[i] != '\\') continue;
        if (legacy[i + 1] == 'u') {
            for (size_t k = i + 2; k < i + 6 && k < legacy.size(); ++k)
                legacy[k] = static_cast<char>(std::toupper(static_cast<unsigned char>(legacy[k])));
            i += 5;
        } else {
            ++i;  // an escaped character: `\\` must not start another escape
        }
    }
    return legacy == canonicalJson_ ? contentHash_ : sha256Hex(legacy);
}

}  // namespace custodian::policies
