#include <catch2/catch.hpp>

#include "anonymizer/frequency_table.hpp"
#include "anonymizer/heap_bytes.hpp"
#include "anonymizer/lattice.hpp"

using namespace custodian::anon;
using custodian::StatusCode;

TEST_CASE("frequency table counts distinct combinations and sensitive distributions", "[search][frequency-table]") {
    auto b = FrequencyTableBuilder::create({3, 2}, {4});
    REQUIRE(b.isOk());
    const uint32_t a[] = {0, 1}, c[] = {2, 0};
    const uint32_t s1[] = {3}, s2[] = {1};
    REQUIRE(b->add(a, s1).isOk());
    REQUIRE(b->add(c, s2).isOk());
    REQUIRE(b->add(a, s2).isOk());
    REQUIRE(b->add(a, s1, 5).isOk());  // a GROUP BY row carrying 5 records
    CHECK(b->distinctCombinations() == 2);
    const FrequencyTable t = std::move(b.value()).finish();
    CHECK(t.size() == 2);
    CHECK(t.totalRecords() == 8);
    CHECK(t.code(0, 0) == 0);
    CHECK(t.code(0, 1) == 1);
    CHECK(t.count(0) == 7);
    CHECK(t.count(1) == 1);
    const auto dist = t.sensitive(0, 0);
    REQUIRE(dist.size() == 2);
    CHECK(dist[0].value == 1);  // sorted by value
    CHECK(dist[0].count == 1);
    CHECK(dist[1].value == 3);
    CHECK(dist[1].count == 6);
    CHECK(t.sensitive(0, 1).size() == 1);
}

TEST_CASE("frequency table rejects codes out of range and malformed rows", "[search][frequency-table]") {
    CHECK(FrequencyTableBuilder::create({}).status().code() == StatusCode::InvalidArgument);
    CHECK(FrequencyTableBuilder::create({0}).status().code() == StatusCode::InvalidArgument);
    auto b = FrequencyTableBuilder::create({3, 2}, {2});
    REQUIRE(b.isOk());
    const uint32_t outOfRange[] = {3, 0}, ok[] = {1, 1}, one[] = {1};
    const uint32_t s[] = {0}, badS[] = {2};
    CHECK_THAT(b->add(outOfRange, s).message(), Catch::Contains("code 3 out of range"));
    CHECK(b->add(one, s).code() == StatusCode::InvalidArgument);
    CHECK(b->add(ok, badS).code() == StatusCode::InvalidArgument);
    CHECK(b->add(ok, {}).code() == StatusCode::InvalidArgument);
    CHECK(b->add(ok, s, 0).code() == StatusCode::InvalidArgument);
    CHECK(b->totalRecords() == 0);
}

TEST_CASE("frequency table grows past its initial hash capacity", "[search][frequency-table]") {
    auto b = FrequencyTableBuilder::create({1000, 1000});
    REQUIRE(b.isOk());
    for (uint32_t i = 0; i < 1000; ++i) {
        for (uint32_t j = 0; j < 20; ++j) {
            const uint32_t codes[] = {i, (i * 7 + j) % 1000};
            b->addUnchecked(codes, nullptr);
            b->addUnchecked(codes, nullptr);
        }
    }
    const FrequencyTable t = std::move(b.value()).finish();
    CHECK(t.size() == 20000);
    CHECK(t.totalRecords() == 40000);
    for (size_t c = 0; c < t.size(); ++c) REQUIRE(t.count(c) == 2);
}

TEST_CASE("a table of distinct combinations is taken over as columns, and checked", "[search][frequency-table]") {
    auto t = FrequencyTable::fromDistinct({3, 2}, {{0, 2, 1}, {1, 0, 1}}, {4, 1, 2});
    REQUIRE(t.isOk());
    CHECK(t->size() == 3);
    CHECK(t->totalRecords() == 7);
    CHECK(t->code(1, 0) == 2);
    CHECK(t->code(2, 1) == 1);
    CHECK(t->column(0).size() == 3);
    CHECK(t->column(0)[2] == 1);
    CHECK(t->column(0).bytesPerCode() == 1);
    CHECK(t->count(0) == 4);
    CHECK(t->sensitiveCount() == 0);
    CHECK(t->memoryBytes() >= 3 * (2 * 1 + 8));  // one byte per code below 256

    CHECK(FrequencyTable::fromDistinct({}, {}, {}).status().code() == StatusCode::InvalidArgument);
    // One column per quasi-identifier, one code per combination, codes in range, counts of 1 or more.
    CHECK(FrequencyTable::fromDistinct({3, 2}, {{0, 1}}, {1, 1}).status().code() == StatusCode::InvalidArgument);
    CHECK(FrequencyTable::fromDistinct({3, 2}, {{0, 1}, {1}}, {1, 1}).status().code() == StatusCode::InvalidArgument);
    const auto outOfRange = FrequencyTable::fromDistinct({3, 2}, {{0, 1}, {1, 2}}, {1, 1});
    CHECK(outOfRange.status().code() == StatusCode::InvalidArgument);
    CHECK(outOfRange.status().message().find("code 2 out of range") != std::string::npos);
    CHECK(FrequencyTable::fromDistinct({3, 2}, {{0, 1}, {1, 0}}, {1, 0}).status().code() ==
          StatusCode::InvalidArgument);
}

