#include "gateway/release/stream.hpp"

#include <cstring>
#include <system_error>

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

    auto snapshot = SourceSnapshot::open(source.conninfo, source.connectTimeout);
    if (!snapshot) return snapshot.status();
    stream->snapshot_ = std::move(snapshot).value();
    auto types = stream->snapshot_->columnTypes(*stream->query_);
    if (!types) return types.status();
    stream->query_->useSourceTypes(*types);

    // Sink: the frequency table of the search, counted where source.groupCounting says.
    FrequencySink sink(p);
    const std::vector<size_t> groupColumns = p.groupColumns();
    Status s = stream->snapshot_->forEachGroup(
        *stream->query_, groupColumns,
        [&](std::span<const SourceValue> values, uint64_t count) { return sink.add(values, count); },
        source.groupCounting);
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
    stopProducer();
    if (snapshot_) snapshot_->close();
}

void ReleaseStream::stopProducer() noexcept {
    if (!producer_.joinable()) return;
    bool reading = false;
    {
        std::lock_guard<std::mutex> lock(queueMutex_);
        stopping_ = true;
        reading = !producerDone_;
    }
    dequeued_.notify_all();
    // A producer blocked in the COPY returns once the server has cancelled it.
    if (reading && snapshot_) snapshot_->cancel();
    producer_.join();
}

bool ReleaseStream::push(ReleasedBatch item) {
    std::unique_lock<std::mutex> lock(queueMutex_);
    dequeued_.wait(lock, [&] { return stopping_ || queue_.size() < kQueuedBatches; });
    if (stopping_) return false;
    const bool last = !item.status || !item.batch;
    if (last) producerDone_ = true;
    queue_.push_back(std::move(item));
    lock.unlock();
    queued_.notify_one();
    return true;
}

ReleaseStream::ReleasedBatch ReleaseStream::take() {
    std::unique_lock<std::mutex> lock(queueMutex_);
    queued_.wait(lock, [&] { return !queue_.empty(); });
    ReleasedBatch item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    dequeued_.notify_one();
    return item;
}

ReleaseStream::ReleasedBatch ReleaseStream::produceOne() {
    ReleasedBatch item;
    auto batch = snapshot_->nextRows(options_.fetchRows);
    if (!batch) {
        item.status = batch.status();
        return item;
    }
    if (!*batch) return item;  // the end
    const anon::Batch& input = **batch;
    auto released = releaser_->release(input);
    if (!released) {
        item.status = released.status();
        return item;
    }
    countEmitted(*released, input);
    item.inputRows = input.rows();
    item.batch = std::move(released).value();
    return item;
}

void ReleaseStream::produce() noexcept {
    for (;;) {
        ReleasedBatch item;
        try {
            item = produceOne();
        } catch (const std::exception& e) {
            item = ReleasedBatch{internalError(std::string("releasing rows: ") + e.what()), std::nullopt, 0};
        } catch (...) {
            item = ReleasedBatch{internalError("releasing rows: unknown error"), std::nullopt, 0};
        }
        const bool last = !item.status || !item.batch;
        if (!push(std::move(item)) || last) return;
    }
}

Status ReleaseStream::start() {
    if (!privacy_.decision) return failedPrecondition("the privacy models cannot be met; nothing may be released");
    if (releaser_) return internalError("the release was already started");
    auto releaser = RowReleaser::make(*plan_, *privacy_.decision, context_);
    if (!releaser) return releaser.status();
    releaser_.emplace(std::move(releaser).value());
    encoder_.emplace(format_, releaser_->outputSchema());

    std::vector<std::string> qiNames;
    for (size_t column : plan_->quasiIdentifiers()) qiNames.push_back(plan_->inputColumns()[column].name);
    std::vector<anon::FinalCheckSensitive> sensitive;
    for (size_t s = 0; s < plan_->sensitiveAttributes().size(); ++s) {
        const size_t column = plan_->sensitiveAttributes()[s];
        anon::FinalCheckSensitive in;
        in.name = plan_->inputColumns()[column].name;
        in.distance = plan_->orderedDistance(column) ? anon::TClosenessDistance::Ordered : anon::TClosenessDistance::Equal;
        if (s < privacy_.decision->sensitiveTotals.size())
            in.inputDistribution.insert(privacy_.decision->sensitiveTotals[s].begin(),
                                        privacy_.decision->sensitiveTotals[s].end());
        sensitive.push_back(std::move(in));
    }
    check_.emplace(plan_->models(), std::move(qiNames), std::move(sensitive), privacy_.decision->records);
    const PrivacyDecision& decision = *privacy_.decision;
    if (plan_->sensitiveAttributes().empty() && decision.records > 0) {
        uint64_t classes = 1;
        for (size_t d = 0; d < decision.levels.size() && classes <= kDenseClasses; ++d) {
            denseRadix_.push_back(static_cast<uint32_t>(decision.hierarchies[d]->nodeCount(decision.levels[d])));
            classes *= denseRadix_.back();
        }
        if (classes <= kDenseClasses) denseEmitted_.assign(classes, 0);
        else denseRadix_.clear();
    }
    if (Status s = snapshot_->openRows(*query_, plan_->inputSchema()); !s) return s;
    try {
        producer_ = std::thread([this] { produce(); });
    } catch (const std::system_error& e) {
        return unavailable(std::string("cannot start the release's reading thread: ") + e.what());
    }
    return Status::ok();
}

