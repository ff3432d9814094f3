// `custodian anonymize --policy P.json --in X.csv --out Y.csv [--report R.json]`: offline
// anonymization of a CSV file with the engine and policy language the gateway uses.
//
// Global recoding (algorithm "optimal") runs exactly the gateway's release pipeline
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
#include "gateway/crypto/keys.hpp"
#include "gateway/release/bounded_queue.hpp"
#include "gateway/release/encoder.hpp"
#include "gateway/release/pipeline.hpp"
#include "gateway/release/plan.hpp"
#include "gateway/release/routes.hpp"
#include "policies/engine_config.hpp"
#include "policies/policy.hpp"

namespace custodian::cli {
namespace {

using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

const std::vector<OptionSpec>& anonymizeOptions() {
    static const std::vector<OptionSpec> specs = {
        {"policy", true, true, "the release policy (JSON, the gateway's policy language)", "FILE"},
        {"in", true, true, "input CSV (delimiter from the policy's input.delimiter, default ',')", "FILE"},
        {"out", true, true, "output file, written atomically", "FILE"},
        {"report", true, false, "write a JSON report: levels, achieved k/l/t, suppression, metrics, risk",
         "FILE"},
        {"format", true, false, "output format: csv (default) or ndjson", "FORMAT"},
        {"key", true, false,
         "master key file for keyed transforms (pseudonymize, date_shift): one line "
         "custodian-master-key:<base64 of 32 bytes>",
         "FILE"},
        {"recipient", true, false, "recipient name that keys pseudonyms and date shifts (default: offline)",
         "NAME"},
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

void writeRisk(JsonWriter& w, const char* name, const anon::RiskSummary& r) {
    w.Key(name);
    w.StartObject();
    w.Key("records"), w.Uint64(r.records);
    w.Key("classes"), w.Uint64(r.classes);
    w.Key("prosecutor_max"), w.Double(r.prosecutorMax);
    w.Key("prosecutor_average"), w.Double(r.prosecutorAverage);
    w.Key("threshold"), w.Uint64(r.threshold);
    w.Key("share_below_threshold"), w.Double(r.shareBelowThreshold);
    w.Key("sample_uniques"), w.Uint64(r.sampleUniques);
    w.EndObject();
}

void writeOptional(JsonWriter& w, const char* name, const std::optional<double>& v) {
    w.Key(name);
    if (v) w.Double(*v);
    else w.Null();
}

void writeMetrics(JsonWriter& w, const anon::MetricValues& m) {
    w.Key("metrics");
    w.StartObject();
    for (anon::Metric metric : {anon::Metric::Discernibility, anon::Metric::AverageClassSize,
                                anon::Metric::NonUniformEntropy, anon::Metric::Loss, anon::Metric::Height}) {
        w.Key(policies::policyMetricName(metric));
        w.Double(m.get(metric));
    }
    w.EndObject();
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
    std::string recipient;
    release::ExtractFormat format = release::ExtractFormat::Csv;
};

// Output is written in pages of about this many bytes.
constexpr size_t kOutputPageBytes = 1u << 20;

// Opens the input CSV as the columns of `schema`, by header name.
Result<anon::CsvTableReader> openInput(const Inputs& in, const anon::SchemaPtr& schema) {
    return anon::CsvTableReader::openFile(in.in, in.dialect, schema);
}

// Runs the whole file through `consume(batch)`.
template <typename Consume>
Status forEachBatch(const Inputs& in, const anon::SchemaPtr& schema, Consume&& consume) {
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

// Global recoding through the gateway's release pipeline.
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
        // The file is parsed on a second thread: parsing a batch overlaps counting the one before.
        struct Parsed {
            Status status;
            std::optional<anon::CsvRecords> records;  // unset at the end
        };
        release::BoundedQueue<Parsed> parsed(2);
        std::thread parsing([&parsed, &reader, &in] {
            for (;;) {
                Parsed step;
                try {
                    step.records.emplace();
                    auto n = reader->read(*step.records);
                    if (!n) step.status = n.status().withContext(in.in);
                    if (!n || *n == 0) step.records.reset();
                } catch (const std::exception& e) {
                    step = {internalError(std::string("reading ") + in.in + ": " + e.what()), std::nullopt};
                }
                const bool last = !step.records;
                if (!parsed.push(std::move(step)) || last) return;
            }
        });
        Status counted;
        try {  // nothing may skip the join below
            while (auto step = parsed.take()) {
                if (!step->status) counted = step->status;
                else if (step->records) counted = groups.add(*step->records).withContext(in.in);
                if (!counted || !step->records) break;
            }
        } catch (const std::exception& e) {
            counted = internalError(std::string("counting ") + in.in + ": " + e.what());
        }
        parsed.close();
        parsing.join();
        if (!counted) return failWith(counted);
        Status fed = groups.forEachGroup([&](std::span<const std::optional<std::string_view>> values, uint64_t count) {
            return sink.add(values, count);
        });
        if (!fed) return failWith(fed);
        for (size_t i = 0; i < plan->builtGeneralizedColumns().size(); ++i)
            for (std::string_view v : groups.domain(i))
                if (Status s = sink.addFixedDomainValue(plan->builtGeneralizedColumns()[i], v); !s) return failWith(s);
    }
    const uint64_t records = sink.records();

    auto finalized = std::move(sink).finalize();
    if (!finalized) return failWith(finalized.status());
    if (finalized->unreachable) {
        std::fprintf(stderr, "custodian anonymize: %s (requirement: %s; best achievable: %s)\n",
                     finalized->unreachable->message.c_str(), finalized->unreachable->requirement.c_str(),
                     crypto::canonicalJson(finalized->unreachable->bestAchievable).isOk()
                         ? crypto::canonicalJson(finalized->unreachable->bestAchievable).value().c_str()
                         : "{}");
        return 3;
    }
    const release::PrivacyDecision& decision = *finalized->decision;

    // Pass 2: stream the rows through transforms, generalization and suppression.
    release::ReleaseContext context;
    context.dataset = in.policy->model().dataset;
    context.recipient = in.recipient;
    context.keyedTransformKey = in.key ? &*in.key : nullptr;
    auto reader = openInput(in, schema);
    if (!reader) return failWith(reader.status().withContext(in.in));
    release::RowPipeline::Input input{[&reader, &in]() -> Result<std::optional<anon::Batch>> {
                                          auto batch = reader->next();
                                          if (!batch) return batch.status().withContext(in.in);
                                          return batch;
                                      },
                                      nullptr};
    auto rows = release::RowPipeline::start(*plan, decision, context, in.format, kOutputPageBytes, std::move(input));
    if (!rows) return failWith(rows.status());

    AtomicOutput out(outPath);
    if (Status s = out.open(); !s) return failWith(s);
    for (;;) {
        auto page = (*rows)->nextPage();
        if (!page) return failWith(page.status());
        if (!*page) break;
        out.stream().write((*page)->data(), static_cast<std::streamsize>((*page)->size()));
    }
    const auto& final = (*rows)->finalCheck();
    if (!final) return failWith(final.status().withContext("final check failed, nothing written"));
    const uint64_t released = (*rows)->rowsReleased(), suppressed = (*rows)->rowsSuppressed();
    if (released + suppressed != records)
        return failWith(internalError("the input changed between the two passes (" + std::to_string(records) +
                                      " then " + std::to_string(released + suppressed) + " rows)"));
    if (Status s = out.commit(); !s) return failWith(s);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    std::fprintf(stderr,
                 "custodian anonymize: %llu rows released, %llu suppressed, k = %llu, levels [",
                 static_cast<unsigned long long>(released), static_cast<unsigned long long>(suppressed),
                 static_cast<unsigned long long>(final->minClassSize));
    for (size_t i = 0; i < decision.levels.size(); ++i) std::fprintf(stderr, "%s%d", i ? ", " : "", decision.levels[i]);
    std::fprintf(stderr, "], search %.1f ms, total %.2f s, peak RSS %.0f MiB\n", decision.searchSeconds * 1e3,
                 seconds, peakRssMiB());

    if (!reportPath) return 0;
    rapidjson::StringBuffer text;
    JsonWriter w(text);
    w.StartObject();
    w.Key("policy_hash"), w.String(in.policy->contentHash().c_str());
    w.Key("algorithm"), w.String("optimal");
    w.Key("metric"), w.String(policies::policyMetricName(in.policy->model().metric));
    w.Key("records"), w.Uint64(records);
    w.Key("released"), w.Uint64(released);
    w.Key("suppressed"), w.Uint64(suppressed);
    w.Key("quasi_identifiers");
    w.StartArray();
    for (size_t i = 0; i < plan->quasiIdentifiers().size(); ++i) {
        w.StartObject();
        w.Key("column"), w.String(plan->inputColumns()[plan->quasiIdentifiers()[i]].name.c_str());
        w.Key("level"), w.Int(decision.levels[i]);
        w.Key("levels"), w.Int(decision.hierarchies[i]->levels());
        w.EndObject();
    }
    w.EndArray();
    w.Key("achieved");
    w.StartObject();
    w.Key("k"), w.Uint64(decision.stats.achievedK);
    writeOptional(w, "distinct_l", decision.stats.distinctL);
    writeOptional(w, "entropy_l", decision.stats.entropyL);
    writeOptional(w, "t", decision.stats.achievedT);
    w.EndObject();
    writeMetrics(w, decision.stats.metrics);
    std::vector<uint64_t> before, after;
    if (finalized->table) {
        for (size_t c = 0; c < finalized->table->size(); ++c) before.push_back(finalized->table->count(c));
    }
    for (size_t c = 0; c < decision.stats.classSizes.size(); ++c)
        if (!decision.stats.classSuppressed[c]) after.push_back(decision.stats.classSizes[c]);
    const uint64_t threshold = plan->models().k;
    w.Key("risk");
    w.StartObject();
    writeRisk(w, "before", anon::prosecutorRisk(before, threshold));
    writeRisk(w, "after", anon::prosecutorRisk(after, threshold));
    w.EndObject();
    writeFinalCheck(w, *final);
    w.Key("search");
    w.StartObject();
    w.Key("seconds"), w.Double(decision.searchSeconds);
    w.Key("lattice_size"), w.Uint64(decision.latticeSize);
    w.EndObject();
    w.Key("total_seconds"), w.Double(seconds);
    w.EndObject();
    if (Status s = writeTextFile(*reportPath, std::string(text.GetString(), text.GetSize()) + "\n"); !s)
        return failWith(s);
    return 0;
}


// Mondrian (local recoding): the quasi-identifier and sensitive columns are held in memory as
// integer codes; everything else streams in the second pass.
int runLocal(const Inputs& in, const std::string& outPath, const std::optional<std::string>& reportPath) {
    const auto started = std::chrono::steady_clock::now();
    const policies::PolicyModel& model = in.policy->model();
    // The columns as the policy declares them: quasi-identifiers, and the sensitive attributes the
    // models need (as the gateway's ReleasePlan classifies them).
    std::vector<anon::ColumnSpec> specs;
    std::vector<size_t> qis, sens;
    const bool needSensitive = model.privacy.lDiversity || model.privacy.tCloseness;
    for (size_t i = 0; i < model.columns.size(); ++i) {
        const auto& c = model.columns[i];
        specs.push_back({c.name, c.type});
        if (c.role == policies::ColumnRole::QuasiIdentifier) qis.push_back(i);
        if (c.role == policies::ColumnRole::Sensitive && needSensitive) sens.push_back(i);
    }
    auto schemaValue = anon::Schema::make(specs);
    if (!schemaValue) return failWith(schemaValue.status());
    const auto schema = std::make_shared<const anon::Schema>(std::move(schemaValue).value());
    std::vector<size_t> encoded = qis;
    encoded.insert(encoded.end(), sens.begin(), sens.end());

    // Pass 1: per encoded column, a dictionary of the canonical values and one code per row.
    std::vector<anon::CsvColumnDictionary> dictionaries;
    std::vector<std::vector<uint32_t>> rowCodes(encoded.size());
    uint64_t records = 0;
    {
        auto reader = anon::CsvReader::openFile(in.in, in.dialect);
        if (!reader) return failWith(reader.status().withContext(in.in));
        auto sourceColumns = anon::csvSourceColumns(*reader, *schema);
        if (!sourceColumns) return failWith(sourceColumns.status().withContext(in.in));
        for (size_t column : encoded) dictionaries.emplace_back((*schema)[column], (*sourceColumns)[column]);
        anon::CsvRecords batch;
        while (true) {
            auto n = reader->read(batch);
            if (!n) return failWith(n.status().withContext(in.in));
            if (*n == 0) break;
            for (size_t e = 0; e < encoded.size(); ++e) {
                for (size_t row = 0; row < batch.rows(); ++row) {
                    auto code = dictionaries[e].code(batch, row);
                    if (!code) return failWith(code.status().withContext(in.in));
                    if (*code == anon::CsvColumnDictionary::kNull)
                        return failWith(invalidArgument(in.in + ": line " + std::to_string(batch.line(row)) + ": column '" +
                                                        (*schema)[encoded[e]].name +
                                                        "' is empty; Mondrian needs a value in every quasi-identifier "
                                                        "and sensitive column"));
                    rowCodes[e].push_back(*code);
                }
            }
            records += batch.rows();
        }
    }

    policies::ColumnDomains domains;
    for (size_t e = 0; e < encoded.size(); ++e) {
        auto& values = domains[(*schema)[encoded[e]].name];
        for (uint32_t code = 0; code < dictionaries[e].size(); ++code) values.emplace_back(dictionaries[e].value(code));
    }
    auto config = policies::makeEngineConfig(*in.policy, domains);
    if (!config) return failWith(config.status());

    // Dictionary codes → hierarchy leaf codes (quasi-identifiers) and sensitive value codes.
    std::vector<std::vector<uint32_t>> codes(encoded.size());
    anon::EncodedColumns columns;
    for (size_t e = 0; e < encoded.size(); ++e) {
        std::vector<uint32_t> translate(dictionaries[e].size());
        for (uint32_t v = 0; v < translate.size(); ++v) {
            const std::string_view value = dictionaries[e].value(v);
            if (e < qis.size()) {
                auto leaf = config->quasiIdentifiers[e].hierarchy->leafCode(value);
                if (!leaf) return failWith(internalError("no leaf for a value of '" + config->quasiIdentifiers[e].name + "'"));
                translate[v] = *leaf;
            } else {
                translate[v] = config->sensitive[e - qis.size()].dictionary->codeOf(std::string(value));
            }
        }
        // Translated in place: the dictionary codes are not needed afterwards.
        for (uint32_t& c : rowCodes[e]) c = translate[c];
        codes[e] = std::move(rowCodes[e]);
        if (e < qis.size()) columns.qi.emplace_back(codes[e]);
        else columns.sensitive.emplace_back(codes[e]);
    }

    auto result = anon::anonymizeMondrian(*config, columns);
    if (!result) {
        std::fprintf(stderr, "custodian anonymize: %s\n", result.status().message().c_str());
        return result.status().code() == StatusCode::FailedPrecondition ? 3 : 1;
    }
    const anon::MondrianResult& mondrian = result->mondrian;

    // Pass 2: the other columns' transforms, the partitions' labels, the final check.
    release::ReleaseContext context;
    context.dataset = model.dataset;
    context.recipient = in.recipient;
    context.keyedTransformKey = in.key ? &*in.key : nullptr;
    // Other columns: the policy's transforms (identifiers dropped unless the policy says otherwise);
    // quasi-identifiers: kept here and replaced by their partition's labels below.
    anon::TransformRegistry registry;
    anon::registerBuiltinTransforms(registry);
    anon::TransformContext tc;
    tc.dataset = context.dataset;
    tc.recipient = context.recipient;
    tc.masterKey = context.keyedTransformKey;
    tc.hierarchies = [&](std::string_view name) { return in.policy->hierarchy(name); };
    std::vector<anon::TransformPlan::Step> steps;
    std::vector<int> qiSlot(model.columns.size(), -1);
    for (size_t q = 0; q < qis.size(); ++q) qiSlot[qis[q]] = static_cast<int>(q);
    for (size_t i = 0; i < model.columns.size(); ++i) {
        const auto& c = model.columns[i];
        const std::string name = qiSlot[i] >= 0 ? std::string("keep") : c.transform.name;
        auto transform = registry.create(name, qiSlot[i] >= 0 ? anon::Params{} : c.transform.params, tc, c.type);
        if (!transform) return failWith(transform.status().withContext("column '" + c.name + "'"));
        steps.push_back({c.name, std::move(transform).value()});
    }
    auto transforms = anon::TransformPlan::make(schema, std::move(steps));
    if (!transforms) return failWith(transforms.status());
    // The released schema: quasi-identifiers become text (ranges and hierarchy labels).
    std::vector<anon::ColumnSpec> outSpecs = transforms->outputSchema()->columns();
    std::vector<std::optional<size_t>> qiOfOutput(outSpecs.size());
    for (size_t o = 0; o < outSpecs.size(); ++o) {
        for (size_t q = 0; q < qis.size(); ++q) {
            if (outSpecs[o].name == model.columns[qis[q]].name) {
                outSpecs[o].type = anon::ColumnType::Text;
                qiOfOutput[o] = q;
            }
        }
    }
    auto outSchemaValue = anon::Schema::make(outSpecs);
    if (!outSchemaValue) return failWith(outSchemaValue.status());
    const auto outSchema = std::make_shared<const anon::Schema>(std::move(outSchemaValue).value());
    anon::FinalCheck check = anon::makeFinalCheck(*config, records, columns);
    release::RowEncoder encoder(in.format, outSchema);

    AtomicOutput out(outPath);
    if (Status s = out.open(); !s) return failWith(s);
    std::string buffer;
    encoder.appendPreamble(buffer);
    uint64_t row0 = 0;
    std::vector<std::string_view> labels(qis.size()), sensitiveValues(sens.size());
    std::vector<std::string> sensitiveText(sens.size());
    std::vector<uint64_t> rowsInPartition(mondrian.partitionSizes.size());
    Status pass2 = forEachBatch(in, schema, [&](const anon::Batch& batch) {
        if (row0 + batch.rows() > records) return internalError("the input grew between the two passes");
        auto transformed = transforms->apply(batch);
        if (!transformed) return transformed.status();
        std::vector<anon::ColumnPtr> outColumns;
        for (size_t o = 0; o < outSchema->size(); ++o) {
            if (!qiOfOutput[o]) {
                outColumns.push_back(transformed->columnPtr(o));
                continue;
            }
            auto col = std::make_shared<anon::Column>(anon::ColumnType::Text);
            for (size_t row = 0; row < batch.rows(); ++row)
                col->appendText(mondrian.labels[mondrian.partitionOfRow[row0 + row]][*qiOfOutput[o]]);
            outColumns.push_back(std::move(col));
        }
        auto outBatch = anon::Batch::make(outSchema, std::move(outColumns));
        if (!outBatch) return outBatch.status();
        if (sens.empty()) {
            // Every row of a partition is written with the same labels: count the rows written per
            // partition here and hand the check each partition's labels once, after the last batch.
            for (size_t row = 0; row < batch.rows(); ++row) ++rowsInPartition[mondrian.partitionOfRow[row0 + row]];
        }
        for (size_t row = 0; row < batch.rows() && !sens.empty(); ++row) {
            const auto& partition = mondrian.labels[mondrian.partitionOfRow[row0 + row]];
            for (size_t q = 0; q < qis.size(); ++q) labels[q] = partition[q];
            for (size_t v = 0; v < sens.size(); ++v) {
                sensitiveText[v] = batch.column(sens[v]).canonical(row);
                sensitiveValues[v] = sensitiveText[v];
            }
            if (Status st = check.addRow(labels, sensitiveValues); !st) return st;
        }
        encoder.appendRows(*outBatch, buffer);
        out.stream().write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        buffer.clear();
        row0 += batch.rows();
        return Status::ok();
    });
    if (!pass2) return failWith(pass2);
    if (row0 != records) return failWith(internalError("the input shrank between the two passes"));
    for (size_t p = 0; p < rowsInPartition.size(); ++p) {
        if (rowsInPartition[p] == 0) continue;
        for (size_t q = 0; q < qis.size(); ++q) labels[q] = mondrian.labels[p][q];
        if (Status st = check.addRows(labels, sensitiveValues, rowsInPartition[p]); !st) return failWith(st);
    }
    auto final = check.finish();
    if (!final) return failWith(final.status().withContext("final check failed, nothing written"));
    if (Status s = out.commit(); !s) return failWith(s);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr,
                 "custodian anonymize: %llu rows released in %zu partitions, k = %llu, NCP %.4f, Mondrian %.1f ms, "
                 "total %.2f s, peak RSS %.0f MiB\n",
                 static_cast<unsigned long long>(records), mondrian.partitionSizes.size(),
                 static_cast<unsigned long long>(mondrian.achievedK), mondrian.ncp, mondrian.seconds * 1e3, seconds,
                 peakRssMiB());

    if (!reportPath) return 0;
    rapidjson::StringBuffer text;
    JsonWriter w(text);
    w.StartObject();
    w.Key("policy_hash"), w.String(in.policy->contentHash().c_str());
    w.Key("algorithm"), w.String(model.mondrianMode == policies::MondrianMode::Strict ? "mondrian-strict" : "mondrian-relaxed");
    w.Key("records"), w.Uint64(records);
    w.Key("released"), w.Uint64(final->releasedRecords);
    w.Key("suppressed"), w.Uint64(final->suppressedRecords);
    w.Key("partitions"), w.Uint64(mondrian.partitionSizes.size());
    w.Key("achieved");
    w.StartObject();
    w.Key("k"), w.Uint64(mondrian.achievedK);
    writeOptional(w, "distinct_l", mondrian.distinctL);
    writeOptional(w, "entropy_l", mondrian.entropyL);
    writeOptional(w, "t", mondrian.achievedT);
    w.EndObject();
    w.Key("metrics");
    w.StartObject();
    w.Key(policies::policyMetricName(anon::Metric::Loss)), w.Double(mondrian.ncp);
    w.Key(policies::policyMetricName(anon::Metric::Discernibility)), w.Double(mondrian.discernibility);
    w.Key(policies::policyMetricName(anon::Metric::AverageClassSize)), w.Double(mondrian.averageClassSize);
    w.Key(policies::policyMetricName(anon::Metric::NonUniformEntropy)), w.Double(mondrian.nonUniformEntropy);
    w.EndObject();
    w.Key("risk");
    w.StartObject();
    writeRisk(w, "before", result->riskBefore);
    writeRisk(w, "after", result->riskAfter);
    w.EndObject();
    writeFinalCheck(w, *final);
    w.Key("search");
    w.StartObject();
    w.Key("seconds"), w.Double(mondrian.seconds);
    w.EndObject();
    w.Key("total_seconds"), w.Double(seconds);
    w.EndObject();
    if (Status s = writeTextFile(*reportPath, std::string(text.GetString(), text.GetSize()) + "\n"); !s)
        return failWith(s);
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
    in.recipient = args->getOr("recipient", "offline");
    if (auto f = args->get("format")) {
        auto parsed = release::parseFormat(*f);
        if (!parsed) return failWith(invalidArgument("--format must be csv or ndjson, not '" + *f + "'"), 2);
        in.format = *parsed;
    }
    if (auto keyFile = args->get("key")) {
        // The same derivation as the gateway's releases, so one master key gives the same pseudonyms.
        auto master = auth::TokenHasher::loadOrCreate(*keyFile);
        if (!master) return failWith(master.status());
        auto bytes = master->deriveSubkey(release::kKeyedTransformSubkeyId, release::kKeyedTransformContext);
        if (!bytes) return failWith(bytes.status());
        auto key = anon::MasterKey::fromBytes(bytes->view());
        if (!key) return failWith(key.status());
        in.key.emplace(std::move(key).value());
    }

    if (in.policy->model().algorithm == policies::SearchAlgorithm::Mondrian)
        return runLocal(in, *args->get("out"), args->get("report"));
    return runGlobal(in, *args->get("out"), args->get("report"));
}

}  // namespace custodian::cli
