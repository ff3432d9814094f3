// mask: replace characters of a text value with a mask character, keeping the first and/or last N
// characters (Unicode code points, not bytes). With `email`, only the local part before the last '@'
// is masked and "@domain" is kept. The output has as many characters as the input. When a value has
// no more characters than keep_first + keep_last, every character is masked, so that short values
// are never released whole.
#include "anonymizer/transforms/builtin.hpp"
#include "anonymizer/value.hpp"

namespace custodian::anon::transforms {
namespace {

bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

class Mask final : public ColumnTransform {
public:
    Mask(size_t keepFirst, size_t keepLast, std::string maskChar, bool email)
        : keepFirst_(keepFirst), keepLast_(keepLast), maskChar_(std::move(maskChar)), email_(email) {}

    std::string_view name() const noexcept override { return "mask"; }
    std::optional<ColumnType> outputType() const noexcept override { return ColumnType::Text; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        const Column& in = batch.column(column);
        auto out = std::make_shared<Column>(ColumnType::Text);
        out->reserve(in.size(), in.size() * 16);
        std::string scratch;
        for (size_t r = 0; r < in.size(); ++r) {
            if (in.isNull(r)) {
                out->appendNull();
                continue;
            }
            const std::string_view value = in.text(r);
            scratch.clear();
            std::string_view local = value;
            std::string_view domain;
            if (email_) {
                if (const size_t at = value.rfind('@'); at != std::string_view::npos) {
                    local = value.substr(0, at);
                    domain = value.substr(at);
                }
            }
            maskInto(scratch, local);
            scratch.append(domain);
            out->appendText(scratch);
        }
        return ColumnPtr(std::move(out));
    }

private:
    void maskInto(std::string& out, std::string_view value) const {
        size_t chars = 0;
        for (const char c : value) chars += isContinuationByte(c) ? 0 : 1;
        const bool maskAll = chars <= keepFirst_ + keepLast_;
        size_t index = 0;
        for (size_t i = 0; i < value.size();) {
            size_t len = 1;
            while (i + len < value.size() && isContinuationByte(value[i + len])) ++len;
            const bool keep = !maskAll && (index < keepFirst_ || index >= chars - keepLast_);
            if (keep) out.append(value.substr(i, len));
            else out.append(maskChar_);
            i += len;
            ++index;
        }
    }

    size_t keepFirst_;
    size_t keepLast_;
    std::string maskChar_;
    bool email_;
};

}  // namespace

TransformSpec maskSpec() {
    return {"mask",
            "Mask the characters of a text value, keeping the first and/or last N.",
            {{"keep_first", ParamType::Integer, false, "characters kept at the start (default 0)"},
             {"keep_last", ParamType::Integer, false, "characters kept at the end (default 0)"},
             {"mask_char", ParamType::String, false, "the mask character, one character (default '*')"},
             {"email", ParamType::Bool, false, "mask only the part before the last '@' (default false)"}},
            {ColumnType::Text},
            [](const Params& params, const TransformContext&, ColumnType) -> Result<TransformPtr> {
                const int64_t keepFirst = paramInt(params, "keep_first", 0);
                const int64_t keepLast = paramInt(params, "keep_last", 0);
                if (keepFirst < 0 || keepLast < 0)
                    return invalidArgument("mask: keep_first and keep_last must be >= 0");
                std::string maskChar = paramString(params, "mask_char", "*");
                size_t chars = 0;
                for (const char c : maskChar) chars += isContinuationByte(c) ? 0 : 1;
                if (chars != 1 || !isValidUtf8(maskChar) || maskChar == "\n" || maskChar == "\r")
                    return invalidArgument("mask: mask_char must be exactly one character other than CR and LF");
                return TransformPtr(std::make_shared<Mask>(static_cast<size_t>(keepFirst),
                                                           static_cast<size_t>(keepLast), std::move(maskChar),
                                                           paramBool(params, "email", false)));
            },
            {.deidentifies = true}};
}

}  // namespace custodian::anon::transforms
