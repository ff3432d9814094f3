// Issue 18: two releases of one dataset to one partner, each k-anonymous on its own, joined on
// their pseudonyms. Generated social-benefit records (bench/benefits_synthetic.hpp, nearly unique
// quasi-identifiers); one policy releases birth date and sex, the other postcode and household
// size, both at k = 5. Keyed per (dataset, policy, recipient) — derivation 2 — the pseudonyms of
// the two releases do not join. Keyed per (dataset, recipient) — derivation 1, which a partner
// with releases made before derivation 2 keeps — they join, and the join breaks k: that is the
// attack, reproduced through the same API.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "anonymizer/transforms/keyed_hash.hpp"
#include "bench/benefits_synthetic.hpp"
#include "gateway/auth/principals.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keyed_transform_key.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "test_extract_fixture.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

constexpr uint64_t kRows = 150000;

std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// agency.benefits: kRows generated rows, loaded with psql \copy as bench_extract does.
void createBenefitsTable(const std::string& conninfo) {
    std::string create = bench::kBenefitsCreateTable;
    create.replace(create.find("bench.benefits"), 14, "agency.benefits");
    runPsql(conninfo, "CREATE SCHEMA agency; " + create + ";");
    const std::string command = "psql " + shellQuote(conninfo) + " -X -q -c " +
                                shellQuote("\\copy agency.benefits FROM STDIN WITH (FORMAT csv, HEADER true)");
    FILE* psql = ::popen(command.c_str(), "w");
    REQUIRE(psql != nullptr);
    bench::writeBenefitsCsv(psql, kRows);
    REQUIRE(::pclose(psql) == 0);
    runPsql(conninfo, "ANALYZE agency.benefits;");
}

const char* kBenefitsDataset = R"("table": "agency.benefits", "columns": [
    {"name": "id", "type": "integer", "role": "identifier"},
    {"name": "full_name", "type": "text", "role": "identifier"},
    {"name": "birth_date", "type": "date", "role": "quasi_identifier"},
    {"name": "postcode", "type": "text", "role": "quasi_identifier"},
    {"name": "sex", "type": "text", "role": "quasi_identifier"},
    {"name": "municipality", "type": "text", "role": "quasi_identifier"},
    {"name": "household_size", "type": "integer", "role": "quasi_identifier"},
    {"name": "benefit_type", "type": "text", "role": "sensitive"},
    {"name": "monthly_amount", "type": "decimal", "role": "insensitive"},
    {"name": "start_date", "type": "date", "role": "insensitive"},
    {"name": "end_date", "type": "date", "role": "insensitive"},
    {"name": "note", "type": "text", "role": "insensitive"}]})";

// A k = 5 policy over agency.benefits releasing the pseudonymized id, `quasiIdentifiers` (column
// JSON) and the benefit type.
std::string benefitsPolicy(const std::string& quasiIdentifiers, const std::string& description) {
    return R"({
  "dataset": "benefits",
  "description": ")" +
           description + R"(",
  "recipients": ["partner-a", "partner-legacy"],
  "purposes": ["research"],
  "columns": [
    {"name": "id", "type": "integer", "role": "identifier", "transform": {"name": "pseudonymize"}},
    )" + quasiIdentifiers +
           R"(,
    {"name": "benefit_type", "type": "text", "role": "sensitive"}
  ],
  "privacy": {"k": 5, "suppression_limit": 0.02},
  "algorithm": {"name": "optimal"},
  "metric": "loss"
})";
}

const char* kByBirthColumns = R"({"name": "birth_date", "type": "date", "role": "quasi_identifier",
     "hierarchy": {"builder": "dates", "levels": ["month", "quarter", "year", "decade"]}},
    {"name": "sex", "type": "text", "role": "quasi_identifier",
     "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}})";
const char* kByPlaceColumns = R"({"name": "postcode", "type": "text", "role": "quasi_identifier",
     "hierarchy": {"builder": "prefix"}},
    {"name": "household_size", "type": "integer", "role": "quasi_identifier",
     "hierarchy": {"builder": "intervals", "widths": [3, 9], "origin": 1}})";

