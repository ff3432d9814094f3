#include "gateway/release/plan.hpp"

#include <algorithm>
#include <cmath>
#include <variant>

#include "anonymizer/heap_bytes.hpp"
#include "anonymizer/value.hpp"
#include "policies/engine_config.hpp"

namespace custodian::release {

namespace {

using anon::heap::hashNode;
using anon::heap::mallocBlock;
using anon::heap::stringHeap;
using policies::ColumnRole;

// The anonymizer's explanation as the gateway reports it: the figures become a JSON object.
ModelUnreachable unreachableFrom(anon::UnmetModels unmet) {
    json::JsonValue::Object best;
    for (auto& figure : unmet.bestAchievable)
        std::visit([&](auto& value) { best[figure.name] = std::move(value); }, figure.value);
    return {std::move(unmet.requirement), std::move(unmet.message), std::move(best)};
}

// Marks the columns whose values no part of the release uses: dropped, not a quasi-identifier, not a
// sensitive attribute of the models, and not named by another column's transform (date_shift's
// key_column). The rows are read with NULL in their place (SourceColumn::unread).
void markUnread(const policies::PolicyModel& m, const std::vector<size_t>& sensitive,
                std::vector<SourceColumn>& input) {
    const auto& registry = anon::builtinTransforms();
    std::vector<bool> used(m.columns.size(), false);
    for (size_t i : sensitive) used[i] = true;
    for (const auto& c : m.columns) {
        const anon::TransformSpec* spec = registry.find(c.transform.name);
        if (!spec) continue;
        for (const auto& [name, value] : c.transform.params) {
            const anon::ParamDescriptor* d = spec->param(name);
            if (!d || !d->namesColumn || !std::holds_alternative<std::string>(value)) continue;
            for (size_t j = 0; j < m.columns.size(); ++j)
                used[j] = used[j] || m.columns[j].name == std::get<std::string>(value);
        }
    }
    for (size_t i = 0; i < m.columns.size(); ++i) {
        const auto& c = m.columns[i];
        input[i].unread =
            !used[i] && c.role != ColumnRole::QuasiIdentifier && anon::builtinTraits(c.transform.name).removesColumn;
    }
}

}  // namespace

// ---- ReleasePlan -------------------------------------------------------------------------------

Result<ReleasePlan> ReleasePlan::make(std::shared_ptr<const policies::Policy> policy) {
    if (!policy) return internalError("release without a policy");
    const auto& m = policy->model();
    ReleasePlan plan;
    plan.policy_ = policy;
    std::vector<anon::ColumnSpec> specs;
    for (size_t i = 0; i < m.columns.size(); ++i) {
        const auto& c = m.columns[i];
        plan.input_.push_back({c.name, c.type});
        specs.push_back({c.name, c.type});
        if (c.role == ColumnRole::QuasiIdentifier) {
            plan.qis_.push_back(i);
        } else {
            if (c.role == ColumnRole::Sensitive && (m.privacy.lDiversity || m.privacy.tCloseness))
                plan.sensitive_.push_back(i);
            if (anon::builtinTraits(c.transform.name).usesHierarchy && !policy->hierarchy(c.name))
                plan.builtGeneralized_.push_back(i);
        }
    }
    markUnread(m, plan.sensitive_, plan.input_);
    if (plan.qis_.empty() && (m.privacy.lDiversity || m.privacy.tCloseness))
        return failedPrecondition("l-diversity and t-closeness need at least one quasi-identifier in the policy");
    auto schema = anon::Schema::make(std::move(specs));
    if (!schema) return schema.status().withContext("policy columns");
    plan.inputSchema_ = std::make_shared<const anon::Schema>(std::move(schema).value());
    plan.models_.k = m.privacy.k.value_or(1);
    plan.models_.lDiversity = m.privacy.lDiversity;
    plan.models_.tCloseness = m.privacy.tCloseness;
    plan.models_.suppressionLimit = m.privacy.suppressionLimit;
    if (Status s = plan.models_.validate(plan.sensitive_.size()); !s) return s.withContext("privacy");
    return plan;
}

std::vector<size_t> ReleasePlan::groupColumns() const {
    std::vector<size_t> columns = qis_;
    columns.insert(columns.end(), sensitive_.begin(), sensitive_.end());
    return columns;
}

bool ReleasePlan::orderedDistance(size_t column) const {
    const auto& m = policy_->model();
    return m.tClosenessDistance(m.columns[column]) == anon::TClosenessDistance::Ordered;
}

// ---- PrivacyDecision ---------------------------------------------------------------------------

std::vector<uint64_t> PrivacyDecision::classRadix() const {
    if (local) return {local->partitions.partitionSizes.size()};
    std::vector<uint64_t> radix;
    for (size_t d = 0; d < levels.size(); ++d) radix.push_back(hierarchies[d]->nodeCount(levels[d]));
    return radix;
}

uint64_t PrivacyDecision::denseClassCounters() const {
    constexpr uint64_t kAlwaysDense = uint64_t{1} << 20;
    if (!sensitiveTotals.empty() || records == 0 || records > UINT32_MAX) return 0;
    const uint64_t limit = std::max(kAlwaysDense, records);
    uint64_t classes = 1;
    for (uint64_t radix : classRadix()) {
        if (radix != 0 && classes > limit / radix) return 0;
        classes *= radix;
    }
    return classes;
}

void PrivacyDecision::classLabels(const uint32_t* classCodes, std::vector<std::string_view>& labels) const {
    if (local) {
        const auto& partitions = local->partitions;
        labels.resize(partitions.labelTexts.size());
        for (size_t d = 0; d < labels.size(); ++d) labels[d] = partitions.label(classCodes[0], d);
        return;
    }
    labels.resize(levels.size());
    for (size_t d = 0; d < levels.size(); ++d) labels[d] = hierarchies[d]->label(levels[d], classCodes[d]);
}

// ---- FrequencySink -----------------------------------------------------------------------------

uint32_t FrequencySink::Dictionary::intern(std::string_view value) {
    auto it = index.find(value);
    if (it != index.end()) return it->second;
    const auto id = static_cast<uint32_t>(values.size());
    values.emplace_back(value);
    index.emplace(values.back(), id);
    stringHeapBytes += 2 * stringHeap(value.size());
    return id;
}

uint64_t FrequencySink::Dictionary::memoryBytes() const {
    return values.capacity() * sizeof(std::string) + index.size() * hashNode(sizeof(std::string) + 8) +
           index.bucket_count() * sizeof(void*) + stringHeapBytes;
}

uint64_t FrequencySink::memoryBytes() const {
    uint64_t bytes = counts_.capacity() * sizeof(uint64_t);
    for (const auto& column : ids_) bytes += column.capacity() * sizeof(uint32_t);
    for (const auto& d : dictionaries_) bytes += d.memoryBytes();
    for (const auto& column : rowIds_) bytes += column.capacity() * sizeof(uint32_t);
    for (const auto& [column, d] : fixedDomains_) bytes += d.memoryBytes();
    return bytes;
}

bool FrequencySink::groupsAreTheTable() const noexcept {
    return distinctGroups_ && plan_.sensitiveAttributes().empty();
}

uint64_t FrequencySink::finalizeBytes() const {
    const uint64_t q = plan_.quasiIdentifiers().size();
    const uint64_t s = plan_.sensitiveAttributes().size();
    uint64_t values = 0;
    for (const auto& d : dictionaries_) values += d.values.size();
    if (plan_.localRecoding()) {
        // The row codes (counted by memoryBytes()) become the leaf codes, narrowed. Per row: the
        // partitioner's row-major copy (a rank per quasi-identifier, a code per sensitive
        // attribute, the row id; narrowed once partitioned, but charged at its widest) — or, after
        // it, the input's risk: two sort arrays of a 4- or 8-byte key per row, whichever is larger
        // — and the row's class (4 bytes). Per partition, taking one per k rows (near-unique rows
        // give about one per 1.4 k): its record range (16: as made, then permuted in place into
        // class order), its class (4), and per class the label ids (4 per quasi-identifier), the
        // id tuple interned (4 each plus the index's slots at <= 50 % load and first row: 56), size
        // and order (24). The NCP is summed per partition: no penalties are kept.
        const uint64_t keyBytes = q > 1 ? 16 : 8;
        const uint64_t perRow = std::max<uint64_t>((q + s + 1) * 4, keyBytes) + 4;
        const uint64_t partitions = records_ / std::max<uint64_t>(1, plan_.models().k);
        const uint64_t perPartition = 16 + 4 + q * (4 + 4) + 56 + 24;
        return records_ * perRow + partitions * perPartition + values * 4;
    }
    // The leaf code of every value. When the group columns become the table's code columns in
    // place, nothing else: they are counted by memoryBytes() until the search's end.
    if (groupsAreTheTable()) return values * 4;
    const uint64_t groups = counts_.size();
    // The builder: code columns and counts (vector growth up to twice), hashes, slots at ≤ 50 %
    // load; sensitive (combination, value) pairs through a dense index, then the table's sensitive
    // distributions. Its code columns and counts become the table's.
    const uint64_t builder = groups * (2 * q * 4 + 2 * 8 + 8) + 4 * groups * 4 + s * groups * (8 + 8 + 2 * 16);
    return values * 4 + builder + s * groups * (8 + 16);
}

uint64_t PrivacyDecision::memoryBytes() const {
    uint64_t bytes = suppressed.memoryBytes();
    for (const auto& totals : sensitiveTotals) bytes += totals.size() * hashNode(sizeof(std::string) + 8);
    // The final check: one counter per released class (its codes, a row count and a hash node).
    uint64_t classes = stats.classes;
    if (local) {
        for (const auto& column : local->leafCodes) bytes += column.memoryBytes();
        bytes += local->partitions.memoryBytes();
        classes = local->partitions.partitionSizes.size();
    }
    if (const uint64_t counters = denseClassCounters(); counters > 0) bytes += counters * sizeof(uint32_t);
    else bytes += classes * (hashNode(classWidth() * sizeof(uint32_t) + 8) + 64);
    return bytes;
}

FrequencySink::FrequencySink(const ReleasePlan& plan)
    : plan_(plan), columns_(plan.groupColumns()), dictionaries_(columns_.size()) {}

Status FrequencySink::add(std::span<const SourceValue> values, uint64_t count) {
    if (values.size() != columns_.size()) return internalError("group row has the wrong number of values");
    if (count == 0) return Status::ok();
    if (plan_.localRecoding()) {
        if (count != 1) return internalError("Mondrian takes the source rows one by one");
        for (size_t i = 0; i < values.size(); ++i)
            if (!values[i])
                return failedPrecondition("the column '" + plan_.inputColumns()[columns_[i]].name +
                                          "' is NULL in a selected row; Mondrian needs a value in every "
                                          "quasi-identifier and sensitive column (the policy's row filter can "
                                          "leave such rows out)");
        // Column by column, so that finalizeLocal() turns each into leaf codes in place.
        if (rowIds_.empty()) rowIds_.resize(values.size());
        for (size_t i = 0; i < values.size(); ++i) rowIds_[i].push_back(dictionaries_[i].intern(*values[i]));
        ++records_;
        return Status::ok();
    }
    // NULL is the empty string, as the anonymizer's LeafEncoder looks it up. Groups added one by
    // one may repeat a combination (two source texts, one canonical form): the builder adds them up.
    if (ids_.empty()) ids_.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) ids_[i].push_back(dictionaries_[i].intern(values[i].value_or("")));
    counts_.push_back(count);
    records_ += count;
    distinctGroups_ = false;
    return Status::ok();
}

