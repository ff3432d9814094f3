#include <catch2/catch.hpp>

#include <sodium.h>

#include <random>
#include <string>
#include <vector>

#include "anonymizer/transforms/keyed_hash.hpp"

using namespace custodian;
using namespace custodian::anon;

TEST_CASE("keyed hashes equal libsodium's keyed BLAKE2b for every message length and digest length",
          "[transforms][keyed-hash]") {
    REQUIRE(ensureSodium());
    std::mt19937 rng(20261207);
    std::vector<uint8_t> masterBytes(MasterKey::kBytes);
    int compared = 0;
    for (int keys = 0; keys < 4; ++keys) {
        for (auto& b : masterBytes) b = static_cast<uint8_t>(rng());
        auto master = MasterKey::fromBytes(masterBytes);
        REQUIRE(master.isOk());
        const KeyScope scope{KeyDerivation::DatasetPolicyRecipient, "dataset-" + std::to_string(keys), "policy",
                             "partner"};
        const char(&context)[9] = keys % 2 ? kDateShiftKdfContext : kPseudonymKdfContext;
        auto hasher = KeyedHasher::derive(*master, context, scope);
        REQUIRE(hasher.isOk());
        // The key as docs/formats/csv-and-hierarchies.md derives it, then crypto_generichash itself.
        uint8_t key[crypto_generichash_KEYBYTES];
        REQUIRE(crypto_kdf_derive_from_key(key, sizeof key, releaseSubkeyId(scope), context, master->data()) == 0);
        // Lengths around the one-block path's limits (0 and more than 128 bytes take libsodium's).
        for (size_t length :
             {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257, 1000}) {
            std::string message(length, '\0');
            for (char& c : message) c = static_cast<char>(rng());
            for (size_t digest = crypto_generichash_BYTES_MIN; digest <= crypto_generichash_BYTES_MAX; ++digest) {
                std::vector<uint8_t> ours(digest), theirs(digest);
                hasher->hash(message, ours);
                REQUIRE(crypto_generichash(theirs.data(), digest, reinterpret_cast<const uint8_t*>(message.data()),
                                           message.size(), key, sizeof key) == 0);
                INFO("message of " << length << " bytes, digest of " << digest);
                CHECK(ours == theirs);
                ++compared;
            }
        }
        sodium_memzero(key, sizeof key);
    }
    CHECK(compared == 4 * 22 * 49);
}
