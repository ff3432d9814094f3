// round: round each number to a multiple of `base` — to the nearest (ties away from zero), down
// (towards minus infinity) or up (towards plus infinity).
#include "anonymizer/transforms/builtin.hpp"

#include <cmath>

namespace custodian::anon::transforms {
namespace {

enum class Mode { Nearest, Down, Up };

class Round final : public ColumnTransform {
public:
    Round(ColumnType type, double base, Mode mode) : type_(type), base_(base), mode_(mode) {}

    std::string_view name() const noexcept override { return "round"; }
    std::optional<ColumnType> outputType() const noexcept override { return type_; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        const Column& in = batch.column(column);
        auto out = std::make_shared<Column>(type_);
        out->reserve(in.size());
        for (size_t r = 0; r < in.size(); ++r) {
            if (in.isNull(r)) {
                out->appendNull();
            } else if (type_ == ColumnType::Integer) {
                const auto rounded = roundInteger(in.integer(r));
                if (!rounded)
                    return invalidArgument("line " + std::to_string(batch.sourceLine(r)) + ": " +
                                           std::to_string(in.integer(r)) + " cannot be rounded without overflow");
                out->appendInteger(*rounded);
            } else {
                out->appendDecimal(roundDecimal(in.decimal(r)));
            }
        }
        return ColumnPtr(std::move(out));
    }

private:
    // Exact integer arithmetic (a double loses precision above 2^53).
    std::optional<int64_t> roundInteger(int64_t v) const {
        const auto base = static_cast<int64_t>(base_);
        int64_t q = v / base;
        int64_t rem = v % base;
        if (rem < 0) {  // floor division
            rem += base;
            --q;
        }
        bool up = false;
        switch (mode_) {
        case Mode::Down: up = false; break;
        case Mode::Up: up = rem != 0; break;
        case Mode::Nearest:
            // ties away from zero: for negative values the tie goes down (q stays)
            // (base <= 10^18, so 2 * rem cannot overflow)
            up = 2 * rem > base || (2 * rem == base && v >= 0);
            break;
        }
        int64_t result = 0;
        if (__builtin_add_overflow(q, up ? 1 : 0, &q) || __builtin_mul_overflow(q, base, &result)) return std::nullopt;
        return result;
    }

    double roundDecimal(double v) const {
        const double q = v / base_;
        switch (mode_) {
        case Mode::Down: return std::floor(q) * base_;
        case Mode::Up: return std::ceil(q) * base_;
        case Mode::Nearest: break;
        }
        return std::round(q) * base_;
    }

    ColumnType type_;
    double base_;
    Mode mode_;
};

}  // namespace

TransformSpec roundSpec() {
    return {"round",
            "Round each number to a multiple of a base.",
            {{"base", ParamType::Number, true, "the numbers released are multiples of this (> 0)"},
             {"mode", ParamType::String, false, "nearest (ties away from zero), down or up; default nearest"}},
            {ColumnType::Integer, ColumnType::Decimal},
            [](const Params& params, const TransformContext&, ColumnType input) -> Result<TransformPtr> {
                const double base = paramNumber(params, "base", 0);
                if (!(base > 0) || !std::isfinite(base)) return invalidArgument("round: base must be a number > 0");
                if (input == ColumnType::Integer && (base != std::trunc(base) || base > 1e18))
                    return invalidArgument("round: the base of an integer column must be an integer up to 10^18");
                const std::string modeName = paramString(params, "mode", "nearest");
                Mode mode = Mode::Nearest;
                if (modeName == "down") mode = Mode::Down;
                else if (modeName == "up") mode = Mode::Up;
                else if (modeName != "nearest")
                    return invalidArgument("round: mode must be 'nearest', 'down' or 'up', got '" + modeName + "'");
                return TransformPtr(std::make_shared<Round>(input, base, mode));
            }};
}

}  // namespace custodian::anon::transforms
