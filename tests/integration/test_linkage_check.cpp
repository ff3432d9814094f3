// Issue 18, points 2, 3 and 5: releases a recipient can join. A policy's releases share pseudonyms
// (one key scope), and so do those of policies that name each other in `linkable_with`; a new
// release is refused (422, rule "linkage", naming the earlier extracts) unless k holds over the
// join of everything the recipient holds in its key scope, row-filter differences included; the
// preview reports the same for a named recipient. Real gateway, real agency database, plaintext
// extracts so that the test can join what the partner got exactly as the partner would.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "json/canonical.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"
#include "test_extract_fixture.hpp"
#include "test_source_endpoints.hpp"

using namespace custodian;
using namespace custodian::testing;

namespace {

// A policy over agency.visits releasing `qis` (a subset of age, sex, zip) as quasi-identifiers, the
// id pseudonymized, in plaintext CSV.
std::string policyJson(const std::set<std::string>& qis, uint64_t k, const std::string& extra = "",
                       const std::string& zipHierarchy = R"({"builder": "prefix"})") {
    std::string columns =
        R"({"name": "id", "type": "integer", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "full_name", "type": "text", "role": "identifier", "transform": {"name": "drop"}})";
    if (qis.count("age"))
        columns += R"(, {"name": "age", "type": "integer", "role": "quasi_identifier",
                         "hierarchy": {"builder": "intervals", "widths": [5, 10, 20, 40]}})";
    if (qis.count("sex"))
        columns += R"(, {"name": "sex", "type": "text", "role": "quasi_identifier",
                         "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}})";
    if (qis.count("zip"))
        columns +=
            R"(, {"name": "zip", "type": "text", "role": "quasi_identifier", "hierarchy": )" + zipHierarchy + "}";
    return R"({"dataset": "visits", "recipients": ["partner-a", "partner-b"], "purposes": ["research"],
      "columns": [)" +
           columns + R"(], "privacy": {"k": )" + std::to_string(k) +
           R"(, "suppression_limit": 0.02}, "output": {"encryption_required": false})" + extra + "}";
}

struct LinkWorld {
    TestDatabase gatewayDb = TestDatabase::create("linkage_gateway");
    TestDatabase agency = TestDatabase::create("linkage_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher, partnerA, partnerB;

    LinkWorld() {
        createVisitsTable(agency.conninfo(), 2000);
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo(), GatewayOptions{{}, allowTestSources});
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-health", "health");
        partnerA = gw->addPrincipal(auth::Role::Partner, "partner-a");
        partnerB = gw->addPrincipal(auth::Role::Partner, "partner-b");
        auto source = call("PUT", "/v1/sources/health-db", publisher,
                           "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}");
        REQUIRE(source.status < 300);
        REQUIRE(call("PUT", "/v1/datasets/visits", publisher, visitsDatasetJson("health-db")).status < 300);
    }
    HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
        return bearerRequest(gw->port(), method, target, token, body);
    }
    void putPolicy(const std::string& name, const std::string& json) {
        auto r = call("PUT", "/v1/datasets/visits/policies/" + name, publisher, json);
        INFO(r.body);
        REQUIRE(r.status < 300);
    }
    HttpResult extract(const std::string& token, const std::string& policy) {
        return call("POST", "/v1/extracts", token,
                    R"({"dataset":"visits","policy":")" + policy + R"(","purpose":"research","encryption":"none"})");
    }
    std::string scalar(const std::string& sql) {
        pqxx::connection conn(gatewayDb.conninfo());
        pqxx::read_transaction tx(conn);
        auto r = tx.exec(sql);
        return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
    }
};

// The released CSV as rows of column → value.
std::vector<std::map<std::string, std::string>> csvRows(const std::string& body) {
    std::vector<std::map<std::string, std::string>> out;
    std::istringstream in(body);
    std::string line;
    std::vector<std::string> header;
    // RFC 4180 fields: quoted ones may hold commas and doubled quotes.
    auto split = [](const std::string& l) {
        std::vector<std::string> f(1);
        bool quoted = false;
        for (size_t i = 0; i < l.size(); ++i) {
            const char c = l[i];
            if (quoted) {
                if (c == '"' && i + 1 < l.size() && l[i + 1] == '"') f.back() += '"', ++i;
                else if (c == '"') quoted = false;
                else f.back() += c;
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                f.emplace_back();
            } else if (c != '\r') {
                f.back() += c;
            }
        }
        return f;
    };
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (header.empty()) {
            header = split(line);
            continue;
        }
        auto fields = split(line);
        std::map<std::string, std::string> row;
        for (size_t i = 0; i < header.size() && i < fields.size(); ++i) row[header[i]] = fields[i];
        out.push_back(std::move(row));
    }
    return out;
}

json::JsonValue errorDetails(const HttpResult& r) {
    auto json = json::parseJson(r.body);
    REQUIRE(json);
    const auto* details = json->find("error")->find("details");
    REQUIRE(details != nullptr);
    return *details;
}

}  // namespace

