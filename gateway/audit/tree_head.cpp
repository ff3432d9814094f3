#include "gateway/audit/tree_head.hpp"

#include <cstring>

namespace custodian::audit {

using json::JsonValue;

crypto::Bytes treeHeadSignedBytes(const TreeHead& head) {
    crypto::Bytes out(kTreeHeadDomain.begin(), kTreeHeadDomain.end());
    for (uint64_t v : {head.treeSize, head.timestampMs}) {
        for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
    }
    out.insert(out.end(), head.rootHash.begin(), head.rootHash.end());
    return out;
}

SignedTreeHead signTreeHead(const TreeHead& head, const crypto::SigningKey& key) {
    return {head, key.sign(treeHeadSignedBytes(head))};
}

bool verifyTreeHead(const SignedTreeHead& sth, const crypto::Ed25519PublicKey& key) {
    return crypto::verifySignature(key, treeHeadSignedBytes(sth.head), sth.signature);
}

JsonValue treeHeadToJson(const SignedTreeHead& sth) {
    return JsonValue::Object{
        {"root_hash", crypto::toHex(sth.head.rootHash)},
        {"signature", crypto::toBase64(sth.signature)},
        {"timestamp_ms", sth.head.timestampMs},
        {"tree_size", sth.head.treeSize},
    };
}

Result<SignedTreeHead> treeHeadFromJson(const JsonValue& json) {
    if (!json.isObject()) return invalidArgument("tree head: must be an object");
    const JsonValue* size = json.find("tree_size");
    const JsonValue* root = json.find("root_hash");
    const JsonValue* time = json.find("timestamp_ms");
    const JsonValue* sig = json.find("signature");
    SignedTreeHead out;
    if (size == nullptr || !size->isInteger() || !size->fitsUint64()) {
        return invalidArgument("tree head: tree_size must be a non-negative integer");
    }
    if (time == nullptr || !time->isInteger() || !time->fitsUint64()) {
        return invalidArgument("tree head: timestamp_ms must be a non-negative integer");
    }
    if (root == nullptr || !root->isString()) return invalidArgument("tree head: root_hash must be a hex string");
    if (sig == nullptr || !sig->isString()) return invalidArgument("tree head: signature must be a base64 string");
    out.head.treeSize = size->asUint64();
    out.head.timestampMs = time->asUint64();
    auto rootBytes = crypto::fromHex(root->asString());
    if (!rootBytes || rootBytes->size() != 32) return invalidArgument("tree head: root_hash must be 64 hex digits");
    std::memcpy(out.head.rootHash.data(), rootBytes->data(), 32);
    auto sigBytes = crypto::fromBase64(sig->asString());
    if (!sigBytes || sigBytes->size() != 64) {
        return invalidArgument("tree head: signature must be base64 of 64 bytes");
    }
    std::memcpy(out.signature.data(), sigBytes->data(), 64);
    return out;
}

}  // namespace custodian::audit
