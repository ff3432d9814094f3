#pragma once
// Turns a policy's hierarchy declaration into an anonymizer Hierarchy through the anonymizer's
// builders (anonymizer/hierarchy_builders.hpp). File hierarchies are loaded by the policy loader.

#include <memory>
#include <string>
#include <vector>

#include "anonymizer/hierarchy.hpp"
#include "anonymizer/status.hpp"
#include "anonymizer/value.hpp"
#include "policies/policy_model.hpp"

namespace custodian::policies {

// The hierarchy of a builder declaration over the given distinct values (canonical text).
// Intervals, dates and prefix masking cover every value; explicit groups ignore values they do not
// list (callers check coverage). InvalidArgument for a file declaration or a value the builder
// cannot place.
Result<std::shared_ptr<const anon::Hierarchy>> buildHierarchyFromValues(const std::string& name, anon::ColumnType type,
                                                                        const HierarchySpec& spec,
                                                                        const std::vector<std::string>& values);

}  // namespace custodian::policies
