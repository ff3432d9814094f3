// Source secrets (secretbox under a crypto_kdf subkey of the master key), conninfo parsing and the
// pure checks of the catalog (names, type compatibility). No database.

#include <catch2/catch.hpp>

#include <sodium.h>

#include <array>
#include <string>

#include "gateway/auth/principals.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/catalog/conninfo.hpp"
#include "gateway/catalog/store.hpp"

using namespace custodian;
using namespace custodian::catalog;

namespace {

auth::TokenHasher masterWith(uint8_t fill) {
    std::array<uint8_t, 32> key{};
    key.fill(fill);
    auto hasher = auth::TokenHasher::fromKey(crypto::ByteView(key.data(), key.size()));
    REQUIRE(hasher);
    return std::move(hasher).value();
}

std::string bytesOf(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

}  // namespace

TEST_CASE("source secret key is crypto_kdf subkey 1, context srcsecrt, of the master key", "[catalog][secrets]") {
    REQUIRE(crypto::ensureSodium());
    std::array<uint8_t, 32> master{};
    master.fill(0x42);
    auto hasher = auth::TokenHasher::fromKey(crypto::ByteView(master.data(), master.size()));
    REQUIRE(hasher);

    // Independent derivation with libsodium: the documented parameters, nothing else.
    std::array<uint8_t, 32> expected{};
    REQUIRE(crypto_kdf_derive_from_key(expected.data(), expected.size(), 1, "srcsecrt", master.data()) == 0);
    auto viaHasher = hasher->deriveSubkey(kSourceSecretSubkeyId, kSourceSecretContext);
    REQUIRE(viaHasher);
    CHECK(std::equal(expected.begin(), expected.end(), viaHasher->data()));

    // A box sealed under the expected key opens with the derived SourceSecretKey.
    auto key = SourceSecretKey::derive(*hasher);
    REQUIRE(key);
    std::array<uint8_t, crypto_secretbox_NONCEBYTES> nonce{};
    nonce.fill(7);
    const std::string plain = "host=db.agency.example dbname=visits user=reader password=hunter2";
    std::vector<uint8_t> box(plain.size() + crypto_secretbox_MACBYTES);
    crypto_secretbox_easy(box.data(), reinterpret_cast<const unsigned char*>(plain.data()), plain.size(), nonce.data(),
                          expected.data());
    auto opened = key->open(crypto::ByteView(nonce.data(), nonce.size()), crypto::ByteView(box.data(), box.size()));
    REQUIRE(opened);
    CHECK(*opened == plain);
}

TEST_CASE("deriveSubkey refuses contexts that are not 8 bytes", "[catalog][secrets]") {
    auto hasher = masterWith(1);
    CHECK(hasher.deriveSubkey(1, "short").status().code() == StatusCode::InvalidArgument);
    CHECK(hasher.deriveSubkey(1, "too-long-context").status().code() == StatusCode::InvalidArgument);
    auto a = hasher.deriveSubkey(1, "srcsecrt");
    auto b = hasher.deriveSubkey(2, "srcsecrt");
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(std::equal(a->data(), a->data() + 32, b->data()));
}

TEST_CASE("sealed conninfo round-trips, hides the plaintext and detects tampering or another key",
          "[catalog][secrets]") {
    auto key = SourceSecretKey::derive(masterWith(3));
    REQUIRE(key);
    const std::string plain = "host=h dbname=d user=u password='s3cr3t pass'";
    auto sealed = key->seal(plain);
    REQUIRE(sealed);
    CHECK(sealed->nonce.size() == crypto_secretbox_NONCEBYTES);
    CHECK(sealed->ciphertext.size() == plain.size() + crypto_secretbox_MACBYTES);
    CHECK(bytesOf(sealed->ciphertext).find("s3cr3t") == std::string::npos);

    auto opened = key->open(sealed->nonce, sealed->ciphertext);
    REQUIRE(opened);
    CHECK(*opened == plain);

    // Fresh nonce per seal: the same plaintext never gives the same bytes.
    auto again = key->seal(plain);
    REQUIRE(again);
    CHECK(again->nonce != sealed->nonce);
    CHECK(again->ciphertext != sealed->ciphertext);

    auto tampered = sealed->ciphertext;
    tampered[tampered.size() / 2] ^= 0x01;
    CHECK(key->open(sealed->nonce, tampered).status().code() == StatusCode::Internal);

    auto other = SourceSecretKey::derive(masterWith(4));
    REQUIRE(other);
    auto wrong = other->open(sealed->nonce, sealed->ciphertext);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.status().message().find("master key") != std::string::npos);

    CHECK_FALSE(key->open(std::vector<uint8_t>(3), sealed->ciphertext));
    CHECK_FALSE(key->open(sealed->nonce, std::vector<uint8_t>(4)));
}

