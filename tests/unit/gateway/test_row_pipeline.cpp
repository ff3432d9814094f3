// RowPipeline (gateway/release/pipeline.hpp) with an input under the test's control: every row
// arrives once, in order, across page boundaries; errors and exceptions of the input reach the
// caller; a reader blocked in the input is cancelled by stop().
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gateway/release/pipeline.hpp"
#include "policies/policy.hpp"

using namespace custodian;
using namespace custodian::release;

namespace {

constexpr const char* kPolicy = R"({
  "dataset": "people", "recipients": ["partner-a"], "purposes": ["research"],
  "columns": [
    {"name": "age", "type": "integer", "role": "quasi_identifier", "hierarchy": {"builder": "intervals", "widths": [10, 20]}},
    {"name": "sex", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
    {"name": "note", "type": "text", "role": "insensitive"}
  ],
  "privacy": {"k": 3, "suppression_limit": 0}, "algorithm": {"name": "optimal"}, "metric": "loss"})";

constexpr int kRows = 3000;
constexpr size_t kBatchRows = 250;

int ageOf(int row) { return 20 + (row * 7) % 50; }
const char* sexOf(int row) { return row % 3 == 0 ? "F" : "M"; }

// The plan, the search's decision over the rows' combinations, and the rows as batches.
struct Fixture {
    std::shared_ptr<const policies::Policy> policy;
    std::optional<ReleasePlan> plan;
    FrequencySink::Finalized privacy;
    std::vector<anon::Batch> batches;
    ReleaseContext context{"people", "partner-a", nullptr, nullptr};

    Fixture() {
        auto loaded = policies::loadPolicy(kPolicy);
        REQUIRE(loaded.ok());
        policy = loaded.policy;
        auto made = ReleasePlan::make(policy);
        REQUIRE(made);
        plan.emplace(std::move(made).value());
        std::map<std::pair<std::string, std::string>, uint64_t> combinations;
        for (int r = 0; r < kRows; ++r) ++combinations[{std::to_string(ageOf(r)), sexOf(r)}];
        FrequencySink sink(*plan);
        for (const auto& [values, count] : combinations) {
            const SourceValue row[] = {values.first, values.second};
            REQUIRE(sink.add(row, count));
        }
        auto finalized = std::move(sink).finalize();
        REQUIRE(finalized);
        REQUIRE(finalized->decision);
        privacy = std::move(finalized).value();
        for (int start = 0; start < kRows; start += static_cast<int>(kBatchRows)) {
            auto age = std::make_shared<anon::Column>(anon::ColumnType::Integer);
            auto sex = std::make_shared<anon::Column>(anon::ColumnType::Text);
            auto note = std::make_shared<anon::Column>(anon::ColumnType::Text);
            for (int r = start; r < start + static_cast<int>(kBatchRows) && r < kRows; ++r) {
                age->appendInteger(ageOf(r));
                sex->appendText(sexOf(r));
                note->appendText("row " + std::to_string(r));
            }
            auto batch = anon::Batch::make(plan->inputSchema(), {age, sex, note});
            REQUIRE(batch);
            batches.push_back(std::move(batch).value());
        }
    }

    Result<std::unique_ptr<RowPipeline>> start(RowPipeline::Input input, size_t pageBytes = 4096) {
        return RowPipeline::start(*plan, *privacy.decision, context, ExtractFormat::Csv, pageBytes, std::move(input));
    }

    // Batches in order; `fail` is called with the index of each batch about to be returned.
    RowPipeline::Input fromBatches(std::function<Status(size_t)> fail = nullptr) {
        auto next = std::make_shared<size_t>(0);
        return {[this, next, fail]() -> Result<std::optional<anon::Batch>> {
                    if (*next == batches.size()) return std::optional<anon::Batch>();
                    if (fail)
                        if (Status s = fail(*next); !s) return s;
                    return std::optional<anon::Batch>(batches[(*next)++]);
                },
                nullptr};
    }
};

}  // namespace

