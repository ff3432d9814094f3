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
    ReleaseContext context{{anon::kCurrentKeyDerivation, "people", "research", "partner-a"}, nullptr, nullptr};

    // `mondrian`: the policy partitions with Mondrian, and the sink takes every row in order.
    explicit Fixture(bool mondrian = false) {
        std::string json = kPolicy;
        if (mondrian) json.replace(json.find("\"optimal\""), 9, "\"mondrian\"");
        auto loaded = policies::loadPolicy(json);
        REQUIRE(loaded.ok());
        policy = loaded.policy;
        auto made = ReleasePlan::make(policy);
        REQUIRE(made);
        plan.emplace(std::move(made).value());
        REQUIRE(plan->localRecoding() == mondrian);
        FrequencySink sink(*plan);
        if (mondrian) {
            for (int r = 0; r < kRows; ++r) {
                const std::string age = std::to_string(ageOf(r));
                const SourceValue row[] = {age, sexOf(r)};
                REQUIRE(sink.add(row, 1));
            }
        }
        std::map<std::pair<std::string, std::string>, uint64_t> combinations;
        for (int r = 0; r < kRows && !mondrian; ++r) ++combinations[{std::to_string(ageOf(r)), sexOf(r)}];
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

    // Batches in the order given by `order` (indexes into batches).
    RowPipeline::Input fromOrder(std::vector<size_t> order) {
        auto next = std::make_shared<size_t>(0);
        return {[this, next, order]() -> Result<std::optional<anon::Batch>> {
                    if (*next == order.size()) return std::optional<anon::Batch>();
                    return std::optional<anon::Batch>(batches[order[(*next)++]]);
                },
                nullptr};
    }

    // Every page until the end or the first error.
    static Result<std::string> drain(RowPipeline& pipeline) {
        std::string text;
        for (;;) {
            auto page = pipeline.nextPage();
            if (!page) return page.status();
            if (!*page) return text;
            text += **page;
        }
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
                                 if (served < 3)
                                     return std::optional<anon::Batch>(f.batches[static_cast<size_t>(served++)]);
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

TEST_CASE("more rows than the search counted stop the release before its end", "[release][pipeline]") {
    Fixture f;
    std::vector<size_t> order;
    for (size_t b = 0; b < f.batches.size(); ++b) order.push_back(b);
    order.push_back(0);  // the source returned a batch twice
    auto pipeline = f.start(f.fromOrder(order));
    REQUIRE(pipeline);
    auto text = Fixture::drain(**pipeline);
    REQUIRE_FALSE(text);
    CHECK(text.status().code() == StatusCode::Internal);
    CHECK(text.status().message() == "the source returned " + std::to_string(kRows + kBatchRows) +
                                         " rows, but the privacy search counted " + std::to_string(kRows));
    CHECK_FALSE((*pipeline)->finished());
}

// Mondrian: the sink holds every row's codes; the rows must come back in the same order.
TEST_CASE("Mondrian releases every row once, in order, with labels that cover its values",
          "[release][pipeline][mondrian]") {
    Fixture f(true);
    const PrivacyDecision& decision = *f.privacy.decision;
    REQUIRE(decision.local);
    CHECK(decision.levels.empty());
    CHECK(decision.classWidth() == 1);
    CHECK(decision.stats.achievedK >= 3);
    CHECK(decision.local->partitions.partitionSizes.size() > 20);  // local recoding, not one class
    auto pipeline = f.start(f.fromBatches());
    REQUIRE(pipeline);
    REQUIRE((*pipeline)->columns()[0].transform == "mondrian-strict");
    auto text = Fixture::drain(**pipeline);
    REQUIRE(text);
    REQUIRE((*pipeline)->finished());
    REQUIRE((*pipeline)->finalCheck());
    CHECK((*pipeline)->rowsReleased() == static_cast<uint64_t>(kRows));
    CHECK((*pipeline)->finalCheck()->minClassSize == decision.stats.achievedK);

    // Independently of the pipeline: each line is its row (notes in order), its age label is a
    // number or a range holding the true age, its sex label the true sex or "*", and every
    // combination of labels is shared by at least k = 3 rows.
    std::map<std::pair<std::string, std::string>, int> classes;
    size_t at = text->find('\n') + 1, row = 0;
    while (at < text->size()) {
        const size_t end = text->find('\n', at);
        REQUIRE(end != std::string::npos);
        const std::string line = text->substr(at, end - at);
        const size_t c1 = line.find(','), c2 = line.find(',', c1 + 1);
        const std::string age = line.substr(0, c1), sex = line.substr(c1 + 1, c2 - c1 - 1);
        CHECK(line.substr(c2 + 1) == "row " + std::to_string(row));
        const int trueAge = ageOf(static_cast<int>(row));
        if (age.front() == '[') {
            const size_t dash = age.find('-');
            CHECK(std::stoi(age.substr(1, dash - 1)) <= trueAge);
            CHECK(std::stoi(age.substr(dash + 1)) >= trueAge);
        } else {
            CHECK(std::stoi(age) == trueAge);
        }
        CHECK((sex == sexOf(static_cast<int>(row)) || sex == "*"));
        ++classes[{age, sex}];
        ++row;
        at = end + 1;
    }
    CHECK(row == static_cast<size_t>(kRows));
    CHECK(classes.size() == decision.local->partitions.partitionSizes.size());
    for (const auto& [labels, count] : classes) CHECK(count >= 3);
}

TEST_CASE("Mondrian refuses rows that come back in another order, before writing them",
          "[release][pipeline][mondrian]") {
    Fixture f(true);
    std::vector<size_t> order;
    for (size_t b = 0; b < f.batches.size(); ++b) order.push_back(b);
    std::swap(order[3], order[4]);
    auto pipeline = f.start(f.fromOrder(order), 1);  // a page per batch
    REQUIRE(pipeline);
    std::string text;
    Status failed;
    for (;;) {
        auto page = (*pipeline)->nextPage();
        if (!page) {
            failed = page.status();
            break;
        }
        REQUIRE(*page);
        text += **page;
    }
    CHECK(failed.code() == StatusCode::Internal);
    CHECK(failed.message().find("the row order changed") != std::string::npos);
    CHECK(failed.message().find("row " + std::to_string(3 * kBatchRows + 1) + " ") != std::string::npos);
    // The three batches before the swap, and nothing of the misplaced one.
    CHECK((*pipeline)->rowsRead() == 3 * kBatchRows);
    CHECK(text.find("row " + std::to_string(4 * kBatchRows) + "\n") == std::string::npos);
    CHECK_FALSE((*pipeline)->finished());
}

TEST_CASE("Mondrian refuses a source that returns fewer rows than were partitioned", "[release][pipeline][mondrian]") {
    Fixture f(true);
    std::vector<size_t> order;
    for (size_t b = 0; b + 1 < f.batches.size(); ++b) order.push_back(b);
    auto pipeline = f.start(f.fromOrder(order));
    REQUIRE(pipeline);
    auto text = Fixture::drain(**pipeline);
    REQUIRE_FALSE(text);
    CHECK(text.status().message() == "the source returned " + std::to_string(kRows - kBatchRows) +
                                         " rows, but the privacy search counted " + std::to_string(kRows));
}

TEST_CASE("Mondrian refuses NULL in a quasi-identifier, naming the column", "[release][pipeline][mondrian]") {
    std::string json = kPolicy;
    json.replace(json.find("\"optimal\""), 9, "\"mondrian\"");
    auto loaded = policies::loadPolicy(json);
    REQUIRE(loaded.ok());
    auto plan = ReleasePlan::make(loaded.policy);
    REQUIRE(plan);
    FrequencySink sink(*plan);
    const SourceValue ok[] = {std::string_view("30"), std::string_view("F")};
    REQUIRE(sink.add(ok, 1));
    const SourceValue missing[] = {std::string_view("31"), std::nullopt};
    Status s = sink.add(missing, 1);
    CHECK(s.code() == StatusCode::FailedPrecondition);
    CHECK(s.message().find("'sex' is NULL") != std::string::npos);
}

TEST_CASE("the plan reads NULL in place of a dropped column only when nothing else uses its values",
          "[release][pipeline]") {
    auto load = [](const std::string& privacy) {
        auto loaded = policies::loadPolicy(R"({
  "dataset": "people", "recipients": ["partner-a"], "purposes": ["research"],
  "columns": [
    {"name": "person", "type": "text", "role": "identifier", "transform": {"name": "drop"}},
    {"name": "household", "type": "text", "role": "identifier"},
    {"name": "name", "type": "text", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "age", "type": "integer", "role": "quasi_identifier", "hierarchy": {"builder": "intervals", "widths": [10, 20]}},
    {"name": "visit", "type": "date", "role": "insensitive",
     "transform": {"name": "date_shift", "params": {"max_days": 10, "key_column": "household"}}},
    {"name": "diagnosis", "type": "text", "role": "sensitive", "transform": {"name": "drop"}},
    {"name": "note", "type": "text", "role": "insensitive", "transform": {"name": "drop"}}
  ],
  "privacy": )" + privacy + R"(, "algorithm": {"name": "optimal"}, "metric": "loss"})");
        INFO((loaded.ok() ? std::string() : loaded.errors[0].pointer + ": " + loaded.errors[0].message));
        REQUIRE(loaded.ok());
        auto plan = ReleasePlan::make(loaded.policy);
        REQUIRE(plan);
        std::map<std::string, bool> unread;
        for (const auto& c : plan->inputColumns()) unread[c.name] = c.unread;
        return unread;
    };
    // household is dropped by default (an identifier) but keys date_shift; diagnosis is dropped
    // but the models need it only under l-diversity.
    auto k = load(R"({"k": 2})");
    CHECK(k == std::map<std::string, bool>{{"person", true},
                                           {"household", false},
                                           {"name", false},
                                           {"age", false},
                                           {"visit", false},
                                           {"diagnosis", true},
                                           {"note", true}});
    auto l = load(R"({"k": 2, "l_diversity": {"variant": "distinct", "l": 2}})");
    CHECK(l.at("diagnosis") == false);
    CHECK(l.at("person") == true);
}
