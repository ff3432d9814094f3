#pragma once
// A release seen as a pipeline (DuckDB's Sink → Finalize → Source):
//
//   ReleasePlan      the policy's columns as a release: what is read, which columns are
//                    quasi-identifiers, which sensitive attributes the models need. Built once per
//                    extract from the shared, immutable Policy.
//   FrequencySink    Sink: the GROUP BY rows of the quasi-identifiers (and sensitive attributes)
//                    pushed down to PostgreSQL. finalize() builds the hierarchies from the domains
//                    seen and the frequency table, and hands them to the anonymizer's optimal
//                    search (anon::anonymizeGlobal, anonymizer/engine.hpp). Under Mondrian (local
//                    recoding) the sink takes every row instead, in source order, and holds the
//                    quasi-identifier and sensitive columns dictionary-encoded (4 bytes per value):
//                    partitioning needs the rows, not just their combinations
//                    (anon::anonymizeMondrian).
//   PrivacyDecision  Finalize's result: the chosen generalization and the classes to suppress (or,
//                    under Mondrian, every row's partition and the partitions' labels). It is the
//                    only way to build a RowReleaser, so no row can leave before the search has
//                    seen every combination.
//   RowReleaser      Source side: turns each streamed source batch into the released batch (column
//                    transforms, the chosen generalization, suppression marks). Memory per batch;
//                    nothing grows with the number of rows. Under Mondrian the rows must arrive in
//                    the order the sink saw them: each row's quasi-identifiers are compared with
//                    what the sink read for that position, and a row that differs stops the release
//                    before it is written.
//
// The pipeline has no network code and no database code: the caller feeds it (gateway/release/
// source.hpp reads PostgreSQL).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "anonymizer/engine.hpp"
#include "anonymizer/frequency_table.hpp"
#include "anonymizer/hierarchy.hpp"
#include "anonymizer/mondrian.hpp"
#include "anonymizer/optimal_search.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/risk.hpp"
#include "anonymizer/table.hpp"
#include "anonymizer/transform.hpp"
#include "json/canonical.hpp"
#include "gateway/release/source.hpp"
#include "policies/policy.hpp"

namespace custodian::release {

// Hashes std::string keys and looks them up by std::string_view without building a string
// (use with std::equal_to<>).
struct TransparentStringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// What a release supplies besides the policy.
struct ReleaseContext {
    anon::KeyScope keyScope;                             // keys pseudonyms and date shifts (dataset, policy, recipient)
    const anon::MasterKey* keyedTransformKey = nullptr;  // must outlive the RowReleaser
    std::shared_ptr<anon::RandomSource> random;          // noise; null = libsodium
};

class ReleasePlan {
public:
    static Result<ReleasePlan> make(std::shared_ptr<const policies::Policy> policy);

    const policies::Policy& policy() const noexcept { return *policy_; }
    const std::shared_ptr<const policies::Policy>& policyPtr() const noexcept { return policy_; }
    // Every column of the policy, in the order written: what the source query reads.
    const std::vector<SourceColumn>& inputColumns() const noexcept { return input_; }
    const anon::SchemaPtr& inputSchema() const noexcept { return inputSchema_; }
    // Indexes into inputColumns().
    const std::vector<size_t>& quasiIdentifiers() const noexcept { return qis_; }
    // Sensitive attributes the models need (only when l-diversity or t-closeness is declared).
    const std::vector<size_t>& sensitiveAttributes() const noexcept { return sensitive_; }
    // Non-quasi-identifier columns generalized at a fixed level whose hierarchy is built from the data.
    const std::vector<size_t>& builtGeneralizedColumns() const noexcept { return builtGeneralized_; }
    // The GROUP BY columns: quasi-identifiers, then sensitive attributes.
    std::vector<size_t> groupColumns() const;
    const anon::PrivacyModels& models() const noexcept { return models_; }
    // Mondrian (local recoding) instead of the optimal full-domain search.
    bool localRecoding() const noexcept { return policy_->model().algorithm == policies::SearchAlgorithm::Mondrian; }
    // Whether column i's t-closeness distance is ordered.
    bool orderedDistance(size_t column) const;

private:
    std::shared_ptr<const policies::Policy> policy_;
    std::vector<SourceColumn> input_;
    anon::SchemaPtr inputSchema_;
    std::vector<size_t> qis_, sensitive_, builtGeneralized_;
    anon::PrivacyModels models_;
};

// The models could not be met within the suppression limit: nothing may be released. The
// anonymizer's explanation (anon::UnmetModels) as the 422 and `custodian anonymize` give it.
struct ModelUnreachable {
    std::string requirement;         // e.g. "k-anonymity with k = 10"
    std::string message;             // one sentence for the caller
    json::JsonValue bestAchievable;  // e.g. {"k":7,"rows":300,"suppression_needed_for_k":"0.3000"}
};

// Mondrian's result: the partition of every selected row, in the order the sink received them.
struct LocalRecoding {
    std::vector<anon::CodeColumn> leafCodes;  // per quasi-identifier, per row: what was partitioned (narrowed)
    anon::MondrianResult partitions;          // partitionOfRow, labels, sizes, metrics
    anon::RiskSummary riskBefore, riskAfter;
    std::string algorithm;  // "mondrian-strict" or "mondrian-relaxed"
};

struct PrivacyDecision {
    uint64_t records = 0;                                             // rows selected by the policy's row filter
    std::vector<std::shared_ptr<const anon::Hierarchy>> hierarchies;  // per quasi-identifier
    std::vector<int> levels;                                          // chosen level per quasi-identifier
    anon::GeneralizationStats stats;                                  // of the chosen node (achieved k/l/t, metrics)
    size_t latticeSize = 0;
    double searchSeconds = 0;
    // Hierarchies of builtGeneralizedColumns(), by column name.
    std::map<std::string, std::shared_ptr<const anon::Hierarchy>, std::less<>> fixedHierarchies;
    // Global distribution of every sensitive attribute of the plan over all selected rows
    // (canonical value → count), for the final check's t-closeness.
    std::vector<std::unordered_map<std::string, uint64_t>> sensitiveTotals;
    // The classes suppressed at `levels` (global recoding; empty otherwise).
    anon::SuppressedClasses suppressed;
    // Set under Mondrian: `levels` is then empty and nothing is suppressed.
    std::shared_ptr<const LocalRecoding> local;