struct Release {
    std::string id;
    ParsedCsv csv;
    crypto::ExtractManifest manifest;
    std::set<std::string> pseudonyms() const {
        std::set<std::string> out;
        for (const auto& row : csv.rows) out.insert(row[csv.column("id")]);
        return out;
    }
};

struct LinkageWorld {
    TestDatabase gatewayDb = TestDatabase::create("linkage_gateway");
    TestDatabase agency = TestDatabase::create("linkage_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher;
    std::map<std::string, std::pair<std::string, crypto::BoxSecretKey>> partners;  // name -> token, key

    LinkageWorld() {
        createBenefitsTable(agency.conninfo());
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo());
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-social", "social");
        for (const char* name : {"partner-a", "partner-legacy"}) {
            auto key = crypto::BoxSecretKey::generate();
            REQUIRE(key);
            const std::string token = gw->addPrincipal(auth::Role::Partner, name, "", key->publicKey());
            partners.emplace(name, std::make_pair(token, std::move(key).value()));
        }
        auto source = call("PUT", "/v1/sources/social-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        INFO(source.body);
        REQUIRE(source.status < 300);
        auto dataset = call("PUT", "/v1/datasets/benefits", publisher,
                            std::string(R"({"source": "social-db", )") + kBenefitsDataset);
        INFO(dataset.body);
        REQUIRE(dataset.status < 300);
        putPolicy("by-birth", benefitsPolicy(kByBirthColumns, "birth date and sex"));
        putPolicy("by-place", benefitsPolicy(kByPlaceColumns, "postcode and household size"));
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }

    void putPolicy(const std::string& name, const std::string& json) {
        auto r = call("PUT", "/v1/datasets/benefits/policies/" + name, publisher, json);
        INFO(r.body);
        REQUIRE(r.status < 300);
    }

    Release extract(const std::string& partner, const std::string& policy) {
        const auto& [token, key] = partners.at(partner);
        auto r = call("POST", "/v1/extracts", token,
                      R"({"dataset":"benefits","policy":")" + policy + R"(","purpose":"research"})");
        INFO(r.body.substr(0, 500));
        REQUIRE(r.status == 200);
        REQUIRE(r.complete);
        Release out;
        out.id = r.header("x-extract-id");
        auto plaintext = crypto::openExtract(key, crypto::asBytes(r.body));
        REQUIRE(plaintext);
        out.csv = parseCsv(std::string(plaintext->begin(), plaintext->end()));
        auto m = call("GET", "/v1/extracts/" + out.id + "/manifest", token);
        REQUIRE(m.status == 200);
        auto manifest = crypto::verifyManifest(m.body, gw->services().signingKey->publicKey());
        REQUIRE(manifest);
        out.manifest = std::move(manifest).value();
        return out;
    }

    std::string gatewayScalar(const std::string& sql) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        auto r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
    }

    // An extract of `policy` to `partner` recorded as made before key derivation 2 existed (what
    // migration 0007 does to every earlier row).
    void recordDerivation1Extract(const std::string& partner, const std::string& policy) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::work tx(conn);
        tx.exec_params0("INSERT INTO extracts (id, dataset, policy, policy_version, policy_hash, recipient, purpose, "
                        "format, status, requested_entry_index, key_derivation) VALUES ($1, 'benefits', $2, 1, "
                        "'00', $3, 'research', 'csv', 'completed', 0, 1)",
                        "ext_legacy_" + partner + "_" + policy, policy, partner);
        tx.commit();
    }
};

