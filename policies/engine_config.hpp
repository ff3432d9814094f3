#pragma once
// From a validated Policy to the anonymizer engine's configuration (anonymizer/engine.hpp), for
// `custodian anonymize` and the gateway's release pipeline.

#include <map>
#include <string>
#include <vector>

#include "anonymizer/engine.hpp"
#include "anonymizer/status.hpp"
#include "policies/policy.hpp"

namespace custodian::policies {

// Distinct values (canonical text, see anonymizer/value.hpp) of columns in the data to release.
// Needed for every quasi-identifier whose hierarchy is built from the data (intervals, dates,
// prefix, or none under Mondrian) and for every sensitive column when l-diversity or t-closeness is
// set; for quasi-identifiers with a loaded hierarchy (file, groups) they are checked for coverage.
using ColumnDomains = std::map<std::string, std::vector<std::string>, std::less<>>;

// The engine configuration the policy asks for:
//  - one QuasiIdentifier per quasi_identifier column, in policy order, with its hierarchy; numeric
//    (ranges, numeric loss) for integer and decimal columns whose leaves are numbers. Under Mondrian
//    a quasi-identifier without hierarchy gets one from the data: integer/decimal values under a
//    single "*" (split into ranges), dates and timestamps through the default date builder.
//  - one SensitiveAttribute per sensitive column when l-diversity or t-closeness is set, with its
//    value dictionary and distance (the policy's, else ordered for numbers/dates, equal for text).
//  - k (1 when unset), l-diversity, t-closeness, suppression limit, algorithm, Mondrian mode, metric.
// InvalidArgument naming the column when a needed domain is missing or a value is not covered.
Result<anon::AnonymizationConfig> makeEngineConfig(const Policy& policy, const ColumnDomains& domains);

}  // namespace custodian::policies
