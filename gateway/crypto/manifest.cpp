#include "gateway/crypto/manifest.hpp"

#include <cstring>

namespace custodian::crypto {

using json::canonicalJson;
using json::JsonValue;
using json::parseJson;

bool operator==(const ExtractDigests& a, const ExtractDigests& b) {
    return a.plaintextSha256 == b.plaintextSha256 && a.ciphertextSha256 == b.ciphertextSha256 &&
           a.plaintextBytes == b.plaintextBytes && a.ciphertextBytes == b.ciphertextBytes;
}

JsonValue manifestToJson(const ExtractManifest& m) {
    JsonValue::Array columns;
    for (const auto& c : m.columns) {
        JsonValue::Object column;
        column.emplace("name", c.name);
        column.emplace("transform", c.transform);
        columns.emplace_back(std::move(column));
    }
    JsonValue::Object object{
        {"audit_index", m.auditIndex},
        {"ciphertext_bytes", m.digests.ciphertextBytes},
        {"ciphertext_sha256", toHex(m.digests.ciphertextSha256)},
        {"columns", std::move(columns)},
        {"created_ms", m.createdMs},
        {"dataset", m.dataset},
        {"extract_id", m.extractId},
        {"format", m.format},
        {"models", m.models},
        {"plaintext_bytes", m.digests.plaintextBytes},
        {"plaintext_sha256", toHex(m.digests.plaintextSha256)},
        {"policy", m.policy},
        {"policy_sha256", m.policySha256},
        {"policy_version", m.policyVersion},
        {"purpose", m.purpose},
        {"recipient", m.recipient},
        {"rows_released", m.rowsReleased},
        {"rows_suppressed", m.rowsSuppressed},
        {"version", 1},
    };
    if (!m.informationLoss.isNull()) object.emplace("information_loss", m.informationLoss);
    if (m.keyDerivation != 0) object.emplace("key_derivation", m.keyDerivation);
    return object;
}

namespace {

class FieldReader {
public:
    explicit FieldReader(const JsonValue& obj) : obj_(obj) {}
    Status status() const { return status_; }

