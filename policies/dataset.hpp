#pragma once
// What a policy is checked against: the dataset as registered by its publisher (name, columns with
// type and, where classified, role). The gateway builds it from its catalog; `custodian policy
// validate --dataset FILE` reads it from JSON:
//   {"name": "hospital_visits", "columns": [{"name": "age", "type": "integer", "role": "quasi_identifier"}, ...]}
// Other fields (source, table, hierarchies, ...) are ignored here.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "anonymizer/value.hpp"
#include "policies/policy_model.hpp"

namespace custodian::policies {

struct DatasetColumn {
    std::string name;
    anon::ColumnType type = anon::ColumnType::Text;
    std::optional<ColumnRole> role;
};

struct DatasetDescription {
    std::string name;
    std::vector<DatasetColumn> columns;

    const DatasetColumn* column(std::string_view columnName) const;
};

// Parses the JSON form above. InvalidArgument naming the JSON pointer of the first problem.
Result<DatasetDescription> parseDatasetDescription(std::string_view json);

}  // namespace custodian::policies