TEST_CASE("a second version of a policy with a wider row filter is refused when the difference isolates persons",
          "[integration][linkage]") {
    LinkWorld w;
    // Version 1 leaves out twenty visits; version 2 has no row filter: whoever holds both can tell
    // those twenty apart (their pseudonyms are in version 2 only), whatever the generalization.
    w.putPolicy("research",
                policyJson({"age", "sex", "zip"}, 5, R"(, "row_filter": {"column": "id", "op": ">", "value": 20})"));
    auto first = w.extract(w.partnerA, "research");
    INFO(first.body.substr(0, 300));
    REQUIRE(first.status == 200);
    const std::string firstId = first.header("x-extract-id");
    CHECK(w.scalar("SELECT key_scope || ' ' || policy_version FROM release_ledger WHERE extract_id = '" + firstId +
                   "'") == "research 1");
    // The same version again: the same rows, nothing new to join: allowed.
    REQUIRE(w.extract(w.partnerA, "research").status == 200);

    w.putPolicy("research", policyJson({"age", "sex", "zip"}, 5));
    // The preview tells the publisher beforehand, for that recipient.
    auto preview = w.call("POST", "/v1/datasets/visits/policies/research/preview?recipient=partner-a", w.publisher);
    INFO(preview.body);
    REQUIRE(preview.status == 200);
    CHECK(preview.body.find("\"linkage\":{") != std::string::npos);
    CHECK(preview.body.find("\"keeps_k\":false") != std::string::npos);
    CHECK(preview.body.find(firstId) != std::string::npos);
    // Another partner holds nothing yet: nothing to join.
    auto other = w.call("POST", "/v1/datasets/visits/policies/research/preview?recipient=partner-b", w.publisher);
    CHECK(other.body.find("\"keeps_k\":true") != std::string::npos);
    CHECK(other.body.find("\"earlier_releases\":[]") != std::string::npos);

    auto second = w.extract(w.partnerA, "research");
    INFO(second.body);
    REQUIRE(second.status == 422);
    const json::JsonValue details = errorDetails(second);
    CHECK(details.find("rule")->asString() == "linkage");
    CHECK(details.find("identity_column")->asString() == "id");
    CHECK(details.find("persons_below_k")->asUint64() >= 2);  // of the twenty, in classes of their own
    CHECK(details.find("smallest_class")->asUint64() < 5);
    bool namesFirst = false;
    for (const auto& e : details.find("checked_against")->asArray())
        namesFirst = namesFirst || e.find("extract_id")->asString() == firstId;
    CHECK(namesFirst);
    // The refusal is audited, and nothing was filed in the ledger for it.
    CHECK(w.scalar("SELECT count(*) FROM release_ledger") == "2");
    CHECK(w.scalar("SELECT decision FROM audit_entries WHERE action = 'extract.aborted' ORDER BY entry_index DESC "
                   "LIMIT 1") == "denied");
    // The other partner holds nothing: it gets version 2.
    CHECK(w.extract(w.partnerB, "research").status == 200);
}

TEST_CASE("policies that name each other in linkable_with share pseudonyms, and their join must keep k",
          "[integration][linkage]") {
    LinkWorld w;
    // 400 postcodes of 5 visits each, unrelated to age and sex: each release keeps k = 5 alone, the
    // join of the two does not.
    runPsql(w.agency.conninfo(), "UPDATE agency.visits SET zip = (10000 + (id * 37) % 400)::text");
    w.putPolicy("dob", policyJson({"age", "sex"}, 6, R"(, "linkable_with": ["place"])"));
    w.putPolicy("place", policyJson({"zip"}, 6, R"(, "linkable_with": ["dob"])"));
    w.putPolicy("alone", policyJson({"zip"}, 6));
    auto dob = w.extract(w.partnerA, "dob");
    REQUIRE(dob.status == 200);
    CHECK(w.scalar("SELECT key_scope FROM release_ledger WHERE extract_id = '" + dob.header("x-extract-id") + "'") ==
          "dob+place");

    // The join of age-and-sex with postcode areas breaks k = 6: refused, naming the earlier extract.
    auto place = w.extract(w.partnerA, "place");
    INFO(place.body);
    REQUIRE(place.status == 422);
    auto details = errorDetails(place);
    CHECK(details.find("rule")->asString() == "linkage");
    CHECK(details.find("scope")->asString() == "dob+place");
    CHECK(details.find("checked_against")->asArray().at(0).find("extract_id")->asString() ==
          dob.header("x-extract-id"));

    // An unlinked policy keys its own pseudonyms: nothing joins, it is released.
    auto alone = w.extract(w.partnerA, "alone");
    REQUIRE(alone.status == 200);
    std::set<std::string> dobIds, aloneIds;
    for (const auto& row : csvRows(dob.body)) dobIds.insert(row.at("id"));
    for (const auto& row : csvRows(alone.body)) aloneIds.insert(row.at("id"));
    REQUIRE(dobIds.size() > 1900);
    std::vector<std::string> common;
    std::set_intersection(dobIds.begin(), dobIds.end(), aloneIds.begin(), aloneIds.end(), std::back_inserter(common));
    CHECK(common.empty());

    // Generalized enough (every postcode to "*": each has 5 visits, fewer than k = 6), the linked
    // release keeps k over the join: released, with the same pseudonyms as the first (they join),
    // and the join really keeps k.
    std::string everyZip;
    for (int z = 0; z < 400; ++z) everyZip += (z ? ", \"" : "\"") + std::to_string(10000 + z) + "\"";
    w.putPolicy("place", policyJson({"zip"}, 6, R"(, "linkable_with": ["dob"])",
                                    R"({"builder": "groups", "levels": [{"*": [)" + everyZip + "]}]}"));
    auto coarse = w.extract(w.partnerA, "place");
    INFO(coarse.body.substr(0, 300));
    REQUIRE(coarse.status == 200);
    std::map<std::string, std::string> ageSexOf;
    for (const auto& row : csvRows(dob.body)) ageSexOf[row.at("id")] = row.at("age") + "|" + row.at("sex");
    std::map<std::string, uint64_t> joined;
    size_t matched = 0;
    for (const auto& row : csvRows(coarse.body)) {
        auto it = ageSexOf.find(row.at("id"));
        if (it == ageSexOf.end()) continue;
        ++matched;
        ++joined[it->second + "|" + row.at("zip")];
    }
    CHECK(matched > 1900);
    for (const auto& [cls, n] : joined) {
        INFO(cls);
        CHECK(n >= 6);
    }
}

