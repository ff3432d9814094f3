// keep: release the column unchanged (shares the column, no copy).
#include "anonymizer/transforms/builtin.hpp"

namespace custodian::anon::transforms {
namespace {

class Keep final : public ColumnTransform {
public:
    explicit Keep(ColumnType type) : type_(type) {}
    std::string_view name() const noexcept override { return "keep"; }
    std::optional<ColumnType> outputType() const noexcept override { return type_; }
    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override { return batch.columnPtr(column); }

private:
    ColumnType type_;
};

}  // namespace

TransformSpec keepSpec() {
    return {"keep",
            "Release the column unchanged.",
            {},
            {},
            [](const Params&, const TransformContext&, ColumnType input) -> Result<TransformPtr> {
                return TransformPtr(std::make_shared<Keep>(input));
            }};
}

}  // namespace custodian::anon::transforms
