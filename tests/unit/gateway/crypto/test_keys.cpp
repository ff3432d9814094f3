// Keys: known answers from RFC 8032 (Ed25519) and RFC 7748 (X25519), encodings, key files.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/secure_file.hpp"

namespace custodian::cli {
int runKeygen(int argc, char** argv);
}

using namespace custodian;
using namespace custodian::crypto;

namespace {

Bytes hexBytes(const std::string& hex) { return fromHex(hex).value(); }

// A fresh empty directory under the system temp dir, removed at scope exit.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string templ = (std::filesystem::temp_directory_path() / "custodian-keys-XXXXXX").string();
        path = ::mkdtemp(templ.data());
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

unsigned modeOf(const std::string& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

void writeText(const std::string& path, const std::string& text, unsigned mode) {
    std::ofstream(path) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// RFC 8032 §7.1, TEST 1 and TEST 2.
const char* kSeed1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const char* kPublic1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const char* kSig1 = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd2"
                    "5bf5f0595bbe24655141438e7a100b";
const char* kSeed2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const char* kPublic2 = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const char* kSig2 = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c38"
                    "7b2eaeb4302aeeb00d291612bb0c00";

}  // namespace

TEST_CASE("Ed25519 keys from RFC 8032 seeds give the RFC's public keys and signatures", "[crypto][keys]") {
    auto key1 = SigningKey::fromSeed(hexBytes(kSeed1));
    REQUIRE(key1.isOk());
    CHECK(toHex(key1->publicKey()) == kPublic1);
    CHECK(toHex(key1->sign({})) == kSig1);

    auto key2 = SigningKey::fromSeed(hexBytes(kSeed2));
    REQUIRE(key2.isOk());
    CHECK(toHex(key2->publicKey()) == kPublic2);
    const uint8_t message[] = {0x72};
    CHECK(toHex(key2->sign(message)) == kSig2);
    CHECK(verifySignature(key2->publicKey(), message, hexBytes(kSig2)));
}

TEST_CASE("signature verification rejects other messages, keys, lengths and flipped bits", "[crypto][keys]") {
    auto key = SigningKey::fromSeed(hexBytes(kSeed1)).value();
    auto other = SigningKey::fromSeed(hexBytes(kSeed2)).value();
    const auto msg = asBytes("tree head 42");
    auto sig = key.sign(msg);
    CHECK(verifySignature(key.publicKey(), msg, sig));
    CHECK_FALSE(verifySignature(other.publicKey(), msg, sig));
    CHECK_FALSE(verifySignature(key.publicKey(), asBytes("tree head 43"), sig));
    CHECK_FALSE(verifySignature(key.publicKey(), msg, ByteView(sig.data(), 63)));
    for (size_t i = 0; i < sig.size(); i += 7) {
        auto bad = sig;
        bad[i] ^= 0x01;
        CHECK_FALSE(verifySignature(key.publicKey(), msg, bad));
    }
    auto fresh = SigningKey::generate();
    REQUIRE(fresh.isOk());
    CHECK(verifySignature(fresh->publicKey(), msg, fresh->sign(msg)));
    CHECK_FALSE(fresh->publicKey() == key.publicKey());
}

TEST_CASE("X25519 secret key from RFC 7748 §6.1 derives the RFC's public key", "[crypto][keys]") {
    auto alice =
        BoxSecretKey::fromSecretBytes(hexBytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    REQUIRE(alice.isOk());
    CHECK(toHex(alice->publicKey().bytes) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    CHECK_FALSE(BoxSecretKey::fromSecretBytes(hexBytes("0011")).isOk());
}

TEST_CASE("hex and base64 helpers round-trip and reject malformed text", "[crypto][keys]") {
    const Bytes data = {0x00, 0x01, 0xfe, 0xff, 0x7f};
    CHECK(toHex(data) == "0001feff7f");
    CHECK(fromHex("0001FEFF7F").value() == data);
    CHECK(toBase64(asBytes("foobar")) == "Zm9vYmFy");
    CHECK(toBase64(asBytes("fo")) == "Zm8=");
    CHECK(fromBase64("Zm8=").value() == Bytes{'f', 'o'});
    CHECK_FALSE(fromHex("abc").isOk());
    CHECK_FALSE(fromHex("zz").isOk());
    CHECK_FALSE(fromBase64("Zm8").isOk());     // padding required
    CHECK_FALSE(fromBase64("Zm8=\n").isOk());  // strict: no whitespace
    CHECK_FALSE(fromBase64("Z!8=").isOk());
    CHECK(fromBase64("").value().empty());
}

TEST_CASE("loadOrCreate creates a 0600 key file once and loads the same key afterwards", "[crypto][keys]") {
    TempDir dir;
    const std::string path = dir.file("gateway.key");
    auto created = SigningKey::loadOrCreate(path);
    REQUIRE(created.isOk());
    CHECK(modeOf(path) == 0600);
    auto loaded = SigningKey::loadOrCreate(path);
    REQUIRE(loaded.isOk());
    CHECK(loaded->publicKey() == created->publicKey());
    // Only the key file is left in the directory (no temporary files).
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) == 1);

    // The documented format: one line with the seed.
    const std::string seedFile = dir.file("seeded.key");
    writeText(seedFile, "custodian-ed25519-seed:" + toBase64(hexBytes(kSeed1)) + "\n", 0600);
    auto seeded = SigningKey::loadOrCreate(seedFile);
    REQUIRE(seeded.isOk());
    CHECK(toHex(seeded->publicKey()) == kPublic1);
}

TEST_CASE("loadOrCreate refuses a key file that group or others can read", "[crypto][keys]") {
    TempDir dir;
    const std::string path = dir.file("gateway.key");
    writeText(path, "custodian-ed25519-seed:" + toBase64(hexBytes(kSeed1)) + "\n", 0644);
    auto key = SigningKey::loadOrCreate(path);
    REQUIRE_FALSE(key.isOk());
    CHECK(key.status().code() == StatusCode::PermissionDenied);
    CHECK_THAT(key.status().message(), Catch::Contains("chmod 600"));
    REQUIRE(::chmod(path.c_str(), 0640) == 0);
    CHECK_FALSE(SigningKey::loadOrCreate(path).isOk());
    REQUIRE(::chmod(path.c_str(), 0600) == 0);
    CHECK(SigningKey::loadOrCreate(path).isOk());
}

TEST_CASE("loadOrCreate reports malformed key files clearly", "[crypto][keys]") {
    TempDir dir;
    const std::string wrongKind = dir.file("a.key");
    writeText(wrongKind, "custodian-x25519-secret:" + toBase64(hexBytes(kSeed1)) + "\n", 0600);
    auto a = SigningKey::loadOrCreate(wrongKind);
    REQUIRE_FALSE(a.isOk());
    CHECK_THAT(a.status().message(), Catch::Contains("custodian-ed25519-seed:"));
    const std::string shortKey = dir.file("b.key");
    writeText(shortKey, "custodian-ed25519-seed:AAAA\n", 0600);
    CHECK_FALSE(SigningKey::loadOrCreate(shortKey).isOk());
}

TEST_CASE("gateway public key files accept bare base64 and the prefixed form", "[crypto][keys]") {
    const auto pk = SigningKey::fromSeed(hexBytes(kSeed1)).value().publicKey();
    CHECK(parseGatewayPublicKey(toBase64(pk) + "\n").value() == pk);
    CHECK(parseGatewayPublicKey(formatGatewayPublicKey(pk)).value() == pk);
    CHECK(formatGatewayPublicKey(pk) == "custodian-ed25519-public:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n");
    const std::string keysDocument =
        "{\"keys\":[{\"key_id\":\"x\",\"algorithm\":\"Ed25519\",\"public_key\":\"" + toBase64(pk) + "\"}]}";
    CHECK(parseGatewayPublicKey(keysDocument).value() == pk);
    CHECK_FALSE(parseGatewayPublicKey("{\"keys\":[]}").isOk());
    CHECK_FALSE(parseGatewayPublicKey("AAAA").isOk());
    CHECK_FALSE(parseGatewayPublicKey("").isOk());
}

TEST_CASE("partner key pair files: documented format, modes, no overwrite", "[crypto][keys]") {
    TempDir dir;
    const std::string prefix = dir.file("partner");
    auto key = BoxSecretKey::generate();
    REQUIRE(key.isOk());
    REQUIRE(writeBoxKeyPair(*key, prefix).isOk());
    CHECK(modeOf(prefix + ".key") == 0600);
    CHECK(modeOf(prefix + ".pub") == 0644);

    auto pubText = readPublicFile(prefix + ".pub").value();
    CHECK(pubText == "custodian-x25519-public:" + toBase64(key->publicKey().bytes) + "\n");
    CHECK(readBoxPublicKeyFile(prefix + ".pub").value() == key->publicKey());
    auto reread = readBoxSecretKeyFile(prefix + ".key");
    REQUIRE(reread.isOk());
    CHECK(reread->publicKey() == key->publicKey());

    auto again = writeBoxKeyPair(*key, prefix);
    CHECK_FALSE(again.isOk());
    CHECK_THAT(again.message(), Catch::Contains("already exists"));

    // A secret key readable by others is refused; a .key given as a public key is explained.
    REQUIRE(::chmod((prefix + ".key").c_str(), 0644) == 0);
    auto exposed = readBoxSecretKeyFile(prefix + ".key");
    REQUIRE_FALSE(exposed.isOk());
    CHECK(exposed.status().code() == StatusCode::PermissionDenied);
    auto swapped = readBoxPublicKeyFile(prefix + ".key");
    REQUIRE_FALSE(swapped.isOk());
    CHECK_THAT(swapped.status().message(), Catch::Contains("secret key"));
    CHECK_FALSE(parseBoxPublicKey("custodian-x25519-public:AAAA").isOk());
}

TEST_CASE("custodian keygen writes PREFIX.pub and PREFIX.key and refuses to overwrite", "[crypto][keys][cli]") {
    TempDir dir;
    std::string prefix = dir.file("p");
    std::string a0 = "--out", a1 = prefix;
    char* argv[] = {a0.data(), a1.data()};
    CHECK(cli::runKeygen(2, argv) == 0);
    CHECK(modeOf(prefix + ".key") == 0600);
    auto pub = readBoxPublicKeyFile(prefix + ".pub");
    auto sec = readBoxSecretKeyFile(prefix + ".key");
    REQUIRE(pub.isOk());
    REQUIRE(sec.isOk());
    CHECK(sec->publicKey() == *pub);
    CHECK(cli::runKeygen(2, argv) == 1);
    char* noArgs[] = {a0.data()};
    CHECK(cli::runKeygen(1, noArgs) == 2);
}
