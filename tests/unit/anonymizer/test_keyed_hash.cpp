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

TEST_CASE("hashing many messages at once gives each message's own keyed hash, in order", "[transforms][keyed-hash]") {
    REQUIRE(ensureSodium());
    std::mt19937 rng(7);
    std::vector<uint8_t> masterBytes(MasterKey::kBytes);
    for (auto& b : masterBytes) b = static_cast<uint8_t>(rng());
    auto master = MasterKey::fromBytes(masterBytes);
    REQUIRE(master.isOk());
    auto hasher =
        KeyedHasher::derive(*master, kPseudonymKdfContext, {KeyDerivation::DatasetPolicyRecipient, "d", "p", "r"});
    REQUIRE(hasher.isOk());
    // One-block messages of every length, interleaved with empty and multi-block ones (which take
    // the one-at-a-time path), in batches of every size around the four lanes.
    std::vector<std::string> messages;
    for (size_t length = 0; length <= 300; ++length) {
        std::string m(length % 131 == 130 ? 0 : length, '\0');
        for (char& c : m) c = static_cast<char>(rng());
        messages.push_back(std::move(m));
    }
    int compared = 0;
    for (size_t count :
         {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{8}, size_t{9}, messages.size()}) {
        for (size_t digest : {size_t{16}, size_t{20}, size_t{32}, size_t{64}}) {
            std::vector<std::string_view> views(messages.begin(), messages.begin() + static_cast<ptrdiff_t>(count));
            std::vector<uint8_t> many(count * digest, 0xAA);
            hasher->hashMany(views, digest, many.data());
            for (size_t i = 0; i < count; ++i) {
                std::vector<uint8_t> one(digest);
                hasher->hash(views[i], one);
                INFO("message " << i << " of " << views[i].size() << " bytes, batch of " << count << ", digest "
                                << digest);
                CHECK(std::vector<uint8_t>(many.begin() + static_cast<ptrdiff_t>(i * digest),
                                           many.begin() + static_cast<ptrdiff_t>((i + 1) * digest)) == one);
                ++compared;
            }
        }
    }
    CHECK(compared == 4 * (0 + 1 + 3 + 4 + 5 + 8 + 9 + 301));
}