Status FrequencySink::addGroups(SourceSnapshot::CountedGroups& groups) {
    if (plan_.localRecoding()) return internalError("Mondrian takes the source rows one by one");
    const size_t width = columns_.size();
    if (groups.values.size() != width || groups.codes.size() != width)
        return internalError("counted groups have the wrong number of columns");
    const bool first = counts_.empty();
    if (ids_.empty()) ids_.resize(width);
    for (size_t i = 0; i < width; ++i) {
        if (groups.codes[i].size() != groups.counts.size())
            return internalError("counted groups have a code column of the wrong length");
        // Each distinct value once: its id in the sink's dictionary (NULL is the empty string, as
        // the anonymizer's LeafEncoder looks it up). Two values with one id merge combinations.
        const auto& values = groups.values[i];
        Dictionary& dictionary = dictionaries_[i];
        dictionary.index.reserve(dictionary.index.size() + values.size());
        dictionary.values.reserve(dictionary.values.size() + values.size());
        std::vector<uint32_t> idOf(values.size());
        std::vector<uint8_t> taken;
        for (size_t v = 0; v < values.size(); ++v) {
            const uint32_t id = dictionary.intern(values[v].value_or(""));
            idOf[v] = id;
            if (id >= taken.size()) taken.resize(id + 1, 0);
            if (taken[id]) distinctGroups_ = false;
            taken[id] = 1;
        }
        std::vector<uint32_t>& codes = groups.codes[i];
        for (uint32_t& code : codes) {
            if (code >= idOf.size()) return internalError("counted groups have a code out of range");
            code = idOf[code];
        }
        if (first) ids_[i] = std::move(codes);
        else ids_[i].insert(ids_[i].end(), codes.begin(), codes.end());
    }
    for (uint64_t count : groups.counts) records_ += count;
    if (first) counts_ = std::move(groups.counts);
    else {
        counts_.insert(counts_.end(), groups.counts.begin(), groups.counts.end());
        distinctGroups_ = false;
    }
    groups.codes.clear();
    groups.counts.clear();
    return Status::ok();
}