    // A released row's class, as RowReleaser::classCodes() gives it: classWidth() codes — the node
    // code per quasi-identifier at `levels`, or (Mondrian) the partition number.
    size_t classWidth() const noexcept { return local ? 1 : levels.size(); }
    // Number of distinct values of each class code (nodes at the level; partitions).
    std::vector<uint64_t> classRadix() const;
    // How the final check counts the released rows per class: without sensitive attributes, in one
    // 4-byte counter per possible class (the product of classRadix(), indexed in mixed radix) when
    // that product is at most max(2^20, records) — always under Mondrian, whose classes are
    // numbered — so a row costs an array increment; otherwise in a hash entry per class present.
    // The number of counters, or 0 for the hash.
    uint64_t denseClassCounters() const;
    // The released labels of a class, one per quasi-identifier.
    void classLabels(const uint32_t* classCodes, std::vector<std::string_view>& labels) const;

    // Bytes this decision holds while the release streams (suppressed classes and their index,
    // Mondrian's per-row codes and partitions, labels), plus the final check's counter per released
    // class that the stream builds next to it (gateway/release/memory_budget.hpp).
    uint64_t memoryBytes() const;
};

class FrequencySink {
public:
    explicit FrequencySink(const ReleasePlan& plan);

    // One GROUP BY row: values of plan.groupColumns() in order (nullopt = NULL) and its count.
    // Under Mondrian: one source row (count 1), in source order; NULL is refused.
    Status add(std::span<const SourceValue> values, uint64_t count);
    // Global recoding: the combinations counted in the gateway, all at once (SourceSnapshot::
    // countGroups). Takes over their code columns and counts. When they are the sink's only
    // groups and distinct values stay distinct, finalize() makes the frequency table from these
    // very columns, without hashing or copying them again.
    Status addGroups(SourceSnapshot::CountedGroups& groups);
    // Mondrian, for a caller that already dictionary-encodes its rows (custodian anonymize): the
    // sink's id of a (non-NULL) value of group column `column`, and one source row given by those
    // ids, exactly as add() would hold it. Saves hashing every cell a second time.
    uint32_t localValueId(size_t column, std::string_view value);
    void addLocalRow(std::span<const uint32_t> ids);
    // Mondrian: room for about `rows` source rows, so the row columns are not copied as they grow.
    void reserveLocalRows(size_t rows);
    // The domain of a built-generalized column (one row per distinct value).
    Status addFixedDomainValue(size_t column, const SourceValue& value);

    uint64_t records() const noexcept { return records_; }
    // Bytes the sink holds now: dictionaries (hash nodes, buckets, strings), group rows or
    // Mondrian's row codes (container capacities, not sizes).
    uint64_t memoryBytes() const;
    // Bytes finalize() holds at its peak besides what memoryBytes() already counts, known before it
    // runs: the leaf codes and, unless the group columns become the frequency table in place, the
    // table builder and the table; or Mondrian's partitioning state. The optimal search states its
    // own working set as it grows (finalize's `memory`).
    uint64_t finalizeBytes() const;

