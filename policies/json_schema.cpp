#include "policies/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
// RapidJSON 1.1's validator trips GCC 12's flow-based -Wnull-dereference inside its own code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "policies/json_text.hpp"

namespace custodian::policies {

namespace {

using rapidjson::Value;

constexpr int kMaxRefHops = 32;
constexpr int kMaxWalkDepth = 256;

std::string pointerText(const rapidjson::Pointer& pointer) {
    rapidjson::StringBuffer buffer;
    pointer.Stringify(buffer);
    return std::string(buffer.GetString(), buffer.GetSize());
}

std::string jsonTypeName(const Value& v) {
    if (v.IsNull()) return "null";
    if (v.IsBool()) return "true/false";
    if (v.IsString()) return "a text";
    if (v.IsInt64() || v.IsUint64()) return "a whole number";
    if (v.IsNumber()) return "a number";
    if (v.IsArray()) return "a list";
    return "an object";
}

std::string schemaTypeName(std::string_view t) {
    if (t == "string") return "a text";
    if (t == "integer") return "a whole number";
    if (t == "number") return "a number";
    if (t == "boolean") return "true or false";
    if (t == "array") return "a list";
    if (t == "object") return "an object";
    if (t == "null") return "null";
    return std::string(t);
}

bool typeMatches(const Value& v, std::string_view t) {
    if (t == "string") return v.IsString();
    if (t == "integer") return v.IsInt64() || v.IsUint64();
    if (t == "number") return v.IsNumber();
    if (t == "boolean") return v.IsBool();
    if (t == "array") return v.IsArray();
    if (t == "object") return v.IsObject();
    if (t == "null") return v.IsNull();
    return false;
}

// Whether `v` has one of the types the schema's "type" keyword allows (true without the keyword).
bool typeAllowed(const Value& v, const Value& schema) {
    if (!schema.IsObject()) return true;
    auto it = schema.FindMember("type");
    if (it == schema.MemberEnd()) return true;
    if (it->value.IsString()) return typeMatches(v, {it->value.GetString(), it->value.GetStringLength()});
    if (it->value.IsArray()) {
        for (const auto& t : it->value.GetArray())
            if (t.IsString() && typeMatches(v, {t.GetString(), t.GetStringLength()})) return true;
        return false;
    }
    return true;
}

std::string expectedTypes(const Value& typeKeyword) {
    if (typeKeyword.IsString()) return schemaTypeName({typeKeyword.GetString(), typeKeyword.GetStringLength()});
    std::string out;
    if (typeKeyword.IsArray()) {
        const auto n = typeKeyword.Size();
        for (rapidjson::SizeType i = 0; i < n; ++i) {
            if (i > 0) out += (i + 1 == n) ? " or " : ", ";
            if (typeKeyword[i].IsString())
                out += schemaTypeName({typeKeyword[i].GetString(), typeKeyword[i].GetStringLength()});
        }
    }
    return out;
}

std::string numberText(const Value& v) {
    if (v.IsInt64()) return std::to_string(v.GetInt64());
    if (v.IsUint64()) return std::to_string(v.GetUint64());
    if (v.IsNumber()) return compactJson(v);
    return compactJson(v);
}

std::string enumList(const Value& values) {
    std::string out;
    if (!values.IsArray()) return out;
    for (rapidjson::SizeType i = 0; i < values.Size(); ++i) {
        if (i > 0) out += ", ";
        out += values[i].IsString() ? std::string(values[i].GetString(), values[i].GetStringLength())
                                    : compactJson(values[i]);
    }
    return out;
}

const Value* member(const Value& object, const char* name) {
    if (!object.IsObject()) return nullptr;
    auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string schemaDescription(const Value& schema) {
    const Value* d = member(schema, "description");
    if (d && d->IsString()) return d->GetString();
    return {};
}

std::string branchTitle(const Value& branch, const Value& resolved) {
    for (const Value* s : {&branch, &resolved}) {
        const Value* t = member(*s, "title");
        if (t && t->IsString()) return t->GetString();
    }
    return "an alternative of the policy schema";
}

}  // namespace

struct JsonSchemaChecker::Impl {
    rapidjson::Document root;