uint32_t FrequencySink::localValueId(size_t column, std::string_view value) {
    return dictionaries_[column].intern(value);
}

void FrequencySink::addLocalRow(std::span<const uint32_t> ids) {
    if (rowIds_.empty()) rowIds_.resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) rowIds_[i].push_back(ids[i]);
    ++records_;
}

void FrequencySink::reserveLocalRows(size_t rows) {
    rowIds_.resize(columns_.size());
    for (auto& column : rowIds_) column.reserve(rows);
}

Status FrequencySink::addFixedDomainValue(size_t column, const SourceValue& value) {
    fixedDomains_[column].intern(value.value_or(""));
    return Status::ok();
}

Result<FrequencySink::Finalized> FrequencySink::finalize(MemoryCharge* memory) && {
    const auto& policy = plan_.policy();
    const auto& model = policy.model();
    const size_t q = plan_.quasiIdentifiers().size();
    const auto& sensitive = plan_.sensitiveAttributes();
    Finalized out;
    out.records = records_;
    PrivacyDecision decision;
    decision.records = records_;

    // Hierarchies of fixed-level generalized columns, from their domains.
    for (size_t column : plan_.builtGeneralizedColumns()) {
        const auto& name = model.columns[column].name;
        auto it = fixedDomains_.find(column);
        if (it == fixedDomains_.end()) continue;  // no rows: the column is never transformed
        auto h = policy.buildHierarchy(name, it->second.values);
        if (!h)
            return failedPrecondition("the hierarchy of the generalized column '" + name +
                                      "' cannot be built from the source values: " + h.status().message());
        decision.fixedHierarchies.emplace(name, std::move(h).value());
    }

    if (records_ == 0) {
        // Nothing selected: an empty release is trivially anonymous and nothing is searched.
        decision.levels.assign(q, 0);
        decision.hierarchies.assign(q, nullptr);
        decision.sensitiveTotals.resize(sensitive.size());
        out.decision = std::move(decision);
        return out;
    }
    if (q == 0) {
        // No quasi-identifier: every row is in one class.
        if (auto unmet = anon::unmetInOneClass(plan_.models(), records_)) {
            out.unreachable = unreachableFrom(std::move(*unmet));
            return out;
        }
        decision.stats.records = records_;
        decision.stats.classes = 1;
        decision.stats.achievedK = records_;
        decision.stats.satisfies = true;
        out.decision = std::move(decision);
        return out;
    }

    const Status s = plan_.localRecoding() ? finalizeLocal(out, decision) : finalizeGlobal(out, decision, memory);
    if (!s) return s;
    if (!out.unreachable) out.decision = std::move(decision);
    return out;
}

