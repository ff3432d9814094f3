// Known answers that the documents state, recomputed from the documents' own text with the
// gateway's code: a document that drifts from the bytes the code produces fails here.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <sodium.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "anonymizer/transforms/keyed_hash.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/keyed_transform_key.hpp"

namespace {

namespace fs = std::filesystem;

std::string readDocument(const std::string& relative) {
    std::ifstream in(fs::path(CUSTODIAN_SOURCE_DIR) / relative, std::ios::binary);
    REQUIRE(in);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The `name = value` lines of the document's ```known-answer block.
std::map<std::string, std::string> knownAnswerBlock(const std::string& document) {
    const std::string open = "```known-answer\n";
    const size_t start = document.find(open);
    REQUIRE(start != std::string::npos);
    const size_t end = document.find("```", start + open.size());
    REQUIRE(end != std::string::npos);
    std::map<std::string, std::string> values;
    std::istringstream lines(document.substr(start + open.size(), end - start - open.size()));
    for (std::string line; std::getline(lines, line);) {
        const size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        auto trim = [](std::string s) {
            s.erase(0, s.find_first_not_of(' '));
            s.erase(s.find_last_not_of(' ') + 1);
            return s;
        };
        values[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
    }
    return values;
}

std::string hex(const uint8_t* bytes, size_t n) {
    std::string out(2 * n + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes, n);
    out.pop_back();
    return out;
}

std::vector<uint8_t> unhex(const std::string& text) {
    std::vector<uint8_t> out(text.size() / 2);
    size_t n = 0;
    REQUIRE(sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, nullptr) == 0);
    out.resize(n);
    return out;
}

}  // namespace

TEST_CASE("the keyed-transform known answer in docs/formats/csv-and-hierarchies.md is what the code computes",
          "[docs][crypto]") {
    REQUIRE(sodium_init() >= 0);
    auto ka = knownAnswerBlock(readDocument("docs/formats/csv-and-hierarchies.md"));
    for (const char* name : {"master_key", "transform_key", "dataset", "policy", "recipient", "value", "max_days"})
        REQUIRE(ka.count(name) == 1);

    // Step 1, as the gateway does it: the master key file, then the transform key.
    const auto master = unhex(ka["master_key"]);
    REQUIRE(master.size() == 32);
    char dir[] = "/tmp/custodian-docs-ka-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string keyFile = std::string(dir) + "/master.key";
    {
        std::ofstream out(keyFile);
        out << "custodian-master-key:" << custodian::crypto::toBase64({master.data(), master.size()}) << "\n";
    }
    ::chmod(keyFile.c_str(), 0600);
    auto hasher = custodian::auth::TokenHasher::loadOrCreate(keyFile);
    fs::remove_all(dir);
    REQUIRE(hasher);
    auto transformKey =
        hasher->deriveSubkey(custodian::crypto::kKeyedTransformSubkeyId, custodian::crypto::kKeyedTransformContext);
    REQUIRE(transformKey);
    CHECK(hex(transformKey->data(), transformKey->size()) == ka["transform_key"]);
    auto key = custodian::anon::MasterKey::fromBytes(transformKey->view());
    REQUIRE(key);

    // Step 2, as the anonymizer does it, for both derivations: "" prefixes derivation 2, "v1_"
    // derivation 1.
    using custodian::anon::KeyDerivation;
    for (auto [prefix, derivation] : {std::pair{std::string(), KeyDerivation::DatasetPolicyRecipient},
                                      std::pair{std::string("v1_"), KeyDerivation::DatasetRecipient}}) {
        INFO("derivation " << static_cast<int>(derivation));
        for (const char* name : {"subkey_id", "pseudonym_subkey", "pseudonym", "date_shift_subkey", "date_shift_days"})
            REQUIRE(ka.count(prefix + name) == 1);
        const custodian::anon::KeyScope scope{derivation, ka["dataset"], ka["policy"], ka["recipient"]};
        CHECK(std::to_string(custodian::anon::releaseSubkeyId(scope)) == ka[prefix + "subkey_id"]);
        // The documented recipe for the subkey, with libsodium directly.
        uint8_t subkey[32];
        REQUIRE(crypto_kdf_derive_from_key(subkey, sizeof subkey, std::stoull(ka[prefix + "subkey_id"]), "CUSTPSEU",
                                           transformKey->data()) == 0);
        CHECK(hex(subkey, sizeof subkey) == ka[prefix + "pseudonym_subkey"]);
        REQUIRE(crypto_kdf_derive_from_key(subkey, sizeof subkey, std::stoull(ka[prefix + "subkey_id"]), "CUSTDSHF",
                                           transformKey->data()) == 0);
        CHECK(hex(subkey, sizeof subkey) == ka[prefix + "date_shift_subkey"]);

        auto pseudonyms = custodian::anon::KeyedHasher::derive(*key, custodian::anon::kPseudonymKdfContext, scope);
        REQUIRE(pseudonyms);
        uint8_t digest[16];
        pseudonyms->hash(ka["value"], digest);
        CHECK(hex(digest, sizeof digest) == ka[prefix + "pseudonym"]);

        auto shifts = custodian::anon::KeyedHasher::derive(*key, custodian::anon::kDateShiftKdfContext, scope);
        REQUIRE(shifts);
        const int64_t maxDays = std::stoll(ka["max_days"]);
        const auto span = static_cast<uint64_t>(2 * maxDays + 1);
        CHECK(static_cast<int64_t>(shifts->hash64(ka["value"]) % span) - maxDays ==
              std::stoll(ka[prefix + "date_shift_days"]));
    }
    // The two derivations give the same recipient different keys.
    CHECK(ka["pseudonym"] != ka["v1_pseudonym"]);
}