    // A compiled copy of one sub-schema, with the root's "definitions" so that local "$ref"s
    // resolve. Built on first use and never modified or freed before the checker.
    struct Compiled {
        rapidjson::Document document;
        std::unique_ptr<rapidjson::SchemaDocument> schema;
        // RapidJSON 1.1's GenericRegex keeps its matching state in the compiled pattern (mutable
        // stacks), so two validators running "pattern" keywords of one SchemaDocument at once
        // corrupt each other (seen as a crash with concurrent policy PUTs). Validation of one
        // sub-schema is serialized; it takes microseconds.
        std::mutex validating;
    };
    mutable std::mutex mutex;
    mutable std::map<std::string, std::unique_ptr<Compiled>> compiled;

    Compiled& compiledAt(const std::string& schemaPointer, const Value& schema) const {
        std::lock_guard lock(mutex);
        auto& slot = compiled[schemaPointer];
        if (!slot) {
            auto c = std::make_unique<Compiled>();
            c->document.CopyFrom(schema, c->document.GetAllocator());
            const Value* definitions = member(root, "definitions");
            if (c->document.IsObject() && definitions && !c->document.HasMember("definitions")) {
                Value copy(*definitions, c->document.GetAllocator());
                c->document.AddMember("definitions", copy, c->document.GetAllocator());
            }
            c->schema = std::make_unique<rapidjson::SchemaDocument>(c->document);
            slot = std::move(c);
        }
        return *slot;
    }

    // Follows local "$ref"s ("#/definitions/x"); returns nullptr on a dangling or cyclic reference.
    const Value* resolve(const Value& schema, std::string& schemaPointer) const {
        const Value* s = &schema;
        for (int hop = 0; hop < kMaxRefHops; ++hop) {
            const Value* ref = member(*s, "$ref");
            if (!ref || !ref->IsString()) return s;
            std::string target = ref->GetString();
            if (target.empty() || target[0] != '#') return nullptr;
            target.erase(0, 1);
            s = target.empty() ? &root : rapidjson::Pointer(target.c_str()).Get(root);
            if (!s) return nullptr;
            schemaPointer = target;
        }
        return nullptr;
    }

    struct Verdict {
        bool valid = true;
        std::string keyword;
        const Value* offendingSchema = nullptr;
        std::string documentPointer;  // relative to the checked value
        const Value* offendingValue = nullptr;
    };

    Verdict validate(const Value& value, const std::string& schemaPointer, const Value& schema) const {
        Compiled& c = compiledAt(schemaPointer, schema);
        std::lock_guard lock(c.validating);
        rapidjson::SchemaValidator validator(*c.schema);
        value.Accept(validator);
        Verdict verdict;
        if (validator.IsValid()) return verdict;
        verdict.valid = false;
        verdict.keyword = validator.GetInvalidSchemaKeyword();
        verdict.offendingSchema = validator.GetInvalidSchemaPointer().Get(c.document);
        const auto docPointer = validator.GetInvalidDocumentPointer();
        verdict.documentPointer = pointerText(docPointer);
        verdict.offendingValue = docPointer.Get(value);
        return verdict;
    }