namespace {

// Whether no two ids of a quasi-identifier have one leaf code (then distinct groups stay distinct).
bool injective(const std::vector<std::vector<uint32_t>>& leafOf, const anon::AnonymizationConfig& config) {
    for (size_t d = 0; d < config.quasiIdentifiers.size(); ++d) {
        std::vector<uint8_t> seen(config.quasiIdentifiers[d].hierarchy->leafCount(), 0);
        for (uint32_t leaf : leafOf[d]) {
            if (seen[leaf]) return false;
            seen[leaf] = 1;
        }
    }
    return true;
}

}  // namespace

Status FrequencySink::finalizeGlobal(Finalized& out, PrivacyDecision& decision, MemoryCharge* memory) {
    const auto& policy = plan_.policy();
    const auto& model = policy.model();
    const auto& qis = plan_.quasiIdentifiers();
    const auto& sensitive = plan_.sensitiveAttributes();
    const size_t q = qis.size();
    const size_t width = columns_.size();

    // Quasi-identifier hierarchies from the domains seen and sensitive value dictionaries, with the
    // leaf (or value) code of every local id.
    anon::AnonymizationConfig config;
    config.models = plan_.models();
    config.metric = model.metric;
    std::vector<std::vector<uint32_t>> leafOf(width);
    for (size_t d = 0; d < q; ++d) {
        const auto& name = model.columns[qis[d]].name;
        auto h = policy.buildHierarchy(name, dictionaries_[d].values);
        if (!h)
            return failedPrecondition("the hierarchy of the quasi-identifier '" + name +
                                      "' does not fit the source values (" + h.status().message() +
                                      "); the publisher must extend it");
        std::shared_ptr<const anon::Hierarchy> hierarchy = std::move(h).value();
        for (const auto& value : dictionaries_[d].values) {
            auto code = hierarchy->leafCode(value);
            if (!code)
                return failedPrecondition("the hierarchy of the quasi-identifier '" + name +
                                          "' does not cover every source value; the publisher must extend it");
            leafOf[d].push_back(*code);
        }
        const bool numeric = hierarchy->numericLeaves().has_value();
        config.quasiIdentifiers.push_back({name, hierarchy, numeric, 0, -1});
        decision.hierarchies.push_back(std::move(hierarchy));
    }
    for (size_t s = 0; s < sensitive.size(); ++s) {
        const size_t d = q + s;
        const bool ordered = plan_.orderedDistance(sensitive[s]);
        auto dictionary = std::make_shared<const anon::SensitiveDictionary>(
            anon::SensitiveDictionary::build(dictionaries_[d].values, ordered));
        for (const auto& value : dictionaries_[d].values) leafOf[d].push_back(dictionary->codeOf(value));
        config.sensitive.push_back({model.columns[sensitive[s]].name, std::move(dictionary),
                                    ordered ? anon::TClosenessDistance::Ordered : anon::TClosenessDistance::Equal});
    }

    decision.sensitiveTotals.resize(sensitive.size());
    if (groupsAreTheTable() && injective(leafOf, config)) {
        // Distinct groups with distinct leaf codes: the group columns become the table's code
        // columns in place.
        std::vector<uint32_t> cardinalities;
        for (size_t d = 0; d < q; ++d) {
            cardinalities.push_back(config.quasiIdentifiers[d].hierarchy->leafCount());
            for (uint32_t& id : ids_[d]) id = leafOf[d][id];
        }
        auto table = anon::FrequencyTable::fromDistinct(std::move(cardinalities), std::move(ids_), std::move(counts_));
        anon::heap::release(ids_);
        anon::heap::release(counts_);
        if (!table) return table.status();
        out.table = std::make_shared<const anon::FrequencyTable>(std::move(table).value());
    } else {
        auto builder = anon::newFrequencyTable(config);
        if (!builder) return builder.status();
        std::vector<uint32_t> qiCodes(q), sensitiveCodes(sensitive.size());
        for (size_t g = 0; g < counts_.size(); ++g) {
            for (size_t d = 0; d < q; ++d) qiCodes[d] = leafOf[d][ids_[d][g]];
            for (size_t s = 0; s < sensitive.size(); ++s) {
                const uint32_t id = ids_[q + s][g];
                sensitiveCodes[s] = leafOf[q + s][id];
                decision.sensitiveTotals[s][dictionaries_[q + s].values[id]] += counts_[g];
            }
            if (Status st = builder->add(qiCodes, sensitiveCodes, counts_[g]); !st) return st;
        }
        // The group rows are no longer needed; free them before the search allocates.
        anon::heap::release(ids_);
        anon::heap::release(counts_);
        out.table = std::make_shared<const anon::FrequencyTable>(std::move(builder).value().finish());
    }
    out.config = anon::optimalSearchConfig(config);  // kept for previews: without the memory observer
    if (memory) config.searchMemory = [memory](uint64_t bytes) { return memory->set(kSearchWorkingSet, bytes); };

    anon::UnmetModels unmet;
    auto recoding = anon::anonymizeGlobal(config, *out.table, &unmet);
    if (!recoding) {
        if (recoding.status().code() != StatusCode::FailedPrecondition) return recoding.status();
        out.unreachable = unreachableFrom(std::move(unmet));
        return Status::ok();
    }
    decision.levels = recoding->levels();
    decision.latticeSize = recoding->solution.latticeSize;
    decision.searchSeconds = recoding->solution.searchSeconds;
    decision.stats = std::move(recoding->solution.best);
    decision.suppressed = std::move(recoding->suppressed);
    return Status::ok();
}