// The join of two releases on their `id` column, grouped by the quasi-identifiers of both.
struct Join {
    size_t rows = 0;      // rows of the join (pseudonyms present in both releases)
    size_t belowK = 0;    // of them, rows in a combined class smaller than k
    size_t unique = 0;    // of them, rows alone in their combined class
    size_t smallest = 0;  // the smallest combined class (0 for an empty join)
};

Join join(const Release& a, const std::vector<std::string>& aColumns, const Release& b,
          const std::vector<std::string>& bColumns, size_t k) {
    std::map<std::string, std::vector<std::string>> byId;
    for (const auto& row : a.csv.rows) {
        std::vector<std::string> key;
        for (const auto& c : aColumns) key.push_back(row[a.csv.column(c)]);
        byId[row[a.csv.column("id")]] = std::move(key);
    }
    std::map<std::vector<std::string>, size_t> classes;
    std::vector<std::vector<std::string>> joined;
    for (const auto& row : b.csv.rows) {
        auto it = byId.find(row[b.csv.column("id")]);
        if (it == byId.end()) continue;
        std::vector<std::string> key = it->second;
        for (const auto& c : bColumns) key.push_back(row[b.csv.column(c)]);
        ++classes[key];
        joined.push_back(std::move(key));
    }
    Join out;
    out.rows = joined.size();
    for (const auto& key : joined) {
        const size_t n = classes[key];
        if (n < k) ++out.belowK;
        if (n == 1) ++out.unique;
        out.smallest = out.smallest == 0 ? n : std::min(out.smallest, n);
    }
    return out;
}

const std::vector<std::string> kByBirth{"birth_date", "sex"};
const std::vector<std::string> kByPlace{"postcode", "household_size"};

}  // namespace

TEST_CASE("two k=5 releases of one dataset to one partner under two policies have pseudonyms that do not join",
          "[integration][extract][linkage]") {
    LinkageWorld w;
    Release birth = w.extract("partner-a", "by-birth");
    Release place = w.extract("partner-a", "by-place");
    // Each release is k-anonymous on its own and says which key derivation it used.
    for (const Release* r : {&birth, &place}) {
        CHECK(r->manifest.keyDerivation == 2);
        CHECK(r->manifest.models.find("k")->asUint64() >= 5);
        CHECK(r->csv.rows.size() >= kRows * 98 / 100);
    }
    CHECK(smallestGroup(birth.csv, kByBirth) >= 5);
    CHECK(smallestGroup(place.csv, kByPlace) >= 5);

    // Keyed per policy: not one pseudonym in common, so there is nothing to join on.
    const Join j = join(birth, kByBirth, place, kByPlace, 5);
    std::fprintf(stderr, "linkage, derivation 2: %zu and %zu rows released, %zu rows join\n", birth.csv.rows.size(),
                 place.csv.rows.size(), j.rows);
    CHECK(j.rows == 0);

    // Stable under one policy: a repeated extract and an extract under a new version of the policy
    // give the same pseudonyms (a longitudinal study keeps joining its own extracts).
    Release again = w.extract("partner-a", "by-birth");
    w.putPolicy("by-birth", benefitsPolicy(kByBirthColumns, "birth date and sex, version 2"));
    Release version2 = w.extract("partner-a", "by-birth");
    CHECK(version2.manifest.policyVersion == 2);
    CHECK(version2.manifest.keyDerivation == 2);
    CHECK(again.pseudonyms() == birth.pseudonyms());
    CHECK(version2.pseudonyms() == birth.pseudonyms());
    CHECK(w.gatewayScalar("SELECT count(*) FROM extracts WHERE recipient = 'partner-a' AND key_derivation = 2") == "4");
}

