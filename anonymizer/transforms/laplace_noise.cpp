// laplace_noise: add Laplace noise of scale b = sensitivity / epsilon to each number (density
// exp(-|x|/b) / 2b). Integer columns receive the noisy value rounded to the nearest integer.
//
// Sampling: 53 random bits u give p = (u + 0.5) / 2^53 in (0, 1), never 0 or 1; the noise is the
// inverse CDF, b*ln(2p) for p < 1/2 and -b*ln(2(1-p)) otherwise. This is perturbation for
// statistical disclosure control; floating-point Laplace sampling is known not to give a formal
// differential-privacy guarantee on its own (Mironov 2012), so the release still relies on the
// policy's privacy model.
#include "anonymizer/transforms/builtin.hpp"

#include <cmath>

namespace custodian::anon::transforms {
namespace {

class LaplaceNoise final : public ColumnTransform {
public:
    LaplaceNoise(ColumnType type, double scale, std::shared_ptr<RandomSource> random)
        : type_(type), scale_(scale), random_(std::move(random)) {}

    std::string_view name() const noexcept override { return "laplace_noise"; }
    std::optional<ColumnType> outputType() const noexcept override { return type_; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        const Column& in = batch.column(column);
        auto out = std::make_shared<Column>(type_);
        out->reserve(in.size());
        std::vector<uint8_t> bytes(in.size() * 8);
        random_->fill(bytes);
        for (size_t r = 0; r < in.size(); ++r) {
            if (in.isNull(r)) {
                out->appendNull();
                continue;
            }
            uint64_t u = 0;
            for (int i = 0; i < 8; ++i) u = (u << 8) | bytes[r * 8 + static_cast<size_t>(i)];
            const double noise = sample(u);
            if (type_ == ColumnType::Integer) {
                const double noisy = std::round(static_cast<double>(in.integer(r)) + noise);
                // Clamp into int64 (only reachable with absurd scales).
                const double clamped = std::fmax(-9223372036854775808.0, std::fmin(noisy, 9223372036854774784.0));
                out->appendInteger(static_cast<int64_t>(clamped));
            } else {
                out->appendDecimal(in.decimal(r) + noise);
            }
        }
        return ColumnPtr(std::move(out));
    }

private:
    double sample(uint64_t random) const {
        const double p = (static_cast<double>(random >> 11) + 0.5) / 9007199254740992.0;  // 2^53
        return p < 0.5 ? scale_ * std::log(2 * p) : -scale_ * std::log(2 * (1 - p));
    }

    ColumnType type_;
    double scale_;
    std::shared_ptr<RandomSource> random_;
};

}  // namespace

TransformSpec laplaceNoiseSpec() {
    return {"laplace_noise",
            "Add Laplace noise of scale sensitivity/epsilon to each number.",
            {{"epsilon", ParamType::Number, true, "privacy parameter (> 0); smaller means more noise"},
             {"sensitivity", ParamType::Number, true, "largest change one person can make to the value (> 0)"}},
            {ColumnType::Integer, ColumnType::Decimal},
            [](const Params& params, const TransformContext& context, ColumnType input) -> Result<TransformPtr> {
                const double epsilon = paramNumber(params, "epsilon", 0);
                const double sensitivity = paramNumber(params, "sensitivity", 0);
                if (!(epsilon > 0) || !std::isfinite(epsilon))
                    return invalidArgument("laplace_noise: epsilon must be > 0");
                if (!(sensitivity > 0) || !std::isfinite(sensitivity))
                    return invalidArgument("laplace_noise: sensitivity must be > 0");
                const double scale = sensitivity / epsilon;
                if (!std::isfinite(scale)) return invalidArgument("laplace_noise: sensitivity / epsilon is not finite");
                return TransformPtr(std::make_shared<LaplaceNoise>(
                    input, scale, context.random ? context.random : systemRandomSource()));
            }};
}

}  // namespace custodian::anon::transforms
