#include "gateway/release/stream.hpp"

namespace custodian::release {

Result<std::unique_ptr<ReleaseStream>> ReleaseStream::prepare(const SourceLocation& source,
                                                              std::shared_ptr<const policies::Policy> policy,
                                                              ReleaseContext context, ExtractFormat format,
                                                              StreamOptions options) {
    std::unique_ptr<ReleaseStream> stream(new ReleaseStream());
    stream->context_ = std::move(context);
    stream->format_ = format;
    stream->options_ = options;
    if (stream->options_.fetchRows == 0) stream->options_.fetchRows = 8192;
    stream->memory_ = options.memory ? options.memory : std::make_shared<MemoryCharge>();
    MemoryCharge& memory = *stream->memory_;

    auto plan = ReleasePlan::make(std::move(policy));
    if (!plan) return plan.status();
    stream->plan_ = std::make_unique<ReleasePlan>(std::move(plan).value());
    const ReleasePlan& p = *stream->plan_;

    auto filter = p.policy().rowFilterSql(1);
    if (!filter) return filter.status().withContext("row filter");
    auto query = SourceQuery::make(source.schema, source.table, p.inputColumns(), std::move(filter).value());
    if (!query) return query.status();
    stream->query_ = std::make_unique<SourceQuery>(std::move(query).value());

    auto snapshot = SourceSnapshot::open(source.conninfo, source.connectTimeout,
                                         source.notDatabase ? &*source.notDatabase : nullptr);
    if (!snapshot) return snapshot.status();
    stream->snapshot_ = std::move(snapshot).value();
    auto types = stream->snapshot_->columnTypes(*stream->query_);
    if (!types) return types.status();
    stream->query_->useSourceTypes(*types);
    // A column read as NULL (SourceColumn::unread) is not in any query that would fail when the
    // table no longer has it: say so here, as the rows' COPY would for any other column. (No types
    // at all: the table itself is missing, which the first query reports.)
    for (const SourceColumn& column : p.inputColumns()) {
        if (column.unread && !types->empty() && !types->count(column.name))
            return internalError("the source table has no column '" + column.name +
                                 "', which the policy drops; check the dataset definition against the table");
    }

    // Sink: the frequency table of the search, counted where source.groupCounting says.
    // Mondrian takes the rows themselves, in the order the release will read them again.
    // The sink's memory is stated every few thousand rows or groups, and the search's expected
    // working set before it runs, so a release that does not fit stops before it grows further.
    FrequencySink sink(p);
    const std::vector<size_t> groupColumns = p.groupColumns();
    constexpr uint64_t kAccountEvery = 16384;
    uint64_t added = 0;
    auto add = [&](std::span<const SourceValue> values, uint64_t count) -> Status {
        if (Status s = sink.add(values, count); !s) return s;
        return ++added % kAccountEvery == 0 ? memory.set(kFrequencySink, sink.memoryBytes()) : Status::ok();
    };
    Status s = Status::ok();
    if (p.localRecoding()) {
        s = stream->snapshot_->fixRowOrder();
        if (s)
            s = stream->snapshot_->forEachRow(*stream->query_, groupColumns,
                                              [&](std::span<const SourceValue> values) { return add(values, 1); });
    } else if (source.groupCounting == GroupCounting::Gateway && !groupColumns.empty()) {
        s = stream->snapshot_->countGroups(
            *stream->query_, groupColumns,
            [&](SourceSnapshot::CountedGroups& groups) { return sink.addGroups(groups); }, &memory);
    } else {
        s = stream->snapshot_->forEachGroup(*stream->query_, groupColumns, add, source.groupCounting, &memory);
    }
    if (!s) return s;
    if (s = memory.set(kFrequencySink, sink.memoryBytes()); !s) return s;
    for (size_t column : p.builtGeneralizedColumns()) {
        s = stream->snapshot_->forEachGroup(
            *stream->query_, {column},
            [&](std::span<const SourceValue> values, uint64_t) { return sink.addFixedDomainValue(column, values[0]); });
        if (!s) return s;
    }
    // Finalize: hierarchies, frequency table, search.
    if (s = memory.set(kSearch, sink.finalizeBytes()); !s) return s;
    auto privacy = std::move(sink).finalize(&memory);
    if (!privacy) return privacy.status();
    stream->privacy_ = std::move(privacy).value();
    // From here on the release holds the frequency table (previews evaluate other nodes with it)
    // and its decision; the sink and the search's working set are freed when this returns.
    uint64_t held = stream->privacy_.table ? stream->privacy_.table->memoryBytes() : 0;
    if (stream->privacy_.decision) held += stream->privacy_.decision->memoryBytes();
    (void)memory.set(kSearch, 0);
    (void)memory.set(kSearchWorkingSet, 0);
    (void)memory.set(kFrequencySink, 0);
    if (s = memory.set(kDecision, held); !s) return s;
    return stream;
}

ReleaseStream::~ReleaseStream() {
    close();
    // Free what the release held, hand the pages back to the system, then to the budget.
    rows_.reset();
    privacy_ = {};
    snapshot_.reset();
    query_.reset();
    plan_.reset();
    returnFreedMemory();
    if (memory_) memory_->releaseAll();
}

void ReleaseStream::close() noexcept {
    if (rows_) rows_->stop();
    if (snapshot_) snapshot_->close();
}

Status ReleaseStream::start() {
    if (!privacy_.decision) return failedPrecondition("the privacy models cannot be met; nothing may be released");
    if (rows_) return internalError("the release was already started");
    // The rows need the decision only: the frequency table, kept for previews, goes before they flow.
    if (privacy_.table) {
        privacy_.table.reset();
        (void)memory_->set(kDecision, privacy_.decision->memoryBytes());
    }
    if (Status s = snapshot_->openRows(*query_, plan_->inputSchema()); !s) return s;
    SourceSnapshot* snapshot = snapshot_.get();
    const size_t fetchRows = options_.fetchRows;
    RowPipeline::Input input{[snapshot, fetchRows] { return snapshot->nextRows(fetchRows); },
                             [snapshot] { snapshot->cancel(); }};
    auto rows = RowPipeline::start(*plan_, *privacy_.decision, context_, format_, options_.pageBytes, std::move(input));
    if (!rows) return rows.status();
    rows_ = std::move(rows).value();
    return Status::ok();
}

const std::vector<ReleasedColumn>& ReleaseStream::columns() const {
    static const std::vector<ReleasedColumn> none;
    return rows_ ? rows_->columns() : none;
}

Result<std::optional<std::string>> ReleaseStream::nextPage() {
    if (!rows_) return internalError("the release was not started");
    auto page = rows_->nextPage();
    // The snapshot is no longer needed once the last row is read; free the source connection now.
    if (rows_->finished()) snapshot_->close();
    return page;
}

bool ReleaseStream::finished() const noexcept { return rows_ && rows_->finished(); }

const Result<anon::FinalCheckReport>& ReleaseStream::finalCheck() const noexcept {
    static const Result<anon::FinalCheckReport> notFinished =
        Status(StatusCode::FailedPrecondition, "the release has not finished");
    return rows_ ? rows_->finalCheck() : notFinished;
}

}  // namespace custodian::release