Status FrequencySink::finalizeLocal(Finalized& out, PrivacyDecision& decision) {
    const auto& policy = plan_.policy();
    const auto& model = policy.model();
    const size_t q = plan_.quasiIdentifiers().size();
    const size_t sensitive = plan_.sensitiveAttributes().size();
    const size_t width = columns_.size();
    const size_t rows = static_cast<size_t>(records_);

    // Hierarchies (built from the values where the policy has none) and sensitive dictionaries,
    // exactly as `custodian anonymize` makes them.
    policies::ColumnDomains domains;
    for (size_t c = 0; c < width; ++c) domains[model.columns[columns_[c]].name] = dictionaries_[c].values;
    auto config = policies::makeEngineConfig(policy, domains);
    if (!config)
        return failedPrecondition("the policy's hierarchies do not fit the source values (" +
                                  config.status().message() + "); the publisher must extend them");

    // Dictionary ids → leaf codes (quasi-identifiers) and sensitive value codes, column by column,
    // in place.
    auto local = std::make_shared<LocalRecoding>();
    local->leafCodes.resize(q);
    std::vector<std::vector<uint32_t>> sensitiveCodes(sensitive);
    decision.sensitiveTotals.assign(sensitive, {});
    rowIds_.resize(width);
    for (size_t c = 0; c < width; ++c) {
        const auto& values = dictionaries_[c].values;
        std::vector<uint32_t> translate(values.size());
        for (uint32_t v = 0; v < values.size(); ++v) {
            if (c < q) {
                auto leaf = config->quasiIdentifiers[c].hierarchy->leafCode(values[v]);
                if (!leaf)
                    return failedPrecondition("the hierarchy of the quasi-identifier '" +
                                              config->quasiIdentifiers[c].name +
                                              "' does not cover every source value; the publisher must extend it");
                translate[v] = *leaf;
            } else {
                translate[v] = config->sensitive[c - q].dictionary->codeOf(values[v]);
            }
        }
        std::vector<uint32_t>& column = rowIds_[c];
        if (column.size() != rows) return internalError("the Mondrian sink lost rows");
        std::vector<uint64_t> perValue(c < q ? 0 : values.size());
        for (uint32_t& id : column) {
            if (c >= q) ++perValue[id];
            id = translate[id];
        }
        for (uint32_t v = 0; v < perValue.size(); ++v)
            if (perValue[v] != 0) decision.sensitiveTotals[c - q][values[v]] += perValue[v];
        // Leaf codes narrowed to 1, 2 or 4 bytes by the hierarchy's size: kept through the rows' pass.
        if (c < q)
            local->leafCodes[c] = anon::CodeColumn::pack(
                std::move(column), static_cast<uint32_t>(config->quasiIdentifiers[c].hierarchy->leafCount()));
        else sensitiveCodes[c - q] = std::move(column);
    }
    anon::heap::release(rowIds_);

    anon::EncodedColumns columns;
    for (const auto& c : local->leafCodes) columns.qi.emplace_back(c);
    for (const auto& c : sensitiveCodes) columns.sensitive.emplace_back(c);
    anon::UnmetModels unmet;
    auto result = anon::anonymizeMondrian(*config, columns, &unmet);
    if (!result) {
        if (result.status().code() != StatusCode::FailedPrecondition) return result.status();
        out.unreachable = unreachableFrom(std::move(unmet));
        return Status::ok();
    }
    for (const auto& qi : config->quasiIdentifiers) decision.hierarchies.push_back(qi.hierarchy);
    const anon::MondrianResult& m = result->mondrian;
    decision.stats.records = records_;
    decision.stats.classes = m.partitionSizes.size();
    decision.stats.satisfies = true;
    decision.stats.achievedK = m.achievedK;
    decision.stats.distinctL = m.distinctL;
    decision.stats.entropyL = m.entropyL;
    decision.stats.achievedT = m.achievedT;
    decision.stats.metrics.loss = m.ncp;
    decision.stats.lossPerAttribute = m.ncpPerAttribute;
    decision.stats.metrics.discernibility = m.discernibility;
    decision.stats.metrics.averageClassSize = m.averageClassSize;
    decision.stats.metrics.nonUniformEntropy = m.nonUniformEntropy;
    decision.searchSeconds = m.seconds;
    local->partitions = std::move(result->mondrian);
    local->riskBefore = result->riskBefore;
    local->riskAfter = result->riskAfter;
    local->algorithm = model.mondrianMode == policies::MondrianMode::Relaxed ? "mondrian-relaxed" : "mondrian-strict";
    decision.local = std::move(local);
    return Status::ok();
}

