#pragma once
// One release from an agency table, start to finish, without HTTP, audit or encryption (those wrap
// it: gateway/release/extract_producer.hpp). Used by POST /v1/extracts, the policy preview and the
// benchmark.
//
//   auto stream = ReleaseStream::prepare(source, policy, context, format);  // blocking step
//   if ((*stream)->unreachable()) ... 422, nothing was read but the aggregates
//   (*stream)->start();
//   while (auto page = (*stream)->nextPage()) ... encoded plaintext, page by page
//   (*stream)->finalCheck()  — after the last page: the models re-checked on what was emitted, by
//                              the anonymizer's independent final check (anonymizer/final_check.hpp):
//                              classes from the released quasi-identifier labels, l-diversity and
//                              t-closeness over the true (canonical input) sensitive values. The
//                              stream counts the emitted rows per class (node codes, whose labels are
//                              the released text) and sensitive values, then hands each distinct
//                              combination with its count to the check: the check groups by label
//                              text as before, at a cost per combination instead of per row.
//
// Thread-compatibility: one thread at a time (the HTTP server calls a producer serially).
// Internally, start() launches one producer thread that reads source batches, transforms them and
// counts the emitted rows, while nextPage() encodes on the caller's thread; at most
// kQueuedBatches released batches wait between the two, so memory stays bounded. close() (and the
// destructor) stops that thread, cancelling the source COPY if it is still running.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/release/encoder.hpp"
#include "anonymizer/final_check.hpp"
#include "gateway/release/plan.hpp"
#include "gateway/release/source.hpp"
#include "policies/policy.hpp"

namespace custodian::release {

struct SourceLocation {
    std::string conninfo;  // a secret: never logged
    std::string schema;    // unquoted
    std::string table;     // unquoted
    std::chrono::seconds connectTimeout{5};
    GroupCounting groupCounting = GroupCounting::Gateway;  // where the frequency table is counted
};

struct StreamOptions {
    size_t fetchRows = 8192;         // rows per FETCH (and per released batch)
    size_t pageBytes = 1u << 20;     // encode at least this much plaintext before handing a page out
};

class ReleaseStream {
public:
    // Opens the snapshot, counts the quasi-identifier combinations (source.groupCounting), builds
    // the hierarchies and runs the search. Errors: Unavailable (source down), FailedPrecondition (policy cannot run on this
    // source, e.g. a hierarchy misses values), Internal. An unreachable model is not an error:
    // unreachable() is then set and start() refuses.
    static Result<std::unique_ptr<ReleaseStream>> prepare(const SourceLocation& source,
                                                          std::shared_ptr<const policies::Policy> policy,
                                                          ReleaseContext context, ExtractFormat format,
                                                          StreamOptions options = {});
    ~ReleaseStream();
    ReleaseStream(const ReleaseStream&) = delete;
    ReleaseStream& operator=(const ReleaseStream&) = delete;

    const ReleasePlan& plan() const noexcept { return *plan_; }
    const ModelUnreachable* unreachable() const noexcept {
        return privacy_.unreachable ? &*privacy_.unreachable : nullptr;
    }
    // Set unless unreachable().
    const PrivacyDecision* decision() const noexcept { return privacy_.decision ? &*privacy_.decision : nullptr; }
    // The frequency table and search configuration (null table when no row was selected).
    const FrequencySink::Finalized& privacy() const noexcept { return privacy_; }

    // Opens the row cursor and builds the column transforms. FailedPrecondition when unreachable().
    Status start();
    // Columns as released (after start()).
    const std::vector<ReleasedColumn>& columns() const;

    // The next page of encoded plaintext (the first starts with the CSV header), or nullopt after
    // the last row. Once finished() (set by the call that returns the last page), finalCheck()
    // holds the re-check of the emitted rows: the report, or FailedPrecondition naming the model
    // that does not hold.
    Result<std::optional<std::string>> nextPage();
    bool finished() const noexcept { return finished_; }
    const Result<anon::FinalCheckReport>& finalCheck() const noexcept { return final_; }

    uint64_t rowsRead() const noexcept { return rowsRead_; }
    uint64_t rowsReleased() const noexcept { return rowsReleased_; }
    uint64_t rowsSuppressed() const noexcept { return rowsRead_ - rowsReleased_; }

    // Closes the source connection early (client gone); nextPage() fails afterwards.
    void close() noexcept;

private:
    ReleaseStream() = default;
    // One step of the producer thread: a released batch, the end of the rows, or an error.
    struct ReleasedBatch {
        Status status;
        std::optional<anon::Batch> batch;  // unset at the end
        size_t inputRows = 0;
    };
    static constexpr size_t kQueuedBatches = 2;
    // The producer thread's loop (source → RowReleaser → countEmitted → queue).
    void produce() noexcept;
    ReleasedBatch produceOne();
    // Queue ends: push() blocks while the queue is full and returns false once stopping; take()
    // blocks until a batch is queued.
    bool push(ReleasedBatch item);
    ReleasedBatch take();
    // Stops and joins the producer thread (cancels the COPY first if it is still reading).
    void stopProducer() noexcept;
    // Counts the emitted (not suppressed) rows of one batch for the final check.
    void countEmitted(const anon::Batch& released, const anon::Batch& input);
    // Hands the counts to the final check and runs it.
    Result<anon::FinalCheckReport> runFinalCheck();

    std::unique_ptr<ReleasePlan> plan_;
    std::unique_ptr<SourceQuery> query_;
    std::unique_ptr<SourceSnapshot> snapshot_;
    FrequencySink::Finalized privacy_;
    ReleaseContext context_;
    ExtractFormat format_ = ExtractFormat::Csv;
    StreamOptions options_;
    std::optional<RowReleaser> releaser_;
    std::optional<RowEncoder> encoder_;
    std::optional<anon::FinalCheck> check_;
    Result<anon::FinalCheckReport> final_ = Status(StatusCode::FailedPrecondition, "the release has not finished");
    // Emitted rows per combination. Key: the row's class node codes (uint32 each), then per sensitive
    // attribute a uint32 length and its canonical text (NULL as ""). Its size is bounded by the
    // combinations the search counted, not by the number of rows.
    std::unordered_map<std::string, uint64_t, TransparentStringHash, std::equal_to<>> emitted_;
    std::string key_;  // scratch
    // Instead of emitted_ when there is no sensitive attribute and the classes at the chosen levels
    // number at most kDenseClasses: one counter per class, indexed by its node codes in mixed radix.
    static constexpr uint64_t kDenseClasses = uint64_t{1} << 20;
    std::vector<uint64_t> denseEmitted_;
    std::vector<uint32_t> denseRadix_;  // node count per quasi-identifier at its chosen level
    std::thread producer_;
    std::mutex queueMutex_;
    std::condition_variable queued_, dequeued_;
    std::deque<ReleasedBatch> queue_;
    bool stopping_ = false;       // guarded by queueMutex_
    bool producerDone_ = false;   // guarded by queueMutex_: the producer has pushed its last item
    Status failure_;              // the first error nextPage() returned; returned again after it
    bool preambleSent_ = false;
    bool finished_ = false;
    uint64_t rowsRead_ = 0;
    uint64_t rowsReleased_ = 0;
};

}  // namespace custodian::release
