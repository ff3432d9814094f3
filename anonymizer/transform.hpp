#pragma once
// Column transforms: small immutable objects built once per release from a policy's parameters and
// applied to every batch (Envoy's "config once, instances per request"). A TransformRegistry maps
// names to factories and describes each transform's parameters, which the policy validator uses for
// its messages ("columns.email.transform: mask needs parameter 'keep_last' (integer)").
//
// The registry is filled explicitly by registerBuiltinTransforms() — no static initializers, which
// silently disappear from static libraries.
//
// Thread-safety: a built ColumnTransform is immutable; apply() may run concurrently on different
// batches. The RandomSource used by noise must then be thread-safe (libsodium's is).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "anonymizer/status.hpp"
#include "anonymizer/table.hpp"

namespace custodian::anon {

class Hierarchy;

using ParamValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>>;
using Params = std::map<std::string, ParamValue, std::less<>>;

enum class ParamType { Bool, Integer, Number, String, StringList };
// "boolean", "integer", "number", "string", "list of strings"
const char* paramTypeName(ParamType type) noexcept;

struct ParamDescriptor {
    std::string name;
    ParamType type;
    bool required;
    std::string description;
    // A String parameter whose value names another column of the same table (date_shift's
    // key_column): a policy must declare that column.
    bool namesColumn = false;
};

// Source of uniformly random bytes; injected so that tests are deterministic.
class RandomSource {
public:
    virtual ~RandomSource() = default;
    virtual void fill(std::span<uint8_t> out) = 0;
};
// libsodium's randombytes_buf (thread-safe, process-wide).
std::shared_ptr<RandomSource> systemRandomSource();

// 32-byte master key for keyed transforms, held in sodium_malloc memory (guarded, locked, wiped on
// destruction). Move-only so that it is never copied by accident.
class MasterKey {
public:
    static constexpr size_t kBytes = 32;
    static Result<MasterKey> fromBytes(std::span<const uint8_t> bytes);
    // A fresh random key (crypto_kdf_keygen).
    static Result<MasterKey> generate();

    MasterKey(MasterKey&& other) noexcept : bytes_(std::exchange(other.bytes_, nullptr)) {}
    MasterKey& operator=(MasterKey&& other) noexcept;
    MasterKey(const MasterKey&) = delete;
    MasterKey& operator=(const MasterKey&) = delete;
    ~MasterKey();

    const uint8_t* data() const noexcept { return bytes_; }

private:
    explicit MasterKey(uint8_t* bytes) : bytes_(bytes) {}
    uint8_t* bytes_;
};

// How the keys of pseudonymize and date_shift are derived from the master key
// (docs/formats/csv-and-hierarchies.md, "Keyed transforms").
enum class KeyDerivation : uint8_t {
    // Version 1: one key per (dataset, recipient). Releases of two policies of one dataset to one
    // recipient share pseudonyms, so they join; kept only to reproduce releases made under it.
    DatasetRecipient = 1,
    // Version 2: one key per (dataset, policy, recipient): unlinkable across policies.
    DatasetPolicyRecipient = 2,
};
inline constexpr KeyDerivation kCurrentKeyDerivation = KeyDerivation::DatasetPolicyRecipient;

// Whose key a release's keyed transforms use: what the derivation hashes into the subkey id.
struct KeyScope {
    KeyDerivation derivation = kCurrentKeyDerivation;
    std::string dataset;
    std::string policy;     // the policy's name (not its version); not used by version 1
    std::string recipient;  // the partner principal
};

// What a release supplies besides the policy's parameters.
struct TransformContext {
    KeyScope keyScope;                     // keys pseudonymize and date_shift
    const MasterKey* masterKey = nullptr;  // needed by pseudonymize and date_shift; must outlive the transforms
    // Resolves a hierarchy name used by `generalize`; may return null for an unknown name.
    std::function<std::shared_ptr<const Hierarchy>(std::string_view)> hierarchies;
    std::shared_ptr<RandomSource> random;  // for noise; null means systemRandomSource()
};

class ColumnTransform {
public:
    virtual ~ColumnTransform() = default;
    virtual std::string_view name() const noexcept = 0;
    // Type of the released column, or nullopt when the column is removed (drop).
    virtual std::optional<ColumnType> outputType() const noexcept = 0;
    // The released column for batch.column(column), which has the input type the transform was built
    // for. Not called when outputType() is nullopt.
    virtual Result<ColumnPtr> apply(const Batch& batch, size_t column) const = 0;
};

using TransformPtr = std::shared_ptr<const ColumnTransform>;

struct TransformSpec {
    using Factory = std::function<Result<TransformPtr>(const Params&, const TransformContext&, ColumnType input)>;
    std::string name;
    std::string description;  // one line
    std::vector<ParamDescriptor> params;
    std::vector<ColumnType> inputTypes;  // column types it applies to; empty = every type
    Factory create;
    // What the transform does to a column, as data: the policy checks and the release plan ask
    // these flags instead of comparing names.
    struct Traits {
        bool deidentifies = false;   // removes or replaces every value: allowed on identifier columns
        bool usesHierarchy = false;  // releases one level of the column's hierarchy (its QI recoding)
        bool removesColumn = false;  // the column is not in the release at all
    };
    Traits traits{};

