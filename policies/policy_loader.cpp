// loadPolicy: bytes → JSON (bounded size and depth, UTF-8, no duplicate members) → JSON Schema
// (every violation) → model + semantic rules (every violation) → immutable Policy with its content
// hash. Semantic rules run only on a document that matches the schema, so they can rely on types.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "anonymizer/hierarchy_io.hpp"
#include "anonymizer/transform.hpp"
#include "policies/json_schema.hpp"
#include "policies/hierarchy_specs.hpp"
#include "json/canonical.hpp"
#include "policies/json_text.hpp"
#include "policies/policy.hpp"
#include "policies/policy_internal.hpp"
#include "policies/sql_identifier.hpp"

namespace custodian::policies {

namespace {

using rapidjson::Value;

constexpr size_t kMaxNesting = 64;
constexpr size_t kMaxHierarchyFileBytes = 64u << 20;
constexpr size_t kMaxRowFilterNodes = 1000;

std::string str(const Value& v) { return std::string(v.GetString(), v.GetStringLength()); }

const Value* find(const Value& object, const char* name) {
    if (!object.IsObject()) return nullptr;
    auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

// Deepest nesting of arrays/objects in raw JSON text, scanning outside strings; stops counting
// once `limit` is exceeded. Lets us refuse hostile nesting before any recursive code runs.
size_t nestingDepth(std::string_view text, size_t limit) {
    size_t depth = 0, deepest = 0;
    bool inString = false, escaped = false;
    for (char c : text) {
        if (inString) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') inString = false;
            continue;
        }
        if (c == '"') inString = true;
        else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) --depth;
    }
    return deepest;
}

std::string lineAndColumn(std::string_view text, size_t offset) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

void findDuplicatesAndInfinities(const Value& v, const std::string& pointer, ValidationErrors& errors) {
    if (v.IsObject()) {
        std::set<std::string_view> seen;
        for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
            const std::string_view name(m->name.GetString(), m->name.GetStringLength());
            if (!seen.insert(name).second)
                errors.push_back({appendPointer(pointer, name), "the field \"" + printableForMessage(name) +
                                                                    "\" appears more than once in the same object"});
            findDuplicatesAndInfinities(m->value, appendPointer(pointer, name), errors);
        }
    } else if (v.IsArray()) {
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
            findDuplicatesAndInfinities(v[i], appendPointer(pointer, i), errors);
    } else if (v.IsDouble() && !std::isfinite(v.GetDouble())) {
        // RapidJSON reads a literal beyond the double range (2e308) as infinity; it has no JSON
        // form, so the policy's content (hashed and stored) could not carry it.
        errors.push_back({pointer, "the number is too large: numbers must be finite doubles (below 1.8e308)"});
    }
}

const char* typeName(anon::ColumnType t) { return anon::columnTypeName(t); }

bool isNumericType(anon::ColumnType t) {
    return t == anon::ColumnType::Integer || t == anon::ColumnType::Decimal || t == anon::ColumnType::Date ||
           t == anon::ColumnType::Timestamp;
}

// Whether `text` is a value of the column type (the canonical parsers of anonymizer/value.hpp).
bool valueFitsType(std::string_view text, anon::ColumnType type) {
    switch (type) {
    case anon::ColumnType::Integer: return anon::parseInteger(text).has_value();
    case anon::ColumnType::Decimal: return anon::parseDecimal(text).has_value();
    case anon::ColumnType::Date: return anon::parseDate(text).has_value();
    case anon::ColumnType::Timestamp: return anon::parseTimestamp(text).has_value();
    case anon::ColumnType::Text: return true;
    }
    return false;
}

std::string aType(anon::ColumnType t) {
    switch (t) {
    case anon::ColumnType::Integer: return "a whole number";
    case anon::ColumnType::Decimal: return "a number";
    case anon::ColumnType::Text: return "a text";
    case anon::ColumnType::Date: return "a date (YYYY-MM-DD)";
    case anon::ColumnType::Timestamp: return "a date and time";
    }
    return "a value";
}

std::string aColumnOfType(anon::ColumnType t) {
    return std::string(t == anon::ColumnType::Integer ? "an " : "a ") + typeName(t) + " column";
}

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += separator;
        out += items[i];
    }
    return out;
}

class SemanticChecker {
public:
    SemanticChecker(const Value& doc, const PolicyLoadOptions& options, ValidationErrors& errors)
        : doc_(doc), options_(options), errors_(errors),
          registry_(options.transforms ? *options.transforms : anon::builtinTransforms()) {}

    void run(PolicyModel& model, HierarchyMap& hierarchies) {
        model.dataset = str(doc_["dataset"]);
        if (const Value* d = find(doc_, "description")) model.description = str(*d);
        readRecipients(model);
        for (const auto& p : doc_["purposes"].GetArray()) model.purposes.push_back(str(p));
        if (const Value* links = find(doc_, "linkable_with"))
            for (const auto& name : links->GetArray()) model.linkableWith.push_back(str(name));
        if (const Value* t = find(doc_, "transparency"))
            model.transparency = transparencyFromName(str(*t)).value_or(model.transparency);
        readValidity(model);
        if (const Value* input = find(doc_, "input"))
            if (const Value* d = find(*input, "delimiter"))
                model.inputDelimiter = readDelimiter(*d, "/input/delimiter");
        readAlgorithm(model);
        readColumns(model, hierarchies);
        readPrivacy(model);
        readOutput(model);
        if (const Value* limits = find(doc_, "limits"))
            if (const Value* n = find(*limits, "extracts_per_day_per_recipient"))
                model.extractsPerDayPerRecipient = static_cast<uint32_t>(n->GetUint64());
        if (const Value* f = find(doc_, "row_filter")) {
            size_t nodes = 0;
            RowFilter filter = readFilter(*f, "/row_filter", model, 0, nodes);
            if (nodes > kMaxRowFilterNodes)
                add("/row_filter", "has " + std::to_string(nodes) + " expressions; at most " +
                                       std::to_string(kMaxRowFilterNodes) + " are allowed");
            model.rowFilter = std::move(filter);
        }
        if (const Value* a = find(doc_, "aggregates")) readAggregates(*a, model, hierarchies);
        checkAgainstDataset(model);
    }

    // A row filter on its own (a query's), checked against `model` exactly as a policy's.
    RowFilter readStandaloneFilter(const Value& filter, const std::string& at, const PolicyModel& model) {
        size_t nodes = 0;
        RowFilter f = readFilter(filter, at, model, 0, nodes);
        if (nodes > kMaxRowFilterNodes)
            add(at, "has " + std::to_string(nodes) + " expressions; at most " + std::to_string(kMaxRowFilterNodes) +
                        " are allowed");
        return f;
    }

