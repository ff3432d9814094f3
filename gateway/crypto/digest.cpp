#include "gateway/crypto/digest.hpp"

#include <openssl/evp.h>

#include <new>

namespace custodian::crypto {

namespace {

// Fetched once: an explicit fetch avoids OpenSSL 3's per-call implicit algorithm lookup.
const EVP_MD* sha256Algorithm() {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md;
}

}  // namespace

void Sha256::ContextDeleter::operator()(evp_md_ctx_st* context) const noexcept { EVP_MD_CTX_free(context); }

Sha256Digest sha256(ByteView bytes) {
    Sha256 h;
    h.update(bytes);
    return h.finish();
}

Sha256::Sha256() {
    if (const EVP_MD* md = sha256Algorithm()) {
        context_.reset(EVP_MD_CTX_new());
        if (context_ && EVP_DigestInit_ex(context_.get(), md, nullptr) != 1) context_.reset();
    }
    if (!context_) {
        (void)ensureSodium();
        crypto_hash_sha256_init(&fallback_);
    }
}

Sha256::Sha256(const Sha256& other) : fallback_(other.fallback_) {
    if (!other.context_) return;
    context_.reset(EVP_MD_CTX_new());
    if (!context_ || EVP_MD_CTX_copy_ex(context_.get(), other.context_.get()) != 1) {
        // The state cannot be carried over to OpenSSL; an unusable copy would give a wrong digest.
        throw std::bad_alloc();
    }
}

Sha256& Sha256::operator=(const Sha256& other) {
    if (this != &other) *this = Sha256(other);
    return *this;
}

void Sha256::update(ByteView bytes) {
    if (context_) {
        // Fails only on an uninitialized context, which the constructors rule out.
        (void)EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
    } else {
        crypto_hash_sha256_update(&fallback_, bytes.data(), bytes.size());
    }
}

Sha256Digest Sha256::finish() {
    Sha256Digest out{};
    if (context_) {
        unsigned int length = 0;
        (void)EVP_DigestFinal_ex(context_.get(), out.data(), &length);
    } else {
        crypto_hash_sha256_final(&fallback_, out.data());
    }
    return out;
}

}  // namespace custodian::crypto