TEST_CASE("conninfo parsing accepts libpq keyword=value syntax and rebuilds it quoted", "[catalog][conninfo]") {
    auto pairs =
        parseConninfo(R"(host=db.example port = 5432 dbname='agency data' user=reader password='it\'s a \\secret')");
    REQUIRE(pairs);
    CHECK(conninfoValue(*pairs, "host") == "db.example");
    CHECK(conninfoValue(*pairs, "port") == "5432");
    CHECK(conninfoValue(*pairs, "dbname") == "agency data");
    CHECK(conninfoValue(*pairs, "password") == R"(it's a \secret)");
    std::string rebuilt = buildConninfo(*pairs);
    CHECK(rebuilt == R"(host='db.example' port='5432' dbname='agency data' user='reader' password='it\'s a \\secret')");
    auto reparsed = parseConninfo(rebuilt);
    REQUIRE(reparsed);
    CHECK(*reparsed == *pairs);
}

TEST_CASE("conninfo parsing refuses dangerous keywords, URIs, repeats and malformed text without echoing values",
          "[catalog][conninfo]") {
    CHECK_FALSE(parseConninfo("dbname=x passfile=/etc/shadow"));
    CHECK_FALSE(parseConninfo("dbname=x sslkey=/var/lib/custodian/master.key"));
    CHECK_FALSE(parseConninfo("dbname=x options='-c statement_timeout=0'"));
    CHECK_FALSE(parseConninfo("service=prod"));
    CHECK_FALSE(parseConninfo("postgresql://u:pw@h/db"));
    CHECK_FALSE(parseConninfo("dbname=a dbname=b"));
    CHECK_FALSE(parseConninfo("host=h user=u"));  // no dbname
    auto unterminated = parseConninfo("dbname=x password='topsecretvalue");
    REQUIRE_FALSE(unterminated);
    CHECK(unterminated.status().message().find("topsecretvalue") == std::string::npos);
    auto noEquals = parseConninfo("dbname=x topsecretvalue");
    REQUIRE_FALSE(noEquals);
    CHECK(noEquals.status().message().find("topsecretvalue") == std::string::npos);
}

TEST_CASE("describeSourceConninfo hides the password", "[catalog][conninfo]") {
    std::string d = describeSourceConninfo("host=h dbname=d user=u password=hunter2");
    CHECK(d.find("hunter2") == std::string::npos);
    CHECK(d.find("password='***'") != std::string::npos);
    CHECK(d.find("host='h'") != std::string::npos);
    CHECK(describeSourceConninfo("garbage 'hunter2").find("hunter2") == std::string::npos);
}

TEST_CASE("catalog names are restricted to letters, digits, dot, underscore and dash", "[catalog]") {
    CHECK(validateCatalogName("dataset", "hospital_visits"));
    CHECK(validateCatalogName("dataset", "census.2020-v2"));
    CHECK_FALSE(validateCatalogName("dataset", ""));
    CHECK_FALSE(validateCatalogName("dataset", "_hidden"));
    CHECK_FALSE(validateCatalogName("dataset", "a'b"));
    CHECK_FALSE(validateCatalogName("dataset", "a;DROP TABLE sources"));
    CHECK_FALSE(validateCatalogName("dataset", "a\"b"));
    CHECK_FALSE(validateCatalogName("dataset", std::string(129, 'a')));
    CHECK(validateCatalogName("dataset", std::string(128, 'a')));
}

TEST_CASE("declared column types must be readable from the PostgreSQL type", "[catalog]") {
    using anon::ColumnType;
    CHECK(typeCompatible(ColumnType::Integer, "integer"));
    CHECK(typeCompatible(ColumnType::Integer, "bigint"));
    CHECK_FALSE(typeCompatible(ColumnType::Integer, "numeric"));
    CHECK_FALSE(typeCompatible(ColumnType::Integer, "text"));
    CHECK(typeCompatible(ColumnType::Decimal, "numeric"));
    CHECK(typeCompatible(ColumnType::Decimal, "integer"));
    CHECK(typeCompatible(ColumnType::Date, "date"));
    CHECK_FALSE(typeCompatible(ColumnType::Date, "timestamp with time zone"));
    CHECK(typeCompatible(ColumnType::Timestamp, "timestamp with time zone"));
    CHECK(typeCompatible(ColumnType::Text, "character varying"));
    CHECK(typeCompatible(ColumnType::Text, "integer"));
    CHECK_FALSE(typeCompatible(ColumnType::Text, "bytea"));
    CHECK_FALSE(typeCompatible(ColumnType::Text, "jsonb"));
}

TEST_CASE("publishers are scoped to their agency, admins to none", "[catalog]") {
    auth::Principal admin{1, "root", auth::Role::Admin, "", std::nullopt, "", false};
    auth::Principal pubA{2, "pa", auth::Role::Publisher, "agency-a", std::nullopt, "", false};
    auth::Principal pubNone{3, "pn", auth::Role::Publisher, "", std::nullopt, "", false};
    auth::Principal partner{4, "p", auth::Role::Partner, "agency-a", std::nullopt, "", false};
    CHECK(checkAgencyScope(admin, "agency-b"));
    CHECK(checkAgencyScope(pubA, "agency-a"));
    CHECK(checkAgencyScope(pubA, "agency-b").code() == StatusCode::PermissionDenied);
    CHECK(checkAgencyScope(pubNone, "").code() == StatusCode::PermissionDenied);
    CHECK(checkAgencyScope(partner, "agency-a").code() == StatusCode::PermissionDenied);
}