    // A lone hierarchy declaration (checkHierarchyDeclaration): the column's own checks apply.
    void checkDeclaration(const Value& declaration, const std::string& at, ColumnPolicy& column,
                          HierarchyMap& hierarchies) {
        readHierarchy(declaration, at, column, hierarchies);
    }

private:
    void add(std::string pointer, std::string message) { errors_.push_back({std::move(pointer), std::move(message)}); }

    void readRecipients(PolicyModel& model) {
        const Value& recipients = doc_["recipients"];
        for (rapidjson::SizeType i = 0; i < recipients.Size(); ++i) {
            std::string r = str(recipients[i]);
            if (options_.knownRecipients && !options_.knownRecipients->count(r)) {
                // Recipients are enabled partners or groups: a disabled partner or another role's
                // principal is not one, so the message does not claim that nothing has the name.
                if (r.rfind("group:", 0) == 0)
                    add(appendPointer("/recipients", i),
                        "no group named \"" + printableForMessage(r.substr(6)) + "\" exists");
                else
                    add(appendPointer("/recipients", i), "\"" + printableForMessage(r) +
                                                             "\" is not an enabled partner (a recipient is a principal "
                                                             "with the partner role that is not disabled, or a group)");
            }
            model.recipients.push_back(std::move(r));
        }
    }

    std::optional<int64_t> readTimestamp(const Value& validity, const char* field) {
        const Value* v = find(validity, field);
        if (!v) return std::nullopt;
        auto micros = anon::parseTimestamp({v->GetString(), v->GetStringLength()});
        if (!micros)
            add(std::string("/validity/") + field,
                quotedForMessage(*v) + " is not a real date and time (check the month, day and hour)");
        return micros;
    }

    void readValidity(PolicyModel& model) {
        const Value* validity = find(doc_, "validity");
        if (!validity) return;
        model.validity.notBefore = readTimestamp(*validity, "not_before");
        model.validity.expires = readTimestamp(*validity, "expires");
        if (model.validity.notBefore && model.validity.expires && *model.validity.expires <= *model.validity.notBefore)
            add("/validity/expires", "the policy must expire after it becomes valid (not_before is " +
                                         str(doc_["validity"]["not_before"]) + ")");
    }

