// `custodian anonymize --policy P.json --in X.csv --out Y.csv [--report R.json]`: offline
// anonymization of a CSV file with the engine and policy language the gateway uses.
//
// Both algorithms run exactly the gateway's release pipeline
// (gateway/release/plan.hpp) with the CSV file in place of PostgreSQL: a first pass over the file
// plays the part of the GROUP BY (memory proportional to distinct quasi-identifier combinations,
// not rows), the search runs on that frequency table, and a second pass streams the rows through
// the transforms, the chosen generalization and the suppression into the output. Mondrian keeps the
// quasi-identifier columns in memory, encoded as integers, as it must.
//
// Both paths re-check the declared models on what was written (separate code from the search) and
// leave no output file behind when anything fails: the output is written to a temporary file and
// renamed only at the end.

#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <set>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "anonymizer/csv.hpp"
#include "anonymizer/csv_group_by.hpp"
#include "anonymizer/engine.hpp"
#include "anonymizer/table.hpp"
#include "anonymizer/transform.hpp"
#include "gateway/cli/args.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/crypto/keyed_transform_key.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/crypto/secure_file.hpp"
#include "gateway/release/bounded_queue.hpp"
#include "gateway/release/encoder.hpp"
#include "gateway/release/pipeline.hpp"
#include "gateway/release/plan.hpp"
#include "gateway/release/report.hpp"
#include "gateway/api/extract_routes.hpp"
#include "policies/engine_config.hpp"
#include "policies/policy.hpp"

