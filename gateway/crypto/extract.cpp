#include "gateway/crypto/extract.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace custodian::crypto {

namespace {

using StreamState = crypto_secretstream_xchacha20poly1305_state;

static_assert(kExtractSealedKeyBytes == crypto_secretstream_xchacha20poly1305_KEYBYTES + crypto_box_SEALBYTES);
static_assert(kExtractStreamHeaderBytes == crypto_secretstream_xchacha20poly1305_HEADERBYTES);
static_assert(kExtractChunkOverhead == crypto_secretstream_xchacha20poly1305_ABYTES);

void putU16(Bytes& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}
void putU32(uint8_t* out, uint32_t v) {
    out[0] = static_cast<uint8_t>(v >> 24);
    out[1] = static_cast<uint8_t>(v >> 16);
    out[2] = static_cast<uint8_t>(v >> 8);
    out[3] = static_cast<uint8_t>(v);
}
uint32_t getU32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

StreamState* stateOf(SecureBytes& bytes) { return reinterpret_cast<StreamState*>(bytes.data()); }

}  // namespace

// --- sealing -------------------------------------------------------------------------------

Result<ExtractSealer> ExtractSealer::create(const BoxPublicKey& recipient) {
    if (auto st = ensureSodium(); !st) return st;
    ExtractSealer sealer;
    auto state = SecureBytes::allocate(sizeof(StreamState));
    auto key = SecureBytes::allocate(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    if (!state) return state.status();
    if (!key) return key.status();
    crypto_secretstream_xchacha20poly1305_keygen(key->data());

    Bytes& h = sealer.header_;
    h.reserve(kExtractHeaderBytes);
    h.insert(h.end(), std::begin(kExtractMagic), std::end(kExtractMagic));
    h.push_back(kExtractVersion);
    putU16(h, static_cast<uint16_t>(kExtractSealedKeyBytes));
    h.resize(h.size() + kExtractSealedKeyBytes);
    if (crypto_box_seal(h.data() + 10, key->data(), key->size(), recipient.bytes.data()) != 0) {
        return invalidArgument("cannot seal to this partner public key");
    }
    h.resize(h.size() + kExtractStreamHeaderBytes);
    crypto_secretstream_xchacha20poly1305_init_push(stateOf(*state), h.data() + 10 + kExtractSealedKeyBytes,
                                                    key->data());
    sealer.state_ = std::move(state).value();
    sealer.ciphertextHash_.update(h);
    sealer.totals_.ciphertextBytes = h.size();
    return sealer;
}

Result<Bytes> ExtractSealer::seal(ByteView plaintext, bool final) {
    if (finished_) return failedPrecondition("the extract was already finished with its final chunk");
    if (plaintext.size() > kExtractMaxChunkPlaintext) {
        return invalidArgument("an extract chunk holds at most 16 MiB of plaintext");
    }
    Bytes out(4 + plaintext.size() + kExtractChunkOverhead);
    putU32(out.data(), static_cast<uint32_t>(plaintext.size() + kExtractChunkOverhead));
    const uint8_t tag =
        final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    crypto_secretstream_xchacha20poly1305_push(stateOf(state_), out.data() + 4, nullptr, plaintext.data(),
                                               plaintext.size(), nullptr, 0, tag);
    plaintextHash_.update(plaintext);
    ciphertextHash_.update(out);
    totals_.plaintextBytes += plaintext.size();
    totals_.ciphertextBytes += out.size();
    if (final) {
        finished_ = true;
        totals_.plaintextSha256 = plaintextHash_.finish();
        totals_.ciphertextSha256 = ciphertextHash_.finish();
        state_ = SecureBytes();  // wipe the stream key now rather than at destruction
    }
    return out;
}

ExtractDigests ExtractSealer::digests() const {
    if (finished_) return totals_;
    ExtractDigests partial = totals_;
    Sha256 p = plaintextHash_;
    Sha256 c = ciphertextHash_;
    partial.plaintextSha256 = p.finish();
    partial.ciphertextSha256 = c.finish();
    return partial;
}

// --- opening -------------------------------------------------------------------------------

Result<ExtractOpener> ExtractOpener::create(const BoxSecretKey& key) {
    if (auto st = ensureSodium(); !st) return st;
    ExtractOpener opener;
    auto state = SecureBytes::allocate(sizeof(StreamState));
    if (!state) return state.status();
    opener.state_ = std::move(state).value();
    opener.key_ = &key;
    return opener;
}

Status ExtractOpener::fail(Status st) {
    phase_ = Phase::Failed;
    error_ = st;
    state_ = SecureBytes();
    pending_.clear();
    return st;
}

Status ExtractOpener::processHeader(ByteView h) {
    if (std::memcmp(h.data(), kExtractMagic, sizeof kExtractMagic) != 0) {
        return fail(invalidArgument("not a Custodian extract file (the first bytes are not \"CUSTEXT\")"));
    }
    if (h[7] != kExtractVersion) {
        return fail(invalidArgument("unsupported extract format version " + std::to_string(h[7]) +
                                    " (this build reads version 1)"));
    }
    const size_t sealedLength = (size_t{h[8]} << 8) | h[9];
    if (sealedLength != kExtractSealedKeyBytes) {
        return fail(invalidArgument("corrupt extract header: sealed key length " + std::to_string(sealedLength) +
                                    ", expected 80"));
    }
    if (h.size() < kExtractHeaderBytes) return Status::ok();  // checked early; wait for the rest

    auto streamKey = SecureBytes::allocate(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    if (!streamKey) return fail(streamKey.status());
    if (crypto_box_seal_open(streamKey->data(), h.data() + 10, kExtractSealedKeyBytes, key_->publicKey().bytes.data(),
                             key_->secretData()) != 0) {
        return fail(permissionDenied("this extract is not sealed to this key (wrong .key file), or its "
                                     "header was modified"));
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(stateOf(state_), h.data() + 10 + kExtractSealedKeyBytes,
                                                        streamKey->data()) != 0) {
        return fail(invalidArgument("corrupt extract header: invalid stream header"));
    }
    phase_ = Phase::ChunkLength;
    return Status::ok();
}

Status ExtractOpener::processChunk(ByteView c, Bytes& plaintext) {
    const size_t offset = plaintext.size();
    plaintext.resize(offset + c.size() - kExtractChunkOverhead);
    unsigned long long produced = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(stateOf(state_), plaintext.data() + offset, &produced, &tag,
                                                   c.data(), c.size(), nullptr, 0) != 0) {
        plaintext.resize(offset);
        return fail(invalidArgument("chunk " + std::to_string(chunkIndex_) +
                                    ": authentication failed — the file was modified, reordered or corrupted"));
    }
    plaintext.resize(offset + produced);
    plaintextHash_.update({plaintext.data() + offset, static_cast<size_t>(produced)});
    totals_.plaintextBytes += produced;
    ++chunkIndex_;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        phase_ = Phase::Done;
        state_ = SecureBytes();
    } else if (tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        phase_ = Phase::ChunkLength;
    } else {
        plaintext.resize(offset);
        return fail(invalidArgument("chunk " + std::to_string(chunkIndex_ - 1) + ": unexpected stream tag " +
                                    std::to_string(tag)));
    }
    return Status::ok();
}

