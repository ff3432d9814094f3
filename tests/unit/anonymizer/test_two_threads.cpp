#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "anonymizer/two_threads.hpp"

using custodian::anon::detail::runBesideHelper;

TEST_CASE("runBesideHelper runs both sides on two threads and joins", "[two-threads]") {
    std::thread::id helperId, hereId;
    std::atomic<int> done{0};
    const bool ran = runBesideHelper(
        [&] {
            helperId = std::this_thread::get_id();
            ++done;
        },
        [&] {
            hereId = std::this_thread::get_id();
            ++done;
        });
    REQUIRE(ran);
    CHECK(done == 2);  // the helper finished before the call returned
    CHECK(hereId == std::this_thread::get_id());
    CHECK(helperId != hereId);
}

TEST_CASE("runBesideHelper rethrows the helper's error after the calling side finished", "[two-threads]") {
    bool hereFinished = false;
    CHECK_THROWS_WITH(runBesideHelper([] { throw std::runtime_error("helper failed"); }, [&] { hereFinished = true; }),
                      "helper failed");
    CHECK(hereFinished);
}

TEST_CASE("runBesideHelper prefers the calling side's error and still joins the helper", "[two-threads]") {
    std::atomic<bool> release{false}, helperFinished{false};
    CHECK_THROWS_WITH(runBesideHelper(
                          [&] {
                              // Still running when the calling side throws: the join must wait for it.
                              while (!release.load()) std::this_thread::yield();
                              helperFinished = true;
                              throw std::runtime_error("helper failed too");
                          },
                          [&] {
                              release = true;
                              throw std::runtime_error("here failed");
                          }),
                      "here failed");
    CHECK(helperFinished);
}
