#pragma once
// One helper thread beside the calling one, for the anonymizer's two-thread passes (the search's
// striped counting, Mondrian's partitioning, description and entropy).

#include <exception>
#include <system_error>
#include <thread>
#include <utility>

namespace custodian::anon::detail {

// Starts `helper` on a new thread, runs `here` on the calling thread, and joins the helper on every
// path — also when `here` throws — so that no joinable thread is ever left behind. The first error is
// rethrown after the join: `here`'s if it threw, else the helper's.
//
// Returns false, having run neither, when no thread can be started (std::system_error from
// std::thread): the caller then does the whole work on its own thread, which must be possible —
// `here` is not run in that case, since it may wait for the helper.
template <typename Helper, typename Here> bool runBesideHelper(Helper&& helper, Here&& here) {
    std::exception_ptr helperFailed;
    std::thread thread;
    try {
        thread = std::thread([&] {
            try {
                helper();
            } catch (...) { helperFailed = std::current_exception(); }
        });
    } catch (const std::system_error&) { return false; }
    try {
        here();
    } catch (...) {
        thread.join();
        throw;
    }
    thread.join();
    if (helperFailed) std::rethrow_exception(helperFailed);
    return true;
}

}  // namespace custodian::anon::detail