namespace custodian::cli {
namespace {

using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

const std::vector<OptionSpec>& anonymizeOptions() {
    static const std::vector<OptionSpec> specs = {
        {"policy", true, true, "the release policy (JSON, the gateway's policy language)", "FILE"},
        {"in", true, true, "input CSV (delimiter from the policy's input.delimiter, default ',')", "FILE"},
        {"out", true, true, "output file, written atomically (a regular file or a new path, not a device or FIFO)",
         "FILE"},
        {"report", true, false, "write a JSON report: levels, achieved k/l/t, suppression, metrics, risk", "FILE"},
        {"format", true, false, "output format: csv (default) or ndjson", "FORMAT"},
        {"key", true, false,
         "master key file for keyed transforms (pseudonymize, date_shift): one line "
         "custodian-master-key:<base64 of 32 bytes>",
         "FILE"},
        {"recipient", true, false, "recipient name that keys pseudonyms and date shifts (default: offline)", "NAME"},
        {"policy-name", true, false,
         "the policy's name, which keys pseudonyms and date shifts with the dataset and recipient "
         "(required with --key, unless --key-derivation 1)",
         "NAME"},
        {"key-derivation", true, false,
         "2 (default): keys per dataset, policy and recipient; 1: per dataset and recipient, as releases "
         "made before per-policy keys",
         "N"},
    };
    return specs;
}

std::string usage() {
    return usageText("anonymize --policy P.json --in X.csv --out Y.csv [--report R.json]",
                     "Anonymizes a CSV file offline with the same engine and policy language as the gateway:\n"
                     "column transforms, the optimal full-domain generalization (or Mondrian) meeting the\n"
                     "policy's k-anonymity / l-diversity / t-closeness within its suppression limit, and a\n"
                     "final re-check of the models on the rows written. Exit status: 0 released, 1 bad\n"
                     "input or policy, 3 the models cannot be met (nothing written).",
                     anonymizeOptions());
}

// Output written to "<out>.tmp-<pid>" and renamed over <out> by commit(); removed otherwise.
class AtomicOutput {
public:
    explicit AtomicOutput(std::string path)
        : path_(std::move(path)), temp_(path_ + ".tmp-" + std::to_string(::getpid())) {}
    ~AtomicOutput() {
        if (!committed_) {
            out_.close();
            std::error_code ignored;
            std::filesystem::remove(temp_, ignored);
        }
    }
    Status open() {
        if (Status s = crypto::checkReplaceableOutput(path_); !s) return s;
        out_.open(temp_, std::ios::binary | std::ios::trunc);
        if (!out_) return invalidArgument("cannot write " + temp_);
        return Status::ok();
    }
    std::ofstream& stream() { return out_; }
    Status commit() {
        out_.flush();
        out_.close();
        if (!out_) return internalError("writing " + path_ + " failed");
        std::error_code ec;
        std::filesystem::rename(temp_, path_, ec);
        if (ec) return internalError("cannot rename " + temp_ + " to " + path_ + ": " + ec.message());
        committed_ = true;
        return Status::ok();
    }

private:
    std::string path_;
    std::string temp_;
    std::ofstream out_;
    bool committed_ = false;
};

Status writeTextFile(const std::string& path, const std::string& text) {
    AtomicOutput out(path);
    if (Status s = out.open(); !s) return s;
    out.stream() << text;
    return out.commit();
}

double peakRssMiB() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

void writeOptional(JsonWriter& w, const char* name, const std::optional<double>& v) {
    w.Key(name);
    if (v) w.Double(*v);
    else w.Null();
}

void writeFinalCheck(JsonWriter& w, const anon::FinalCheckReport& f) {
    w.Key("final_check");
    w.StartObject();
    w.Key("released"), w.Uint64(f.releasedRecords);
    w.Key("suppressed"), w.Uint64(f.suppressedRecords);
    w.Key("classes"), w.Uint64(f.classes);
    w.Key("k"), w.Uint64(f.minClassSize);
    writeOptional(w, "distinct_l", f.minDistinctL);
    writeOptional(w, "entropy_l", f.minEntropyL);
    writeOptional(w, "t", f.maxT);
    w.EndObject();
}

struct Inputs {
    std::shared_ptr<const policies::Policy> policy;
    std::string in;
    anon::CsvDialect dialect;
    std::optional<anon::MasterKey> key;
    anon::KeyScope keyScope;
    release::ExtractFormat format = release::ExtractFormat::Csv;
};

// Output is written in pages of about this many bytes.
constexpr size_t kOutputPageBytes = 1u << 20;

// Opens the input CSV as the columns of `schema`, by header name.
Result<anon::CsvTableReader> openInput(const Inputs& in, const anon::SchemaPtr& schema) {
    return anon::CsvTableReader::openFile(in.in, in.dialect, schema);
}

// Runs the whole file through `consume(batch)`.
template <typename Consume> Status forEachBatch(const Inputs& in, const anon::SchemaPtr& schema, Consume&& consume) {
    auto reader = openInput(in, schema);
    if (!reader) return reader.status().withContext(in.in);
    while (true) {
        auto batch = reader->next();
        if (!batch) return batch.status().withContext(in.in);
        if (!batch->has_value()) return Status::ok();
        if (Status s = consume(**batch); !s) return s;
    }
}

int failWith(const Status& s, int code = 1) {
    std::fprintf(stderr, "custodian anonymize: %s\n", s.message().c_str());
    return code;
}

// Pass 2 of both algorithms: the file streamed again through the gateway's RowPipeline (column
// transforms, the decision's generalization or partitions, suppression, encoding, the final check
// of what was written) into `outPath`, committed only when everything held.
struct Written {
    uint64_t released = 0, suppressed = 0;
    anon::FinalCheckReport check;
};

Result<Written> writeRelease(const Inputs& in, const release::ReleasePlan& plan,
                             const release::PrivacyDecision& decision, const std::string& outPath) {
    release::ReleaseContext context;
    context.keyScope = in.keyScope;
    context.keyedTransformKey = in.key ? &*in.key : nullptr;
    auto reader = openInput(in, plan.inputSchema());
    if (!reader) return reader.status().withContext(in.in);
    release::RowPipeline::Input input{[&reader, &in]() -> Result<std::optional<anon::Batch>> {
                                          auto batch = reader->next();
                                          if (!batch) return batch.status().withContext(in.in);
                                          return batch;
                                      },
                                      nullptr};
    auto rows = release::RowPipeline::start(plan, decision, context, in.format, kOutputPageBytes, std::move(input));
    if (!rows) return rows.status();

    AtomicOutput out(outPath);
    if (Status s = out.open(); !s) return s;
    for (;;) {
        auto page = (*rows)->nextPage();
        if (!page) return page.status();
        if (!*page) break;
        out.stream().write((*page)->data(), static_cast<std::streamsize>((*page)->size()));
    }
    const auto& final = (*rows)->finalCheck();
    if (!final) return final.status().withContext("final check failed, nothing written");
    if (Status s = out.commit(); !s) return s;
    return Written{(*rows)->rowsReleased(), (*rows)->rowsSuppressed(), *final};
}

// Prints why the models cannot be met (exit status 3: nothing written).
int unreachable(const release::ModelUnreachable& u) {
    auto best = json::canonicalJson(u.bestAchievable);
    std::fprintf(stderr, "custodian anonymize: %s (requirement: %s; best achievable: %s)\n", u.message.c_str(),
                 u.requirement.c_str(), best ? best->c_str() : "{}");
    return 3;
}

struct Released {
    release::FrequencySink::Finalized privacy;
    Written written;
};

// After pass 1: the search (or partitioning), then pass 2. 0 when released (`out` filled), else the
// exit status (3: the models cannot be met, nothing written).
int finishRelease(const Inputs& in, const release::ReleasePlan& plan, release::FrequencySink&& sink,
                  const std::string& outPath, Released& out) {
    auto finalized = std::move(sink).finalize();
    if (!finalized) return failWith(finalized.status());
    if (finalized->unreachable) return unreachable(*finalized->unreachable);
    out.privacy = std::move(finalized).value();
    auto written = writeRelease(in, plan, *out.privacy.decision, outPath);
    if (!written) return failWith(written.status());
    out.written = std::move(written).value();
    return 0;
}

// The --report file: what the release did, the report the policy preview gives for the same data
// (release/report.hpp: risk and information loss before and after, the generalization or the
// partitioning), and the final check of the rows written. docs/anonymize.md lists the members.
Status writeReport(const Inputs& in, const release::ReleasePlan& plan, const Released& done, double seconds,
                   const std::string& path) {
    auto report = release::reportRelease(plan, done.privacy);
    if (!report) return report.status();
    const release::PrivacyDecision& decision = *done.privacy.decision;
    rapidjson::StringBuffer text;
    JsonWriter w(text);
    w.StartObject();
    w.Key("policy_hash"), w.String(in.policy->contentHash().c_str());
    if (plan.localRecoding()) {
        w.Key("algorithm"),
            w.String(in.policy->model().mondrianMode == policies::MondrianMode::Relaxed ? "mondrian-relaxed"
                                                                                        : "mondrian-strict");
    } else {
        w.Key("algorithm"), w.String("optimal");
        w.Key("metric"), w.String(policies::policyMetricName(in.policy->model().metric));
    }
    w.Key("records"), w.Uint64(report->records);
    w.Key("released"), w.Uint64(done.written.released);
    w.Key("suppressed"), w.Uint64(done.written.suppressed);
    w.Key("achieved");
    w.StartObject();
    w.Key("k"), w.Uint64(decision.stats.achievedK);
    writeOptional(w, "distinct_l", decision.stats.distinctL);
    writeOptional(w, "entropy_l", decision.stats.entropyL);
    writeOptional(w, "t", decision.stats.achievedT);
    w.EndObject();
    release::writeReportMembers(w, *report);
    writeFinalCheck(w, done.written.check);
    w.Key("total_seconds"), w.Double(seconds);
    w.EndObject();
    return writeTextFile(path, std::string(text.GetString(), text.GetSize()) + "\n");
}

// Global recoding through the gateway's release pipeline.
// Pass 1's reading: the file is parsed on a second thread, so parsing a batch overlaps consuming
// the one before. `consume` sees every batch in order; the first failure (reading or consuming) stops
// both and is returned.
Status consumeParsed(anon::CsvReader& reader, const std::string& path,
                     const std::function<Status(const anon::CsvRecords&)>& consume) {
    struct Parsed {
        Status status;
        std::optional<anon::CsvRecords> records;  // unset at the end
    };
    release::BoundedQueue<Parsed> parsed(2);
    std::thread parsing([&parsed, &reader, &path] {
        for (;;) {
            Parsed step;
            try {
                step.records.emplace();
                auto n = reader.read(*step.records);
                if (!n) step.status = n.status().withContext(path);
                if (!n || *n == 0) step.records.reset();
            } catch (const std::exception& e) {
                step = {internalError(std::string("reading ") + path + ": " + e.what()), std::nullopt};
            }
            const bool last = !step.records;
            if (!parsed.push(std::move(step)) || last) return;
        }
    });
    Status consumed;
    try {  // nothing may skip the join below
        while (auto step = parsed.take()) {
            if (!step->status) consumed = step->status;
            else if (step->records) consumed = consume(*step->records);
            if (!consumed || !step->records) break;
        }
    } catch (const std::exception& e) { consumed = internalError(std::string("reading ") + path + ": " + e.what()); }
    parsed.close();
    parsing.join();
    return consumed;
}

int runGlobal(const Inputs& in, const std::string& outPath, const std::optional<std::string>& reportPath) {
    const auto started = std::chrono::steady_clock::now();
    auto plan = release::ReleasePlan::make(in.policy);
    if (!plan) return failWith(plan.status());
    const anon::SchemaPtr& schema = plan->inputSchema();

    // Pass 1: the frequency table (and the domains of columns generalized at a fixed level).
    release::FrequencySink sink(*plan);
    {
        auto reader = anon::CsvReader::openFile(in.in, in.dialect);
        if (!reader) return failWith(reader.status().withContext(in.in));
        auto sourceColumns = anon::csvSourceColumns(*reader, *schema);
        if (!sourceColumns) return failWith(sourceColumns.status().withContext(in.in));
        anon::CsvGroupCounter groups(schema, std::move(sourceColumns).value(), plan->groupColumns(),
                                     plan->builtGeneralizedColumns());
        const Status counted = consumeParsed(
            *reader, in.in, [&](const anon::CsvRecords& records) { return groups.add(records).withContext(in.in); });
        if (!counted) return failWith(counted);
        Status fed = groups.forEachGroup([&](std::span<const std::optional<std::string_view>> values, uint64_t count) {
            return sink.add(values, count);
        });
        if (!fed) return failWith(fed);
        for (size_t i = 0; i < plan->builtGeneralizedColumns().size(); ++i)
            for (std::string_view v : groups.domain(i))
                if (Status s = sink.addFixedDomainValue(plan->builtGeneralizedColumns()[i], v); !s) return failWith(s);
    }
    Released done;
    if (int status = finishRelease(in, *plan, std::move(sink), outPath, done); status != 0) return status;
    const auto& finalized = done.privacy;
    const release::PrivacyDecision& decision = *finalized.decision;
    const uint64_t released = done.written.released, suppressed = done.written.suppressed;
    const anon::FinalCheckReport* final = &done.written.check;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    std::fprintf(stderr, "custodian anonymize: %llu rows released, %llu suppressed, k = %llu, levels [",
                 static_cast<unsigned long long>(released), static_cast<unsigned long long>(suppressed),
                 static_cast<unsigned long long>(final->minClassSize));
    for (size_t i = 0; i < decision.levels.size(); ++i) std::fprintf(stderr, "%s%d", i ? ", " : "", decision.levels[i]);
    std::fprintf(stderr, "], search %.1f ms, total %.2f s, peak RSS %.0f MiB\n", decision.searchSeconds * 1e3, seconds,
                 peakRssMiB());

    if (!reportPath) return 0;
    if (Status st = writeReport(in, *plan, done, seconds, *reportPath); !st) return failWith(st);
    return 0;
}

// Mondrian (local recoding) through the same pipeline: pass 1 hands every row's quasi-identifiers
// (and the sensitive attributes the models need) to the sink in file order, which keeps them
// dictionary-encoded and partitions them; pass 2 streams the file again, and the pipeline checks
// each row against what was partitioned at its position.
int runLocal(const Inputs& in, const std::string& outPath, const std::optional<std::string>& reportPath) {
    const auto started = std::chrono::steady_clock::now();
    auto plan = release::ReleasePlan::make(in.policy);
    if (!plan) return failWith(plan.status());
    const anon::SchemaPtr& schema = plan->inputSchema();
    const std::vector<size_t> encoded = plan->groupColumns();
    const std::vector<size_t>& fixed = plan->builtGeneralizedColumns();

    // Pass 1: every row's encoded values, in order (and the domains of columns generalized at a
    // fixed level).
    release::FrequencySink sink(*plan);
    {
        auto reader = anon::CsvReader::openFile(in.in, in.dialect);
        if (!reader) return failWith(reader.status().withContext(in.in));
        auto sourceColumns = anon::csvSourceColumns(*reader, *schema);
        if (!sourceColumns) return failWith(sourceColumns.status().withContext(in.in));
        std::vector<anon::CsvColumnDictionary> dictionaries;
        for (size_t column : encoded) dictionaries.emplace_back((*schema)[column], (*sourceColumns)[column]);
        for (size_t column : fixed) dictionaries.emplace_back((*schema)[column], (*sourceColumns)[column]);
        // Per encoded column: the sink's id of each dictionary code (UINT32_MAX until first seen).
        std::vector<std::vector<uint32_t>> sinkIds(encoded.size());
        std::vector<uint32_t> ids(encoded.size());
        const Status read = consumeParsed(*reader, in.in, [&](const anon::CsvRecords& batch) -> Status {
            if (sink.records() == 0 && batch.rows() > 0 && batch.columns() > 0) {
                // Room for the whole file, estimated from the first batch's bytes per row (field
                // bytes and one delimiter or LF per field, a lower bound), plus a tenth: rows the
                // estimate misses would make the columns grow by copying. Pages never touched cost
                // no memory.
                const auto first = batch.field(0, 0), last = batch.field(batch.rows() - 1, batch.columns() - 1);
                const size_t bytesPerRow =
                    (static_cast<size_t>(last.data() + last.size() - first.data()) + batch.rows() * batch.columns()) /
                    batch.rows();
                std::error_code ec;
                const auto fileBytes = std::filesystem::file_size(in.in, ec);
                if (!ec && bytesPerRow > 0)
                    sink.reserveLocalRows(static_cast<size_t>(fileBytes / bytesPerRow) * 11 / 10 + batch.rows());
            }
            for (size_t row = 0; row < batch.rows(); ++row) {
                for (size_t e = 0; e < dictionaries.size(); ++e) {
                    auto code = dictionaries[e].code(batch, row);
                    if (!code) return code.status().withContext(in.in);
                    if (e >= encoded.size()) continue;  // a fixed-level column: its domain only
                    if (*code == anon::CsvColumnDictionary::kNull)
                        return invalidArgument(in.in + ": line " + std::to_string(batch.line(row)) + ": column '" +
                                               (*schema)[encoded[e]].name +
                                               "' is empty; Mondrian needs a value in every quasi-identifier "
                                               "and sensitive column");
                    auto& known = sinkIds[e];
                    if (*code >= known.size()) known.resize(*code + 1, UINT32_MAX);
                    if (known[*code] == UINT32_MAX) known[*code] = sink.localValueId(e, dictionaries[e].value(*code));
                    ids[e] = known[*code];
                }
                sink.addLocalRow(ids);
            }
            return Status::ok();
        });
        if (!read) return failWith(read);
        for (size_t f = 0; f < fixed.size(); ++f) {
            const auto& dictionary = dictionaries[encoded.size() + f];
            for (uint32_t code = 0; code < dictionary.size(); ++code)
                if (Status s = sink.addFixedDomainValue(fixed[f], dictionary.value(code)); !s) return failWith(s);
        }
    }
    Released done;
    if (int status = finishRelease(in, *plan, std::move(sink), outPath, done); status != 0) return status;
    const release::PrivacyDecision& decision = *done.privacy.decision;
    const Written* written = &done.written;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const size_t classes = decision.local ? decision.local->partitions.partitionSizes.size() : 0;
    std::fprintf(stderr,
                 "custodian anonymize: %llu rows released in %zu classes, k = %llu, NCP %.4f, Mondrian %.1f ms, "
                 "total %.2f s, peak RSS %.0f MiB\n",
                 static_cast<unsigned long long>(written->released), classes,
                 static_cast<unsigned long long>(written->check.minClassSize), decision.stats.metrics.loss,
                 decision.searchSeconds * 1e3, seconds, peakRssMiB());

    if (!reportPath) return 0;
    if (Status st = writeReport(in, *plan, done, seconds, *reportPath); !st) return failWith(st);
    return 0;
}

}  // namespace

int runAnonymize(int argc, char** argv) {
    auto args = parseArgs(argc, argv, anonymizeOptions());
    if (!args) {
        std::fprintf(stderr, "custodian anonymize: %s\n\n%s", args.status().message().c_str(), usage().c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::printf("%s", usage().c_str());
        return 0;
    }

    Inputs in;
    auto loaded = policies::loadPolicyFile(*args->get("policy"));
    if (!loaded.ok()) {
        std::fprintf(stderr, "custodian anonymize: %s is not a valid policy:\n", args->get("policy")->c_str());
        for (const auto& e : loaded.errors)
            std::fprintf(stderr, "  %s: %s\n", e.pointer.empty() ? "(document)" : e.pointer.c_str(), e.message.c_str());
        return 1;
    }
    in.policy = loaded.policy;
    in.in = *args->get("in");
    in.dialect.delimiter = in.policy->model().inputDelimiter;
    in.keyScope.dataset = in.policy->model().dataset;
    in.keyScope.recipient = args->getOr("recipient", "offline");
    if (auto derivation = args->get("key-derivation")) {
        if (*derivation == "1") in.keyScope.derivation = anon::KeyDerivation::DatasetRecipient;
        else if (*derivation != "2")
            return failWith(invalidArgument("--key-derivation must be 1 or 2, not '" + *derivation + "'"), 2);
    }
    if (auto name = args->get("policy-name")) {
        if (in.keyScope.derivation == anon::KeyDerivation::DatasetRecipient)
            return failWith(invalidArgument("--policy-name does not key derivation 1 (--key-derivation 1)"), 2);
        in.keyScope.policy = *name;
        if (in.keyScope.policy.empty()) return failWith(invalidArgument("--policy-name must not be empty"), 2);
    }
    if (auto f = args->get("format")) {
        auto parsed = release::parseFormat(*f);
        if (!parsed) return failWith(invalidArgument("--format must be csv or ndjson, not '" + *f + "'"), 2);
        in.format = *parsed;
    }
    if (auto keyFile = args->get("key")) {
        if (in.keyScope.derivation == anon::KeyDerivation::DatasetPolicyRecipient && in.keyScope.policy.empty())
            return failWith(invalidArgument("--key needs --policy-name NAME: pseudonyms and date shifts are keyed per "
                                            "dataset, policy and recipient (or --key-derivation 1 for releases made "
                                            "before per-policy keys)"),
                            2);
        // The same derivation as the gateway's releases, so one master key gives the same pseudonyms.
        auto master = auth::TokenHasher::loadOrCreate(*keyFile);
        if (!master) return failWith(master.status());
        auto key = crypto::keyedTransformKey(*master);
        if (!key) return failWith(key.status());
        in.key.emplace(std::move(key).value());
    }

    if (in.policy->model().algorithm == policies::SearchAlgorithm::Mondrian)
        return runLocal(in, *args->get("out"), args->get("report"));
    return runGlobal(in, *args->get("out"), args->get("report"));
}

}  // namespace custodian::cli
