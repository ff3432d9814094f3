// `custodian decrypt --key PREFIX.key --in FILE.enc --out FILE`: opens a saved extract. The output
// appears only after the whole file decrypted and authenticated (temporary file + rename), so a
// truncated, tampered or wrongly keyed file leaves no plaintext behind.
#include <cstdio>
#include <string>
#include <vector>

#include "gateway/cli/args.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/secure_file.hpp"

namespace custodian::cli {

namespace {

Status decryptFile(const std::string& keyPath, const std::string& inPath, const std::string& outPath,
                   crypto::ExtractDigests& digests) {
    auto key = crypto::readBoxSecretKeyFile(keyPath);
    if (!key) return key.status();
    std::FILE* in = std::fopen(inPath.c_str(), "rb");
    if (in == nullptr) return notFound(inPath + ": cannot open");
    auto out = crypto::AtomicOutputFile::create(outPath);
    if (!out) {
        std::fclose(in);
        return out.status();
    }
    auto opener = crypto::ExtractOpener::create(*key);
    if (!opener) {
        std::fclose(in);
        return opener.status();
    }
    std::vector<uint8_t> buffer(1 << 20);
    crypto::Bytes plaintext;
    Status st;
    for (;;) {
        const size_t n = std::fread(buffer.data(), 1, buffer.size(), in);
        if (n == 0) {
            if (std::ferror(in)) st = unavailable(inPath + ": read error");
            break;
        }
        plaintext.clear();
        st = opener->feed({buffer.data(), n}, plaintext);
        if (st) st = out->write(plaintext);
        if (!st) break;
    }
    std::fclose(in);
    if (st) st = opener->finish();
    if (!st) return st;  // `out` is discarded by its destructor: no partial plaintext remains
    digests = opener->digests();
    return out->commit(0600);
}

}  // namespace

int runDecrypt(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"key", true, true, "the partner secret key written by `custodian keygen`", "PREFIX.key"},
        {"in", true, true, "the encrypted extract", "FILE.enc"},
        {"out", true, true, "where to write the plaintext (created atomically, mode 0600)", "FILE"},
    };
    const std::string synopsis = "decrypt --key PREFIX.key --in FILE.enc --out FILE";
    const std::string description =
        "Decrypts an extract file (format: docs/formats/extract.md). Fails without writing anything\n"
        "if the file is truncated, modified or sealed to another key. Prints the SHA-256 of the\n"
        "ciphertext and plaintext to compare with the extract's signed manifest.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian decrypt: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::printf("%s", usageText(synopsis, description, specs).c_str());
        return 0;
    }
    crypto::ExtractDigests digests;
    if (auto st = decryptFile(*args->get("key"), *args->get("in"), *args->get("out"), digests); !st) {
        std::fprintf(stderr, "custodian decrypt: %s\n", st.message().c_str());
        return 1;
    }
    std::printf("decrypted %llu bytes to %s\nciphertext_sha256 %s\nplaintext_sha256  %s\n",
                static_cast<unsigned long long>(digests.plaintextBytes), args->get("out")->c_str(),
                crypto::toHex(digests.ciphertextSha256).c_str(), crypto::toHex(digests.plaintextSha256).c_str());
    return 0;
}

}  // namespace custodian::cli
