// constant: replace every value (nulls included) with one value of the column's type.
#include "anonymizer/transforms/builtin.hpp"

namespace custodian::anon::transforms {
namespace {

class Constant final : public ColumnTransform {
public:
    explicit Constant(Column value) : value_(std::move(value)) {}
    std::string_view name() const noexcept override { return "constant"; }
    std::optional<ColumnType> outputType() const noexcept override { return value_.type(); }
    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        auto out = std::make_shared<Column>(value_.type());
        const size_t rows = batch.column(column).size();
        out->reserve(rows, value_.type() == ColumnType::Text ? rows * value_.text(0).size() : 0);
        for (size_t r = 0; r < rows; ++r) {
            switch (value_.type()) {
            case ColumnType::Text: out->appendText(value_.text(0)); break;
            case ColumnType::Decimal: out->appendDecimal(value_.decimal(0)); break;
            case ColumnType::Integer: out->appendInteger(value_.integer(0)); break;
            case ColumnType::Date: out->appendDate(value_.date(0)); break;
            case ColumnType::Timestamp: out->appendTimestamp(value_.timestamp(0)); break;
            }
        }
        return ColumnPtr(std::move(out));
    }

private:
    Column value_;  // one row: the constant, parsed once for the column's type
};

}  // namespace

TransformSpec constantSpec() {
    return {"constant",
            "Replace every value with one constant of the column's type.",
            {{"value", ParamType::String, true, "the constant, written as in the CSV input (e.g. 0, 2020-01-01, n/a)"}},
            {},
            [](const Params& params, const TransformContext&, ColumnType input) -> Result<TransformPtr> {
                const std::string text = paramString(params, "value", "");
                Column value(input);
                if (!value.appendParsed(text))
                    return invalidArgument("constant: '" + text + "' is not a valid " + columnTypeName(input) +
                                           " value");
                return TransformPtr(std::make_shared<Constant>(std::move(value)));
            },
            {.deidentifies = true}};
}

}  // namespace custodian::anon::transforms