    char readDelimiter(const Value& v, const std::string& pointer) {
        const char c = v.GetString()[0];
        const unsigned char u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\r' || c == '\n' || u >= 0x80) {
            add(pointer, quotedForMessage(v) + " cannot separate fields; use a character such as \",\" or \";\"");
            return ',';
        }
        return c;
    }

    void readAlgorithm(PolicyModel& model) {
        const Value* algorithm = find(doc_, "algorithm");
        if (const Value* metric = find(doc_, "metric")) model.metric = *policyMetricFromName(str(*metric));
        if (!algorithm) return;
        model.algorithm =
            str((*algorithm)["name"]) == "mondrian" ? SearchAlgorithm::Mondrian : SearchAlgorithm::Optimal;
        if (const Value* mode = find(*algorithm, "mode")) {
            if (model.algorithm != SearchAlgorithm::Mondrian)
                add("/algorithm/mode", "a mode only applies to the mondrian algorithm");
            model.mondrianMode = str(*mode) == "relaxed" ? MondrianMode::Relaxed : MondrianMode::Strict;
        }
        if (const Value* release = find(*algorithm, "categorical_release")) {
            if (model.algorithm != SearchAlgorithm::Mondrian)
                add("/algorithm/categorical_release", "only applies to the mondrian algorithm");
            model.mondrianValueSets = str(*release) == "value_set";
        }
    }

    // ---- aggregates (docs/aggregates.md) --------------------------------------------------

    // The declared column `name` at pointer `at`, or an error.
    const ColumnPolicy* aggregateColumn(const PolicyModel& model, const std::string& name, const std::string& at) {
        const ColumnPolicy* c = model.column(name);
        if (!c) add(at, "the column \"" + printableForMessage(name) + "\" is not declared in the policy");
        return c;
    }

    void readAggregates(const Value& a, PolicyModel& model, const HierarchyMap& hierarchies) {
        AggregatesSpec spec;
        spec.personKey = str(a["person_key"]);
        aggregateColumn(model, spec.personKey, "/aggregates/person_key");
        if (const Value* m = find(a, "max_rows_per_person"))
            spec.maxRowsPerPerson = static_cast<uint32_t>(m->GetUint64());
        if (const Value* measures = find(a, "measures")) {
            for (rapidjson::SizeType i = 0; i < measures->Size(); ++i) {
                const Value& m = (*measures)[i];
                const std::string at = appendPointer("/aggregates/measures", i);
                AggregateMeasure measure{str(m["column"]), m["lower"].GetDouble(), m["upper"].GetDouble()};
                if (const ColumnPolicy* c = aggregateColumn(model, measure.column, at + "/column")) {
                    if (c->type != anon::ColumnType::Integer && c->type != anon::ColumnType::Decimal)
                        add(at + "/column", "only integer and decimal columns can be summed; \"" +
                                                printableForMessage(c->name) + "\" is " + aColumnOfType(c->type));
                    if (c->name == spec.personKey) add(at + "/column", "the person key cannot be summed");
                }
                if (!std::isfinite(measure.lower) || !std::isfinite(measure.upper) || !(measure.lower < measure.upper))
                    add(at + "/upper", "the bounds must be finite numbers with lower below upper");
                if (spec.measure(measure.column))
                    add(at + "/column",
                        "the column \"" + printableForMessage(measure.column) + "\" is already a measure");
                spec.measures.push_back(std::move(measure));
            }
        }
        if (const Value* groups = find(a, "group_by")) {
            for (rapidjson::SizeType i = 0; i < groups->Size(); ++i)
                readAggregateGroupBy((*groups)[i], appendPointer("/aggregates/group_by", i), model, hierarchies, spec);
        }
        const Value& budget = a["budget"];
        spec.epsilon = budget["epsilon"].GetDouble();
        if (const Value* d = find(budget, "delta")) spec.delta = d->GetDouble();
        const std::string period = str(budget["period"]);
        for (BudgetPeriod p : {BudgetPeriod::Day, BudgetPeriod::Month, BudgetPeriod::Year, BudgetPeriod::Lifetime})
            if (period == budgetPeriodName(p)) spec.period = p;
        model.aggregates = std::move(spec);
    }

    void readAggregateGroupBy(const Value& g, const std::string& at, const PolicyModel& model,
                              const HierarchyMap& hierarchies, AggregatesSpec& spec) {
        AggregateGroupBy group;
        group.column = str(g["column"]);
        const ColumnPolicy* c = aggregateColumn(model, group.column, at + "/column");
        if (c && c->name == spec.personKey) add(at + "/column", "answers cannot be grouped by the person key");
        if (spec.groupByColumn(group.column))
            add(at + "/column", "the column \"" + printableForMessage(group.column) + "\" is already listed");
        std::shared_ptr<const anon::Hierarchy> hierarchy;
        if (const Value* level = find(g, "level")) {
            group.level = static_cast<int>(level->GetInt64());
            if (c && !c->hierarchy) {
                add(at + "/level", "the column \"" + printableForMessage(c->name) + "\" has no hierarchy to group by");
            } else if (c) {
                if (auto h = hierarchies.find(c->name); h != hierarchies.end()) hierarchy = h->second;
                if (hierarchy && *group.level >= hierarchy->levels()) {
                    add(at + "/level", "the hierarchy of \"" + printableForMessage(c->name) + "\" has levels 0 to " +
                                           std::to_string(hierarchy->levels() - 1));
                    hierarchy = nullptr;  // no such level: nothing to check values against or enumerate
                }
            }
        }
        if (const Value* values = find(g, "values")) {
            for (rapidjson::SizeType i = 0; i < values->Size(); ++i) {
                const Value& v = (*values)[i];
                const std::string vp = appendPointer(at + "/values", i);
                std::string text;
                if (v.IsString()) text = str(v);
                else if (v.IsInt64()) text = std::to_string(v.GetInt64());
                else anon::appendDecimal(text, v.GetDouble());
                if (c && (!group.level || *group.level == 0)) {
                    // The values themselves: of the column's type, in canonical text.
                    std::string canonical;
                    const bool numericColumn =
                        c->type == anon::ColumnType::Integer || c->type == anon::ColumnType::Decimal;
                    if (numericColumn != v.IsNumber() || !anon::appendCanonicalText(canonical, c->type, text)) {
                        add(vp, quotedForMessage(v) + " is not " + aType(c->type) + ", but \"" +
                                    printableForMessage(c->name) + "\" is " + aColumnOfType(c->type));
                        continue;
                    }
                    text = std::move(canonical);
                } else if (!v.IsString()) {
                    add(vp, "a group of a hierarchy level is its label, a text");
                    continue;
                }
                if (std::find(group.values.begin(), group.values.end(), text) != group.values.end()) {
                    add(vp, quotedForMessage(v) + " is listed twice");
                    continue;
                }
                if (hierarchy && group.level && !hierarchyHasLabel(*hierarchy, *group.level, text))
                    add(vp, quotedForMessage(v) + " is not a group of level " + std::to_string(*group.level) +
                                " of the hierarchy of \"" + printableForMessage(group.column) + "\"");
                group.values.push_back(std::move(text));
            }
        } else if (!group.level) {
            add(at, "list the groups in \"values\", or group by a hierarchy \"level\"");
        } else if (c && c->hierarchy && !hierarchy) {
            add(at + "/level", "a " + std::string(hierarchyKindName(c->hierarchy->kind)) +
                                   " hierarchy's groups depend on the data; list the released groups in \"values\"");
        } else if (hierarchy) {
            for (size_t n = 0; n < hierarchy->nodeCount(*group.level); ++n)
                group.values.push_back(hierarchy->label(*group.level, static_cast<uint32_t>(n)));
        }
        spec.groupBy.push_back(std::move(group));
    }

    static bool hierarchyHasLabel(const anon::Hierarchy& h, int level, const std::string& label) {
        for (size_t n = 0; n < h.nodeCount(level); ++n)
            if (h.label(level, static_cast<uint32_t>(n)) == label) return true;
        return false;
    }

    // ---- columns ---------------------------------------------------------------------------

    void readColumns(PolicyModel& model, HierarchyMap& hierarchies) {
        const Value& columns = doc_["columns"];
        std::map<std::string, size_t, std::less<>> firstIndex;
        for (rapidjson::SizeType i = 0; i < columns.Size(); ++i) {
            const Value& c = columns[i];
            const std::string at = appendPointer("/columns", i);
            ColumnPolicy column;
            column.name = str(c["name"]);
            column.type = *anon::columnTypeFromName(str(c["type"]));
            column.role = *columnRoleFromName(str(c["role"]));
            if (const Value* d = find(c, "description")) column.description = str(*d);
            if (auto s = validateSqlIdentifier(column.name); !s)
                add(at + "/name", "is not a usable column name: " + s.message());
            if (auto [it, inserted] = firstIndex.emplace(column.name, i); !inserted)
                add(at + "/name", "the column \"" + printableForMessage(column.name) + "\" is already declared at " +
                                      appendPointer("/columns", it->second));
            readTransform(c, at, column);
            if (const Value* h = find(c, "hierarchy")) readHierarchy(*h, at + "/hierarchy", column, hierarchies);
            checkColumnRules(c, at, column, model.algorithm, hierarchies);
            model.columns.push_back(std::move(column));
        }
        // Parameters that name another column (their descriptor says namesColumn, e.g. date_shift's
        // key_column) must name a declared one.
        for (size_t i = 0; i < model.columns.size(); ++i) {
            const anon::TransformSpec* spec = registry_.find(model.columns[i].transform.name);
            if (!spec) continue;  // reported by readTransform
            for (const auto& [name, value] : model.columns[i].transform.params) {
                const anon::ParamDescriptor* d = spec->param(name);
                if (!d || !d->namesColumn || !std::holds_alternative<std::string>(value)) continue;
                const std::string& other = std::get<std::string>(value);
                if (!firstIndex.count(other))
                    add(appendPointer(appendPointer("/columns", i) + "/transform/params", name),
                        "the column \"" + printableForMessage(other) + "\" is not declared in the policy");
            }
        }
    }

    void readTransform(const Value& c, const std::string& at, ColumnPolicy& column) {
        const Value* t = find(c, "transform");
        if (!t) {
            column.transformDeclared = false;
            column.transform.name = column.role == ColumnRole::Identifier        ? "drop"
                                    : column.role == ColumnRole::QuasiIdentifier ? "generalize"
                                                                                 : "keep";
            return;
        }
        column.transformDeclared = true;
        column.transform.name = str((*t)["name"]);
        const std::string tp = at + "/transform";
        bool paramsOk = true;
        if (const Value* params = find(*t, "params")) {
            for (auto m = params->MemberBegin(); m != params->MemberEnd(); ++m) {
                const std::string name = str(m->name);
                const std::string pp = appendPointer(tp + "/params", name);
                const Value& v = m->value;
                if (v.IsBool()) column.transform.params[name] = v.GetBool();
                else if (v.IsInt64()) column.transform.params[name] = v.GetInt64();
                else if (v.IsUint64()) {
                    add(pp, "is too large");
                    paramsOk = false;
                } else if (v.IsNumber()) column.transform.params[name] = v.GetDouble();
                else if (v.IsString()) column.transform.params[name] = str(v);
                else {
                    std::vector<std::string> list;
                    for (const auto& item : v.GetArray()) list.push_back(str(item));
                    column.transform.params[name] = std::move(list);
                }
            }
        }
        if (traitsOf(column.transform.name).usesHierarchy) {
            // A column is generalized through its own "hierarchy"; the registry's hierarchy
            // parameter is that column's name, never something a policy can point elsewhere.
            if (column.transform.params.count("hierarchy"))
                add(tp + "/params/hierarchy",
                    column.transform.name + " uses the column's own \"hierarchy\"; remove this parameter");
            column.transform.params["hierarchy"] = column.name;
        }
        const anon::TransformSpec* spec = registry_.find(column.transform.name);
        if (!spec) {
            add(tp + "/name", "\"" + printableForMessage(column.transform.name) +
                                  "\" is not a transform; use one of: " + joined(registry_.names()));
            return;
        }
        // Parameter checks with pointers; the registry's own validate() is the final word below.
        const size_t before = errors_.size();
        for (const auto& [name, value] : column.transform.params) {
            const std::string pp = appendPointer(tp + "/params", name);
            const anon::ParamDescriptor* d = spec->param(name);
            if (d == nullptr) {
                std::vector<std::string> known;
                for (const auto& p : spec->params) known.push_back(p.name);
                add(pp, spec->name + " has no parameter \"" + printableForMessage(name) + "\"" +
                            (known.empty() ? "; it takes no parameters" : "; its parameters are " + joined(known)));
                continue;
            }
            if (!paramTypeFits(value, d->type))
                add(pp, "must be " + std::string(paramTypeArticle(d->type)) + " (" + spec->name + " " + d->name +
                            (d->description.empty() ? "" : ": " + d->description) + ")");
        }
        for (const auto& d : spec->params) {
            if (d.required && !column.transform.params.count(d.name))
                add(find(*t, "params") ? tp + "/params" : tp,
                    spec->name + " needs the parameter \"" + d.name + "\" (" + anon::paramTypeName(d.type) +
                        (d.description.empty() ? "" : ": " + d.description) + ")");
        }
        if (!spec->inputTypes.empty() &&
            std::find(spec->inputTypes.begin(), spec->inputTypes.end(), column.type) == spec->inputTypes.end()) {
            std::vector<std::string> fits;
            for (auto type : spec->inputTypes) fits.push_back(typeName(type));
            add(tp + "/name", spec->name + " does not apply to " + typeName(column.type) + " columns; it applies to " +
                                  joined(fits, " and ") + " columns");
        }
        if (errors_.size() == before && paramsOk) {
            if (auto s = registry_.validate(column.transform.name, column.transform.params, column.type); !s)
                add(tp, s.message());
        }
    }

    static bool paramTypeFits(const anon::ParamValue& v, anon::ParamType type) {
        switch (type) {
        case anon::ParamType::Bool: return std::holds_alternative<bool>(v);
        case anon::ParamType::Integer: return std::holds_alternative<int64_t>(v);
        case anon::ParamType::Number: return std::holds_alternative<int64_t>(v) || std::holds_alternative<double>(v);
        case anon::ParamType::String: return std::holds_alternative<std::string>(v);
        case anon::ParamType::StringList: return std::holds_alternative<std::vector<std::string>>(v);
        }
        return false;
    }

    static const char* paramTypeArticle(anon::ParamType type) {
        switch (type) {
        case anon::ParamType::Bool: return "true or false";
        case anon::ParamType::Integer: return "a whole number";
        case anon::ParamType::Number: return "a number";
        case anon::ParamType::String: return "a text";
        case anon::ParamType::StringList: return "a list of texts";
        }
        return "a value";
    }

    // The registry's transforms that may release an identifier column, for messages: "drop, mask, …".
    std::string deidentifyingTransforms() const {
        std::string names;
        for (const auto& spec : registry_.specs())
            if (spec.traits.deidentifies) names += (names.empty() ? "" : ", ") + spec.name;
        return names;
    }

    void checkColumnRules(const Value& c, const std::string& at, const ColumnPolicy& column, SearchAlgorithm algorithm,
                          const HierarchyMap& hierarchies) {
        const std::string transformAt = find(c, "transform") ? at + "/transform/name" : at;
        const std::string quoted = "\"" + printableForMessage(column.name) + "\"";
        switch (column.role) {
        case ColumnRole::Identifier:
            if (registry_.find(column.transform.name) && !traitsOf(column.transform.name).deidentifies)
                add(transformAt, "the identifier column " + quoted + " would be released through " +
                                     column.transform.name + "; identifiers need a transform that de-identifies (" +
                                     deidentifyingTransforms() + ")");
            break;
        case ColumnRole::QuasiIdentifier:
            if (column.transformDeclared) {
                add(at + "/transform", "the quasi-identifier " + quoted +
                                           " is generalized by the privacy search; remove its transform (or give the "
                                           "column another role)");
            } else if (!column.hierarchy) {
                if (algorithm == SearchAlgorithm::Optimal)
                    add(at, "the optimal search needs a hierarchy for every quasi-identifier; add \"hierarchy\" to " +
                                quoted);
                else if (!isNumericType(column.type))
                    add(at, "Mondrian needs a hierarchy for the " + std::string(typeName(column.type)) +
                                " quasi-identifier " + quoted +
                                " (only numbers, dates and timestamps can be split "
                                "without one)");
            }
            break;
        case ColumnRole::Sensitive:
        case ColumnRole::Insensitive:
            if (traitsOf(column.transform.name).usesHierarchy && !column.hierarchy)
                add(transformAt, column.transform.name + " needs a hierarchy; add \"hierarchy\" to " + quoted);
            break;
        }
        if (column.hierarchy && column.role != ColumnRole::QuasiIdentifier &&
            !traitsOf(column.transform.name).usesHierarchy)
            add(at + "/hierarchy", "only quasi-identifiers and generalized columns use a hierarchy");
        // A fixed generalization level must exist in a hierarchy known now.
        if (auto level = column.transform.params.find("level"); level != column.transform.params.end() &&
                                                                traitsOf(column.transform.name).usesHierarchy &&
                                                                std::holds_alternative<int64_t>(level->second)) {
            const int64_t l = std::get<int64_t>(level->second);
            auto h = hierarchies.find(column.name);
            if (l < 0) add(at + "/transform/params/level", "must not be negative");
            else if (h != hierarchies.end() && l >= h->second->levels())
                add(at + "/transform/params/level", "level " + std::to_string(l) +
                                                        " does not exist; the hierarchy of " + quoted +
                                                        " has levels 0 to " + std::to_string(h->second->levels() - 1));
        }
    }

    // ---- hierarchies -------------------------------------------------------------------------

    void readHierarchy(const Value& h, const std::string& at, ColumnPolicy& column, HierarchyMap& hierarchies) {
        HierarchySpec spec;
        if (const Value* file = find(h, "file")) {
            spec.kind = HierarchySpec::Kind::File;
            spec.file = str(*file);
            if (const Value* d = find(h, "delimiter")) spec.delimiter = readDelimiter(*d, at + "/delimiter");
            loadHierarchyFile(at, column, spec, hierarchies);
        } else {
            const std::string builder = str(h["builder"]);
            if (builder == "intervals") readIntervals(h, at, column, spec);
            else if (builder == "dates") readDates(h, at, column, spec);
            else if (builder == "prefix") readPrefix(h, at, column, spec);
            else readGroups(h, at, column, spec, hierarchies);
        }
        column.hierarchy = std::move(spec);
    }

    // Leaves must be values of the column's type, or the hierarchy would never match the data.
    bool checkLeaves(const std::vector<std::vector<std::string>>& rows, const std::string& at,
                     const ColumnPolicy& column, const char* rowWord) {
        if (column.type == anon::ColumnType::Text) return true;
        for (size_t r = 0; r < rows.size(); ++r) {
            if (rows[r].empty() || valueFitsType(rows[r][0], column.type)) continue;
            add(at, "the value \"" + printableForMessage(rows[r][0]) + "\" (" + rowWord + " " + std::to_string(r + 1) +
                        ") is not " + aType(column.type) + ", but \"" + printableForMessage(column.name) + "\" is " +
                        aColumnOfType(column.type));
            return false;
        }
        return true;
    }

    void loadHierarchyFile(const std::string& at, ColumnPolicy& column, HierarchySpec& spec,
                           HierarchyMap& hierarchies) {
        const std::string fileAt = at + "/file";
        if (!options_.hierarchyBaseDirectory) {
            add(fileAt, "hierarchy files cannot be used here; describe the hierarchy with a builder (intervals, dates, "
                        "prefix or groups)");
            return;
        }
        const std::filesystem::path relative(spec.file);
        spec.resolvedFile = relative.is_absolute() ? relative : *options_.hierarchyBaseDirectory / relative;
        std::error_code ec;
        const auto size = std::filesystem::file_size(spec.resolvedFile, ec);
        if (ec) {
            add(fileAt, "the hierarchy file \"" + printableForMessage(spec.resolvedFile.string()) +
                            "\" cannot be read: " + ec.message());
            return;
        }
        if (size > kMaxHierarchyFileBytes) {
            add(fileAt, "the hierarchy file is larger than 64 MiB");
            return;
        }
        std::ifstream in(spec.resolvedFile, std::ios::binary);
        std::ostringstream bytes;
        bytes << in.rdbuf();
        if (!in) {
            add(fileAt,
                "the hierarchy file \"" + printableForMessage(spec.resolvedFile.string()) + "\" cannot be read");
            return;
        }
        auto rows = anon::parseHierarchyRows(bytes.str(), spec.delimiter);
        if (!rows) {
            add(fileAt, "the hierarchy file \"" + printableForMessage(spec.file) +
                            "\" is not valid: " + rows.status().message());
            return;
        }
        if (!checkLeaves(*rows, fileAt, column, "row")) return;
        auto hierarchy = anon::Hierarchy::fromRows(column.name, *rows);
        if (!hierarchy) {
            add(fileAt, "the hierarchy file \"" + printableForMessage(spec.file) +
                            "\" is not valid: " + hierarchy.status().message());
            return;
        }
        hierarchies[column.name] = std::make_shared<const anon::Hierarchy>(std::move(hierarchy).value());
    }

    void readIntervals(const Value& h, const std::string& at, const ColumnPolicy& column, HierarchySpec& spec) {
        spec.kind = HierarchySpec::Kind::Intervals;
        if (column.type != anon::ColumnType::Integer && column.type != anon::ColumnType::Decimal)
            add(at + "/builder", "intervals apply to integer and decimal columns, not to the " +
                                     std::string(typeName(column.type)) + " column \"" +
                                     printableForMessage(column.name) + "\"");
        if (const Value* origin = find(h, "origin")) spec.origin = origin->GetDouble();
        const Value& widths = h["widths"];
        for (rapidjson::SizeType i = 0; i < widths.Size(); ++i) {
            const double w = widths[i].GetDouble();
            if (!spec.widths.empty()) {
                const double previous = spec.widths.back();
                const double ratio = w / previous;
                if (w <= previous)
                    add(appendPointer(at + "/widths", i),
                        compactJson(widths[i]) + " must be larger than the width before it (" +
                            compactJson(widths[i - 1]) + "); each level must be coarser than the one below");
                else if (std::fabs(ratio - std::round(ratio)) > 1e-9 * ratio)
                    add(appendPointer(at + "/widths", i),
                        compactJson(widths[i]) + " is not a multiple of the width before it (" +
                            compactJson(widths[i - 1]) + "); each level must merge whole intervals of the level below");
            }
            if (column.type == anon::ColumnType::Integer && w != std::floor(w))
                add(appendPointer(at + "/widths", i),
                    "must be a whole number for the integer column \"" + printableForMessage(column.name) + "\"");
            spec.widths.push_back(w);
        }
    }

    void readDates(const Value& h, const std::string& at, const ColumnPolicy& column, HierarchySpec& spec) {
        spec.kind = HierarchySpec::Kind::Dates;
        if (column.type != anon::ColumnType::Date && column.type != anon::ColumnType::Timestamp)
            add(at + "/builder", "the dates builder applies to date and timestamp columns, not to the " +
                                     std::string(typeName(column.type)) + " column \"" +
                                     printableForMessage(column.name) + "\"");
        spec.dateLevels = {DateLevel::Month, DateLevel::Quarter, DateLevel::Year, DateLevel::Decade};
        const Value* levels = find(h, "levels");
        if (!levels) return;
        spec.dateLevels.clear();
        for (rapidjson::SizeType i = 0; i < levels->Size(); ++i) {
            const std::string name = str((*levels)[i]);
            DateLevel level = DateLevel::Month;
            for (DateLevel candidate : {DateLevel::Month, DateLevel::Quarter, DateLevel::Year, DateLevel::Decade})
                if (name == dateLevelName(candidate)) level = candidate;
            if (!spec.dateLevels.empty() && level <= spec.dateLevels.back())
                add(appendPointer(at + "/levels", i),
                    "\"" + name + "\" must come before \"" + dateLevelName(spec.dateLevels.back()) +
                        "\"; list levels from the finest (month) to the coarsest (decade)");
            spec.dateLevels.push_back(level);
        }
    }

    void readPrefix(const Value& h, const std::string& at, const ColumnPolicy& column, HierarchySpec& spec) {
        spec.kind = HierarchySpec::Kind::Prefix;
        if (column.type != anon::ColumnType::Text)
            add(at + "/builder", "prefix masking applies to text columns, not to the " +
                                     std::string(typeName(column.type)) + " column \"" +
                                     printableForMessage(column.name) +
                                     "\" (declare codes such as postal codes as text)");
        if (const Value* m = find(h, "mask_char")) spec.maskChar = str(*m);
    }

    void readGroups(const Value& h, const std::string& at, const ColumnPolicy& column, HierarchySpec& spec,
                    HierarchyMap& hierarchies) {
        spec.kind = HierarchySpec::Kind::Groups;
        const Value& levels = h["levels"];
        const size_t before = errors_.size();
        // parentOf[level][member] = group containing it at that level.
        std::vector<std::map<std::string, std::string, std::less<>>> parentOf;
        std::vector<std::string> leaves;
        for (rapidjson::SizeType l = 0; l < levels.Size(); ++l) {
            const std::string levelAt = appendPointer(at + "/levels", l);
            std::map<std::string, std::string, std::less<>> parents;
            std::vector<std::pair<std::string, std::vector<std::string>>> groups;
            for (auto g = levels[l].MemberBegin(); g != levels[l].MemberEnd(); ++g) {
                const std::string group = str(g->name);
                const std::string groupAt = appendPointer(levelAt, group);
                std::vector<std::string> members;
                for (rapidjson::SizeType j = 0; j < g->value.Size(); ++j) {
                    const std::string member = str(g->value[j]);
                    const std::string memberAt = appendPointer(groupAt, j);
                    if (l > 0 && !groupExists(spec.groups[l - 1], member)) {
                        add(memberAt, "\"" + printableForMessage(member) + "\" is not a group of level " +
                                          std::to_string(l) + " (the level below)");
                        continue;
                    }
                    if (auto [it, inserted] = parents.emplace(member, group); !inserted) {
                        add(memberAt, "\"" + printableForMessage(member) + "\" is already in the group \"" +
                                          printableForMessage(it->second) + "\"; each " + (l == 0 ? "value" : "group") +
                                          " belongs to exactly one group per level");
                        continue;
                    }
                    if (l == 0) leaves.push_back(member);
                    members.push_back(member);
                }
                groups.emplace_back(group, std::move(members));
            }
            if (l > 0) {
                for (const auto& [lower, members] : spec.groups[l - 1]) {
                    (void)members;
                    if (!parents.count(lower))
                        add(levelAt, "the group \"" + printableForMessage(lower) + "\" of level " + std::to_string(l) +
                                         " is in no group of this level");
                }
            }
            parentOf.push_back(std::move(parents));
            spec.groups.push_back(std::move(groups));
        }
        if (errors_.size() != before) return;
        auto hierarchy = buildHierarchyFromValues(column.name, column.type, spec, leaves);
        if (!hierarchy) {
            add(at + "/levels", "the grouping is not a valid hierarchy: " + hierarchy.status().message());
            return;
        }
        if (!checkLeaves(leafRows(*hierarchy.value()), at + "/levels/0", column, "value")) return;
        hierarchies[column.name] = std::move(hierarchy).value();
    }

    static std::vector<std::vector<std::string>> leafRows(const anon::Hierarchy& h) {
        std::vector<std::vector<std::string>> rows;
        for (uint32_t leaf = 0; leaf < h.leafCount(); ++leaf) rows.push_back({h.label(0, leaf)});
        return rows;
    }

    static bool groupExists(const std::vector<std::pair<std::string, std::vector<std::string>>>& groups,
                            const std::string& name) {
        return std::any_of(groups.begin(), groups.end(), [&](const auto& g) { return g.first == name; });
    }

    // ---- privacy, output ---------------------------------------------------------------------

    void readPrivacy(PolicyModel& model) {
        size_t quasiIdentifiers = 0;
        std::vector<const ColumnPolicy*> sensitive;
        for (const auto& c : model.columns) {
            if (c.role == ColumnRole::QuasiIdentifier) ++quasiIdentifiers;
            if (c.role == ColumnRole::Sensitive) sensitive.push_back(&c);
        }
        const Value* privacy = find(doc_, "privacy");
        if (!privacy) {
            if (quasiIdentifiers > 0)
                add("", "the policy declares quasi-identifiers but no privacy model; add \"privacy\" with k");
            return;
        }
        PrivacySpec& p = model.privacy;
        if (const Value* k = find(*privacy, "k")) {
            p.k = k->GetUint64();
            if (quasiIdentifiers == 0)
                add("/privacy/k", "k-anonymity needs at least one column with role quasi_identifier");
        }
        if (const Value* s = find(*privacy, "suppression_limit")) p.suppressionLimit = s->GetDouble();
        if (const Value* l = find(*privacy, "l_diversity")) {
            anon::LDiversity ld;
            const std::string variant = str((*l)["variant"]);
            ld.variant = variant == "entropy"     ? anon::LDiversityVariant::Entropy
                         : variant == "recursive" ? anon::LDiversityVariant::Recursive
                                                  : anon::LDiversityVariant::Distinct;
            ld.l = (*l)["l"].GetDouble();
            if (ld.variant != anon::LDiversityVariant::Entropy && ld.l != std::floor(ld.l))
                add("/privacy/l_diversity/l", "must be a whole number for " + variant + " l-diversity");
            if (const Value* c = find(*l, "c")) {
                ld.c = c->GetDouble();
                if (ld.variant != anon::LDiversityVariant::Recursive)
                    add("/privacy/l_diversity/c", "c is only used by recursive (c,l)-diversity");
            } else if (ld.variant == anon::LDiversityVariant::Recursive) {
                add("/privacy/l_diversity", "recursive (c,l)-diversity needs the constant \"c\"");
            }
            if (sensitive.empty())
                add("/privacy/l_diversity", "l-diversity needs at least one column with role sensitive");
            p.lDiversity = ld;
        }
        if (const Value* t = find(*privacy, "t_closeness")) {
            p.tCloseness = anon::TCloseness{(*t)["t"].GetDouble()};
            if (const Value* d = find(*t, "distance")) {
                p.tClosenessDistance =
                    str(*d) == "ordered" ? anon::TClosenessDistance::Ordered : anon::TClosenessDistance::Equal;
                if (*p.tClosenessDistance == anon::TClosenessDistance::Ordered) {
                    for (const ColumnPolicy* c : sensitive)
                        if (!isNumericType(c->type))
                            add("/privacy/t_closeness/distance",
                                "the ordered distance needs values with an order, but the sensitive column \"" +
                                    printableForMessage(c->name) + "\" is text; use the equal distance");
                }
            }
            if (sensitive.empty())
                add("/privacy/t_closeness", "t-closeness needs at least one column with role sensitive");
        }
        if (quasiIdentifiers > 0 && !p.k && !p.lDiversity && !p.tCloseness)
            add("/privacy", "the policy declares quasi-identifiers but no privacy model; set k, l_diversity or "
                            "t_closeness");
    }

    void readOutput(PolicyModel& model) {
        const Value* output = find(doc_, "output");
        if (!output) return;
        if (const Value* formats = find(*output, "formats")) {
            model.output.formats.clear();
            for (const auto& f : formats->GetArray())
                model.output.formats.push_back(str(f) == "ndjson" ? OutputFormat::Ndjson : OutputFormat::Csv);
        }
        if (const Value* e = find(*output, "encryption_required")) model.output.encryptionRequired = e->GetBool();
        if (const Value* m = find(*output, "max_rows")) model.output.maxRows = m->GetUint64();
    }

    // ---- row filter --------------------------------------------------------------------------

    RowFilter readFilter(const Value& e, const std::string& at, const PolicyModel& model, int depth, size_t& nodes) {
        ++nodes;
        RowFilter f;
        if (depth > 32) {
            add(at, "the row filter is nested deeper than 32 levels");
            return f;
        }
        for (const char* logical : {"and", "or"}) {
            if (const Value* children = find(e, logical)) {
                f.kind = std::string_view(logical) == "and" ? RowFilter::Kind::And : RowFilter::Kind::Or;
                for (rapidjson::SizeType i = 0; i < children->Size(); ++i)
                    f.children.push_back(
                        readFilter((*children)[i], appendPointer(at + "/" + logical, i), model, depth + 1, nodes));
                return f;
            }
        }
        if (const Value* child = find(e, "not")) {
            f.kind = RowFilter::Kind::Not;
            f.children.push_back(readFilter(*child, at + "/not", model, depth + 1, nodes));
            return f;
        }
        f.kind = RowFilter::Kind::Comparison;
        f.column = str(e["column"]);
        parseFilterOp(str(e["op"]), f.op);
        const ColumnPolicy* column = model.column(f.column);
        if (!column) {
            add(at + "/column", "the row filter uses the column \"" + printableForMessage(f.column) +
                                    "\", which the policy does not declare");
        }
        const Value* value = find(e, "value");
        const bool listOp = f.op == FilterOp::In || f.op == FilterOp::NotIn;
        const bool nullOp = f.op == FilterOp::IsNull || f.op == FilterOp::IsNotNull;
        const std::string opName = filterOpName(f.op);
        if (nullOp) {
            if (value) add(at + "/value", "the operator " + opName + " takes no value");
            return f;
        }
        if (!value) {
            add(at, "the operator " + opName + " needs a \"value\"");
            return f;
        }
        if (listOp != value->IsArray()) {
            add(at + "/value", listOp ? "the operator " + opName + " needs a list of values"
                                      : "the operator " + opName + " compares with one value, not a list");
            return f;
        }
        if (listOp && value->Empty()) {
            add(at + "/value", "the operator " + opName + " needs at least one value");
            return f;
        }
        auto take = [&](const Value& v, const std::string& vp) {
            std::string text;
            if (v.IsString()) text = str(v);
            else if (v.IsInt64()) text = std::to_string(v.GetInt64());
            else if (v.IsUint64()) text = std::to_string(v.GetUint64());
            else anon::appendDecimal(text, v.GetDouble());
            if (column) {
                const bool numericColumn =
                    column->type == anon::ColumnType::Integer || column->type == anon::ColumnType::Decimal;
                const bool fits = numericColumn ? v.IsNumber() && valueFitsType(text, column->type)
                                                : v.IsString() && valueFitsType(text, column->type);
                if (!fits)
                    add(vp, quotedForMessage(v) + " is not " + aType(column->type) + ", but \"" +
                                printableForMessage(column->name) + "\" is " + aColumnOfType(column->type));
            }
            f.values.push_back(std::move(text));
        };
        if (listOp) {
            for (rapidjson::SizeType i = 0; i < value->Size(); ++i) take((*value)[i], appendPointer(at + "/value", i));
        } else {
            take(*value, at + "/value");
        }
        return f;
    }

    // ---- dataset -----------------------------------------------------------------------------

    void checkAgainstDataset(const PolicyModel& model) {
        const DatasetDescription* dataset = options_.dataset;
        if (!dataset) return;
        if (dataset->name != model.dataset)
            add("/dataset", "the policy is for the dataset \"" + printableForMessage(model.dataset) +
                                "\" but is checked against \"" + printableForMessage(dataset->name) + "\"");
        for (size_t i = 0; i < model.columns.size(); ++i) {
            const ColumnPolicy& c = model.columns[i];
            const std::string at = appendPointer("/columns", i);
            const DatasetColumn* d = dataset->column(c.name);
            if (!d) {
                add(at + "/name", "the dataset \"" + printableForMessage(dataset->name) + "\" has no column \"" +
                                      printableForMessage(c.name) + "\"");
                continue;
            }
            if (d->type != c.type)
                add(at + "/type",
                    "is " + std::string(typeName(c.type)) + " here but " + typeName(d->type) + " in the dataset");
            if (d->role && protection(c.role) < protection(*d->role))
                add(at + "/role", "the dataset classifies \"" + printableForMessage(c.name) + "\" as " +
                                      columnRoleName(*d->role) + "; a policy cannot release it as " +
                                      columnRoleName(c.role));
        }
    }

    // identifier > quasi-identifier = sensitive > insensitive.
    static int protection(ColumnRole role) {
        switch (role) {
        case ColumnRole::Identifier: return 2;
        case ColumnRole::QuasiIdentifier:
        case ColumnRole::Sensitive: return 1;
        case ColumnRole::Insensitive: return 0;
        }
        return 0;
    }

    const Value& doc_;
    const PolicyLoadOptions& options_;
    ValidationErrors& errors_;
    // The traits of a registered transform; none for an unknown name (reported elsewhere).
    anon::TransformSpec::Traits traitsOf(std::string_view name) const {
        const anon::TransformSpec* spec = registry_.find(name);
        return spec ? spec->traits : anon::TransformSpec::Traits{};
    }

    const anon::TransformRegistry& registry_;
};

}  // namespace

