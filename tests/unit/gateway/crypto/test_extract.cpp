// Extract sealing and opening: round trips under any slicing, and every failure mode the partner
// must see loudly (truncation, tampering, wrong key, trailing data).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::cli {
int runDecrypt(int argc, char** argv);
}

using namespace custodian;
using namespace custodian::crypto;

namespace {

// RFC 7748 §6.1 Alice: the fixed partner key of the known-answer file in the fuzz corpus.
BoxSecretKey aliceKey() {
    return BoxSecretKey::fromSecretBytes(
               fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").value())
        .value();
}

Bytes randomBytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    Bytes out(n);
    for (auto& b : out) b = static_cast<uint8_t>(rng());
    return out;
}

Bytes readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Feeds `file` to a fresh opener in random slices; returns the status of the first failing step.
Status openInSlices(const BoxSecretKey& key, ByteView file, uint32_t seed, Bytes& plaintext) {
    auto opener = ExtractOpener::create(key);
    REQUIRE(opener.isOk());
    std::mt19937 rng(seed);
    size_t pos = 0;
    while (pos < file.size()) {
        const size_t n = std::min<size_t>(file.size() - pos, rng() % 97 + (rng() % 8 == 0 ? 5000 : 0));
        if (auto st = opener->feed(file.subspan(pos, n), plaintext); !st) return st;
        pos += n;
    }
    return opener->finish();
}

}  // namespace

TEST_CASE("the known-answer extract file decrypts with the fixed partner key", "[crypto][extract]") {
    const Bytes file =
        readFile(std::string(CUSTODIAN_SOURCE_DIR) + "/tests/fuzz/corpus/extract_file/valid_3_chunks.enc");
    REQUIRE(file.size() == 230);
    CHECK(std::string(file.begin(), file.begin() + 8) == std::string("CUSTEXT\x01", 8));
    auto key = aliceKey();
    auto plaintext = openExtract(key, file);
    REQUIRE(plaintext.isOk());
    CHECK(std::string(plaintext->begin(), plaintext->end()) ==
          "id;age;zip\n1;30-39;123**\n2;30-39;123**\n3;40-49;124**\n");
}

TEST_CASE("sealed extracts open to the same bytes under any slicing of the input", "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    for (size_t size : {size_t{0}, size_t{1}, size_t{999}, size_t{1000}, size_t{1001}, size_t{70000}}) {
        const Bytes plain = randomBytes(size, static_cast<uint32_t>(size));
        auto file = sealExtract(key.publicKey(), plain, 1000);
        REQUIRE(file.isOk());
        const size_t chunks = size == 0 ? 1 : (size + 999) / 1000;
        CHECK(file->size() == kExtractHeaderBytes + plain.size() + chunks * (4 + kExtractChunkOverhead));
        for (uint32_t seed = 1; seed <= 5; ++seed) {
            Bytes out;
            REQUIRE(openInSlices(key, *file, seed, out).isOk());
            CHECK(out == plain);
        }
    }
}

TEST_CASE("sealer and opener report the same digests, which are SHA-256 of the plaintext and the file",
          "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    auto sealer = ExtractSealer::create(key.publicKey()).value();
    Bytes file = sealer.header();
    const Bytes a = randomBytes(5000, 1), b = randomBytes(300, 2);
    for (const auto* chunk : {&a, &b}) {
        auto framed = sealer.seal(*chunk, chunk == &b);
        REQUIRE(framed.isOk());
        file.insert(file.end(), framed->begin(), framed->end());
    }
    REQUIRE(sealer.finished());
    CHECK_FALSE(sealer.seal(a, true).isOk());  // nothing after the final chunk

    Bytes plain = a;
    plain.insert(plain.end(), b.begin(), b.end());
    const ExtractDigests sealed = sealer.digests();
    CHECK(sealed.plaintextSha256 == sha256(plain));
    CHECK(sealed.ciphertextSha256 == sha256(file));
    CHECK(sealed.plaintextBytes == plain.size());
    CHECK(sealed.ciphertextBytes == file.size());

    auto opener = ExtractOpener::create(key).value();
    Bytes out;
    REQUIRE(opener.feed(file, out).isOk());
    REQUIRE(opener.finish().isOk());
    const ExtractDigests opened = opener.digests();
    CHECK(opened.plaintextSha256 == sealed.plaintextSha256);
    CHECK(opened.ciphertextSha256 == sealed.ciphertextSha256);
    CHECK(opened.plaintextBytes == sealed.plaintextBytes);
    CHECK(opened.ciphertextBytes == sealed.ciphertextBytes);
}

TEST_CASE("every truncation of an extract fails at finish()", "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    const Bytes plain = randomBytes(2500, 7);
    const Bytes file = sealExtract(key.publicKey(), plain, 1000).value();
    for (size_t cut = 0; cut < file.size(); ++cut) {
        auto opener = ExtractOpener::create(key).value();
        Bytes out;
        Status st = opener.feed(ByteView(file).first(cut), out);
        if (st) st = opener.finish();
        INFO("cut at byte " << cut);
        REQUIRE_FALSE(st.isOk());
        CHECK_THAT(st.message(), Catch::Contains("truncated"));
    }
}

