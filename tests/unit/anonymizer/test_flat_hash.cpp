#include <catch2/catch.hpp>

#include <cstdint>

#include "anonymizer/flat_hash.hpp"

using namespace custodian::anon;

TEST_CASE("a dense indexer freed after a large grouping indexes again from nothing", "[flat_hash]") {
    detail::DenseIndexer<uint64_t> indexer;
    indexer.reset(16);
    for (uint64_t key = 0; key < 100000; ++key) REQUIRE(indexer.indexOf(key * 7919) == key);
    CHECK(indexer.size() == 100000);
    // Grown past 100,000 keys at a load of at most one half.
    CHECK(indexer.memoryBytes() >= 200000 * detail::DenseIndexer<uint64_t>::slotBytes());

    indexer.release();
    CHECK(indexer.memoryBytes() == 0);
    CHECK(indexer.size() == 0);
    CHECK(indexer.find(7919) == UINT32_MAX);

    // The next grouping starts empty: the keys of the earlier one are not found, and new ones are
    // numbered from 0 again.
    indexer.reset(4);
    CHECK(indexer.memoryBytes() > 0);
    CHECK(indexer.memoryBytes() < 1024 * detail::DenseIndexer<uint64_t>::slotBytes());
    CHECK(indexer.find(7919) == UINT32_MAX);
    CHECK(indexer.indexOf(42) == 0);
    CHECK(indexer.indexOf(7919) == 1);
    CHECK(indexer.indexOf(42) == 0);
    for (uint64_t key = 100; key < 1100; ++key) CHECK(indexer.indexOf(key) == key - 98);
    CHECK(indexer.size() == 1002);
    CHECK(indexer.find(7919) == 1);
}