    const JsonValue* get(const char* name) {
        const JsonValue* v = obj_.find(name);
        if (v == nullptr && status_) status_ = invalidArgument(std::string("manifest.") + name + ": missing");
        return v;
    }
    std::string string(const char* name) {
        const JsonValue* v = get(name);
        if (v == nullptr) return {};
        if (!v->isString()) return bad(name, "must be a string"), std::string();
        return v->asString();
    }
    uint64_t u64(const char* name) {
        const JsonValue* v = get(name);
        if (v == nullptr) return 0;
        if (!v->isInteger() || !v->fitsUint64()) return bad(name, "must be a non-negative integer"), 0;
        return v->asUint64();
    }
    int64_t i64(const char* name) {
        const JsonValue* v = get(name);
        if (v == nullptr) return 0;
        if (!v->isInteger() || !v->fitsInt64()) return bad(name, "must be an integer"), 0;
        return v->asInt64();
    }
    Sha256Digest digest(const char* name) {
        const std::string hex = string(name);
        Sha256Digest out{};
        if (!status_) return out;
        auto bytes = fromHex(hex);
        if (!bytes || bytes->size() != out.size()) return bad(name, "must be 64 hex digits"), out;
        std::memcpy(out.data(), bytes->data(), out.size());
        return out;
    }
    void bad(const char* name, const std::string& what) {
        if (status_) status_ = invalidArgument(std::string("manifest.") + name + ": " + what);
    }

private:
    const JsonValue& obj_;
    Status status_;
};

}  // namespace

Result<ExtractManifest> manifestFromJson(const JsonValue& json) {
    if (!json.isObject()) return invalidArgument("manifest: must be an object");
    FieldReader r(json);
    ExtractManifest m;
    if (r.u64("version") != 1 && r.status()) return invalidArgument("manifest.version: this build reads version 1");
    m.auditIndex = r.u64("audit_index");
    m.digests.ciphertextBytes = r.u64("ciphertext_bytes");
    m.digests.ciphertextSha256 = r.digest("ciphertext_sha256");
    m.createdMs = r.i64("created_ms");
    m.dataset = r.string("dataset");
    m.extractId = r.string("extract_id");
    m.format = r.string("format");
    m.digests.plaintextBytes = r.u64("plaintext_bytes");
    m.digests.plaintextSha256 = r.digest("plaintext_sha256");
    m.policy = r.string("policy");
    m.policySha256 = r.string("policy_sha256");
    m.policyVersion = r.i64("policy_version");
    m.purpose = r.string("purpose");
    m.recipient = r.string("recipient");
    m.rowsReleased = r.u64("rows_released");
    m.rowsSuppressed = r.u64("rows_suppressed");
    if (const JsonValue* models = r.get("models")) {
        if (!models->isObject()) r.bad("models", "must be an object");
        else m.models = *models;
    }
    if (const JsonValue* loss = json.find("information_loss")) {  // optional
        if (!loss->isObject()) r.bad("information_loss", "must be an object");
        else m.informationLoss = *loss;
    }
    if (const JsonValue* derivation = json.find("key_derivation")) {  // optional
        if (!derivation->isInteger() || !derivation->fitsUint64() || derivation->asUint64() == 0)
            r.bad("key_derivation", "must be a positive integer");
        else m.keyDerivation = derivation->asUint64();
    }
    if (const JsonValue* columns = r.get("columns")) {
        if (!columns->isArray()) {
            r.bad("columns", "must be an array");
        } else {
            for (const auto& c : columns->asArray()) {
                const JsonValue* name = c.find("name");
                const JsonValue* transform = c.find("transform");
                if (name == nullptr || transform == nullptr || !name->isString() || !transform->isString()) {
                    r.bad("columns", "each column is {\"name\": string, \"transform\": string}");
                    break;
                }
                m.columns.push_back({name->asString(), transform->asString()});
            }
        }
    }
    if (!r.status()) return r.status();
    return m;
}

namespace {
Result<std::string> signedBytesOf(const JsonValue& manifestObject) {
    auto canonical = canonicalJson(manifestObject);
    if (!canonical) return canonical.status().withContext("manifest");
    return std::string(kManifestDomain) + *canonical;
}
}  // namespace

Result<std::string> manifestSignedBytes(const ExtractManifest& manifest) {
    return signedBytesOf(manifestToJson(manifest));
}

Result<SignedManifest> signManifest(const ExtractManifest& manifest, const SigningKey& key) {
    JsonValue object = manifestToJson(manifest);
    auto bytes = signedBytesOf(object);
    if (!bytes) return bytes.status();
    SignedManifest out;
    out.signature = toBase64(key.sign(asBytes(*bytes)));
    JsonValue document = JsonValue::Object{
        {"manifest", std::move(object)},
        {"public_key", toBase64(key.publicKey())},
        {"signature", out.signature},
    };
    auto text = canonicalJson(document);
    if (!text) return text.status();
    out.document = std::move(text).value();
    return out;
}

Result<ExtractManifest> verifyManifest(std::string_view document, const Ed25519PublicKey& gatewayKey) {
    auto parsed = parseJson(document);
    if (!parsed) return parsed.status().withContext("manifest document");
    const JsonValue* object = parsed->find("manifest");
    const JsonValue* signature = parsed->find("signature");
    if (object == nullptr || !object->isObject()) {
        return invalidArgument("manifest document: \"manifest\" must be an object");
    }
    if (signature == nullptr || !signature->isString()) {
        return invalidArgument("manifest document: \"signature\" must be a base64 string");
    }
    auto sig = fromBase64(signature->asString());
    if (!sig) return invalidArgument("manifest document: \"signature\" is not base64");
    auto bytes = signedBytesOf(*object);
    if (!bytes) return bytes.status();
    if (!verifySignature(gatewayKey, asBytes(*bytes), *sig)) {
        return permissionDenied("the manifest signature is not valid for the gateway key: the manifest was "
                                "modified or signed by another key");
    }
    return manifestFromJson(*object);
}

Status checkExtractAgainstManifest(const ExtractManifest& m, const ExtractDigests& actual) {
    if (actual.ciphertextBytes != m.digests.ciphertextBytes) {
        return invalidArgument("the extract file has " + std::to_string(actual.ciphertextBytes) +
                               " bytes, the manifest says " + std::to_string(m.digests.ciphertextBytes));
    }
    if (actual.ciphertextSha256 != m.digests.ciphertextSha256) {
        return invalidArgument("the extract file's SHA-256 " + toHex(actual.ciphertextSha256) +
                               " differs from the manifest's " + toHex(m.digests.ciphertextSha256));
    }
    if (actual.plaintextBytes != m.digests.plaintextBytes) {
        return invalidArgument("the plaintext has " + std::to_string(actual.plaintextBytes) +
                               " bytes, the manifest says " + std::to_string(m.digests.plaintextBytes));
    }
    if (actual.plaintextSha256 != m.digests.plaintextSha256) {
        return invalidArgument("the plaintext SHA-256 " + toHex(actual.plaintextSha256) +
                               " differs from the manifest's " + toHex(m.digests.plaintextSha256));
    }
    return Status::ok();
}

}  // namespace custodian::crypto
