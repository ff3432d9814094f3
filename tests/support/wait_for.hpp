#pragma once
// Waiting for what a test needs instead of sleeping for a time it guesses: `condition` is polled
// until it holds or `limit` has passed, so a loaded machine makes the test slower, never wrong.

#include <chrono>
#include <thread>

namespace custodian::testing {

// Whether `condition` held within `limit` (checked once more at the deadline).
template <typename Condition>
bool waitFor(Condition&& condition, std::chrono::milliseconds limit,
             std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(poll);
    }
    return static_cast<bool>(condition());
}

}  // namespace custodian::testing