TEST_CASE("linkable_with must name an existing policy that names back", "[integration][linkage]") {
    LinkWorld w;
    w.putPolicy("dob", policyJson({"age", "sex"}, 5, R"(, "linkable_with": ["place"])"));
    auto missing = w.extract(w.partnerA, "dob");
    INFO(missing.body);
    REQUIRE(missing.status == 422);
    CHECK(errorDetails(missing).find("rule")->asString() == "linkable_with");
    w.putPolicy("place", policyJson({"zip"}, 5));  // does not name dob
    auto oneSided = w.extract(w.partnerA, "dob");
    REQUIRE(oneSided.status == 422);
    CHECK(oneSided.body.find("does not name the same linkage group") != std::string::npos);
    CHECK(w.scalar("SELECT count(*) FROM release_ledger") == "0");
}

TEST_CASE("two releases of one key scope checked at once: the second to start is refused, not filed unchecked",
          "[integration][linkage]") {
    LinkWorld w;
    pqxx::connection conn(w.gatewayDb.conninfo());
    auto preparing = [&](const std::string& policy) {
        release::ExtractRecord r;
        r.id = release::newExtractId();
        r.dataset = "visits";
        r.policy = policy;
        r.policyVersion = 1;
        r.policyHash = std::string(64, 'a');
        r.recipient = "partner-a";
        r.purpose = "research";
        r.format = "csv";
        r.keyDerivation = 2;
        REQUIRE(release::insertExtract(conn, r));
        return r.id;
    };
    auto row = [](const std::string& policy, uint64_t checked) {
        return release::LedgerRow{"partner-a", "visits", "dob+place", policy, 1, "{}", checked};
    };
    // Both were checked against an empty scope; the first files itself, the second must not.
    const std::string first = preparing("dob"), second = preparing("place");
    REQUIRE(release::startExtract(conn, first, row("dob", 0)));
    Status late = release::startExtract(conn, second, row("place", 0));
    CHECK(late.code() == StatusCode::Aborted);
    CHECK(late.message().find("request it again") != std::string::npos);
    CHECK(w.scalar("SELECT status FROM extracts WHERE id = '" + second + "'") == "preparing");
    CHECK(w.scalar("SELECT count(*) FROM release_ledger") == "1");
    // Checked against what is filed now, it starts.
    CHECK(release::startExtract(conn, second, row("place", 1)));
    CHECK(w.scalar("SELECT count(*) FROM release_ledger WHERE key_scope = 'dob+place'") == "2");
    // Releases of the same policy version are never joined: two of them do not conflict.
    const std::string third = preparing("dob");
    CHECK(release::startExtract(conn, third, row("dob", 1)));  // "place" is the only other version
}

TEST_CASE("concurrent extracts under one policy version all start", "[integration][linkage]") {
    LinkWorld w;
    w.putPolicy("research", policyJson({"age", "sex", "zip"}, 5));
    std::vector<std::thread> threads;
    std::vector<int> statuses(4);  // limits.max_inflight_extracts_per_principal
    for (size_t i = 0; i < statuses.size(); ++i)
        threads.emplace_back([&, i] { statuses[i] = w.extract(w.partnerA, "research").status; });
    for (auto& t : threads) t.join();
    for (int s : statuses) CHECK(s == 200);
    CHECK(w.scalar("SELECT count(*) FROM release_ledger") == "4");
}
