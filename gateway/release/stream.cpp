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

    // Sink: the frequency table of the search, counted where source.groupCounting says.
    // Mondrian takes the rows themselves, in the order the release will read them again.
    FrequencySink sink(p);
    const std::vector<size_t> groupColumns = p.groupColumns();
    Status s = Status::ok();
    if (p.localRecoding()) {
        s = stream->snapshot_->fixRowOrder();
        if (s)
            s = stream->snapshot_->forEachRow(*stream->query_, groupColumns,
                                              [&](std::span<const SourceValue> values) { return sink.add(values, 1); });
    } else {
        s = stream->snapshot_->forEachGroup(
            *stream->query_, groupColumns,
            [&](std::span<const SourceValue> values, uint64_t count) { return sink.add(values, count); },
            source.groupCounting);
    }
    if (!s) return s;
    for (size_t column : p.builtGeneralizedColumns()) {
        s = stream->snapshot_->forEachGroup(*stream->query_, {column}, [&](std::span<const SourceValue> values, uint64_t) {
            return sink.addFixedDomainValue(column, values[0]);
        });
        if (!s) return s;
    }
    // Finalize: hierarchies, frequency table, search.
    auto privacy = std::move(sink).finalize();
    if (!privacy) return privacy.status();
    stream->privacy_ = std::move(privacy).value();
    return stream;
}

ReleaseStream::~ReleaseStream() { close(); }

void ReleaseStream::close() noexcept {
    if (rows_) rows_->stop();
    if (snapshot_) snapshot_->close();
}

Status ReleaseStream::start() {
    if (!privacy_.decision) return failedPrecondition("the privacy models cannot be met; nothing may be released");
    if (rows_) return internalError("the release was already started");
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
