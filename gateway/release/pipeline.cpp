#include "gateway/release/pipeline.hpp"

#include <cstring>
#include <system_error>
#include "anonymizer/heap_bytes.hpp"

namespace custodian::release {

Result<std::unique_ptr<RowPipeline>> RowPipeline::start(const ReleasePlan& plan, const PrivacyDecision& decision,
                                                        const ReleaseContext& context, ExtractFormat format,
                                                        size_t pageBytes, Input input) {
    auto releaser = RowReleaser::make(plan, decision, context);
    if (!releaser) return releaser.status();
    std::unique_ptr<RowPipeline> pipeline(
        new RowPipeline(plan, decision, std::move(releaser).value(), format, pageBytes, std::move(input)));
    try {
        pipeline->reader_ = std::thread([p = pipeline.get()] { p->read(); });
        pipeline->releaserThread_ = std::thread([p = pipeline.get()] { p->release(); });
    } catch (const std::system_error& e) {
        return unavailable(std::string("cannot start the release's threads: ") + e.what());  // the destructor joins
    }
    return pipeline;
}

RowPipeline::RowPipeline(const ReleasePlan& plan, const PrivacyDecision& decision, RowReleaser releaser,
                         ExtractFormat format, size_t pageBytes, Input input)
    : plan_(plan), decision_(decision), releaser_(std::move(releaser)), encoder_(format, releaser_->outputSchema()),
      pageBytes_(pageBytes == 0 ? 1 : pageBytes), input_(std::move(input)) {
    std::vector<std::string> qiNames;
    for (size_t column : plan_.quasiIdentifiers()) qiNames.push_back(plan_.inputColumns()[column].name);
    std::vector<anon::FinalCheckSensitive> sensitive;
    for (size_t s = 0; s < plan_.sensitiveAttributes().size(); ++s) {
        const size_t column = plan_.sensitiveAttributes()[s];
        anon::FinalCheckSensitive in;
        in.name = plan_.inputColumns()[column].name;
        in.distance =
            plan_.orderedDistance(column) ? anon::TClosenessDistance::Ordered : anon::TClosenessDistance::Equal;
        if (s < decision_.sensitiveTotals.size())
            in.inputDistribution.insert(decision_.sensitiveTotals[s].begin(), decision_.sensitiveTotals[s].end());
        sensitive.push_back(std::move(in));
    }
    check_.emplace(plan_.models(), std::move(qiNames), std::move(sensitive), decision_.records);
    if (const uint64_t counters = decision_.denseClassCounters(); counters > 0 && plan_.sensitiveAttributes().empty()) {
        for (uint64_t radix : decision_.classRadix()) denseRadix_.push_back(static_cast<uint32_t>(radix));
        denseEmitted_.assign(counters, 0);
    }
}

RowPipeline::~RowPipeline() { stop(); }

void RowPipeline::stop() noexcept {
    if (!reader_.joinable() && !releaserThread_.joinable()) return;
    inputs_.close();
    outputs_.close();
    // A reader blocked in the input returns once the input is cancelled.
    if (reading_.load() && input_.cancel) input_.cancel();
    if (reader_.joinable()) reader_.join();
    if (releaserThread_.joinable()) releaserThread_.join();
}

Result<std::optional<std::string>> RowPipeline::nextPage() {
    if (!failure_) return failure_;
    if (finished_) return std::optional<std::string>();
    if (!releaserThread_.joinable()) return failedPrecondition("the release was stopped");
    std::string page;
    page.reserve(pageBytes_ + pageBytes_ / 4);
    if (!preambleSent_) {
        encoder_.appendPreamble(page);
        preambleSent_ = true;
    }
    while (page.size() < pageBytes_) {
        std::optional<Step> taken = outputs_.take();
        if (!taken) {
            failure_ = internalError("the release's threads stopped early");
            stop();
            return failure_;
        }
        Step& item = *taken;
        if (!item.status) {
            failure_ = item.status;
            stop();
            return failure_;
        }
        if (!item.batch) {
            finished_ = true;
            stop();  // both have returned after the end; the emitted counts are complete
            final_ = runFinalCheck();
            break;
        }
        rowsRead_ += item.batch->rows();
        rowsReleased_ += encoder_.appendRows(*item.batch, page);
    }
    if (page.empty() && finished_) return std::optional<std::string>();
    return std::optional<std::string>(std::move(page));
}

// Exceptions never leave a stage thread: they become the step's error.
template <typename F> static auto guarded(const char* during, F&& f) noexcept -> decltype(f()) {
    try {
        return f();
    } catch (const std::exception& e) {
        return {internalError(std::string(during) + ": " + e.what()), std::nullopt};
    } catch (...) { return {internalError(std::string(during) + ": unknown error"), std::nullopt}; }
}

void RowPipeline::read() noexcept {
    for (;;) {
        Step step = guarded("reading rows", [&] {
            Step s;
            auto batch = input_.next();
            if (!batch) s.status = batch.status();
            else s.batch = std::move(*batch);
            return s;
        });
        const bool last = step.last();
        if (last) reading_.store(false);
        if (!inputs_.push(std::move(step)) || last) break;
    }
    reading_.store(false);
}

RowPipeline::Step RowPipeline::releaseOne(Step input) {
    if (input.last()) {
        if (input.status) input.status = releaser_->finish();  // every counted row, and no other
        return input;
    }
    auto released = releaser_->release(*input.batch);
    if (!released) return {released.status(), std::nullopt};
    countEmitted(*released, *input.batch);
    return {Status::ok(), std::move(released).value()};
}

void RowPipeline::release() noexcept {
    for (;;) {
        std::optional<Step> input = inputs_.take();
        if (!input) return;  // stopped
        Step step = guarded("releasing rows", [&] { return releaseOne(std::move(*input)); });
        const bool last = step.last();
        if (!outputs_.push(std::move(step)) || last) return;
    }
}

void RowPipeline::countEmitted(const anon::Batch& released, const anon::Batch& input) {
    const size_t q = decision_.classWidth();
    const auto& sensitive = plan_.sensitiveAttributes();
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

Result<anon::FinalCheckReport> RowPipeline::runFinalCheck() {
    const size_t q = decision_.classWidth();
    const size_t sensitive = plan_.sensitiveAttributes().size();
    std::vector<std::string_view> labels, values(sensitive);
    std::vector<uint32_t> codes(q);
    for (uint64_t index = 0; index < denseEmitted_.size(); ++index) {
        if (denseEmitted_[index] == 0) continue;
        uint64_t rest = index;
        for (size_t d = q; d-- > 0;) {
            codes[d] = static_cast<uint32_t>(rest % denseRadix_[d]);
            rest /= denseRadix_[d];
        }
        decision_.classLabels(codes.data(), labels);
        if (Status s = check_->addRows(labels, values, denseEmitted_[index]); !s) return s;
    }
    anon::heap::release(denseEmitted_);
    for (const auto& [key, count] : emitted_) {
        std::string_view rest(key);
        if (q > 0) std::memcpy(codes.data(), rest.data(), q * sizeof(uint32_t));
        rest.remove_prefix(q * sizeof(uint32_t));
        decision_.classLabels(codes.data(), labels);
        for (size_t s = 0; s < sensitive; ++s) {
            uint32_t length = 0;
            std::memcpy(&length, rest.data(), sizeof length);
            values[s] = rest.substr(sizeof length, length);
            rest.remove_prefix(sizeof length + length);
        }
        if (Status s = check_->addRows(labels, values, count); !s) return s;
    }
    anon::heap::release(emitted_);
    return check_->finish();
}

}  // namespace custodian::release
