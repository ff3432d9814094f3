#pragma once
// A validated release policy: parsed once into an immutable object shared by every release of that
// version (Envoy's "config once, instances per request"). Loading runs (1) the JSON Schema
// (policies/schema/policy.schema.json) and (2) the semantic rules of docs/policies.md, and collects
// EVERY error with its JSON pointer.
//
// Content hash: the lower-case hex SHA-256 of the document's canonical JSON (members sorted by the
// bytes of their names, no whitespace; see json_text.hpp). Whitespace and member order therefore do
// not change the version; any change of a value, a description or a "$comment" does.

#include <rapidjson/fwd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "anonymizer/hierarchy.hpp"
#include "anonymizer/status.hpp"
#include "policies/dataset.hpp"
#include "policies/policy_model.hpp"
#include "policies/row_filter.hpp"
#include "policies/validation.hpp"

namespace custodian::anon {
class TransformRegistry;
}

namespace custodian::policies {

class Policy {
public:
    const PolicyModel& model() const noexcept { return model_; }
    // The canonical JSON the content hash is computed over.
    const std::string& canonicalJson() const noexcept { return canonicalJson_; }
    // Lower-case hex SHA-256 of canonicalJson().
    const std::string& contentHash() const noexcept { return contentHash_; }
    // The content hash the same document had before policies were hashed with the one canonical
    // encoder (json/canonical.hpp; 2026-12): the policies' own encoder wrote a control character
    // without a short escape as \u00XX with upper-case hex. Equal to contentHash() unless a string
    // holds U+000B, U+000E, U+000F or U+001A–U+001F. Versions stored under it keep loading (Catalog).
    std::string legacyContentHash() const;

    // The hierarchy of a column that could be built from the policy alone (hierarchy files and
    // explicit groupings), nullptr otherwise. Interval, date and prefix builders depend on the
    // values present in the data: see buildHierarchy.
    std::shared_ptr<const anon::Hierarchy> hierarchy(std::string_view column) const;

    // The column's hierarchy for the given distinct values of the data: the loaded one (file,
    // groups) — then every value must be one of its leaves — or one built by the declared builder
    // from the values. NotFound if the column has no hierarchy; InvalidArgument naming the first
    // value a loaded hierarchy does not cover.
    Result<std::shared_ptr<const anon::Hierarchy>> buildHierarchy(std::string_view column,
                                                                  const std::vector<std::string>& values) const;

    // The row filter as a parameterized WHERE fragment (nullopt without a row filter).
    Result<std::optional<SqlFragment>> rowFilterSql(size_t firstParameter = 1) const;

private:
    friend struct PolicyBuilder;
    PolicyModel model_;
    std::string canonicalJson_;
    std::string contentHash_;
    std::map<std::string, std::shared_ptr<const anon::Hierarchy>, std::less<>> hierarchies_;
};

struct PolicyLoadOptions {
    // Folder that relative hierarchy "file" paths are resolved against. Unset: hierarchy files are
    // refused (the gateway accepts policies over HTTP and must not read its own file system).
    std::optional<std::filesystem::path> hierarchyBaseDirectory;
    // When set, columns, types, roles and the dataset name are checked against it.
    const DatasetDescription* dataset = nullptr;
    // When set, every recipient must be one of these principal or "group:NAME" names.
    const std::set<std::string, std::less<>>* knownRecipients = nullptr;
    // The transforms policies may name; nullptr = the anonymizer's built-in transforms.
    const anon::TransformRegistry* transforms = nullptr;
    // Documents larger than this are refused before parsing.
    size_t maxDocumentBytes = 4u << 20;
};

struct PolicyLoadResult {
    std::shared_ptr<const Policy> policy;  // set iff errors is empty
    ValidationErrors errors;
    bool ok() const noexcept { return errors.empty() && policy != nullptr; }
};

// Parses and validates a policy document. Never throws; every problem is an error with a pointer.
PolicyLoadResult loadPolicy(std::string_view json, const PolicyLoadOptions& options = {});

// One hierarchy declaration of the policy language (what a column's "hierarchy" holds), checked
// for a column of the given name and type exactly as loadPolicy checks it: nesting and duplicate
// members, the schema, then the semantic rules (the builder fits the column type, widths and date
// levels coarsen level by level, groups form a hierarchy whose leaves are values of the type; files
// only with options.hierarchyBaseDirectory). The gateway validates a dataset's default hierarchies
// with it. Error pointers start with `pointer` (where the declaration sits in its document).
struct HierarchyDeclarationCheck {
    ValidationErrors errors;
    std::optional<HierarchySpec> spec;  // set iff errors is empty
    // Set for declarations whose leaves are known without data (files, explicit groups): callers
    // that can see the column's values check that each one is a leaf.
    std::shared_ptr<const anon::Hierarchy> hierarchy;
};
HierarchyDeclarationCheck checkHierarchyDeclaration(const rapidjson::Value& declaration, const std::string& pointer,
                                                    const std::string& column, anon::ColumnType type,
                                                    const PolicyLoadOptions& options = {});

// A row filter written in the policy language outside a policy (a query's, docs/aggregates.md),
// checked against `model`'s columns exactly as a policy's row_filter: nesting and duplicate
// members, the schema's expression, the semantic rules, then compilation to SQL. Error pointers
// start with `pointer`.
struct RowFilterCheck {
    ValidationErrors errors;
    std::optional<RowFilter> filter;  // set iff errors is empty
};
RowFilterCheck checkRowFilter(const rapidjson::Value& filter, const std::string& pointer, const PolicyModel& model);

// Reads `path` and loads it; hierarchy files resolve against the file's folder unless
// options.hierarchyBaseDirectory is set. A file that cannot be read is one error with pointer "".
PolicyLoadResult loadPolicyFile(const std::filesystem::path& path, PolicyLoadOptions options = {});

}  // namespace custodian::policies