namespace {

// A huge broken document must not produce an unbounded report.
void capErrors(ValidationErrors& errors) {
    constexpr size_t kMaxReported = 1000;
    if (errors.size() <= kMaxReported) return;
    const size_t more = errors.size() - kMaxReported;
    errors.resize(kMaxReported);
    errors.push_back({"", "and " + std::to_string(more) + " more errors"});
}

PolicyLoadResult loadPolicyUncapped(std::string_view json, const PolicyLoadOptions& options);

}  // namespace

PolicyLoadResult loadPolicy(std::string_view json, const PolicyLoadOptions& options) {
    PolicyLoadResult result = loadPolicyUncapped(json, options);
    capErrors(result.errors);
    return result;
}

namespace {

PolicyLoadResult loadPolicyUncapped(std::string_view json, const PolicyLoadOptions& options) {
    PolicyLoadResult result;
    auto& errors = result.errors;
    try {
        if (json.size() > options.maxDocumentBytes) {
            errors.push_back({"", "the policy is larger than " + std::to_string(options.maxDocumentBytes) + " bytes"});
            return result;
        }
        if (nestingDepth(json, kMaxNesting) > kMaxNesting) {
            errors.push_back(
                {"", "the policy nests lists and objects deeper than " + std::to_string(kMaxNesting) + " levels"});
            return result;
        }
        rapidjson::Document doc;
        doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag |
                  rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
        if (doc.HasParseError()) {
            errors.push_back({"", std::string("the policy is not valid JSON: ") +
                                      rapidjson::GetParseError_En(doc.GetParseError()) + " (" +
                                      lineAndColumn(json, doc.GetErrorOffset()) + ")"});
            return result;
        }
        findDuplicatesAndInfinities(doc, "", errors);
        if (!errors.empty()) return result;
        errors = policySchemaChecker().check(doc);
        if (!errors.empty()) return result;

        auto policy = std::make_shared<Policy>();
        PolicyBuilder builder(*policy);
        SemanticChecker(doc, options, errors).run(builder.model(), builder.hierarchies());
        if (!errors.empty()) return result;
        if (builder.model().rowFilter) {
            if (auto sql = compileRowFilter(*builder.model().rowFilter); !sql) {
                errors.push_back({"/row_filter", sql.status().message()});
                return result;
            }
        }
        // The content hash is over the canonical bytes (json/canonical.hpp, non-integers allowed).
        auto content = json::canonicalJson(doc, json::Numbers::Decimal);
        if (!content) {
            errors.push_back({"", content.status().message()});
            return result;
        }
        builder.setContent(std::move(content).value());
        result.policy = std::move(policy);
    } catch (const std::bad_alloc&) {
        errors.push_back({"", "the policy is too large to process"});
    } catch (const std::exception& e) {
        errors.push_back({"", std::string("the policy could not be processed: ") + e.what()});
    }
    return result;
}

}  // namespace

