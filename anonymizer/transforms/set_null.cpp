// set_null: release the column with every value missing (keeps the column and its type).
#include "anonymizer/transforms/builtin.hpp"

namespace custodian::anon::transforms {
namespace {

class SetNull final : public ColumnTransform {
public:
    explicit SetNull(ColumnType type) : type_(type) {}
    std::string_view name() const noexcept override { return "set_null"; }
    std::optional<ColumnType> outputType() const noexcept override { return type_; }
    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        auto out = std::make_shared<Column>(type_);
        const size_t rows = batch.column(column).size();
        out->reserve(rows);
        for (size_t r = 0; r < rows; ++r) out->appendNull();
        return ColumnPtr(std::move(out));
    }

private:
    ColumnType type_;
};

}  // namespace

TransformSpec setNullSpec() {
    return {"set_null",
            "Replace every value with null.",
            {},
            {},
            [](const Params&, const TransformContext&, ColumnType input) -> Result<TransformPtr> {
                return TransformPtr(std::make_shared<SetNull>(input));
            },
            {.deidentifies = true}};
}

}  // namespace custodian::anon::transforms
