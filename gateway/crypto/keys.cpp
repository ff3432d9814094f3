#include "gateway/crypto/keys.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "json/canonical.hpp"
#include "gateway/crypto/secure_file.hpp"

namespace custodian::crypto {

using json::JsonValue;
using json::parseJson;

Status ensureSodium() {
    // sodium_init returns 0 on first success, 1 if already initialised, -1 on failure.
    static const int initResult = sodium_init();
    if (initResult < 0) return internalError("libsodium could not be initialised");
    return Status::ok();
}

// --- SecureBytes ---------------------------------------------------------------------------

Result<SecureBytes> SecureBytes::allocate(size_t size) {
    if (auto st = ensureSodium(); !st) return st;
    SecureBytes out;
    if (size == 0) return out;
    out.data_ = static_cast<uint8_t*>(sodium_malloc(size));
    if (out.data_ == nullptr) return Status(StatusCode::ResourceExhausted, "sodium_malloc failed");
    out.size_ = size;
    sodium_memzero(out.data_, size);
    return out;
}

SecureBytes::~SecureBytes() {
    // sodium_free zeroes the region before releasing it.
    if (data_ != nullptr) sodium_free(data_);
}

SecureBytes::SecureBytes(SecureBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
    if (this != &other) {
        if (data_ != nullptr) sodium_free(data_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

// --- encodings -----------------------------------------------------------------------------

std::string toHex(ByteView bytes) {
    (void)ensureSodium();
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
    out.pop_back();
    return out;
}

Result<Bytes> fromHex(std::string_view hex) {
    if (auto st = ensureSodium(); !st) return st;
    if (hex.size() % 2 != 0) return invalidArgument("hex string has an odd number of digits");
    Bytes out(hex.size() / 2);
    size_t len = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
        end != hex.data() + hex.size() || len != out.size()) {
        return invalidArgument("not a hex string");
    }
    return out;
}

std::string toBase64(ByteView bytes) {
    (void)ensureSodium();
    constexpr int variant = sodium_base64_VARIANT_ORIGINAL;
    std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
    sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), variant);
    out.resize(std::strlen(out.c_str()));
    return out;
}

namespace {

// Decodes strict base64 into `out` (capacity out.size()); returns the decoded length or -1.
long decodeBase64Into(std::string_view base64, uint8_t* out, size_t capacity) {
    size_t len = 0;
    if (sodium_base642bin(out, capacity, base64.data(), base64.size(), nullptr, &len, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        return -1;
    }
    return static_cast<long>(len);
}

std::string_view trim(std::string_view s) {
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

Result<Bytes> fromBase64(std::string_view base64) {
    if (auto st = ensureSodium(); !st) return st;
    Bytes out(base64.size() / 4 * 3 + 3);
    const long len = decodeBase64Into(base64, out.data(), out.size());
    if (len < 0) return invalidArgument("not valid base64 (standard alphabet with padding)");
    out.resize(static_cast<size_t>(len));
    return out;
}

// --- Ed25519 -------------------------------------------------------------------------------

Result<SigningKey> SigningKey::generate() {
    auto secret = SecureBytes::allocate(crypto_sign_SECRETKEYBYTES);
    if (!secret) return secret.status();
    Ed25519PublicKey pk{};
    crypto_sign_keypair(pk.data(), secret->data());
    return SigningKey(std::move(secret).value(), pk);
}

Result<SigningKey> SigningKey::fromSeed(ByteView seed) {
    if (seed.size() != crypto_sign_SEEDBYTES) {
        return invalidArgument("an Ed25519 seed is " + std::to_string(crypto_sign_SEEDBYTES) + " bytes, got " +
                               std::to_string(seed.size()));
    }
    auto secret = SecureBytes::allocate(crypto_sign_SECRETKEYBYTES);
    if (!secret) return secret.status();
    Ed25519PublicKey pk{};
    crypto_sign_seed_keypair(pk.data(), secret->data(), seed.data());
    return SigningKey(std::move(secret).value(), pk);
}

Ed25519Signature SigningKey::sign(ByteView message) const {
    Ed25519Signature sig{};
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
    return sig;
}

bool verifySignature(const Ed25519PublicKey& publicKey, ByteView message, ByteView signature) {
    if (!ensureSodium()) return false;
    if (signature.size() != crypto_sign_BYTES) return false;
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), publicKey.data()) == 0;
}

namespace {

constexpr std::string_view kSeedPrefix = "custodian-ed25519-seed:";
constexpr std::string_view kGatewayPublicPrefix = "custodian-ed25519-public:";

// Formats "<prefix><base64(secret)>\n" inside sodium memory; returns the buffer and its length.
Result<SecureText> formatSecretLine(std::string_view prefix, ByteView secret) {
    const size_t b64 = sodium_base64_ENCODED_LEN(secret.size(), sodium_base64_VARIANT_ORIGINAL);
    auto buf = SecureBytes::allocate(prefix.size() + b64 + 1);
    if (!buf) return buf.status();
    std::memcpy(buf->data(), prefix.data(), prefix.size());
    char* b64out = reinterpret_cast<char*>(buf->data() + prefix.size());
    sodium_bin2base64(b64out, b64, secret.data(), secret.size(), sodium_base64_VARIANT_ORIGINAL);
    const size_t encoded = std::strlen(b64out);
    buf->data()[prefix.size() + encoded] = '\n';
    return SecureText{std::move(buf).value(), prefix.size() + encoded + 1};
}

// Parses "<prefix><base64 of exactly `size` bytes>" (whitespace around it ignored) from secure
// text into a new secure buffer.
Result<SecureBytes> parseSecretLine(const SecureText& text, std::string_view prefix, size_t size,
                                    const std::string& path) {
    std::string_view line = trim({reinterpret_cast<const char*>(text.buffer.data()), text.length});
    if (line.substr(0, prefix.size()) != prefix) {
        return invalidArgument(path + ": not a key file of this kind (expected a line starting with \"" +
                               std::string(prefix) + "\")");
    }
    line.remove_prefix(prefix.size());
    auto out = SecureBytes::allocate(size + 3);
    if (!out) return out.status();
    const long len = decodeBase64Into(line, out->data(), out->size());
    if (len != static_cast<long>(size)) {
        return invalidArgument(path + ": the key is not base64 of " + std::to_string(size) + " bytes");
    }
    auto exact = SecureBytes::allocate(size);
    if (!exact) return exact.status();
    std::memcpy(exact->data(), out->data(), size);
    return std::move(exact).value();
}

Result<SigningKey> loadSigningKeyFile(const std::string& path) {
    auto text = readPrivateFile(path);
    if (!text) return text.status();
    auto seed = parseSecretLine(*text, kSeedPrefix, crypto_sign_SEEDBYTES, path);
    if (!seed) return seed.status();
    return SigningKey::fromSeed(seed->view());
}

}  // namespace

Result<SigningKey> SigningKey::loadOrCreate(const std::string& path) {
    if (auto st = ensureSodium(); !st) return st;
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0) return loadSigningKeyFile(path);
    if (errno != ENOENT) { return Status(StatusCode::Unavailable, path + ": " + std::strerror(errno)); }
    auto seed = SecureBytes::allocate(crypto_sign_SEEDBYTES);
    if (!seed) return seed.status();
    randombytes_buf(seed->data(), seed->size());
    auto line = formatSecretLine(kSeedPrefix, seed->view());
    if (!line) return line.status();
    const Status written = writeFileExclusive(path, {line->buffer.data(), line->length}, 0600);
    if (written.isOk()) return SigningKey::fromSeed(seed->view());
    // Another process created the key between our stat() and link(): use theirs.
    if (written.code() == StatusCode::Aborted) return loadSigningKeyFile(path);
    return written;
}

namespace {

// The JSON that GET /v1/keys returns: {"keys":[{"algorithm":"Ed25519","public_key":"<b64>",...}]}.
Result<std::string> keyFromKeysDocument(std::string_view text) {
    auto doc = parseJson(text);
    if (!doc) return doc.status();
    const JsonValue* keys = doc->find("keys");
    if (keys == nullptr || !keys->isArray())
        return invalidArgument("expected {\"keys\": [...]} as served by GET /v1/keys");
    std::string found;
    size_t count = 0;
    for (const auto& k : keys->asArray()) {
        const JsonValue* algorithm = k.find("algorithm");
        const JsonValue* publicKey = k.find("public_key");
        if (algorithm == nullptr || !algorithm->isString() || algorithm->asString() != "Ed25519") continue;
        if (publicKey == nullptr || !publicKey->isString()) continue;
        found = publicKey->asString();
        ++count;
    }
    if (count == 0) return invalidArgument("the keys document has no Ed25519 key");
    if (count > 1) {
        return invalidArgument("the keys document lists several Ed25519 keys; put the one you trust in the file "
                               "(its base64 public_key)");
    }
    return found;
}

}  // namespace

Result<Ed25519PublicKey> parseGatewayPublicKey(std::string_view text) {
    if (auto st = ensureSodium(); !st) return st;
    std::string_view body = trim(text);
    std::string fromDocument;
    if (!body.empty() && body.front() == '{') {
        auto key = keyFromKeysDocument(body);
        if (!key) return key.status();
        fromDocument = std::move(key).value();
        body = fromDocument;
    }
    if (body.substr(0, kGatewayPublicPrefix.size()) == kGatewayPublicPrefix) {
        body.remove_prefix(kGatewayPublicPrefix.size());
    }
    auto bytes = fromBase64(body);
    if (!bytes || bytes->size() != kEd25519PublicKeyBytes) {
        return invalidArgument("a gateway public key is base64 of 32 bytes (as served by GET /v1/keys)");
    }
    Ed25519PublicKey key{};
    std::memcpy(key.data(), bytes->data(), key.size());
    return key;
}

Result<Ed25519PublicKey> readGatewayPublicKeyFile(const std::string& path) {
    auto text = readPublicFile(path);
    if (!text) return text.status();
    auto key = parseGatewayPublicKey(*text);
    if (!key) return key.status().withContext(path);
    return key;
}

std::string formatGatewayPublicKey(const Ed25519PublicKey& key) {
    return std::string(kGatewayPublicPrefix) + toBase64(key) + "\n";
}

// --- X25519 --------------------------------------------------------------------------------

Result<BoxSecretKey> BoxSecretKey::generate() {
    auto secret = SecureBytes::allocate(crypto_box_SECRETKEYBYTES);
    if (!secret) return secret.status();
    BoxPublicKey pk;
    crypto_box_keypair(pk.bytes.data(), secret->data());
    return BoxSecretKey(std::move(secret).value(), pk);
}

Result<BoxSecretKey> BoxSecretKey::fromSeed(ByteView seed) {
    if (seed.size() != crypto_box_SEEDBYTES) {
        return invalidArgument("an X25519 seed is " + std::to_string(crypto_box_SEEDBYTES) + " bytes");
    }
    auto secret = SecureBytes::allocate(crypto_box_SECRETKEYBYTES);
    if (!secret) return secret.status();
    BoxPublicKey pk;
    crypto_box_seed_keypair(pk.bytes.data(), secret->data(), seed.data());
    return BoxSecretKey(std::move(secret).value(), pk);
}

Result<BoxSecretKey> BoxSecretKey::fromSecretBytes(ByteView secretBytes) {
    if (secretBytes.size() != crypto_box_SECRETKEYBYTES) {
        return invalidArgument("an X25519 secret key is " + std::to_string(crypto_box_SECRETKEYBYTES) + " bytes");
    }
    auto secret = SecureBytes::allocate(crypto_box_SECRETKEYBYTES);
    if (!secret) return secret.status();
    std::memcpy(secret->data(), secretBytes.data(), secretBytes.size());
    BoxPublicKey pk;
    if (crypto_scalarmult_base(pk.bytes.data(), secret->data()) != 0) {
        return invalidArgument("the X25519 secret key is degenerate");
    }
    return BoxSecretKey(std::move(secret).value(), pk);
}

std::string formatBoxPublicKey(const BoxPublicKey& key) {
    return std::string(kBoxPublicKeyPrefix) + toBase64(key.bytes) + "\n";
}

Result<BoxPublicKey> parseBoxPublicKey(std::string_view text) {
    if (auto st = ensureSodium(); !st) return st;
    std::string_view line = trim(text);
    if (line.substr(0, kBoxPublicKeyPrefix.size()) != kBoxPublicKeyPrefix) {
        if (line.substr(0, kBoxSecretKeyPrefix.size()) == kBoxSecretKeyPrefix) {
            return invalidArgument("this is a secret key (.key); give the public key (.pub)");
        }
        return invalidArgument("not a partner public key: expected one line \"" + std::string(kBoxPublicKeyPrefix) +
                               "<base64>\" as written by custodian keygen");
    }
    line.remove_prefix(kBoxPublicKeyPrefix.size());
    auto bytes = fromBase64(line);
    if (!bytes || bytes->size() != kX25519KeyBytes) {
        return invalidArgument("the partner public key is not base64 of 32 bytes");
    }
    BoxPublicKey key;
    std::memcpy(key.bytes.data(), bytes->data(), key.bytes.size());
    return key;
}

Result<BoxPublicKey> readBoxPublicKeyFile(const std::string& path) {
    auto text = readPublicFile(path);
    if (!text) return text.status();
    auto key = parseBoxPublicKey(*text);
    if (!key) return key.status().withContext(path);
    return key;
}

Result<BoxSecretKey> readBoxSecretKeyFile(const std::string& path) {
    auto text = readPrivateFile(path);
    if (!text) return text.status();
    auto secret = parseSecretLine(*text, kBoxSecretKeyPrefix, crypto_box_SECRETKEYBYTES, path);
    if (!secret) return secret.status();
    return BoxSecretKey::fromSecretBytes(secret->view());
}

Status writeBoxKeyPair(const BoxSecretKey& key, const std::string& prefix) {
    const std::string pubPath = prefix + ".pub";
    const std::string keyPath = prefix + ".key";
    struct stat info {};
    for (const auto* p : {&pubPath, &keyPath}) {
        if (::stat(p->c_str(), &info) == 0) {
            return Status(StatusCode::Aborted, *p + " already exists; refusing to overwrite a key");
        }
    }
    auto line = formatSecretLine(kBoxSecretKeyPrefix, {key.secretData(), crypto_box_SECRETKEYBYTES});
    if (!line) return line.status();
    if (auto st = writeFileExclusive(keyPath, {line->buffer.data(), line->length}, 0600); !st) return st;
    const std::string pub = formatBoxPublicKey(key.publicKey());
    if (auto st = writeFileExclusive(pubPath, asBytes(pub), 0644); !st) {
        ::unlink(keyPath.c_str());
        return st;
    }
    return Status::ok();
}

}  // namespace custodian::crypto