namespace {

// Whether `v` nests arrays/objects deeper than `limit` (recursion stops at the limit).
bool nestsDeeperThan(const Value& v, size_t limit) {
    if (!v.IsObject() && !v.IsArray()) return false;
    if (limit == 0) return true;
    if (v.IsObject()) {
        for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m)
            if (nestsDeeperThan(m->value, limit - 1)) return true;
        return false;
    }
    for (const auto& item : v.GetArray())
        if (nestsDeeperThan(item, limit - 1)) return true;
    return false;
}

}  // namespace

HierarchyDeclarationCheck checkHierarchyDeclaration(const rapidjson::Value& declaration, const std::string& pointer,
                                                    const std::string& column, anon::ColumnType type,
                                                    const PolicyLoadOptions& options) {
    HierarchyDeclarationCheck out;
    try {
        if (nestsDeeperThan(declaration, kMaxNesting)) {
            out.errors.push_back({pointer, "the hierarchy nests lists and objects deeper than " +
                                               std::to_string(kMaxNesting) + " levels"});
            return out;
        }
        findDuplicatesAndInfinities(declaration, pointer, out.errors);
        if (!out.errors.empty()) return out;
        out.errors = policySchemaChecker().checkAt(declaration, "/definitions/hierarchy", pointer);
        if (!out.errors.empty()) return out;
        ColumnPolicy c;
        c.name = column;
        c.type = type;
        c.role = ColumnRole::QuasiIdentifier;
        HierarchyMap hierarchies;
        SemanticChecker(declaration, options, out.errors).checkDeclaration(declaration, pointer, c, hierarchies);
        if (!out.errors.empty()) return out;
        out.spec = std::move(c.hierarchy);
        if (auto h = hierarchies.find(column); h != hierarchies.end()) out.hierarchy = h->second;
    } catch (const std::bad_alloc&) {
        out.errors.push_back({pointer, "the hierarchy is too large to process"});
    } catch (const std::exception& e) {
        out.errors.push_back({pointer, std::string("the hierarchy could not be processed: ") + e.what()});
    }
    return out;
}

