#pragma once
// SQL identifiers that come from policies and API requests (schema, table, column names) are
// validated against a strict pattern and always emitted quoted; values never become SQL text.

#include <string>
#include <string_view>

#include "anonymizer/status.hpp"

namespace custodian::policies {

// A name is acceptable if it is 1..63 bytes of [A-Za-z_][A-Za-z0-9_$-]* or contains spaces/other
// printable ASCII except '"' and control characters. Returns InvalidArgument naming the problem.
Status validateSqlIdentifier(std::string_view name);

// Double-quotes an identifier that passed validateSqlIdentifier: "name".
std::string quoteSqlIdentifier(std::string_view name);

// "schema"."table" from "schema.table" or "table" (schema defaults to public).
Result<std::string> quoteQualifiedName(std::string_view qualified);

}  // namespace custodian::policies
