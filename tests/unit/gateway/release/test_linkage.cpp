// The join a recipient can make of its releases (gateway/release/linkage.hpp), on hand-made views.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/release/linkage.hpp"

using namespace custodian::release;

namespace {

ReleasedView view(uint64_t k, std::vector<std::string> columns, const std::string& column,
                  std::vector<std::pair<std::string, std::string>> rows) {
    ReleasedView v;
    v.k = k;
    v.pseudonymColumns = std::move(columns);
    for (const auto& c : v.pseudonymColumns) v.byPseudonym[c];
    for (auto& [p, labels] : rows) v.byPseudonym[column][p] = labels;
    v.rows = rows.size();
    return v;
}

std::vector<std::pair<std::string, std::string>> persons(int from, int to, const std::string& labels) {
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = from; i <= to; ++i) out.emplace_back("p" + std::to_string(i), labels);
    return out;
}

}  // namespace

TEST_CASE("the join of two releases puts the persons one of them lacks in classes of their own", "[linkage]") {
    auto wide = persons(1, 10, "30-39|F");
    const ReleasedView newer = view(5, {"id"}, "id", wide);
    const ReleasedView older = view(5, {"id"}, "id", persons(1, 8, "30-39|F"));
    const JoinCheck j = checkJoin({&newer, &older});
    CHECK(j.identityColumn == "id");
    CHECK(j.joined == std::vector<size_t>{0, 1});
    CHECK(j.persons == 10);
    CHECK(j.classes == 2);  // in both (8), in the newer only (2)
    CHECK(j.smallestClass == 2);
    CHECK(j.personsBelowK == 2);
    CHECK_FALSE(j.keepsK());

    // The same rows in both: one class of 10, k holds.
    const ReleasedView same = view(5, {"id"}, "id", wide);
    CHECK(checkJoin({&newer, &same}).keepsK());
    // A person only in the older release forms a class too.
    const ReleasedView fewer = view(5, {"id"}, "id", persons(1, 9, "30-39|F"));
    const ReleasedView more = view(5, {"id"}, "id", persons(1, 10, "30-39|F"));
    CHECK(checkJoin({&fewer, &more}).personsBelowK == 1);
}

TEST_CASE("the join splits classes by the values of every release, and keeps each release's k", "[linkage]") {
    auto ages = persons(1, 6, "30-39");
    auto moreAges = persons(7, 12, "40-49");
    ages.insert(ages.end(), moreAges.begin(), moreAges.end());
    const ReleasedView byAge = view(3, {"id"}, "id", ages);
    // The other release puts persons 1-3 and 7-9 in one place, the rest in another: 4 classes of 3.
    std::vector<std::pair<std::string, std::string>> places;
    for (int i = 1; i <= 12; ++i) places.emplace_back("p" + std::to_string(i), (i - 1) % 6 < 3 ? "north" : "south");
    const ReleasedView byPlace = view(3, {"id"}, "id", places);
    JoinCheck j = checkJoin({&byPlace, &byAge});
    CHECK(j.classes == 4);
    CHECK(j.smallestClass == 3);
    CHECK(j.keepsK());
    // An earlier release with k = 4: its persons must keep 4 over the join.
    const ReleasedView strict = view(4, {"id"}, "id", ages);
    j = checkJoin({&byPlace, &strict});
    CHECK(j.k == 4);
    CHECK(j.personsBelowK == 12);
}

TEST_CASE("releases that pseudonymize no common column are not joined", "[linkage]") {
    const ReleasedView a = view(5, {"id"}, "id", persons(1, 3, "x"));
    const ReleasedView b = view(5, {"household"}, "household", persons(1, 3, "y"));
    const JoinCheck j = checkJoin({&a, &b});
    CHECK(j.identityColumn.empty());
    CHECK(j.joined == std::vector<size_t>{0});
    CHECK(j.persons == 3);
    CHECK(j.keepsK());
    CHECK(checkJoin({}).persons == 0);
}

TEST_CASE("a release that declares l-diversity keeps it over the join", "[linkage]") {
    // Six persons of one class in the earlier release, diverse in their diagnosis (3 values); the
    // new release splits them in two places, one of which holds a single diagnosis.
    ReleasedView earlier = view(3, {"id"}, "id", persons(1, 6, "30-39"));
    earlier.lDiversity = custodian::anon::LDiversity{custodian::anon::LDiversityVariant::Distinct, 2, 1};
    const char* diagnoses[] = {"I10", "I10", "I10", "E11", "J45", "E11"};
    for (int i = 1; i <= 6; ++i) earlier.sensitiveOf["id"]["p" + std::to_string(i)] = {diagnoses[i - 1]};
    std::vector<std::pair<std::string, std::string>> places;
    for (int i = 1; i <= 6; ++i) places.emplace_back("p" + std::to_string(i), i <= 3 ? "north" : "south");
    const ReleasedView byPlace = view(3, {"id"}, "id", places);
    JoinCheck j = checkJoin({&byPlace, &earlier});
    CHECK(j.personsBelowK == 0);       // two classes of 3
    CHECK(j.personsNotLDiverse == 3);  // north: only I10
    CHECK_FALSE(j.keepsK());
    // Spread differently, both halves keep 2 distinct diagnoses.
    places.clear();
    for (int i = 1; i <= 6; ++i) places.emplace_back("p" + std::to_string(i), i % 2 ? "north" : "south");
    const ReleasedView alternating = view(3, {"id"}, "id", places);
    j = checkJoin({&alternating, &earlier});
    CHECK(j.personsNotLDiverse == 0);
    CHECK(j.keepsK());
}

TEST_CASE("a release that declares t-closeness keeps it over the join", "[linkage]") {
    // Eight persons, costs 1..8 spread evenly; the new release splits them into the four cheapest
    // and the four dearest: each half is far from the whole distribution (ordered distance).
    ReleasedView earlier = view(2, {"id"}, "id", persons(1, 8, "30-39"));
    earlier.tCloseness = custodian::anon::TCloseness{0.2};
    earlier.sensitiveDistance = {custodian::anon::TClosenessDistance::Ordered};
    for (int i = 1; i <= 8; ++i) earlier.sensitiveOf["id"]["p" + std::to_string(i)] = {"\x1e" + std::to_string(i)};
    std::vector<std::pair<std::string, std::string>> halves, mixed;
    for (int i = 1; i <= 8; ++i) {
        halves.emplace_back("p" + std::to_string(i), i <= 4 ? "north" : "south");
        mixed.emplace_back("p" + std::to_string(i), i % 2 ? "north" : "south");
    }
    const ReleasedView byHalves = view(2, {"id"}, "id", halves);
    const ReleasedView byMixed = view(2, {"id"}, "id", mixed);
    JoinCheck j = checkJoin({&byHalves, &earlier});
    CHECK(j.personsBelowK == 0);
    CHECK(j.personsNotTClose == 8);  // EMD of 1..4 (and of 5..8) against 1..8 is 2/7 > 0.2
    CHECK_FALSE(j.keepsK());
    j = checkJoin({&byMixed, &earlier});
    CHECK(j.personsNotTClose == 0);  // odd and even: EMD 1/14 each
    CHECK(j.keepsK());
}
