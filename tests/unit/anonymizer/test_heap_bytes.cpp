#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "anonymizer/heap_bytes.hpp"

using namespace custodian::anon;

TEST_CASE("wholePages finds the whole pages inside a byte range and nothing outside it", "[heap]") {
    constexpr size_t kPage = 4096;
    // Aligned block: from rounds up, to rounds down.
    auto s = heap::wholePages(8 * kPage, 100, 10000, kPage);
    CHECK(s.offset == kPage);
    CHECK(s.length == kPage);
    s = heap::wholePages(8 * kPage, 0, 2 * kPage, kPage);
    CHECK(s.offset == 0);
    CHECK(s.length == 2 * kPage);
    // An unaligned block: offsets are from the block's start, pages are the system's.
    s = heap::wholePages(8 * kPage + 100, 0, 3 * kPage, kPage);
    CHECK(s.offset == kPage - 100);
    CHECK(s.length == kPage * 2);
    // No whole page inside: within one page, across a boundary but shorter than a page, empty,
    // reversed.
    CHECK(heap::wholePages(4000, 60, 96, kPage).length == 0);
    CHECK(heap::wholePages(4000, 0, 50, kPage).length == 0);
    CHECK(heap::wholePages(4000, 50, 200, kPage).length == 0);
    CHECK(heap::wholePages(8 * kPage, 10, 10, kPage).length == 0);
    CHECK(heap::wholePages(8 * kPage, 20, 10, kPage).length == 0);
}

TEST_CASE("returnPages leaves the bytes before the range and other blocks as they were", "[heap]") {
    for (const size_t size : {size_t{100}, size_t{5000}, size_t{1} << 22}) {
        std::vector<unsigned char> block(size, 0xAB), after(size, 0xCD);
        const size_t keep = size / 3;
        heap::returnPages(block.data(), keep, size);
        CHECK(std::all_of(block.begin(), block.begin() + static_cast<ptrdiff_t>(keep),
                          [](unsigned char b) { return b == 0xAB; }));
        CHECK(std::all_of(after.begin(), after.end(), [](unsigned char b) { return b == 0xCD; }));
        // The tail may read as zeros now (pages returned) or as before; writing it again is fine.
        std::fill(block.begin() + static_cast<ptrdiff_t>(keep), block.end(), 0x11);
        CHECK(block.back() == 0x11);
    }
}