    void walk(const Value& value, const Value& schemaIn, std::string schemaPointer, const std::string& docPointer,
              ValidationErrors& errors, int depth) const;
    void walkOneOf(const Value& value, const Value& schema, const std::string& schemaPointer,
                   const std::string& docPointer, ValidationErrors& errors, int depth) const;
    void walkObject(const Value& value, const Value& schema, const std::string& schemaPointer,
                    const std::string& docPointer, ValidationErrors& errors, int depth) const;
    void walkArray(const Value& value, const Value& schema, const std::string& schemaPointer,
                   const std::string& docPointer, ValidationErrors& errors, int depth) const;
};

namespace {

// The sentence for one keyword the validator rejected `value` with.
std::string keywordMessage(const std::string& keyword, const Value* value, const Value* schema) {
    static const Value kEmpty(rapidjson::kObjectType);
    const Value& s = schema ? *schema : kEmpty;
    const std::string shown = value ? quotedForMessage(*value) : std::string("the value");
    if (keyword == "type") {
        const Value* t = member(s, "type");
        return "must be " + (t ? expectedTypes(*t) : std::string("of another type")) + ", not " +
               (value ? jsonTypeName(*value) : std::string("this"));
    }
    if (keyword == "enum") {
        const Value* e = member(s, "enum");
        return shown + " is not allowed here; use one of: " + (e ? enumList(*e) : std::string());
    }
    if (keyword == "minimum" || keyword == "maximum") {
        const bool low = keyword == "minimum";
        const Value* bound = member(s, keyword.c_str());
        const Value* exclusive = member(s, low ? "exclusiveMinimum" : "exclusiveMaximum");
        const bool strict = exclusive && exclusive->IsBool() && exclusive->GetBool();
        const std::string b = bound ? numberText(*bound) : std::string("?");
        if (low) return "must be " + std::string(strict ? "greater than " : "at least ") + b + ", not " + shown;
        return "must be " + std::string(strict ? "less than " : "at most ") + b + ", not " + shown;
    }
    if (keyword == "minLength") {
        const Value* n = member(s, "minLength");
        if (n && n->IsUint() && n->GetUint() == 1) return "must not be empty";
        return "must have at least " + (n ? numberText(*n) : std::string("?")) + " characters";
    }
    if (keyword == "maxLength") {
        const Value* n = member(s, "maxLength");
        return "must have at most " + (n ? numberText(*n) : std::string("?")) + " characters";
    }
    if (keyword == "pattern") {
        const std::string d = schemaDescription(s);
        return shown + (d.empty() ? std::string(" does not have the expected form") : " is not " + d);
    }
    if (keyword == "minItems") {
        const Value* n = member(s, "minItems");
        if (n && n->IsUint() && n->GetUint() == 1) return "must list at least one value";
        return "must list at least " + (n ? numberText(*n) : std::string("?")) + " values";
    }
    if (keyword == "maxItems") {
        const Value* n = member(s, "maxItems");
        return "must list at most " + (n ? numberText(*n) : std::string("?")) + " values";
    }
    if (keyword == "minProperties") {
        const Value* n = member(s, "minProperties");
        return "must contain at least " + (n ? numberText(*n) : std::string("?")) + " entries";
    }
    if (keyword == "uniqueItems") return "lists the same value more than once";
    if (keyword == "required") return "a required field is missing";
    if (keyword == "additionalProperties") return "contains a field that is not allowed here";
    if (keyword == "oneOf") return "does not match exactly one of the allowed forms";
    return "does not satisfy the policy schema's '" + keyword + "' rule";
}

}  // namespace

void JsonSchemaChecker::Impl::walk(const Value& value, const Value& schemaIn, std::string schemaPointer,
                                   const std::string& docPointer, ValidationErrors& errors, int depth) const {
    if (depth > kMaxWalkDepth) {
        errors.push_back({docPointer, "is nested too deeply"});
        return;
    }
    const Value* schema = resolve(schemaIn, schemaPointer);
    if (!schema) {
        errors.push_back({docPointer, "cannot be checked: the policy schema has a broken reference"});
        return;
    }
    const Verdict verdict = validate(value, schemaPointer, *schema);
    if (verdict.valid) return;

    const size_t before = errors.size();
    if (const Value* t = member(*schema, "type"); t && !typeAllowed(value, *schema)) {
        errors.push_back({docPointer, keywordMessage("type", &value, schema)});
        return;
    }
    if (member(*schema, "oneOf")) {
        walkOneOf(value, *schema, schemaPointer, docPointer, errors, depth);
    } else if (value.IsObject()) {
        walkObject(value, *schema, schemaPointer, docPointer, errors, depth);
    } else if (value.IsArray()) {
        walkArray(value, *schema, schemaPointer, docPointer, errors, depth);
    }
    if (errors.size() == before) {
        errors.push_back({docPointer + verdict.documentPointer,
                          keywordMessage(verdict.keyword, verdict.offendingValue, verdict.offendingSchema)});
    }
}

void JsonSchemaChecker::Impl::walkObject(const Value& value, const Value& schema, const std::string& schemaPointer,
                                         const std::string& docPointer, ValidationErrors& errors, int depth) const {
    const Value* properties = member(schema, "properties");
    const Value* additional = member(schema, "additionalProperties");
    if (const Value* required = member(schema, "required"); required && required->IsArray()) {
        for (const auto& r : required->GetArray()) {
            if (r.IsString() && !value.HasMember(r))
                errors.push_back({docPointer, "the required field \"" + std::string(r.GetString()) + "\" is missing"});
        }
    }
    for (auto m = value.MemberBegin(); m != value.MemberEnd(); ++m) {
        const std::string name(m->name.GetString(), m->name.GetStringLength());
        const std::string childPointer = appendPointer(docPointer, name);
        const Value* propertySchema = nullptr;
        if (properties && properties->IsObject()) {
            auto it = properties->FindMember(m->name);
            if (it != properties->MemberEnd()) propertySchema = &it->value;
        }
        if (propertySchema) {
            walk(m->value, *propertySchema, schemaPointer + "/properties/" + escapePointerToken(name), childPointer,
                 errors, depth + 1);
        } else if (additional && additional->IsObject()) {
            walk(m->value, *additional, schemaPointer + "/additionalProperties", childPointer, errors, depth + 1);
        } else if (additional && additional->IsBool() && !additional->GetBool()) {
            std::string allowed;
            if (properties && properties->IsObject()) {
                for (auto p = properties->MemberBegin(); p != properties->MemberEnd(); ++p) {
                    if (std::string_view(p->name.GetString()) == "$comment") continue;
                    if (!allowed.empty()) allowed += ", ";
                    allowed += p->name.GetString();
                }
            }
            errors.push_back({childPointer, "\"" + printableForMessage(name) + "\" is not a known field here" +
                                                (allowed.empty() ? "" : "; the fields allowed here are " + allowed)});
        }
    }
    if (const Value* minProperties = member(schema, "minProperties");
        minProperties && minProperties->IsUint() && value.MemberCount() < minProperties->GetUint()) {
        errors.push_back({docPointer, keywordMessage("minProperties", &value, &schema)});
    }
}

void JsonSchemaChecker::Impl::walkArray(const Value& value, const Value& schema, const std::string& schemaPointer,
                                        const std::string& docPointer, ValidationErrors& errors, int depth) const {
    const rapidjson::SizeType n = value.Size();
    if (const Value* minItems = member(schema, "minItems"); minItems && minItems->IsUint() && n < minItems->GetUint())
        errors.push_back({docPointer, keywordMessage("minItems", &value, &schema)});
    if (const Value* maxItems = member(schema, "maxItems"); maxItems && maxItems->IsUint() && n > maxItems->GetUint())
        errors.push_back({docPointer, keywordMessage("maxItems", &value, &schema)});
    if (const Value* unique = member(schema, "uniqueItems"); unique && unique->IsBool() && unique->GetBool()) {
        // Quadratic: only the first 2000 items are compared (the policy schema bounds such lists far
        // lower; RapidJSON has already rejected the document, this only finds the duplicate).
        for (rapidjson::SizeType j = 1; j < n && j <= 2000; ++j) {
            for (rapidjson::SizeType i = 0; i < j; ++i) {
                if (value[i] == value[j]) {
                    errors.push_back({appendPointer(docPointer, j), quotedForMessage(value[j]) +
                                                                        " is listed more than once (first at " +
                                                                        appendPointer(docPointer, i) + ")"});
                    break;
                }
            }
        }
    }
    if (const Value* items = member(schema, "items"); items && items->IsObject()) {
        for (rapidjson::SizeType i = 0; i < n; ++i)
            walk(value[i], *items, schemaPointer + "/items", appendPointer(docPointer, i), errors, depth + 1);
    }
}

void JsonSchemaChecker::Impl::walkOneOf(const Value& value, const Value& schema, const std::string& schemaPointer,
                                        const std::string& docPointer, ValidationErrors& errors, int depth) const {
    const Value& branches = *member(schema, "oneOf");
    if (!branches.IsArray() || branches.Empty()) return;

    struct Branch {
        rapidjson::SizeType index;
        const Value* raw;
        const Value* resolved;
        std::string title;
    };
    std::vector<Branch> all;
    for (rapidjson::SizeType i = 0; i < branches.Size(); ++i) {
        std::string p = schemaPointer + "/oneOf/" + std::to_string(i);
        const Value* r = resolve(branches[i], p);
        if (!r) continue;
        all.push_back({i, &branches[i], r, branchTitle(branches[i], *r)});
    }
    auto describeAll = [&] {
        std::string out;
        for (size_t i = 0; i < all.size(); ++i) {
            if (i > 0) out += (i + 1 == all.size()) ? " or " : ", ";
            out += all[i].title;
        }
        return out;
    };

    std::vector<Branch> candidates;
    for (const auto& b : all)
        if (typeAllowed(value, *b.resolved)) candidates.push_back(b);

    if (value.IsObject() && candidates.size() > 1) {
        // A discriminator is a field that some branch pins to a single value ("builder": "dates").
        std::set<std::string> discriminators;
        for (const auto& b : candidates) {
            const Value* props = member(*b.resolved, "properties");
            if (!props || !props->IsObject()) continue;
            for (auto p = props->MemberBegin(); p != props->MemberEnd(); ++p) {
                const Value* e = member(p->value, "enum");
                if (e && e->IsArray() && e->Size() == 1) discriminators.insert(p->name.GetString());
            }
        }
        for (const auto& key : discriminators) {
            auto it = value.FindMember(key.c_str());
            if (it == value.MemberEnd()) continue;
            std::vector<Branch> matching;
            std::string allowed;
            for (const auto& b : candidates) {
                const Value* props = member(*b.resolved, "properties");
                const Value* prop = props ? member(*props, key.c_str()) : nullptr;
                const Value* e = prop ? member(*prop, "enum") : nullptr;
                if (!e || !e->IsArray() || e->Size() != 1) continue;
                if (!allowed.empty()) allowed += ", ";
                allowed += enumList(*e);
                if ((*e)[0] == it->value) matching.push_back(b);
            }
            if (matching.empty()) {
                errors.push_back({appendPointer(docPointer, key),
                                  quotedForMessage(it->value) + " is not allowed here; use one of: " + allowed});
                return;
            }
            candidates = std::move(matching);
        }
    }
    if (value.IsObject() && candidates.size() > 1) {
        std::vector<Branch> complete;
        for (const auto& b : candidates) {
            const Value* required = member(*b.resolved, "required");
            bool all_present = true;
            if (required && required->IsArray())
                for (const auto& r : required->GetArray()) all_present = all_present && value.HasMember(r);
            if (all_present) complete.push_back(b);
        }
        if (complete.size() == 1) {
            candidates = std::move(complete);
        } else {
            // The branch that declares the most of the fields present is the one meant.
            size_t best = 0;
            std::vector<Branch> bestBranches;
            for (const auto& b : complete.empty() ? candidates : complete) {
                const Value* props = member(*b.resolved, "properties");
                size_t known = 0;
                for (auto m = value.MemberBegin(); m != value.MemberEnd(); ++m)
                    if (props && props->IsObject() && props->HasMember(m->name) &&
                        std::string_view(m->name.GetString()) != "$comment")
                        ++known;
                if (known > best) {
                    best = known;
                    bestBranches.clear();
                }
                if (known == best) bestBranches.push_back(b);
            }
            if (best > 0) candidates = std::move(bestBranches);
        }
    }
    if (candidates.size() != 1) {
        errors.push_back({docPointer, "must be " + describeAll()});
        return;
    }
    const size_t before = errors.size();
    const Branch& chosen = candidates.front();
    walk(value, *chosen.raw, schemaPointer + "/oneOf/" + std::to_string(chosen.index), docPointer, errors, depth + 1);
    if (errors.size() == before) {
        errors.push_back({docPointer, "matches more than one of the allowed forms (" + describeAll() + ")"});
    }
}

JsonSchemaChecker::JsonSchemaChecker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchemaChecker::~JsonSchemaChecker() = default;

Result<std::shared_ptr<const JsonSchemaChecker>> JsonSchemaChecker::fromText(std::string_view schemaJson) {
    auto impl = std::make_unique<Impl>();
    impl->root.Parse(schemaJson.data(), schemaJson.size());
    if (impl->root.HasParseError())
        return invalidArgument(std::string("the JSON schema is not valid JSON: ") +
                               rapidjson::GetParseError_En(impl->root.GetParseError()) + " at offset " +
                               std::to_string(impl->root.GetErrorOffset()));
    if (!impl->root.IsObject()) return invalidArgument("the JSON schema is not an object");
    return std::shared_ptr<const JsonSchemaChecker>(new JsonSchemaChecker(std::move(impl)));
}

ValidationErrors JsonSchemaChecker::check(const rapidjson::Value& document) const {
    ValidationErrors errors;
    impl_->walk(document, impl_->root, "", "", errors, 0);
    return errors;
}

ValidationErrors JsonSchemaChecker::checkAt(const rapidjson::Value& value, const std::string& schemaPointer,
                                            const std::string& documentPointer) const {
    ValidationErrors errors;
    const rapidjson::Pointer pointer(schemaPointer.c_str(), schemaPointer.size());
    const Value* schema = pointer.IsValid() ? pointer.Get(impl_->root) : nullptr;
    if (!schema) {
        errors.push_back({documentPointer, "cannot be checked: the schema has no part " + schemaPointer});
        return errors;
    }
    impl_->walk(value, *schema, schemaPointer, documentPointer, errors, 0);
    return errors;
}

const JsonSchemaChecker& policySchemaChecker() {
    static const std::shared_ptr<const JsonSchemaChecker> checker = [] {
        auto r = JsonSchemaChecker::fromText(policySchemaText());
        // The embedded schema is part of the build and covered by tests; failing here is a
        // build defect, not an input error.
        if (!r) std::abort();
        return std::move(r).value();
    }();
    return *checker;
}

}  // namespace custodian::policies

#pragma GCC diagnostic pop
