// top_bottom_coding: values above `top` become `top`, values below `bottom` become `bottom`
// (censoring the tails, where outliers identify people). At least one bound is required.
#include "anonymizer/transforms/builtin.hpp"

#include <cmath>

namespace custodian::anon::transforms {
namespace {

class TopBottomCoding final : public ColumnTransform {
public:
    TopBottomCoding(ColumnType type, std::optional<double> bottom, std::optional<double> top)
        : type_(type), bottom_(bottom), top_(top) {}

    std::string_view name() const noexcept override { return "top_bottom_coding"; }
    std::optional<ColumnType> outputType() const noexcept override { return type_; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        const Column& in = batch.column(column);
        auto out = std::make_shared<Column>(type_);
        out->reserve(in.size());
        for (size_t r = 0; r < in.size(); ++r) {
            if (in.isNull(r)) {
                out->appendNull();
            } else if (type_ == ColumnType::Integer) {
                int64_t v = in.integer(r);
                if (top_ && static_cast<double>(v) > *top_) v = static_cast<int64_t>(*top_);
                if (bottom_ && static_cast<double>(v) < *bottom_) v = static_cast<int64_t>(*bottom_);
                out->appendInteger(v);
            } else {
                double v = in.decimal(r);
                if (top_ && v > *top_) v = *top_;
                if (bottom_ && v < *bottom_) v = *bottom_;
                out->appendDecimal(v);
            }
        }
        return ColumnPtr(std::move(out));
    }

private:
    ColumnType type_;
    std::optional<double> bottom_;
    std::optional<double> top_;
};

}  // namespace

TransformSpec topBottomCodingSpec() {
    return {"top_bottom_coding",
            "Replace values above a top code with it and values below a bottom code with it.",
            {{"top", ParamType::Number, false, "largest value released; larger values become this"},
             {"bottom", ParamType::Number, false, "smallest value released; smaller values become this"}},
            {ColumnType::Integer, ColumnType::Decimal},
            [](const Params& params, const TransformContext&, ColumnType input) -> Result<TransformPtr> {
                const auto top = paramNumber(params, "top");
                const auto bottom = paramNumber(params, "bottom");
                if (!top && !bottom)
                    return invalidArgument("top_bottom_coding needs parameter 'top' or 'bottom' (number)");
                if ((top && !std::isfinite(*top)) || (bottom && !std::isfinite(*bottom)))
                    return invalidArgument("top_bottom_coding: bounds must be finite numbers");
                if (top && bottom && *bottom > *top)
                    return invalidArgument("top_bottom_coding: bottom must not exceed top");
                if (input == ColumnType::Integer) {
                    // 2^63 as a double: anything at or beyond it does not fit an int64.
                    constexpr double kLimit = 9223372036854775808.0;
                    for (const auto& bound : {top, bottom})
                        if (bound && (*bound != std::trunc(*bound) || *bound >= kLimit || *bound < -kLimit))
                            return invalidArgument("top_bottom_coding: bounds of an integer column must be integers");
                }
                return TransformPtr(std::make_shared<TopBottomCoding>(input, bottom, top));
            }};
}

}  // namespace custodian::anon::transforms
