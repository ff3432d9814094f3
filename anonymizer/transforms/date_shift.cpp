// date_shift: move every date (or timestamp) of one individual by the same number of days, chosen
// in [-max_days, +max_days] by a keyed hash of that individual's key column value:
//   offset = (hash64(canonical key value) mod (2 * max_days + 1)) - max_days
// with hash64 keyed BLAKE2b under the "CUSTDSHF" release key (keyed_hash.hpp), so offsets are stable
// per dataset, policy and recipient and cannot be recomputed without the master key. (The modulo bias is
// below 2^-40 for any max_days up to 10^6.) A row whose key is null gets a null date: there is no
// individual to be consistent with, and an unshifted date would leak.
#include "anonymizer/transforms/builtin.hpp"
#include "anonymizer/transforms/keyed_hash.hpp"

namespace custodian::anon::transforms {
namespace {

class DateShift final : public ColumnTransform {
public:
    DateShift(ColumnType type, KeyedHasher hasher, std::string keyColumn, int64_t maxDays)
        : type_(type), hasher_(std::move(hasher)), keyColumn_(std::move(keyColumn)), maxDays_(maxDays) {}

    std::string_view name() const noexcept override { return "date_shift"; }
    std::optional<ColumnType> outputType() const noexcept override { return type_; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        const auto keyIndex = batch.schema().indexOf(keyColumn_);
        if (!keyIndex) return invalidArgument("date_shift: key column '" + keyColumn_ + "' is not in the data");
        const Column& in = batch.column(column);
        const Column& key = batch.column(*keyIndex);
        auto out = std::make_shared<Column>(type_);
        out->reserve(in.size());
        std::string canonical;
        const auto span = static_cast<uint64_t>(2 * maxDays_ + 1);
        for (size_t r = 0; r < in.size(); ++r) {
            if (in.isNull(r) || key.isNull(r)) {
                out->appendNull();
                continue;
            }
            canonical.clear();
            key.appendCanonical(canonical, r);
            const int64_t offset = static_cast<int64_t>(hasher_.hash64(canonical) % span) - maxDays_;
            if (type_ == ColumnType::Date) out->appendDate(static_cast<int32_t>(in.date(r) + offset));
            else out->appendTimestamp(in.timestamp(r) + offset * kMicrosPerDay);
        }
        return ColumnPtr(std::move(out));
    }

private:
    ColumnType type_;
    KeyedHasher hasher_;
    std::string keyColumn_;
    int64_t maxDays_;
};

}  // namespace

TransformSpec dateShiftSpec() {
    return {"date_shift",
            "Shift dates by a per-individual offset of up to max_days, keyed by another column.",
            {{"max_days", ParamType::Integer, true, "largest shift in days, 1 to 1000000"},
             {.name = "key_column",
              .type = ParamType::String,
              .required = true,
              .description = "column identifying the individual (same offset for equal keys)",
              .namesColumn = true}},
            {ColumnType::Date, ColumnType::Timestamp},
            [](const Params& params, const TransformContext& context, ColumnType input) -> Result<TransformPtr> {
                const int64_t maxDays = paramInt(params, "max_days", 0);
                if (maxDays < 1 || maxDays > 1'000'000)
                    return invalidArgument("date_shift: max_days must be between 1 and 1000000");
                std::string keyColumn = paramString(params, "key_column", "");
                if (keyColumn.empty()) return invalidArgument("date_shift: key_column must name a column");
                if (context.masterKey == nullptr)
                    return failedPrecondition("date_shift needs the gateway's pseudonymization master key");
                if (std::string missing = missingKeyScope(context.keyScope); !missing.empty())
                    return failedPrecondition("date_shift needs " + missing + " of the release");
                auto hasher = KeyedHasher::derive(*context.masterKey, kDateShiftKdfContext, context.keyScope);
                if (!hasher) return hasher.status();
                return TransformPtr(
                    std::make_shared<DateShift>(input, std::move(hasher.value()), std::move(keyColumn), maxDays));
            }};
}

}  // namespace custodian::anon::transforms