    // Hierarchies, frequency table and search (or partitioning). Exactly one of `decision` and
    // `unreachable` is set; `table` and `config` are what the optimal search ran on (previews
    // evaluate other nodes with them). With no selected rows there is nothing to search: `decision`
    // is set, `table` is null. Errors: FailedPrecondition when the policy's hierarchies do not fit
    // the source values; the models being out of reach is not an error.
    struct Finalized {
        uint64_t records = 0;  // rows selected (also when the models cannot be met)
        std::optional<PrivacyDecision> decision;
        std::optional<ModelUnreachable> unreachable;
        std::shared_ptr<const anon::FrequencyTable> table;
        anon::OptimalSearchConfig config;
    };
    // With `memory`, the optimal search states its working set to it (kSearchWorkingSet) as it grows
    // and stops with the charge's ResourceExhausted when the budget refuses.
    Result<Finalized> finalize(MemoryCharge* memory = nullptr) &&;

private:
    // The two halves of finalize() once there are rows and quasi-identifiers: the optimal search
    // over the frequency table of the group rows, or Mondrian's partitioning of the rows.
    Status finalizeGlobal(Finalized& out, PrivacyDecision& decision, MemoryCharge* memory);
    // Whether finalizeGlobal() can make the frequency table from the group columns in place.
    bool groupsAreTheTable() const noexcept;
    Status finalizeLocal(Finalized& out, PrivacyDecision& decision);

    struct Dictionary {
        std::unordered_map<std::string, uint32_t, TransparentStringHash, std::equal_to<>> index;
        std::vector<std::string> values;
        uint64_t stringHeapBytes = 0;  // heap blocks of the strings in `index` and `values`
        uint32_t intern(std::string_view value);
        uint64_t memoryBytes() const;
    };
    const ReleasePlan& plan_;
    std::vector<size_t> columns_;
    std::vector<Dictionary> dictionaries_;       // per group column
    std::vector<std::vector<uint32_t>> ids_;     // per group column: the id of every group
    std::vector<uint64_t> counts_;               // per group
    bool distinctGroups_ = true;                 // no two groups have the same ids
    std::vector<std::vector<uint32_t>> rowIds_;  // Mondrian: per group column, the id of every row
    uint64_t records_ = 0;
    std::map<size_t, Dictionary> fixedDomains_;
};

// How one policy column is released (for manifests and previews).
struct ReleasedColumn {
    std::string name;
    std::string transform;  // "keep", "drop", "pseudonymize", "generalize:level=2", "round:base=100"
    bool released = true;   // false when dropped
};

class RowReleaser {
public:
    static Result<RowReleaser> make(const ReleasePlan& plan, const PrivacyDecision& decision,
                                    const ReleaseContext& context);

    const anon::SchemaPtr& outputSchema() const noexcept { return output_; }
    const std::vector<ReleasedColumn>& columns() const noexcept { return columns_; }
    // Output column index of each quasi-identifier (in plan order) and of each sensitive attribute
    // (nullopt when the sensitive column is not released).
    const std::vector<size_t>& quasiIdentifierOutputs() const noexcept { return qiOutputs_; }

    // The released batch for one source batch: suppressed rows are marked (never copied).
    // Internal if a row's class is not in the decision (the source changed under the snapshot), or
    // under Mondrian if a row is not the one the sink saw at its position.
    Result<anon::Batch> release(const anon::Batch& input);
    // After the last batch: Internal unless exactly decision.records rows went through release().
    Status finish() const;
    // The equivalence class of every row of the last released batch, row-major, decision.classWidth()
    // codes per row: node codes at the chosen levels (the released label of quasi-identifier d in row
    // r is hierarchies[d]->label(levels[d], classCodes()[r * q + d])), or the Mondrian partition.
    const std::vector<uint32_t>& classCodes() const noexcept { return nodes_; }

private:
    RowReleaser() = default;
    const ReleasePlan* plan_ = nullptr;
    const PrivacyDecision* decision_ = nullptr;
    anon::SchemaPtr output_;
    std::vector<ReleasedColumn> columns_;
    // Per input column: the transform (null for quasi-identifiers and dropped columns).
    std::vector<anon::TransformPtr> transforms_;
    std::vector<int> qiSlot_;  // per input column: index into plan.quasiIdentifiers() or -1
    std::vector<size_t> qiOutputs_;
    std::vector<anon::LeafEncoder> encoders_;  // per quasi-identifier (keeps its cache across batches)
    std::vector<uint32_t> codes_;              // scratch: leaf codes of one quasi-identifier
    std::vector<uint32_t> nodes_;              // classCodes()
    uint64_t rowsSeen_ = 0;                    // rows through release() so far
};

// "name" or "name:param=value,param=value" (parameters sorted by name).
std::string describeTransform(const policies::TransformSpec& spec);

}  // namespace custodian::release
