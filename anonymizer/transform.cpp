#include "anonymizer/transform.hpp"

#include <cstdio>
#include <cstdlib>

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "anonymizer/transforms/builtin.hpp"
#include "anonymizer/transforms/keyed_hash.hpp"

namespace custodian::anon {

const char* paramTypeName(ParamType type) noexcept {
    switch (type) {
    case ParamType::Bool: return "boolean";
    case ParamType::Integer: return "integer";
    case ParamType::Number: return "number";
    case ParamType::String: return "string";
    case ParamType::StringList: return "list of strings";
    }
    return "value";
}

namespace {

class SodiumRandomSource final : public RandomSource {
public:
    void fill(std::span<uint8_t> out) override { randombytes_buf(out.data(), out.size()); }
};

const char* valueTypeNoun(const ParamValue& value) {
    switch (value.index()) {
    case 0: return "a boolean";
    case 1: return "an integer";
    case 2: return "a number";
    case 3: return "a string";
    default: return "a list of strings";
    }
}

const char* paramTypeNoun(ParamType type) {
    switch (type) {
    case ParamType::Bool: return "a boolean";
    case ParamType::Integer: return "an integer";
    case ParamType::Number: return "a number";
    case ParamType::String: return "a string";
    case ParamType::StringList: return "a list of strings";
    }
    return "a value";
}

bool matches(ParamType type, const ParamValue& value) {
    switch (type) {
    case ParamType::Bool: return std::holds_alternative<bool>(value);
    case ParamType::Integer: return std::holds_alternative<int64_t>(value);
    case ParamType::Number: return std::holds_alternative<double>(value) || std::holds_alternative<int64_t>(value);
    case ParamType::String: return std::holds_alternative<std::string>(value);
    case ParamType::StringList: return std::holds_alternative<std::vector<std::string>>(value);
    }
    return false;
}

}  // namespace

std::shared_ptr<RandomSource> systemRandomSource() {
    ensureSodium();
    static const auto source = std::make_shared<SodiumRandomSource>();
    return source;
}

Result<MasterKey> MasterKey::fromBytes(std::span<const uint8_t> bytes) {
    if (bytes.size() != kBytes)
        return invalidArgument("a master key has " + std::to_string(kBytes) + " bytes, got " +
                               std::to_string(bytes.size()));
    if (!ensureSodium()) return internalError("libsodium failed to initialize");
    auto* key = static_cast<uint8_t*>(sodium_malloc(kBytes));
    if (key == nullptr) return Status(StatusCode::ResourceExhausted, "cannot allocate secure memory for a key");
    std::memcpy(key, bytes.data(), kBytes);
    return MasterKey(key);
}

Result<MasterKey> MasterKey::generate() {
    if (!ensureSodium()) return internalError("libsodium failed to initialize");
    auto* key = static_cast<uint8_t*>(sodium_malloc(kBytes));
    if (key == nullptr) return Status(StatusCode::ResourceExhausted, "cannot allocate secure memory for a key");
    crypto_kdf_keygen(key);
    return MasterKey(key);
}

MasterKey& MasterKey::operator=(MasterKey&& other) noexcept {
    if (this != &other) {
        if (bytes_ != nullptr) sodium_free(bytes_);
        bytes_ = std::exchange(other.bytes_, nullptr);
    }
    return *this;
}

MasterKey::~MasterKey() {
    if (bytes_ != nullptr) sodium_free(bytes_);
}

Status TransformRegistry::add(TransformSpec spec) {
    if (spec.name.empty() || !spec.create) return invalidArgument("transform without a name or a factory");
    if (find(spec.name) != nullptr) return invalidArgument("transform '" + spec.name + "' is registered twice");
    specs_.push_back(std::move(spec));
    return Status::ok();
}

const TransformSpec* TransformRegistry::find(std::string_view name) const noexcept {
    for (const auto& spec : specs_)
        if (spec.name == name) return &spec;
    return nullptr;
}

std::vector<std::string> TransformRegistry::names() const {
    std::vector<std::string> names;
    for (const auto& spec : specs_) names.push_back(spec.name);
    std::sort(names.begin(), names.end());
    return names;
}

const ParamDescriptor* TransformSpec::param(std::string_view paramName) const noexcept {
    const auto it = std::find_if(params.begin(), params.end(),
                                 [paramName](const ParamDescriptor& d) { return d.name == paramName; });
    return it == params.end() ? nullptr : &*it;
}

Status TransformRegistry::validate(std::string_view name, const Params& params) const {
    const TransformSpec* spec = find(name);
    if (spec == nullptr) {
        std::string known;
        for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
        return invalidArgument("unknown transform '" + std::string(name) + "' (known: " + known + ")");
    }
    for (const auto& [key, value] : params) {
        const ParamDescriptor* it = spec->param(key);
        if (it == nullptr) {
            std::string known;
            for (const auto& d : spec->params) known += (known.empty() ? "" : ", ") + d.name;
            return invalidArgument(spec->name + ": unknown parameter '" + key + "'" +
                                   (known.empty() ? std::string(" (it takes none)") : " (known: " + known + ")"));
        }
        if (!matches(it->type, value))
            return invalidArgument(spec->name + ": parameter '" + key + "' must be " + paramTypeNoun(it->type) +
                                   ", got " + valueTypeNoun(value));
    }
    for (const auto& d : spec->params) {
        if (d.required && params.find(d.name) == params.end())
            return invalidArgument(spec->name + " needs parameter '" + d.name + "' (" + paramTypeName(d.type) + ")");
    }
    return Status::ok();
}

Status TransformRegistry::validate(std::string_view name, const Params& params, ColumnType input) const {
    if (Status s = validate(name, params); !s) return s;
    const TransformSpec* spec = find(name);
    if (spec->inputTypes.empty() ||
        std::find(spec->inputTypes.begin(), spec->inputTypes.end(), input) != spec->inputTypes.end())
        return Status::ok();
    std::string accepted;
    for (const auto t : spec->inputTypes) accepted += (accepted.empty() ? "" : ", ") + std::string(columnTypeName(t));
    return invalidArgument(spec->name + " does not apply to " + columnTypeName(input) +
                           " columns (applies to: " + accepted + ")");
}

Result<TransformPtr> TransformRegistry::create(std::string_view name, const Params& params,
                                               const TransformContext& context, ColumnType input) const {
    if (Status s = validate(name, params, input); !s) return s;
    return find(name)->create(params, context, input);
}

bool paramBool(const Params& params, std::string_view name, bool fallback) {
    const auto it = params.find(name);
    return it != params.end() && std::holds_alternative<bool>(it->second) ? std::get<bool>(it->second) : fallback;
}

int64_t paramInt(const Params& params, std::string_view name, int64_t fallback) {
    const auto it = params.find(name);
    return it != params.end() && std::holds_alternative<int64_t>(it->second) ? std::get<int64_t>(it->second) : fallback;
}

std::optional<double> paramNumber(const Params& params, std::string_view name) {
    const auto it = params.find(name);
    if (it == params.end()) return std::nullopt;
    if (std::holds_alternative<double>(it->second)) return std::get<double>(it->second);
    if (std::holds_alternative<int64_t>(it->second)) return static_cast<double>(std::get<int64_t>(it->second));
    return std::nullopt;
}

double paramNumber(const Params& params, std::string_view name, double fallback) {
    return paramNumber(params, name).value_or(fallback);
}

std::string paramString(const Params& params, std::string_view name, std::string fallback) {
    const auto it = params.find(name);
    if (it != params.end() && std::holds_alternative<std::string>(it->second)) return std::get<std::string>(it->second);
    return fallback;
}

void registerBuiltinTransforms(TransformRegistry& registry) {
    using namespace transforms;
    for (auto spec : {dropSpec(), keepSpec(), maskSpec(), pseudonymizeSpec(), generalizeSpec(), topBottomCodingSpec(),
                      roundSpec(), laplaceNoiseSpec(), dateShiftSpec(), setNullSpec(), constantSpec()}) {
        // Built-in names are distinct and well formed: a failure is a programming error.
        if (Status s = registry.add(std::move(spec)); !s) {
            std::fprintf(stderr, "custodian: a built-in transform failed to register: %s\n", s.message().c_str());
            std::abort();
        }
    }
}

const TransformRegistry& builtinTransforms() {
    static const TransformRegistry registry = [] {
        TransformRegistry r;
        registerBuiltinTransforms(r);
        return r;
    }();
    return registry;
}

TransformSpec::Traits builtinTraits(std::string_view name) {
    const TransformSpec* spec = builtinTransforms().find(name);
    return spec ? spec->traits : TransformSpec::Traits{};
}

Result<TransformPlan> TransformPlan::make(SchemaPtr input, std::vector<Step> steps) {
    if (!input) return invalidArgument("transform plan without an input schema");
    std::vector<TransformPtr> byColumn(input->size());
    for (auto& step : steps) {
        const auto index = input->indexOf(step.column);
        if (!index) return invalidArgument("transform for unknown column '" + step.column + "'");
        if (!step.transform) return invalidArgument("column '" + step.column + "': no transform");
        if (byColumn[*index]) return invalidArgument("column '" + step.column + "' has two transforms");
        byColumn[*index] = std::move(step.transform);
    }
    std::vector<ColumnSpec> outputColumns;
    for (size_t c = 0; c < input->size(); ++c) {
        if (!byColumn[c])
            return invalidArgument("column '" + (*input)[c].name +
                                   "' has no transform (use 'keep' to release it as is)");
        if (auto type = byColumn[c]->outputType()) outputColumns.push_back({(*input)[c].name, *type});
    }
    auto output = Schema::make(std::move(outputColumns));
    if (!output) return output.status();
    TransformPlan plan;
    plan.input_ = std::move(input);
    plan.output_ = std::make_shared<const Schema>(std::move(output.value()));
    plan.byInputColumn_ = std::move(byColumn);
    return plan;
}

Result<Batch> TransformPlan::apply(const Batch& batch) const {
    if (batch.schema().columns().size() != input_->size())
        return invalidArgument("batch does not have the plan's input schema");
    std::vector<ColumnPtr> columns;
    columns.reserve(output_->size());
    for (size_t c = 0; c < input_->size(); ++c) {
        const auto& transform = byInputColumn_[c];
        if (!transform->outputType()) continue;
        auto column = transform->apply(batch, c);
        if (!column)
            return column.status().withContext("column '" + (*input_)[c].name + "' (" + std::string(transform->name()) +
                                               ")");
        columns.push_back(std::move(column.value()));
    }
    auto out = Batch::make(output_, std::move(columns), batch.sourceLines());
    if (!out) return out.status();
    if (Status s = out->copySuppression(batch); !s) return s;
    return out;
}

}  // namespace custodian::anon