// ---- RowReleaser -------------------------------------------------------------------------------

std::string describeTransform(const policies::TransformSpec& spec) {
    std::string out = spec.name;
    bool first = true;
    for (const auto& [name, value] : spec.params) {                                         // std::map: sorted by name
        if (anon::builtinTraits(spec.name).usesHierarchy && name == "hierarchy") continue;  // always the column's own
        out += first ? ":" : ",";
        first = false;
        out += name + "=";
        if (const bool* b = std::get_if<bool>(&value)) out += *b ? "true" : "false";
        else if (const int64_t* i = std::get_if<int64_t>(&value)) out += std::to_string(*i);
        else if (const double* d = std::get_if<double>(&value)) anon::appendDecimal(out, *d);
        else if (const std::string* s = std::get_if<std::string>(&value)) out += *s;
        else {
            const auto& list = std::get<std::vector<std::string>>(value);
            for (size_t k = 0; k < list.size(); ++k) out += (k ? "|" : "") + list[k];
        }
    }
    return out;
}

Result<RowReleaser> RowReleaser::make(const ReleasePlan& plan, const PrivacyDecision& decision,
                                      const ReleaseContext& context) {
    RowReleaser r;
    r.plan_ = &plan;
    r.decision_ = &decision;
    const auto& policy = plan.policy();
    const auto& model = policy.model();
    anon::TransformContext tc;
    tc.keyScope = context.keyScope;
    tc.masterKey = context.keyedTransformKey;
    tc.random = context.random;
    tc.hierarchies = [&policy, &decision](std::string_view name) -> std::shared_ptr<const anon::Hierarchy> {
        if (auto loaded = policy.hierarchy(name)) return loaded;
        auto it = decision.fixedHierarchies.find(name);
        return it == decision.fixedHierarchies.end() ? nullptr : it->second;
    };
    const auto& registry = anon::builtinTransforms();
    std::vector<anon::ColumnSpec> outputs;
    r.qiSlot_.assign(model.columns.size(), -1);
    r.transforms_.resize(model.columns.size());
    const auto& qis = plan.quasiIdentifiers();
    for (size_t d = 0; d < qis.size(); ++d) r.qiSlot_[qis[d]] = static_cast<int>(d);
    r.qiOutputs_.resize(qis.size());
    for (size_t i = 0; i < model.columns.size(); ++i) {
        const auto& c = model.columns[i];
        if (r.qiSlot_[i] >= 0) {
            const auto d = static_cast<size_t>(r.qiSlot_[i]);
            r.qiOutputs_[d] = outputs.size();
            outputs.push_back({c.name, anon::ColumnType::Text});
            r.columns_.push_back(
                {c.name,
                 decision.local ? decision.local->algorithm : "generalize:level=" + std::to_string(decision.levels[d]),
                 true});
            continue;
        }
        const bool hierarchyMissing = anon::builtinTraits(c.transform.name).usesHierarchy && !tc.hierarchies(c.name);
        if (hierarchyMissing) {
            // Only possible when nothing was selected: the column's domain is empty.
            if (decision.records != 0) return internalError("no hierarchy for the generalized column '" + c.name + "'");
            outputs.push_back({c.name, anon::ColumnType::Text});
            r.columns_.push_back({c.name, describeTransform(c.transform), true});
            continue;
        }
        auto transform = registry.create(c.transform.name, c.transform.params, tc, c.type);
        if (!transform) return transform.status().withContext("column '" + c.name + "'");
        const auto type = (*transform)->outputType();
        if (!type) {
            r.columns_.push_back({c.name, describeTransform(c.transform), false});
            continue;
        }
        outputs.push_back({c.name, *type});
        r.columns_.push_back({c.name, describeTransform(c.transform), true});
        r.transforms_[i] = std::move(transform).value();
    }
    auto schema = anon::Schema::make(std::move(outputs));
    if (!schema) return schema.status().withContext("released columns");
    r.output_ = std::make_shared<const anon::Schema>(std::move(schema).value());
    for (size_t d = 0; d < qis.size(); ++d) r.encoders_.emplace_back(decision.hierarchies[d]);
    return r;
}