RowFilterCheck checkRowFilter(const rapidjson::Value& filter, const std::string& pointer, const PolicyModel& model) {
    RowFilterCheck out;
    try {
        if (nestsDeeperThan(filter, kMaxNesting)) {
            out.errors.push_back({pointer, "the row filter nests lists and objects deeper than " +
                                               std::to_string(kMaxNesting) + " levels"});
            return out;
        }
        findDuplicatesAndInfinities(filter, pointer, out.errors);
        if (!out.errors.empty()) return out;
        out.errors = policySchemaChecker().checkAt(filter, "/definitions/expression", pointer);
        if (!out.errors.empty()) return out;
        const PolicyLoadOptions options;
        RowFilter f = SemanticChecker(filter, options, out.errors).readStandaloneFilter(filter, pointer, model);
        if (!out.errors.empty()) return out;
        if (auto sql = compileRowFilter(f); !sql) {
            out.errors.push_back({pointer, sql.status().message()});
            return out;
        }
        out.filter = std::move(f);
    } catch (const std::bad_alloc&) {
        out.errors.push_back({pointer, "the row filter is too large to process"});
    } catch (const std::exception& e) {
        out.errors.push_back({pointer, std::string("the row filter could not be processed: ") + e.what()});
    }
    return out;
}

PolicyLoadResult loadPolicyFile(const std::filesystem::path& path, PolicyLoadOptions options) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return {nullptr, {{"", "cannot read \"" + path.string() + "\": " + ec.message()}}};
    if (size > options.maxDocumentBytes)
        return {nullptr,
                {{"", "the policy file is larger than " + std::to_string(options.maxDocumentBytes) + " bytes"}}};
    std::ifstream in(path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) return {nullptr, {{"", "cannot read \"" + path.string() + "\""}}};
    if (!options.hierarchyBaseDirectory) {
        const auto parent = path.parent_path();
        options.hierarchyBaseDirectory = parent.empty() ? std::filesystem::path(".") : parent;
    }
    return loadPolicy(bytes.str(), options);
}

}  // namespace custodian::policies
