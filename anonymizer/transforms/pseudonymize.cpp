// pseudonymize: replace each value with keyed BLAKE2b (crypto_generichash) of its canonical text,
// keyed with a key derived per dataset, policy and recipient (see keyed_hash.hpp). Equal values give
// equal pseudonyms for one recipient under one policy of one dataset; pseudonyms of two recipients,
// or of two policies, cannot be linked without the master key. Null stays null.
#include <sodium.h>

#include <string>
#include <vector>

#include "anonymizer/transforms/builtin.hpp"
#include "anonymizer/transforms/keyed_hash.hpp"

namespace custodian::anon::transforms {
namespace {

enum class Encoding { Hex, Base32 };

// RFC 4648 base32, lowercase, no padding.
void appendBase32(std::string& out, const uint8_t* bytes, size_t size) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint32_t buffer = 0;
    int bits = 0;
    for (size_t i = 0; i < size; ++i) {
        buffer = (buffer << 8) | bytes[i];
        bits += 8;
        while (bits >= 5) {
            out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
            bits -= 5;
        }
    }
    if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
}

void appendHex(std::string& out, const uint8_t* bytes, size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    char text[2 * crypto_generichash_BYTES_MAX];
    for (size_t i = 0; i < size; ++i) {
        text[2 * i] = kHex[bytes[i] >> 4];
        text[2 * i + 1] = kHex[bytes[i] & 15];
    }
    out.append(text, 2 * size);
}

class Pseudonymize final : public ColumnTransform {
public:
    Pseudonymize(KeyedHasher hasher, size_t bytes, Encoding encoding)
        : hasher_(std::move(hasher)), bytes_(bytes), encoding_(encoding) {}

    std::string_view name() const noexcept override { return "pseudonymize"; }
    std::optional<ColumnType> outputType() const noexcept override { return ColumnType::Text; }

    Result<ColumnPtr> apply(const Batch& batch, size_t column) const override {
        const Column& in = batch.column(column);
        auto out = std::make_shared<Column>(ColumnType::Text);
        out->reserve(in.size(), in.size() * bytes_ * 2);
        // The canonical texts of the batch's values first, then their digests in one call (four at a
        // time where the CPU allows), then the pseudonyms.
        std::string canonical;
        std::vector<size_t> ends;
        ends.reserve(in.size());
        for (size_t r = 0; r < in.size(); ++r) {
            if (in.isNull(r)) continue;
            in.appendCanonical(canonical, r);
            ends.push_back(canonical.size());
        }
        std::vector<std::string_view> texts(ends.size());
        for (size_t i = 0, begin = 0; i < ends.size(); begin = ends[i++])
            texts[i] = std::string_view(canonical).substr(begin, ends[i] - begin);
        std::vector<uint8_t> digests(texts.size() * bytes_);
        hasher_.hashMany(texts, bytes_, digests.data());
        std::string pseudonym;
        for (size_t r = 0, next = 0; r < in.size(); ++r) {
            if (in.isNull(r)) {
                out->appendNull();
                continue;
            }
            const uint8_t* digest = digests.data() + bytes_ * next++;
            pseudonym.clear();
            if (encoding_ == Encoding::Hex) appendHex(pseudonym, digest, bytes_);
            else appendBase32(pseudonym, digest, bytes_);
            out->appendText(pseudonym);
        }
        return ColumnPtr(std::move(out));
    }

private:
    KeyedHasher hasher_;
    size_t bytes_;
    Encoding encoding_;
};

}  // namespace

TransformSpec pseudonymizeSpec() {
    return {"pseudonymize",
            "Replace each value with a keyed BLAKE2b pseudonym, stable per dataset, policy and recipient.",
            {{"encoding", ParamType::String, false, "hex or base32 (RFC 4648, lowercase, unpadded); default hex"},
             {"bytes", ParamType::Integer, false, "digest length in bytes, 16 to 64 (default 16)"}},
            {},
            [](const Params& params, const TransformContext& context, ColumnType) -> Result<TransformPtr> {
                const std::string encodingName = paramString(params, "encoding", "hex");
                Encoding encoding = Encoding::Hex;
                if (encodingName == "base32") encoding = Encoding::Base32;
                else if (encodingName != "hex")
                    return invalidArgument("pseudonymize: encoding must be 'hex' or 'base32', got '" + encodingName +
                                           "'");
                const int64_t bytes = paramInt(params, "bytes", 16);
                if (bytes < static_cast<int64_t>(crypto_generichash_BYTES_MIN) ||
                    bytes > static_cast<int64_t>(crypto_generichash_BYTES_MAX))
                    return invalidArgument("pseudonymize: bytes must be between 16 and 64");
                if (context.masterKey == nullptr)
                    return failedPrecondition("pseudonymize needs the gateway's pseudonymization master key");
                if (std::string missing = missingKeyScope(context.keyScope); !missing.empty())
                    return failedPrecondition("pseudonymize needs " + missing + " of the release");
                auto hasher = KeyedHasher::derive(*context.masterKey, kPseudonymKdfContext, context.keyScope);
                if (!hasher) return hasher.status();
                return TransformPtr(
                    std::make_shared<Pseudonymize>(std::move(hasher.value()), static_cast<size_t>(bytes), encoding));
            },
            {.deidentifies = true}};
}

}  // namespace custodian::anon::transforms
