#pragma once
// Extract encryption: each extract gets a fresh crypto_secretstream_xchacha20poly1305 key, sealed
// to the partner's X25519 key with crypto_box_seal. The byte layout is specified in
// docs/formats/extract.md so that any libsodium binding can decrypt it:
//
//   "CUSTEXT" 0x01 | u16be sealed-key length (80) | sealed key | secretstream header (24)
//   then chunks: u32be ciphertext length | ciphertext (plaintext + 17 bytes)
//   the last chunk, and only it, carries TAG_FINAL; nothing follows it.
//
// A sender that must abort (e.g. the privacy re-check failed) simply never seals a final chunk:
// the recipient's finish() then fails, so truncation can never pass for a complete file.
// Authenticity of the sender is NOT provided by the sealed box (anyone can seal to a public key);
// it comes from the gateway-signed manifest, which carries the SHA-256 of the whole file.

#include <cstdint>
#include <string>

#include "anonymizer/status.hpp"
#include "gateway/crypto/digest.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::crypto {

inline constexpr uint8_t kExtractMagic[7] = {'C', 'U', 'S', 'T', 'E', 'X', 'T'};
inline constexpr uint8_t kExtractVersion = 1;
inline constexpr size_t kExtractSealedKeyBytes = 80;  // 32-byte key + crypto_box_SEALBYTES
inline constexpr size_t kExtractStreamHeaderBytes = 24;
inline constexpr size_t kExtractHeaderBytes = 8 + 2 + kExtractSealedKeyBytes + kExtractStreamHeaderBytes;
inline constexpr size_t kExtractChunkOverhead = 17;             // crypto_secretstream_xchacha20poly1305_ABYTES
inline constexpr size_t kExtractMaxChunkPlaintext = 16u << 20;  // 16 MiB

// Digests and sizes of one extract, for the manifest and the audit entry.
struct ExtractDigests {
    Sha256Digest plaintextSha256{};
    Sha256Digest ciphertextSha256{};  // of the whole file: header and every framed chunk
    uint64_t plaintextBytes = 0;
    uint64_t ciphertextBytes = 0;
};

// Produces an extract file incrementally. Not thread-safe; one instance per extract.
class ExtractSealer {
public:
    static Result<ExtractSealer> create(const BoxPublicKey& recipient);

    ExtractSealer(ExtractSealer&&) noexcept = default;
    ExtractSealer& operator=(ExtractSealer&&) noexcept = default;

    // The file header (114 bytes): send it before any chunk.
    const Bytes& header() const noexcept { return header_; }
    // Encrypts one chunk (≤ 16 MiB, may be empty) and returns its framed bytes. `final` marks the
    // end of the extract; after it no more chunks are accepted.
    Result<Bytes> seal(ByteView plaintext, bool final);
    bool finished() const noexcept { return finished_; }
    // Digests so far; complete once finished().
    ExtractDigests digests() const;

private:
    ExtractSealer() = default;
    SecureBytes state_;  // crypto_secretstream_xchacha20poly1305_state (holds the key)
    Bytes header_;
    Sha256 plaintextHash_;
    Sha256 ciphertextHash_;
    ExtractDigests totals_;
    bool finished_ = false;
};

// Decrypts an extract fed in arbitrary slices as they arrive. Keeps a pointer to `key`, which must
// outlive the opener. After any error the opener stays failed and returns the same error.
class ExtractOpener {
public:
    static Result<ExtractOpener> create(const BoxSecretKey& key);

    ExtractOpener(ExtractOpener&&) noexcept = default;
    ExtractOpener& operator=(ExtractOpener&&) noexcept = default;

    // Consumes `input`, appending any plaintext it completes to `plaintext`.
    Status feed(ByteView input, Bytes& plaintext);
    // Succeeds only if the final chunk was seen and nothing followed it.
    Status finish();
    // Digests of what was fed and produced so far (complete after a successful finish()).
    ExtractDigests digests() const;

private:
    ExtractOpener() = default;
    Status fail(Status st);
    Status processHeader(ByteView header);
    Status processChunk(ByteView ciphertext, Bytes& plaintext);

    const BoxSecretKey* key_ = nullptr;
    SecureBytes state_;
    Bytes pending_;
    enum class Phase { Header, ChunkLength, ChunkBody, Done, Failed } phase_ = Phase::Header;
    size_t chunkLength_ = 0;
    uint64_t chunkIndex_ = 0;
    Status error_;
    Sha256 plaintextHash_;
    Sha256 ciphertextHash_;
    ExtractDigests totals_;
    bool digestsFinal_ = false;
};

// Whole-buffer conveniences (tests, fuzzing, small files).
Result<Bytes> sealExtract(const BoxPublicKey& recipient, ByteView plaintext, size_t chunkSize = 64 * 1024);
Result<Bytes> openExtract(const BoxSecretKey& key, ByteView file);

}  // namespace custodian::crypto