TEST_CASE("every row passes the pipeline once, in order, across pages, and the final check holds",
          "[release][pipeline]") {
    Fixture f;
    auto pipeline = f.start(f.fromBatches());
    REQUIRE(pipeline);
    std::string text;
    size_t pages = 0;
    for (;;) {
        auto page = (*pipeline)->nextPage();
        REQUIRE(page);
        if (!*page) break;
        text += **page;
        ++pages;
    }
    CHECK(pages > 5);
    REQUIRE((*pipeline)->finished());
    REQUIRE((*pipeline)->finalCheck());
    CHECK((*pipeline)->finalCheck()->minClassSize >= 3);
    CHECK((*pipeline)->rowsRead() == static_cast<uint64_t>(kRows));
    CHECK((*pipeline)->rowsReleased() == static_cast<uint64_t>(kRows));
    // The notes come out in input order, each once.
    size_t next = 0;
    size_t at = text.find('\n') + 1;  // after the header
    while (at < text.size()) {
        const size_t end = text.find('\n', at);
        REQUIRE(end != std::string::npos);
        const std::string line = text.substr(at, end - at);
        CHECK(line.substr(line.rfind(',') + 1) == "row " + std::to_string(next));
        ++next;
        at = end + 1;
    }
    CHECK(next == static_cast<size_t>(kRows));
    // After the end: nothing more, without error.
    auto after = (*pipeline)->nextPage();
    REQUIRE(after);
    CHECK(!*after);
}

TEST_CASE("an error of the input reaches the caller and stays", "[release][pipeline]") {
    Fixture f;
    auto pipeline = f.start(f.fromBatches([](size_t batch) {
        return batch == 5 ? Status(StatusCode::Unavailable, "the source went away") : Status::ok();
    }));
    REQUIRE(pipeline);
    Status failed;
    for (int i = 0; i < 100 && failed; ++i) {
        auto page = (*pipeline)->nextPage();
        if (!page) failed = page.status();
        else REQUIRE(*page);  // the error comes before the end
    }
    CHECK(failed.code() == StatusCode::Unavailable);
    CHECK(failed.message() == "the source went away");
    auto again = (*pipeline)->nextPage();
    REQUIRE_FALSE(again);
    CHECK(again.status().message() == "the source went away");
    CHECK_FALSE((*pipeline)->finished());
    CHECK((*pipeline)->rowsRead() <= 5 * kBatchRows);
}

TEST_CASE("an exception in the input becomes an error, not a crash", "[release][pipeline]") {
    Fixture f;
    RowPipeline::Input input{[]() -> Result<std::optional<anon::Batch>> { throw std::runtime_error("disk on fire"); },
                             nullptr};
    auto pipeline = f.start(std::move(input));
    REQUIRE(pipeline);
    auto page = (*pipeline)->nextPage();
    REQUIRE_FALSE(page);
    CHECK(page.status().code() == StatusCode::Internal);
    CHECK(page.status().message() == "reading rows: disk on fire");
}

TEST_CASE("stop() cancels a reader blocked in the input and returns", "[release][pipeline]") {
    Fixture f;
    std::mutex m;
    std::condition_variable cv;
    bool cancelled = false;
    bool blocked = false;
    std::atomic<int> served{0};
    RowPipeline::Input input{[&]() -> Result<std::optional<anon::Batch>> {
                                 if (served < 3) return std::optional<anon::Batch>(f.batches[static_cast<size_t>(served++)]);
                                 // Like a COPY waiting for the server: blocks until cancelled.
                                 std::unique_lock<std::mutex> lock(m);
                                 blocked = true;
                                 cv.notify_all();
                                 cv.wait(lock, [&] { return cancelled; });
                                 return Status(StatusCode::Internal, "canceling statement due to user request");
                             },
                             [&] {
                                 std::lock_guard<std::mutex> lock(m);
                                 cancelled = true;
                                 cv.notify_all();
                             }};
    auto pipeline = f.start(std::move(input), 1024);
    REQUIRE(pipeline);
    auto page = (*pipeline)->nextPage();
    REQUIRE(page);
    REQUIRE(*page);
    {
        // The queues hold more than the three batches, so the reader gets to the blocking call.
        std::unique_lock<std::mutex> lock(m);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return blocked; }));
    }
    auto stopped = std::async(std::launch::async, [&] { (*pipeline)->stop(); });
    REQUIRE(stopped.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(cancelled);
    auto after = (*pipeline)->nextPage();
    REQUIRE_FALSE(after);
    CHECK_FALSE((*pipeline)->finished());
}
