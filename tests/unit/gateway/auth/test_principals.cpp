#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <set>

#include "gateway/auth/principals.hpp"

using namespace custodian;
using namespace custodian::auth;

namespace {

std::string tempDir() {
    char tmpl[] = "/tmp/custodian-tokens-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    return tmpl;
}

TokenHasher hasherWithKey(uint8_t fill) {
    std::array<uint8_t, 32> key{};
    key.fill(fill);
    auto h = TokenHasher::fromKey(key);
    REQUIRE(h.isOk());
    return std::move(h).value();
}

}  // namespace

TEST_CASE("tokens are 256-bit random, prefixed and distinct", "[tokens]") {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        std::string t = generateToken();
        CHECK(t.size() == 4 + 43);  // "cus_" + base64url(32 bytes) without padding
        CHECK(t.rfind("cus_", 0) == 0);
        CHECK(wellFormedToken(t));
        seen.insert(t);
    }
    CHECK(seen.size() == 200);
    CHECK_FALSE(wellFormedToken("cus_short"));
    CHECK_FALSE(wellFormedToken("xyz_" + std::string(43, 'a')));
    CHECK_FALSE(wellFormedToken("cus_" + std::string(42, 'a') + "="));
}

TEST_CASE("token hashes are keyed BLAKE2b-256 (known answer)", "[tokens]") {
    TokenHasher h = hasherWithKey(0x42);
    TokenHash a = h.hash("cus_example");
    // BLAKE2b-256 of "cus_example" keyed with 32 bytes of 0x42, computed independently with
    // Python's hashlib.blake2b(key=..., digest_size=32).
    CHECK(crypto::toHex(a) == "758afde6044446ac6590e1ff3dab33f210d98b41cc1b0231e8ec8813c777e0ec");
    CHECK(h.hash("cus_examplf") != a);
    // A different master key gives an unrelated hash: the database alone cannot test tokens.
    CHECK(hasherWithKey(0x43).hash("cus_example") != a);
}

TEST_CASE("bearer tokens are extracted from the Authorization header", "[tokens]") {
    CHECK(bearerToken("Bearer abc").value() == "abc");
    CHECK(bearerToken("bearer   abc  ").value() == "abc");
    CHECK(bearerToken("").status().code() == StatusCode::Unauthenticated);
    CHECK(bearerToken("Basic abc").status().code() == StatusCode::Unauthenticated);
    CHECK(bearerToken("Bearer").status().code() == StatusCode::Unauthenticated);
}

TEST_CASE("the master key file is created once with mode 0600 and reused", "[tokens]") {
    std::string dir = tempDir();
    std::string path = dir + "/sub/master.key";
    auto first = TokenHasher::loadOrCreate(path);
    REQUIRE(first.isOk());
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
    auto second = TokenHasher::loadOrCreate(path);
    REQUIRE(second.isOk());
    CHECK(first->hash("cus_x") == second->hash("cus_x"));

    ::chmod(path.c_str(), 0644);
    auto loose = TokenHasher::loadOrCreate(path);
    CHECK(loose.status().code() == StatusCode::FailedPrecondition);

    std::string bad = dir + "/bad.key";
    std::ofstream(bad) << "not a key\n";
    ::chmod(bad.c_str(), 0600);
    CHECK(TokenHasher::loadOrCreate(bad).status().code() == StatusCode::InvalidArgument);
    std::filesystem::remove_all(dir);
}

TEST_CASE("roles and principal names are validated", "[tokens]") {
    CHECK(parseRole("auditor").value() == Role::Auditor);
    CHECK_FALSE(parseRole("root").isOk());
    RoleSet set{Role::Admin, Role::Publisher};
    CHECK(set.contains(Role::Admin));
    CHECK_FALSE(set.contains(Role::Partner));
    CHECK(set.describe() == "admin, publisher");
    CHECK(validatePrincipalName("alice@agency.gov").isOk());
    CHECK_FALSE(validatePrincipalName("").isOk());
    CHECK_FALSE(validatePrincipalName("-x").isOk());
    CHECK_FALSE(validatePrincipalName("a b").isOk());
    CHECK_FALSE(validatePrincipalName(std::string(129, 'a')).isOk());
}

TEST_CASE("partner public keys are read from keygen files, base64 or hex", "[tokens]") {
    std::array<uint8_t, 32> raw{};
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i);
    crypto::BoxPublicKey expected;
    expected.bytes = raw;
    CHECK(parsePartnerPublicKey(crypto::formatBoxPublicKey(expected)).value() == expected);
    CHECK(parsePartnerPublicKey(crypto::toBase64(raw) + "\n").value() == expected);
    CHECK(parsePartnerPublicKey(crypto::toHex(raw)).value() == expected);
    CHECK_FALSE(parsePartnerPublicKey("abcd").isOk());
}
