// SHA-256 (gateway/crypto/digest.hpp): FIPS 180-2 known answers, streaming and copied states.
#include <catch2/catch.hpp>

#include "gateway/crypto/digest.hpp"
#include "gateway/crypto/keys.hpp"

using namespace custodian;
using namespace custodian::crypto;

namespace {
std::string hex(const Sha256Digest& d) { return toHex(ByteView(d.data(), d.size())); }
}  // namespace

TEST_CASE("SHA-256 gives the FIPS 180-2 known answers, one-shot and streamed", "[digest]") {
    CHECK(hex(sha256(asBytes(""))) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(hex(sha256(asBytes("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string million(1000000, 'a');
    Sha256 streamed;
    for (size_t at = 0; at < million.size(); at += 4093)
        streamed.update(asBytes(std::string_view(million).substr(at, 4093)));
    CHECK(hex(streamed.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("a copied SHA-256 state digests the prefix while the original goes on", "[digest]") {
    Sha256 h;
    h.update(asBytes("ab"));
    Sha256 prefix = h;
    h.update(asBytes("c"));
    CHECK(hex(prefix.finish()) == hex(sha256(asBytes("ab"))));
    CHECK(hex(h.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Sha256 assigned;
    Sha256 source;
    source.update(asBytes("abc"));
    assigned = source;
    CHECK(hex(assigned.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