TEST_CASE("code columns take the fewest bytes that hold their cardinality, and read back exactly",
          "[search][frequency-table]") {
    for (uint32_t cardinality : {1U, 256U, 257U, 65536U, 65537U, 4000000U}) {
        std::vector<uint32_t> codes;
        for (uint32_t i = 0; i < 5000; ++i) codes.push_back((i * 2654435761U) % cardinality);
        codes.push_back(cardinality - 1);
        const std::vector<uint32_t> expected = codes;
        const CodeColumn column = CodeColumn::pack(std::move(codes), cardinality);
        INFO("cardinality " << cardinality);
        CHECK(column.bytesPerCode() == (cardinality <= 256 ? 1U : cardinality <= 65536 ? 2U : 4U));
        REQUIRE(column.size() == expected.size());
        CHECK(column.memoryBytes() >= expected.size() * column.bytesPerCode());
        for (size_t i = 0; i < expected.size(); ++i) REQUIRE(column[i] == expected[i]);
        column.visit(100, [&](const auto* block) {
            for (size_t i = 0; i < 50; ++i) REQUIRE(block[i] == expected[100 + i]);
        });
    }
}

TEST_CASE("releasing a container gives its memory back, unlike assigning {}", "[search][frequency-table]") {
    std::vector<uint32_t> assigned(100000, 7), released(100000, 7);
    assigned = {};  // the initializer-list assignment: empty, but the capacity stays
    CHECK(assigned.capacity() >= 100000);
    heap::release(released);
    CHECK(released.empty());
    CHECK(released.capacity() == 0);
}

TEST_CASE("group counts take four bytes while counting and carry past 2^32 - 1", "[search][frequency-table]") {
    detail::GroupCounts counts;
    counts.add(0);
    counts.add(1, 5);
    counts.add(0, 2);
    CHECK(counts.size() == 2);
    CHECK(counts.count(0) == 3);
    CHECK(counts.memoryBytes() == 2 * sizeof(uint32_t));
    // Group 1 passes the four-byte range twice over.
    counts.add(1, UINT32_MAX);
    CHECK(counts.count(1) == uint64_t{UINT32_MAX} + 5);
    counts.add(1, UINT32_MAX);
    counts.add(2);
    CHECK(counts.count(1) == 2 * uint64_t{UINT32_MAX} + 5);
    const std::vector<uint64_t> all = std::move(counts).take();
    CHECK(all == std::vector<uint64_t>{3, 2 * uint64_t{UINT32_MAX} + 5, 1});
}

TEST_CASE("the tuple indexer keeps tuples column by column through its growth", "[search][frequency-table]") {
    detail::TupleIndexer index(3);
    index.reserve(10);
    // Enough distinct tuples to grow the slots several times, each inserted twice.
    constexpr uint32_t kTuples = 5000;
    for (int round = 0; round < 2; ++round) {
        for (uint32_t i = 0; i < kTuples; ++i) {
            const uint32_t tuple[] = {i % 7, i / 7, i % 2};
            REQUIRE(index.indexOf(tuple) == i);
        }
    }
    // Tuples differing in one column only are different tuples.
    const uint32_t near[] = {0, 0, 1};
    CHECK(index.indexOf(near) == kTuples);
    CHECK(index.size() == kTuples + 1);
    CHECK(index.code(12, 0) == 12 % 7);
    CHECK(index.code(12, 1) == 12 / 7);
    CHECK(index.memoryBytes() >= (kTuples + 1) * 3 * sizeof(uint32_t));
    auto columns = std::move(index).takeColumns();
    REQUIRE(columns.size() == 3);
    REQUIRE(columns[2].size() == kTuples + 1);
    CHECK(columns[1][kTuples - 1] == (kTuples - 1) / 7);
    CHECK(columns[2][kTuples] == 1);
}

TEST_CASE("generalization lattice indexes nodes mixed-radix with the first dimension slowest", "[search][lattice]") {
    auto l = GeneralizationLattice::create({0, 1, 0}, {2, 2, 1});
    REQUIRE(l.isOk());
    CHECK(l->size() == 3 * 2 * 2);
    CHECK(l->maxHeight() == 2 + 1 + 1);
    const int levels[] = {1, 2, 0};
    const size_t node = l->index(levels);
    CHECK(l->level(node, 0) == 1);
    CHECK(l->level(node, 1) == 2);
    CHECK(l->level(node, 2) == 0);
    CHECK(l->height(node) == 2);
    CHECK(l->generalizes(node, l->bottom()));
    CHECK(l->generalizes(l->top(), node));
    CHECK_FALSE(l->generalizes(l->bottom(), node));
    CHECK(l->level(node + l->stride(2), 2) == 1);
    CHECK(GeneralizationLattice::create({0}, {-1}).status().code() == StatusCode::InvalidArgument);
    CHECK(GeneralizationLattice::create(std::vector<int>(30, 0), std::vector<int>(30, 3)).status().code() ==
          StatusCode::ResourceExhausted);
}
