#include "policies/json_text.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

namespace custodian::policies {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string compactJson(const rapidjson::Value& value) {
    rapidjson::StringBuffer buffer;
    Writer writer(buffer);
    value.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
}

std::string sha256Hex(std::string_view bytes) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    return std::string(hex, crypto_hash_sha256_BYTES * 2);
}

std::string printableForMessage(std::string_view text) {
    constexpr size_t kMaxShown = 80;
    std::string out;
    size_t shown = 0;
    for (unsigned char c : text) {
        if (shown == kMaxShown) {
            out += "...";
            break;
        }
        if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
        } else {
            static const char* digits = "0123456789abcdef";
            out += "\\x";
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 0xf]);
        }
        ++shown;
    }
    return out;
}

std::string quotedForMessage(const rapidjson::Value& value) {
    if (value.IsString()) return "\"" + printableForMessage({value.GetString(), value.GetStringLength()}) + "\"";
    return printableForMessage(compactJson(value));
}

}  // namespace custodian::policies