TEST_CASE("a partner with releases made under key derivation 1 keeps its pseudonyms, and their join is the attack "
          "derivation 2 stops",
          "[integration][extract][linkage]") {
    LinkageWorld w;
    w.recordDerivation1Extract("partner-legacy", "by-birth");
    w.recordDerivation1Extract("partner-legacy", "by-place");
    Release birth = w.extract("partner-legacy", "by-birth");
    // Keyed per dataset and recipient, every derivation-1 release of the dataset joins every other
    // (key scope "*"): the linkage check refuses the second, naming the first.
    {
        const auto& token = w.partners.at("partner-legacy").first;
        auto refused =
            w.call("POST", "/v1/extracts", token, R"({"dataset":"benefits","policy":"by-place","purpose":"research"})");
        INFO(refused.body.substr(0, 600));
        REQUIRE(refused.status == 422);
        auto error = json::parseJson(refused.body);
        REQUIRE(error);
        const auto* details = error->find("error")->find("details");
        CHECK(details->find("rule")->asString() == "linkage");
        CHECK(details->find("scope")->asString() == "*");
        CHECK(details->find("checked_against")->asArray().at(0).find("extract_id")->asString() == birth.id);
        std::fprintf(stderr,
                     "linkage, derivation 1, with the check: the second release refused, %llu persons below k\n",
                     static_cast<unsigned long long>(details->find("persons_below_k")->asUint64()));
    }
    // Without the ledger (as before issue 18's check): what the partner would have joined.
    {
        pqxx::connection conn(w.gatewayDb.conninfo());
        pqxx::work tx(conn);
        tx.exec_params("DELETE FROM release_ledger WHERE extract_id = $1", birth.id);
        tx.commit();
    }
    Release place = w.extract("partner-legacy", "by-place");
    CHECK(birth.manifest.keyDerivation == 1);
    CHECK(place.manifest.keyDerivation == 1);
    CHECK(smallestGroup(birth.csv, kByBirth) >= 5);
    CHECK(smallestGroup(place.csv, kByPlace) >= 5);

    // The pseudonyms are derivation 1's, recomputed here from the documented recipe: the same ones
    // the partner's earlier releases held.
    auto transformKey = crypto::keyedTransformKey(*w.gw->services().tokens);
    REQUIRE(transformKey);
    const anon::KeyScope v1{anon::KeyDerivation::DatasetRecipient, "benefits", "", "partner-legacy"};
    auto hasher = anon::KeyedHasher::derive(*transformKey, anon::kPseudonymKdfContext, v1);
    REQUIRE(hasher);
    std::set<std::string> expected;
    for (uint64_t id = 1; id <= kRows; ++id) {
        uint8_t digest[16];
        hasher->hash(std::to_string(id), digest);
        expected.insert(crypto::toHex(crypto::ByteView(digest, sizeof digest)));
    }
    size_t notDerivation1 = 0;
    for (const auto& p : birth.pseudonyms()) notDerivation1 += expected.count(p) ? 0 : 1;
    for (const auto& p : place.pseudonyms()) notDerivation1 += expected.count(p) ? 0 : 1;
    CHECK(notDerivation1 == 0);

    // Before derivation 2 this was every partner's situation: the pseudonyms join, and the join of
    // two k = 5 releases has classes of one.
    const Join j = join(birth, kByBirth, place, kByPlace, 5);
    std::fprintf(stderr,
                 "linkage, derivation 1: %zu and %zu rows released, %zu rows join, %zu of them in classes below k = 5, "
                 "%zu unique\n",
                 birth.csv.rows.size(), place.csv.rows.size(), j.rows, j.belowK, j.unique);
    CHECK(j.rows >= kRows * 96 / 100);
    CHECK(j.smallest == 1);
    CHECK(j.belowK > j.rows / 2);

    // A policy the partner never received under derivation 1 is keyed with derivation 2.
    w.putPolicy("by-birth-2", benefitsPolicy(kByBirthColumns, "birth date and sex, new name"));
    Release renamed = w.extract("partner-legacy", "by-birth-2");
    CHECK(renamed.manifest.keyDerivation == 2);  // its own key scope: nothing of "*" joins it
    CHECK(join(renamed, kByBirth, place, kByPlace, 5).rows == 0);
}
