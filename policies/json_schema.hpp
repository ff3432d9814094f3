#pragma once
// JSON Schema (draft-04, as implemented by RapidJSON 1.1's SchemaValidator) checking that reports
// EVERY violation, each with a JSON pointer and a sentence, instead of RapidJSON's first one.
//
// RapidJSON decides validity; this class only navigates. A value the validator rejects is
// decomposed along the schema ("properties", "additionalProperties", "items", "oneOf" with a
// discriminating branch choice) and each part is validated again against its own sub-schema, so
// one bad column does not hide another. Where no further decomposition is possible the
// validator's own report (keyword, schema and document pointers) is turned into the message.

#include <memory>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "anonymizer/status.hpp"
#include "policies/validation.hpp"

namespace custodian::policies {

class JsonSchemaChecker {
public:
    // Parses and compiles a schema document. InvalidArgument if it is not JSON.
    static Result<std::shared_ptr<const JsonSchemaChecker>> fromText(std::string_view schemaJson);

    // Every violation of the schema by `document`; empty when it is valid. Thread-safe: the
    // compiled sub-schemas are cached under a mutex and never change once built. The document
    // must not nest deeper than a few hundred levels (callers bound it; see policy_loader).
    ValidationErrors check(const rapidjson::Value& document) const;

    // Every violation of the sub-schema at `schemaPointer` (e.g. "/definitions/hierarchy") by
    // `value`, with error pointers prefixed by `documentPointer` (where `value` sits in its
    // document). One error with pointer `documentPointer` if the schema has no such sub-schema.
    ValidationErrors checkAt(const rapidjson::Value& value, const std::string& schemaPointer,
                             const std::string& documentPointer) const;

    ~JsonSchemaChecker();
    JsonSchemaChecker(const JsonSchemaChecker&) = delete;
    JsonSchemaChecker& operator=(const JsonSchemaChecker&) = delete;

    struct Impl;

private:
    explicit JsonSchemaChecker(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The policy language's schema (policies/schema/policy.schema.json, embedded at build time).
std::string_view policySchemaText() noexcept;
// The compiled policy schema, built once on first use.
const JsonSchemaChecker& policySchemaChecker();

}  // namespace custodian::policies