TEST_CASE("a sender that never seals the final chunk produces a file the partner rejects", "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    auto sealer = ExtractSealer::create(key.publicKey()).value();
    Bytes file = sealer.header();
    auto chunk = sealer.seal(randomBytes(100, 3), false).value();
    file.insert(file.end(), chunk.begin(), chunk.end());
    Bytes out;
    auto opener = ExtractOpener::create(key).value();
    REQUIRE(opener.feed(file, out).isOk());
    CHECK(out.size() == 100);  // streamed plaintext is available, but the result is not accepted:
    auto st = opener.finish();
    REQUIRE_FALSE(st.isOk());
    CHECK_THAT(st.message(), Catch::Contains("without the final chunk"));
}

TEST_CASE("flipping any bit of an extract is detected", "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    const Bytes file = sealExtract(key.publicKey(), randomBytes(300, 9), 100).value();
    for (size_t i = 0; i < file.size(); ++i) {
        Bytes bad = file;
        bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
        Bytes out;
        INFO("flipped byte " << i);
        CHECK_FALSE(openInSlices(key, bad, static_cast<uint32_t>(i), out).isOk());
    }
}

TEST_CASE("reordered or dropped chunks are detected", "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    auto sealer = ExtractSealer::create(key.publicKey()).value();
    const Bytes header = sealer.header();
    const Bytes c0 = sealer.seal(randomBytes(50, 1), false).value();
    const Bytes c1 = sealer.seal(randomBytes(50, 2), false).value();
    const Bytes c2 = sealer.seal(randomBytes(50, 3), true).value();
    const auto join = [&](std::initializer_list<const Bytes*> parts) {
        Bytes out = header;
        for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
        return out;
    };
    CHECK(openExtract(key, join({&c0, &c1, &c2})).isOk());
    auto swapped = openExtract(key, join({&c1, &c0, &c2}));
    REQUIRE_FALSE(swapped.isOk());
    CHECK_THAT(swapped.status().message(), Catch::Contains("authentication failed"));
    CHECK_FALSE(openExtract(key, join({&c0, &c2})).isOk());
    auto trailing = openExtract(key, join({&c0, &c1, &c2, &c0}));
    REQUIRE_FALSE(trailing.isOk());
    CHECK_THAT(trailing.status().message(), Catch::Contains("after the final chunk"));
}

TEST_CASE("an extract sealed to another partner is refused with a clear message", "[crypto][extract]") {
    auto partner = BoxSecretKey::generate().value();
    auto stranger = BoxSecretKey::generate().value();
    const Bytes file = sealExtract(partner.publicKey(), asBytes("secret rows")).value();
    auto result = openExtract(stranger, file);
    REQUIRE_FALSE(result.isOk());
    CHECK(result.status().code() == StatusCode::PermissionDenied);
    CHECK_THAT(result.status().message(), Catch::Contains("not sealed to this key"));
}

TEST_CASE("malformed headers are named: magic, version, sealed key length", "[crypto][extract]") {
    auto key = BoxSecretKey::generate().value();
    Bytes file = sealExtract(key.publicKey(), asBytes("x")).value();
    Bytes badMagic = file;
    badMagic[0] = 'X';
    CHECK_THAT(openExtract(key, badMagic).status().message(), Catch::Contains("not a Custodian extract"));
    Bytes badVersion = file;
    badVersion[7] = 2;
    CHECK_THAT(openExtract(key, badVersion).status().message(), Catch::Contains("version 2"));
    Bytes badLength = file;
    badLength[9] = 81;
    CHECK_THAT(openExtract(key, badLength).status().message(), Catch::Contains("sealed key length"));
    Bytes hugeChunk = file;
    hugeChunk[kExtractHeaderBytes] = 0xff;  // claims a 4 GiB chunk
    CHECK_THAT(openExtract(key, hugeChunk).status().message(), Catch::Contains("invalid length"));
}

TEST_CASE("custodian decrypt writes the plaintext atomically and nothing on failure", "[crypto][extract][cli]") {
    namespace fs = std::filesystem;
    std::string templ = (fs::temp_directory_path() / "custodian-decrypt-XXXXXX").string();
    const fs::path dir = ::mkdtemp(templ.data());
    auto key = BoxSecretKey::generate().value();
    const std::string prefix = (dir / "partner").string();
    REQUIRE(writeBoxKeyPair(key, prefix).isOk());
    const Bytes plain = randomBytes(300000, 11);
    const Bytes file = sealExtract(key.publicKey(), plain, 65536).value();
    const auto write = [](const fs::path& p, const Bytes& b) {
        std::ofstream(p, std::ios::binary)
            .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    };
    write(dir / "good.enc", file);
    write(dir / "cut.enc", Bytes(file.begin(), file.end() - 1));

    const auto run = [&](const std::string& in, const std::string& out) {
        std::string args[] = {"--key", prefix + ".key", "--in", (dir / in).string(), "--out", (dir / out).string()};
        char* argv[6];
        for (int i = 0; i < 6; ++i) argv[i] = args[i].data();
        return cli::runDecrypt(6, argv);
    };
    CHECK(run("good.enc", "good.csv") == 0);
    CHECK(readFile((dir / "good.csv").string()) == plain);
    CHECK(run("cut.enc", "cut.csv") == 1);
    CHECK_FALSE(fs::exists(dir / "cut.csv"));
    // No temporary files are left behind either way.
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        (void)e;
        ++files;
    }
    CHECK(files == 5);  // partner.pub, partner.key, good.enc, cut.enc, good.csv
    fs::remove_all(dir);
}
