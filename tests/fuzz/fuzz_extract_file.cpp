// Fuzzes the extract file decoder (ExtractOpener) with a fixed partner key (RFC 7748 §6.1 Alice,
// the key the seed corpus is sealed to). The input is fed in two slices split at a position taken
// from the first byte, so incremental parsing paths are exercised too. Any outcome is fine except
// a crash, a sanitizer report, or plaintext accepted without a successful finish().
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"

using namespace custodian;
using namespace custodian::crypto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const BoxSecretKey key =
        BoxSecretKey::fromSecretBytes(
            fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").value())
            .value();
    auto opener = ExtractOpener::create(key);
    if (!opener) std::abort();
    const size_t split = size == 0 ? 0 : data[0] % (size + 1);
    Bytes plaintext;
    const ByteView input(data, size);
    Status st = opener->feed(input.first(split), plaintext);
    if (st) st = opener->feed(input.subspan(split), plaintext);
    if (st) st = opener->finish();
    if (st) {
        // Accepted: the digests must describe exactly what was fed and produced.
        const ExtractDigests d = opener->digests();
        if (d.ciphertextBytes != size || d.plaintextBytes != plaintext.size()) std::abort();
        if (d.plaintextSha256 != sha256(plaintext) || d.ciphertextSha256 != sha256(input)) std::abort();
    }
    return 0;
}
