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
// Threads: start() launches two stage threads — a reader that pulls input batches (for the gateway:
// COPY rows parsed into typed columns) and a releaser that transforms them and counts the emitted
// rows — while nextPage() encodes on the caller's thread. Between stages at most kQueuedBatches
// batches wait, so memory stays bounded by a few batches; on two cores the stages (and the
// database server producing the rows) overlap instead of taking turns. stop() (and the destructor)
// stops both threads, calling the input's cancel() first if the reader is still reading. The
// object itself is thread-compatible: one caller at a time.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "anonymizer/final_check.hpp"
#include "anonymizer/status.hpp"
#include "gateway/release/bounded_queue.hpp"
#include "gateway/release/encoder.hpp"
#include "gateway/release/plan.hpp"

namespace custodian::release {

class RowPipeline {
public:
    // Where the rows come from, typed as the plan's inputSchema(). `next` runs on the reader
    // thread only and returns nullopt after the last batch. `cancel`, if set, may be called from
    // another thread while `next` blocks, and makes it return (with an error) soon.
    struct Input {
        std::function<Result<std::optional<anon::Batch>>()> next;
        std::function<void()> cancel;
    };

    // Builds the transforms and starts the stage threads. `plan` and `decision` (and the key in
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
    // that returns the last page; the stage threads have then ended), finalCheck() holds the
    // re-check of the emitted rows: the report, or FailedPrecondition naming the model that does
    // not hold. After an error every later call returns the same error.
    Result<std::optional<std::string>> nextPage();
    bool finished() const noexcept { return finished_; }
    const Result<anon::FinalCheckReport>& finalCheck() const noexcept { return final_; }

    // Rows handed to the encoder so far (read), and of those the rows written (released).
    uint64_t rowsRead() const noexcept { return rowsRead_; }
    uint64_t rowsReleased() const noexcept { return rowsReleased_; }
    uint64_t rowsSuppressed() const noexcept { return rowsRead_ - rowsReleased_; }

    // Stops the stage threads (cancelling the input if it is still reading); nextPage() fails
    // afterwards unless the pipeline had finished.
    void stop() noexcept;

private:
    RowPipeline(const ReleasePlan& plan, const PrivacyDecision& decision, RowReleaser releaser, ExtractFormat format,
                size_t pageBytes, Input input);

    // What passes between stages: a batch, the end of the rows (no batch), or an error.
    struct Step {
        Status status;
        std::optional<anon::Batch> batch;  // a released batch keeps its input's rows (suppression is a mark)
        bool last() const noexcept { return !status || !batch; }
    };
    static constexpr size_t kQueuedBatches = 2;
    void read() noexcept;     // reader thread: input → inputs_
    void release() noexcept;  // releaser thread: inputs_ → RowReleaser, countEmitted → outputs_
    Step releaseOne(Step input);
    // Counts the emitted (not suppressed) rows of one batch for the final check (releaser thread).
    void countEmitted(const anon::Batch& released, const anon::Batch& input);
    // Hands the counts to the final check and runs it (after the stage threads have ended).
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
    // Instead of emitted_ when PrivacyDecision::denseClassCounters() allows: one counter per
    // class, indexed by its codes in mixed radix (never more than the rows: 4 bytes suffice).
    std::vector<uint32_t> denseEmitted_;
    std::vector<uint32_t> denseRadix_;  // per class code: its number of values (nodes; partitions)

    std::thread reader_, releaserThread_;
    BoundedQueue<Step> inputs_{kQueuedBatches}, outputs_{kQueuedBatches};
    std::atomic<bool> reading_{true};  // the reader has not yet taken its last step from the input
    Status failure_;                   // the first error nextPage() returned
    bool preambleSent_ = false;
    bool finished_ = false;
    uint64_t rowsRead_ = 0;
    uint64_t rowsReleased_ = 0;
};

}  // namespace custodian::release
