// Canonical JSON and signed manifests: exact bytes (known answers) and verification.
#include <catch2/catch.hpp>

#include <string>

#include "json/canonical.hpp"
#include "gateway/crypto/manifest.hpp"

using namespace custodian;
using namespace custodian::crypto;
using namespace custodian::json;

namespace {

SigningKey rfc8032Key() {
    return SigningKey::fromSeed(fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").value())
        .value();
}

ExtractManifest sampleManifest() {
    ExtractManifest m;
    m.extractId = "ext-0001";
    m.dataset = "hospital_visits";
    m.policy = "research";
    m.policyVersion = 3;
    m.policySha256 = std::string(64, 'a');
    m.purpose = "influenza study";
    m.recipient = "partner-a";
    m.createdMs = 1795000000123;
    m.format = "csv";
    m.rowsReleased = 99000;
    m.rowsSuppressed = 1000;
    m.columns = {{"birth_date", "generalize:level=2"}, {"name", "drop"}};
    m.models = JsonValue::Object{{"k", 10}, {"t", "0.150"}};
    m.digests.plaintextBytes = 5;
    m.digests.plaintextSha256 = sha256(asBytes("hello"));
    m.digests.ciphertextBytes = 200;
    m.digests.ciphertextSha256 = sha256(asBytes("file"));
    m.auditIndex = 41;
    return m;
}

}  // namespace

TEST_CASE("canonical JSON sorts members byte-wise, drops whitespace and escapes minimally", "[crypto][json]") {
    JsonValue v = JsonValue::Object{
        {"b", JsonValue::Array{1, -2, true, nullptr, "x"}},
        {"a", "quote\" backslash\\ tab\t nl\n ctl\x01 del\x7f é"},
        {"B", JsonValue::Object{}},
        {"\xc3\xa9", uint64_t{18446744073709551615ULL}},
    };
    CHECK(canonicalJson(v).value() ==
          "{\"B\":{},\"a\":\"quote\\\" backslash\\\\ tab\\t nl\\n ctl\\u0001 del\x7f \xc3\xa9\","
          "\"b\":[1,-2,true,null,\"x\"],\"\xc3\xa9\":18446744073709551615}");
    CHECK_FALSE(canonicalJson(JsonValue("bad \xff utf8")).isOk());
    CHECK(sanitizeUtf8("bad \xff utf8") == "bad \xef\xbf\xbd utf8");
    CHECK_FALSE(isValidUtf8("\xed\xa0\x80"));  // an encoded surrogate
    CHECK_FALSE(isValidUtf8("\xc0\xaf"));      // overlong
    CHECK(isValidUtf8("\xf0\x9f\x94\x92"));
}

TEST_CASE("parseJson then canonicalJson normalises any formatting and rejects ambiguity", "[crypto][json]") {
    auto v = parseJson(" { \"z\" : [ 1 , { \"y\":\"\\u00e9\\n\" } ], \"a\" : -0 } ");
    REQUIRE(v.isOk());
    CHECK(canonicalJson(*v).value() == "{\"a\":0,\"z\":[1,{\"y\":\"\xc3\xa9\\n\"}]}");
    CHECK_THAT(parseJson("{\"a\":1.5}").status().message(), Catch::Contains("only integers"));
    CHECK_THAT(parseJson("{\"a\":1,\"a\":2}").status().message(), Catch::Contains("duplicate"));
    CHECK_FALSE(parseJson("{} x").isOk());
    CHECK_FALSE(parseJson("\"\xff\"").isOk());
    CHECK_FALSE(parseJson(std::string(100, '[') + std::string(100, ']')).isOk());
}

TEST_CASE("manifest signed bytes are the documented prefix plus canonical JSON (known answer)", "[crypto][manifest]") {
    const std::string expected =
        "custodian-manifest-v1\n"
        "{\"audit_index\":41,\"ciphertext_bytes\":200,"
        "\"ciphertext_sha256\":\"" +
        toHex(sha256(asBytes("file"))) +
        "\","
        "\"columns\":[{\"name\":\"birth_date\",\"transform\":\"generalize:level=2\"},{\"name\":\"name\",\"transform\":"
        "\"drop\"}],"
        "\"created_ms\":1795000000123,\"dataset\":\"hospital_visits\",\"extract_id\":\"ext-0001\",\"format\":\"csv\","
        "\"models\":{\"k\":10,\"t\":\"0.150\"},\"plaintext_bytes\":5,"
        "\"plaintext_sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
        "\"policy\":\"research\",\"policy_sha256\":\"" +
        std::string(64, 'a') +
        "\",\"policy_version\":3,"
        "\"purpose\":\"influenza study\",\"recipient\":\"partner-a\",\"rows_released\":99000,\"rows_suppressed\":1000,"
        "\"version\":1}";
    CHECK(manifestSignedBytes(sampleManifest()).value() == expected);
    // Ed25519 is deterministic: with the RFC 8032 test key the signature is fixed (cross-checked
    // with an independent Ed25519 implementation, Python's `cryptography`).
    const auto key = rfc8032Key();
    const auto sig = key.sign(asBytes(expected));
    CHECK(toHex(sig) == "185aa2b9f58fd298fcfcc23f6ae303c8e4a65ee517921d5f60ce80bcc4cecfaf"
                        "6d70b8c1c66ad42bc0046e35ee1b1583c989226de680611fc7c7111b0c3cf10e");
    CHECK(verifySignature(key.publicKey(), asBytes(expected), sig));
    auto signedManifest = signManifest(sampleManifest(), key).value();
    CHECK(signedManifest.signature == toBase64(sig));  // the one signature, also returned on its own
    const std::string& document = signedManifest.document;
    CHECK_THAT(document, Catch::Contains("\"signature\":\"" + toBase64(sig) + "\""));
    CHECK_THAT(document, Catch::StartsWith("{\"manifest\":{\"audit_index\":41,"));
}

TEST_CASE("a signed manifest verifies and round-trips to the same fields", "[crypto][manifest]") {
    const auto key = rfc8032Key();
    const auto document = signManifest(sampleManifest(), key).value().document;
    auto verified = verifyManifest(document, key.publicKey());
    REQUIRE(verified.isOk());
    CHECK(*verified == sampleManifest());
    // Reformatting the JSON (whitespace, member order) does not matter: the signature is over
    // the canonical form.
    std::string spaced = document;
    for (size_t p = spaced.find(','); p != std::string::npos; p = spaced.find(',', p + 3)) spaced.insert(p + 1, "  ");
    CHECK(verifyManifest(spaced, key.publicKey()).isOk());
}

TEST_CASE("a manifest's key_derivation is signed when present and absent from older manifests", "[crypto][manifest]") {
    const auto key = rfc8032Key();
    ExtractManifest m = sampleManifest();
    m.keyDerivation = 2;
    const auto document = signManifest(m, key).value().document;
    CHECK(document.find("\"key_derivation\":2") != std::string::npos);
    auto verified = verifyManifest(document, key.publicKey());
    REQUIRE(verified.isOk());
    CHECK(verified->keyDerivation == 2);
    // Changing it breaks the signature.
    std::string changed = document;
    changed.replace(changed.find("\"key_derivation\":2"), 18, "\"key_derivation\":1");
    CHECK(verifyManifest(changed, key.publicKey()).status().code() == StatusCode::PermissionDenied);
    // A manifest without it (signed before it existed) reads as 0 and does not gain it.
    const auto older = signManifest(sampleManifest(), key).value().document;
    CHECK(older.find("key_derivation") == std::string::npos);
    CHECK(verifyManifest(older, key.publicKey())->keyDerivation == 0);
    // A malformed value is refused by name.
    auto object = manifestToJson(sampleManifest());
    object.asObject()["key_derivation"] = std::string("2");
    auto parsed = manifestFromJson(object);
    REQUIRE_FALSE(parsed.isOk());
    CHECK(parsed.status().message() == "manifest.key_derivation: must be a positive integer");
}

TEST_CASE("a modified manifest, another key or a missing signature is rejected", "[crypto][manifest]") {
    const auto key = rfc8032Key();
    const auto document = signManifest(sampleManifest(), key).value().document;

    std::string moreRows = document;
    moreRows.replace(moreRows.find("99000"), 5, "99001");
    auto bad = verifyManifest(moreRows, key.publicKey());
    REQUIRE_FALSE(bad.isOk());
    CHECK(bad.status().code() == StatusCode::PermissionDenied);

    std::string extraMember = document;
    extraMember.replace(extraMember.find("{\"audit_index\""), 1, "{\"note\":\"added\",");
    CHECK_FALSE(verifyManifest(extraMember, key.publicKey()).isOk());

    auto other = SigningKey::generate().value();
    CHECK_FALSE(verifyManifest(document, other.publicKey()).isOk());
    CHECK_FALSE(verifyManifest("{\"manifest\":{}}", key.publicKey()).isOk());
    CHECK_FALSE(verifyManifest("not json", key.publicKey()).isOk());
}

TEST_CASE("an extract is checked against its manifest's digests", "[crypto][manifest]") {
    auto partner = BoxSecretKey::generate().value();
    auto sealer = ExtractSealer::create(partner.publicKey()).value();
    Bytes file = sealer.header();
    auto chunk = sealer.seal(asBytes("a,b\n1,2\n"), true).value();
    file.insert(file.end(), chunk.begin(), chunk.end());
    ExtractManifest m = sampleManifest();
    m.digests = sealer.digests();

    auto opener = ExtractOpener::create(partner).value();
    Bytes plain;
    REQUIRE(opener.feed(file, plain).isOk());
    REQUIRE(opener.finish().isOk());
    CHECK(checkExtractAgainstManifest(m, opener.digests()).isOk());
    ExtractDigests other = opener.digests();
    other.plaintextSha256[0] ^= 1;
    CHECK_THAT(checkExtractAgainstManifest(m, other).message(), Catch::Contains("plaintext SHA-256"));
}
