// drop: the column is not released at all.
#include "anonymizer/transforms/builtin.hpp"

namespace custodian::anon::transforms {
namespace {

class Drop final : public ColumnTransform {
public:
    std::string_view name() const noexcept override { return "drop"; }
    std::optional<ColumnType> outputType() const noexcept override { return std::nullopt; }
    Result<ColumnPtr> apply(const Batch&, size_t) const override {
        // TransformPlan skips columns whose outputType() is nullopt; reaching this is a caller bug.
        return internalError("drop: the column is removed and has no output values");
    }
};

}  // namespace

TransformSpec dropSpec() {
    return {"drop",
            "Remove the column from the release.",
            {},
            {},
            [](const Params&, const TransformContext&, ColumnType) -> Result<TransformPtr> {
                return TransformPtr(std::make_shared<Drop>());
            },
            {.deidentifies = true, .removesColumn = true}};
}

}  // namespace custodian::anon::transforms
