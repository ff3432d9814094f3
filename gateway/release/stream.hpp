#pragma once
// One release from an agency table, start to finish, without HTTP, audit or encryption (those wrap
// it: gateway/api/extract_producer.hpp). Used by POST /v1/extracts, the policy preview and the
// benchmark.
//
//   auto stream = ReleaseStream::prepare(source, policy, context, format);  // blocking step
//   if ((*stream)->unreachable()) ... 422, nothing was read but the aggregates
//   (*stream)->start();
//   while (auto page = (*stream)->nextPage()) ... encoded plaintext, page by page
//   (*stream)->finalCheck()  — after the last page: the models re-checked on what was emitted
//                              (RowPipeline, gateway/release/pipeline.hpp, which the offline
//                              `custodian anonymize` shares).
//
// Thread-compatibility: one thread at a time (the HTTP server calls a producer serially). The
// rows are read, transformed and counted on RowPipeline's producer thread; close() (and the
// destructor) stops it, cancelling the source COPY if it is still running.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/release/encoder.hpp"
#include "gateway/release/memory_budget.hpp"
#include "anonymizer/final_check.hpp"
#include "gateway/release/pipeline.hpp"
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
    // The gateway's own database: the snapshot is refused if `conninfo` leads there (the routes
    // always set it; gateway/catalog/source_access.hpp).
    std::optional<db::ServerIdentity> notDatabase = std::nullopt;
};

struct StreamOptions {
    size_t fetchRows = 8192;      // rows per FETCH (and per released batch)
    size_t pageBytes = 1u << 20;  // encode at least this much plaintext before handing a page out
    // The release's memory charge (gateway/release/memory_budget.hpp): prepare() states its
    // structures to it as they grow and fails with ResourceExhausted when the budget refuses
    // (refusal() then says why). The stream holds it until it is destroyed. Null: accounts only.
    std::shared_ptr<MemoryCharge> memory;
};

class ReleaseStream {
public:
    // Opens the snapshot, counts the quasi-identifier combinations (source.groupCounting), builds
    // the hierarchies and runs the search. Errors: Unavailable (source down), FailedPrecondition (policy cannot run on
    // this source, e.g. a hierarchy misses values), Internal. An unreachable model is not an error: unreachable() is
    // then set and start() refuses.
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
    // The frequency table and search configuration (null table when no row was selected, and after
    // start(): the rows do not need it).
    const FrequencySink::Finalized& privacy() const noexcept { return privacy_; }

    // Opens the row cursor and builds the column transforms. FailedPrecondition when unreachable().
    Status start();
    // Columns as released (after start()).
    const std::vector<ReleasedColumn>& columns() const;

    // The next page of encoded plaintext, or nullopt after the last row; see RowPipeline::nextPage.
    // finalCheck() holds the re-check of the emitted rows once finished().
    Result<std::optional<std::string>> nextPage();
    bool finished() const noexcept;
    const Result<anon::FinalCheckReport>& finalCheck() const noexcept;

    uint64_t rowsRead() const noexcept { return rows_ ? rows_->rowsRead() : 0; }
    uint64_t rowsReleased() const noexcept { return rows_ ? rows_->rowsReleased() : 0; }
    uint64_t rowsSuppressed() const noexcept { return rowsRead() - rowsReleased(); }

    // Closes the source connection early (client gone); nextPage() fails afterwards.
    void close() noexcept;

    // What this release holds by its own account (memory_budget.hpp).
    const MemoryCharge& memory() const noexcept { return *memory_; }

private:
    ReleaseStream() = default;

    std::unique_ptr<ReleasePlan> plan_;
    std::unique_ptr<SourceQuery> query_;
    std::unique_ptr<SourceSnapshot> snapshot_;
    FrequencySink::Finalized privacy_;
    ReleaseContext context_;
    ExtractFormat format_ = ExtractFormat::Csv;
    StreamOptions options_;
    std::unique_ptr<RowPipeline> rows_;  // after start()
    std::shared_ptr<MemoryCharge> memory_;
};

}  // namespace custodian::release