Status ExtractOpener::feed(ByteView input, Bytes& plaintext) {
    if (phase_ == Phase::Failed) return error_;
    if (input.empty()) return Status::ok();
    if (phase_ == Phase::Done) { return fail(invalidArgument("unexpected data after the final chunk of the extract")); }
    ciphertextHash_.update(input);
    totals_.ciphertextBytes += input.size();
    pending_.insert(pending_.end(), input.begin(), input.end());

    size_t pos = 0;
    for (;;) {
        const size_t available = pending_.size() - pos;
        const uint8_t* p = pending_.data() + pos;
        if (phase_ == Phase::Header) {
            if (available < 10) break;
            if (auto st = processHeader({p, std::min(available, kExtractHeaderBytes)}); !st) return st;
            if (available < kExtractHeaderBytes) break;
            pos += kExtractHeaderBytes;
        } else if (phase_ == Phase::ChunkLength) {
            if (available < 4) break;
            chunkLength_ = getU32(p);
            if (chunkLength_ < kExtractChunkOverhead ||
                chunkLength_ > kExtractMaxChunkPlaintext + kExtractChunkOverhead) {
                return fail(invalidArgument("chunk " + std::to_string(chunkIndex_) + ": invalid length " +
                                            std::to_string(chunkLength_) + " (the file is corrupted)"));
            }
            pos += 4;
            phase_ = Phase::ChunkBody;
        } else if (phase_ == Phase::ChunkBody) {
            if (available < chunkLength_) break;
            if (auto st = processChunk({p, chunkLength_}, plaintext); !st) return st;
            pos += chunkLength_;
        } else if (phase_ == Phase::Done) {
            if (available > 0) return fail(invalidArgument("unexpected data after the final chunk of the extract"));
            break;
        } else {
            return error_;
        }
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pos));
    return Status::ok();
}

Status ExtractOpener::finish() {
    if (phase_ == Phase::Failed) return error_;
    if (phase_ == Phase::Done) {
        if (!digestsFinal_) {
            totals_.plaintextSha256 = plaintextHash_.finish();
            totals_.ciphertextSha256 = ciphertextHash_.finish();
            digestsFinal_ = true;
        }
        return Status::ok();
    }
    if (phase_ == Phase::Header) {
        return fail(invalidArgument("the extract is truncated: it ends inside its " +
                                    std::to_string(kExtractHeaderBytes) + "-byte header"));
    }
    return fail(invalidArgument("the extract is truncated: it ends after " + std::to_string(chunkIndex_) +
                                " complete chunk(s) without the final chunk (the download was cut or the "
                                "gateway aborted the release)"));
}

ExtractDigests ExtractOpener::digests() const {
    if (digestsFinal_) return totals_;
    ExtractDigests out = totals_;
    Sha256 p = plaintextHash_;
    Sha256 c = ciphertextHash_;
    out.plaintextSha256 = p.finish();
    out.ciphertextSha256 = c.finish();
    return out;
}

Result<Bytes> sealExtract(const BoxPublicKey& recipient, ByteView plaintext, size_t chunkSize) {
    if (chunkSize == 0 || chunkSize > kExtractMaxChunkPlaintext) return invalidArgument("bad chunk size");
    auto sealer = ExtractSealer::create(recipient);
    if (!sealer) return sealer.status();
    Bytes out = sealer->header();
    size_t pos = 0;
    do {
        const size_t n = std::min(chunkSize, plaintext.size() - pos);
        const bool final = pos + n == plaintext.size();
        auto chunk = sealer->seal(plaintext.subspan(pos, n), final);
        if (!chunk) return chunk.status();
        out.insert(out.end(), chunk->begin(), chunk->end());
        pos += n;
        if (final) break;
    } while (true);
    return out;
}

Result<Bytes> openExtract(const BoxSecretKey& key, ByteView file) {
    auto opener = ExtractOpener::create(key);
    if (!opener) return opener.status();
    Bytes plaintext;
    if (auto st = opener->feed(file, plaintext); !st) return st;
    if (auto st = opener->finish(); !st) return st;
    return plaintext;
}

}  // namespace custodian::crypto
