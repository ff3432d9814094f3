#pragma once
// ARX-style hierarchy files: one row per leaf value, `value;level1;level2;...`, `;`-separated by
// default, LF or CRLF, RFC 4180 quoting, no header row; every row has the same number of fields and
// each level must be a coarsening of the one below (see docs/formats/csv-and-hierarchies.md).

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/hierarchy.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

using HierarchyRows = std::vector<std::vector<std::string>>;

inline constexpr char kHierarchyDelimiter = ';';

// The rows of a hierarchy file, without semantic checks. Errors name the line:
//   "line 4: expected 5 fields, found 4"
Result<HierarchyRows> parseHierarchyRows(std::string_view text, char delimiter = kHierarchyDelimiter);

// Parses and validates (Hierarchy::fromRows). Errors start with "hierarchy '<name>': ".
Result<Hierarchy> parseHierarchyCsv(std::string name, std::string_view text, char delimiter = kHierarchyDelimiter);
Result<Hierarchy> loadHierarchyFile(std::string name, const std::string& path, char delimiter = kHierarchyDelimiter);

// Every value (canonical text) must be a leaf of the hierarchy. The error counts and lists (up to
// five of) the uncovered values:
//   "column 'age': 2 values are not covered by hierarchy 'age': '150', '-3'"
Status checkCoverage(const Hierarchy& hierarchy, std::span<const std::string> values, std::string_view column);

// Writes rows in the same format (quoting only where needed, LF line ends).
std::string formatHierarchyRows(const HierarchyRows& rows, char delimiter = kHierarchyDelimiter);

}  // namespace custodian::anon
