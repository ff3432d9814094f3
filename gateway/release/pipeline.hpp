#pragma once
// The second half of a release, whatever the rows come from: once the search has chosen the
// generalization (PrivacyDecision), RowPipeline streams the input batches through the column
// transforms, the generalization and the suppression (RowReleaser), encodes them page by page
// (RowEncoder), and re-checks the declared models on what was emitted (anonymizer/final_check.hpp).
// The gateway feeds it from PostgreSQL (ReleaseStream), `custodian anonymize` from a CSV file.
//
// The final check: the pipeline counts the emitted rows per class (node codes, whose labels are the
// released text) and sensitive values, then hands each distinct combination with its count to the
// check, which groups by label text as it would row by row, at a cost per combination instead of
// per row. Its memory is bounded by the combinations the search counted, not by the rows.
//
// Threads: start() launches one producer thread that pulls input batches, releases them and counts
// the emitted rows, while nextPage() encodes on the caller's thread; at most kQueuedBatches
// released batches wait between the two, so memory stays bounded by a few batches. stop() (and the
// destructor) stops that thread, calling the input's cancel() first if it is still reading. The
// object itself is thread-compatible: one caller at a time.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "anonymizer/final_check.hpp"
#include "anonymizer/status.hpp"
#include "gateway/release/encoder.hpp"
#include "gateway/release/plan.hpp"

namespace custodian::release {

class RowPipeline {
public:
    // Where the rows come from, typed as the plan's inputSchema(). `next` runs on the producer
    // thread only and returns nullopt after the last batch. `cancel`, if set, may be called from
    // another thread while `next` blocks, and makes it return (with an error) soon.
    struct Input {
        std::function<Result<std::optional<anon::Batch>>()> next;
        std::function<void()> cancel;
    };

    // Builds the transforms and starts the producer thread. `plan` and `decision` (and the key in
    // `context`) must outlive the pipeline. FailedPrecondition when the decision has no chosen
    // node; Unavailable when the thread cannot start.
    static Result<std::unique_ptr<RowPipeline>> start(const ReleasePlan& plan, const PrivacyDecision& decision,
                                                      const ReleaseContext& context, ExtractFormat format,
                                                      size_t pageBytes, Input input);
    ~RowPipeline();
    RowPipeline(const RowPipeline&) = delete;
    RowPipeline& operator=(const RowPipeline&) = delete;

    // Columns as released.
    const std::vector<ReleasedColumn>& columns() const noexcept { return releaser_->columns(); }

    // The next page of encoded plaintext (at least pageBytes unless it is the last; the first
    // starts with the CSV header), or nullopt after the last row. Once finished() (set by the call
    // that returns the last page; the producer thread has then ended), finalCheck() holds the
    // re-check of the emitted rows: the report, or FailedPrecondition naming the model that does
    // not hold. After an error every later call returns the same error.
    Result<std::optional<std::string>> nextPage();
    bool finished() const noexcept { return finished_; }
    const Result<anon::FinalCheckReport>& finalCheck() const noexcept { return final_; }

    // Rows handed to the encoder so far (read), and of those the rows written (released).
    uint64_t rowsRead() const noexcept { return rowsRead_; }
    uint64_t rowsReleased() const noexcept { return rowsReleased_; }
    uint64_t rowsSuppressed() const noexcept { return rowsRead_ - rowsReleased_; }

    // Stops the producer thread (cancelling the input if it is still reading); nextPage() fails
    // afterwards unless the pipeline had finished.
    void stop() noexcept;

private:
    RowPipeline(const ReleasePlan& plan, const PrivacyDecision& decision, RowReleaser releaser, ExtractFormat format,
                size_t pageBytes, Input input);

    // One step of the producer thread: a released batch, the end of the rows, or an error.
    struct ReleasedBatch {
        Status status;
        std::optional<anon::Batch> batch;  // unset at the end
        size_t inputRows = 0;
    };
    static constexpr size_t kQueuedBatches = 2;
    void produce() noexcept;
    ReleasedBatch produceOne();
    // Queue ends: push() blocks while the queue is full and returns false once stopping; take()
    // blocks until a batch is queued.
    bool push(ReleasedBatch item);
    ReleasedBatch take();
    // Counts the emitted (not suppressed) rows of one batch for the final check (producer thread).
    void countEmitted(const anon::Batch& released, const anon::Batch& input);
    // Hands the counts to the final check and runs it (after the producer has ended).
    Result<anon::FinalCheckReport> runFinalCheck();

    const ReleasePlan& plan_;
    const PrivacyDecision& decision_;
    std::optional<RowReleaser> releaser_;
    RowEncoder encoder_;
    std::optional<anon::FinalCheck> check_;
    size_t pageBytes_;
    Input input_;
    Result<anon::FinalCheckReport> final_ = Status(StatusCode::FailedPrecondition, "the release has not finished");
    // Emitted rows per combination. Key: the row's class node codes (uint32 each), then per sensitive
    // attribute a uint32 length and its canonical text (NULL as "").
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
    bool stopping_ = false;      // guarded by queueMutex_
    bool producerDone_ = false;  // guarded by queueMutex_: the producer has pushed its last item
    Status failure_;             // the first error nextPage() returned
    bool preambleSent_ = false;
    bool finished_ = false;
    uint64_t rowsRead_ = 0;
    uint64_t rowsReleased_ = 0;
};

}  // namespace custodian::release