Result<anon::Batch> RowReleaser::release(const anon::Batch& input) {
    const auto& qis = plan_->quasiIdentifiers();
    const size_t q = qis.size();
    const size_t rows = input.rows();
    if (rows > 0 && decision_->records == 0)
        return internalError("the source returned rows the privacy search did not count");
    anon::Batch working = input;  // shares the columns; only the suppression mask is its own

    // Leaf codes, then node codes at the chosen levels (Mondrian: the row's partition, once the row
    // is the one partitioned at this position); rows of suppressed classes are marked.
    const LocalRecoding* local = decision_->local.get();
    if (local && rowsSeen_ + rows > local->partitions.partitionOfRow.size())
        return internalError("the source returned more rows than were partitioned");
    nodes_.resize(rows * decision_->classWidth());
    for (size_t d = 0; d < q; ++d) {
        codes_.clear();
        if (Status s = encoders_[d].encode(input, qis[d], codes_); !s)
            return internalError("a value of the quasi-identifier '" + (*plan_->inputSchema())[qis[d]].name +
                                 "' is not in the hierarchy the search used (the source changed during the release)");
        if (local) {
            const anon::CodeColumn& partitioned = local->leafCodes[d];
            for (size_t r = 0; r < rows; ++r)
                if (codes_[r] != partitioned[rowsSeen_ + r])
                    return internalError("the source returned row " + std::to_string(rowsSeen_ + r + 1) +
                                         " with other quasi-identifier values than when it was partitioned (the row "
                                         "order changed); nothing more is released");
            continue;
        }
        const auto& map = decision_->hierarchies[d]->levelMap(decision_->levels[d]);
        for (size_t r = 0; r < rows; ++r) nodes_[r * q + d] = map[codes_[r]];
    }
    if (local && q > 0)
        std::copy_n(local->partitions.partitionOfRow.begin() + static_cast<ptrdiff_t>(rowsSeen_), rows, nodes_.begin());
    rowsSeen_ += rows;
    if (q > 0 && !decision_->suppressed.empty()) {
        for (size_t r = 0; r < rows; ++r)
            if (decision_->suppressed.contains(nodes_.data() + r * q)) working.suppress(r);
    }

    std::vector<anon::ColumnPtr> out;
    out.reserve(output_->size());
    for (size_t i = 0; i < input.columnCount(); ++i) {
        if (qiSlot_[i] >= 0) {
            const auto d = static_cast<size_t>(qiSlot_[i]);
            auto column = std::make_shared<anon::Column>(anon::ColumnType::Text);
            column->reserve(rows, rows * 8);
            if (local) {
                for (size_t r = 0; r < rows; ++r) column->appendText(local->partitions.label(nodes_[r], d));
            } else {
                const auto& h = *decision_->hierarchies[d];
                const int level = decision_->levels[d];
                for (size_t r = 0; r < rows; ++r) {
                    if (working.isSuppressed(r)) column->appendNull();  // never written
                    else column->appendText(h.label(level, nodes_[r * q + d]));
                }
            }
            out.push_back(std::move(column));
        } else if (transforms_[i]) {
            auto column = transforms_[i]->apply(working, i);
            if (!column) return column.status().withContext("column '" + (*plan_->inputSchema())[i].name + "'");
            out.push_back(std::move(column).value());
        } else if (columns_.size() > i && columns_[i].released) {
            // A generalized column without hierarchy exists only in an empty release.
            if (rows > 0) return internalError("column '" + (*plan_->inputSchema())[i].name + "' has no transform");
            out.push_back(std::make_shared<anon::Column>(anon::ColumnType::Text));
        }
    }
    auto batch = anon::Batch::make(output_, std::move(out));
    if (!batch) return batch.status();
    if (Status s = batch->copySuppression(working); !s) return s;
    return std::move(batch).value();
}

Status RowReleaser::finish() const {
    if (rowsSeen_ != decision_->records)
        return internalError("the source returned " + std::to_string(rowsSeen_) +
                             " rows, but the privacy search counted " + std::to_string(decision_->records));
    return Status::ok();
}

}  // namespace custodian::release
