// generalize: replace each value with its ancestor at a fixed level of a hierarchy (level 0 = the
// value itself, as its canonical text). Values the hierarchy does not cover are an error naming them;
// null is looked up as the empty string, like LeafEncoder.
#include "anonymizer/hierarchy.hpp"
#include "anonymizer/transforms/builtin.hpp"

namespace custodian::anon::transforms {
namespace {

class Generalize final : public ColumnTransform {
public:
    Generalize(std::shared_ptr<const Hierarchy> hierarchy, int level)
        : hierarchy_(std::move(hierarchy)), level_(level) {}

    std::string_view name() const noexcept override { return "generalize"; }
    std::optional<ColumnType> outputType() const noexcept override { return ColumnType::Text; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        // One encoder per call: its integer cache is mutable state, and transforms are shared.
        LeafEncoder encoder(hierarchy_);
        std::vector<uint32_t> codes;
        if (Status s = encoder.encode(batch, column, codes); !s) return s;
        auto out = std::make_shared<Column>(ColumnType::Text);
        out->reserve(codes.size(), codes.size() * 8);
        for (const uint32_t leaf : codes)
            out->appendText(hierarchy_->label(level_, hierarchy_->generalize(leaf, level_)));
        return ColumnPtr(std::move(out));
    }

private:
    std::shared_ptr<const Hierarchy> hierarchy_;
    int level_;
};

}  // namespace

TransformSpec generalizeSpec() {
    return {"generalize",
            "Replace each value with its generalization at a fixed level of a hierarchy.",
            {{"hierarchy", ParamType::String, true, "name of the hierarchy"},
             {"level", ParamType::Integer, true, "level to release, 0 (original values) to the hierarchy's top"}},
            {},
            [](const Params& params, const TransformContext& context, ColumnType) -> Result<TransformPtr> {
                const std::string name = paramString(params, "hierarchy", "");
                std::shared_ptr<const Hierarchy> hierarchy = context.hierarchies ? context.hierarchies(name) : nullptr;
                if (!hierarchy) return invalidArgument("generalize: unknown hierarchy '" + name + "'");
                const int64_t level = paramInt(params, "level", 0);
                if (level < 0 || level >= hierarchy->levels())
                    return invalidArgument("generalize: level " + std::to_string(level) + " is outside hierarchy '" +
                                           name + "' (levels 0 to " + std::to_string(hierarchy->levels() - 1) + ")");
                return TransformPtr(std::make_shared<Generalize>(std::move(hierarchy), static_cast<int>(level)));
            },
            {.usesHierarchy = true}};
}

}  // namespace custodian::anon::transforms