    // The descriptor of parameter `paramName`; null when the transform takes no such parameter.
    const ParamDescriptor* param(std::string_view paramName) const noexcept;
};

class TransformRegistry {
public:
    Status add(TransformSpec spec);
    const TransformSpec* find(std::string_view name) const noexcept;
    const std::vector<TransformSpec>& specs() const noexcept { return specs_; }
    std::vector<std::string> names() const;

    // Checks the parameters against the descriptors (unknown names, missing required ones, types);
    // messages start with the transform name: "mask needs parameter 'keep_last' (integer)".
    Status validate(std::string_view name, const Params& params) const;
    // validate() plus whether the transform applies to a column of type `input`.
    Status validate(std::string_view name, const Params& params, ColumnType input) const;
    // validate() and build.
    Result<TransformPtr> create(std::string_view name, const Params& params, const TransformContext& context,
                                ColumnType input) const;

private:
    std::vector<TransformSpec> specs_;
};

// drop, keep, mask, pseudonymize, generalize, top_bottom_coding, round, laplace_noise, date_shift,
// set_null, constant.
void registerBuiltinTransforms(TransformRegistry& registry);
// One registry holding the built-in transforms, filled on first use and only read afterwards (safe
// to share between threads).
const TransformRegistry& builtinTransforms();
// The traits of built-in transform `name`; none for an unknown name.
TransformSpec::Traits builtinTraits(std::string_view name);

// Typed parameter access for factories (after validate(): types are right). A Number parameter
// accepts an integer value.
bool paramBool(const Params& params, std::string_view name, bool fallback);
int64_t paramInt(const Params& params, std::string_view name, int64_t fallback);
double paramNumber(const Params& params, std::string_view name, double fallback);
std::optional<double> paramNumber(const Params& params, std::string_view name);
std::string paramString(const Params& params, std::string_view name, std::string fallback);

// One transform per input column, applied batch by batch. Every input column needs a step (a
// column is released unchanged only through an explicit `keep`), so nothing leaves by omission.
class TransformPlan {
public:
    struct Step {
        std::string column;
        TransformPtr transform;
    };
    static Result<TransformPlan> make(SchemaPtr input, std::vector<Step> steps);

    const SchemaPtr& inputSchema() const noexcept { return input_; }
    const SchemaPtr& outputSchema() const noexcept { return output_; }
    // The released batch: transformed columns, dropped ones removed, the same suppression mask and
    // source lines (rows are never copied or reordered).
    Result<Batch> apply(const Batch& batch) const;

private:
    SchemaPtr input_;
    SchemaPtr output_;
    std::vector<TransformPtr> byInputColumn_;
};

}  // namespace custodian::anon