const std::vector<ReleasedColumn>& ReleaseStream::columns() const {
    static const std::vector<ReleasedColumn> none;
    return releaser_ ? releaser_->columns() : none;
}

Result<std::optional<std::string>> ReleaseStream::nextPage() {
    if (!releaser_) return internalError("the release was not started");
    if (!failure_) return failure_;
    if (finished_) return std::optional<std::string>();
    if (!producer_.joinable()) return failedPrecondition("the release was closed");
    std::string page;
    page.reserve(options_.pageBytes + options_.pageBytes / 4);
    if (!preambleSent_) {
        encoder_->appendPreamble(page);
        preambleSent_ = true;
    }
    while (page.size() < options_.pageBytes) {
        ReleasedBatch item = take();
        if (!item.status) {
            failure_ = item.status;
            stopProducer();
            return failure_;
        }
        if (!item.batch) {
            finished_ = true;
            stopProducer();      // it has returned after the end; the emitted counts are complete
            snapshot_->close();  // the snapshot is no longer needed; free the source connection now
            final_ = runFinalCheck();
            break;
        }
        rowsRead_ += item.inputRows;
        rowsReleased_ += encoder_->appendRows(*item.batch, page);
    }
    if (page.empty() && finished_) return std::optional<std::string>();
    return std::optional<std::string>(std::move(page));
}

void ReleaseStream::countEmitted(const anon::Batch& released, const anon::Batch& input) {
    const size_t q = plan_->quasiIdentifiers().size();
    const auto& sensitive = plan_->sensitiveAttributes();
    const uint32_t* classes = releaser_->classCodes().data();
    if (!denseEmitted_.empty()) {
        for (size_t r = 0; r < released.rows(); ++r) {
            if (released.isSuppressed(r)) continue;
            uint64_t index = 0;
            for (size_t d = 0; d < q; ++d) index = index * denseRadix_[d] + classes[r * q + d];
            ++denseEmitted_[index];
        }
        return;
    }
    for (size_t r = 0; r < released.rows(); ++r) {
        if (released.isSuppressed(r)) continue;
        key_.assign(reinterpret_cast<const char*>(classes + r * q), q * sizeof(uint32_t));
        for (size_t column : sensitive) {
            // The true value the models protect; NULL is "" as in the frequency table.
            const anon::Column& values = input.column(column);
            const size_t lengthAt = key_.size();
            key_.append(sizeof(uint32_t), '\0');
            if (!values.isNull(r)) values.appendCanonical(key_, r);
            const auto length = static_cast<uint32_t>(key_.size() - lengthAt - sizeof(uint32_t));
            std::memcpy(key_.data() + lengthAt, &length, sizeof length);
        }
        if (auto it = emitted_.find(std::string_view(key_)); it != emitted_.end()) ++it->second;
        else emitted_.emplace(key_, 1);
    }
}

Result<anon::FinalCheckReport> ReleaseStream::runFinalCheck() {
    const size_t q = plan_->quasiIdentifiers().size();
    const size_t sensitive = plan_->sensitiveAttributes().size();
    const PrivacyDecision& decision = *privacy_.decision;
    std::vector<std::string_view> labels(q), values(sensitive);
    for (uint64_t index = 0; index < denseEmitted_.size(); ++index) {
        if (denseEmitted_[index] == 0) continue;
        uint64_t rest = index;
        for (size_t d = q; d-- > 0;) {
            labels[d] = decision.hierarchies[d]->label(decision.levels[d], static_cast<uint32_t>(rest % denseRadix_[d]));
            rest /= denseRadix_[d];
        }
        if (Status s = check_->addRows(labels, values, denseEmitted_[index]); !s) return s;
    }
    denseEmitted_ = {};
    for (const auto& [key, count] : emitted_) {
        std::string_view rest(key);
        for (size_t d = 0; d < q; ++d) {
            uint32_t node = 0;
            std::memcpy(&node, rest.data(), sizeof node);
            rest.remove_prefix(sizeof node);
            labels[d] = decision.hierarchies[d]->label(decision.levels[d], node);
        }
        for (size_t s = 0; s < sensitive; ++s) {
            uint32_t length = 0;
            std::memcpy(&length, rest.data(), sizeof length);
            values[s] = rest.substr(sizeof length, length);
            rest.remove_prefix(sizeof length + length);
        }
        if (Status s = check_->addRows(labels, values, count); !s) return s;
    }
    emitted_ = {};
    return check_->finish();
}

}  // namespace custodian::release
