#pragma once
// Why the privacy models cannot be met: the explanation a refused release gives (the gateway's 422,
// `custodian anonymize`'s exit status 3). anonymizeGlobal() and anonymizeMondrian()
// (anonymizer/engine.hpp) make it when their search fails; the texts are part of the gateway's API
// (docs/extracts.md quotes them), so they change only with it.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "anonymizer/frequency_table.hpp"
#include "anonymizer/optimal_search.hpp"
#include "anonymizer/privacy_model.hpp"
#include "anonymizer/status.hpp"

namespace custodian::anon {

struct UnmetModels {
    std::string requirement;  // the model that fails, e.g. "k-anonymity with k = 10"
    std::string message;      // one sentence for the person who asked; starts with the requirement
    // What the best release reaches (global recoding: the most generalized node; Mondrian: the whole
    // input as one class), by name: counts as integers, other figures as decimal text with the
    // digits the message gives them.
    struct Figure {
        std::string name;
        std::variant<uint64_t, std::string> value;
    };
    std::vector<Figure> bestAchievable;
};

// Global recoding found no node within the suppression limit: names the first requirement that fails
// even at the top of the lattice `config` spans (k-anonymity, then l-diversity, then t-closeness,
// else their combination) and what that node reaches. `table` must have records.
Result<UnmetModels> explainUnmetGlobal(const FrequencyTable& table, const OptimalSearchConfig& config);

// Mondrian cannot suppress, so it fails only when the whole input as one class misses a model:
// `failure` is its FailedPrecondition. `records` rows; `distinctSensitive` holds the number of
// distinct values of each sensitive attribute among them.
UnmetModels explainUnmetMondrian(const PrivacyModels& models, uint64_t records,
                                 const std::vector<uint64_t>& distinctSensitive, const Status& failure);

// Without quasi-identifiers every record is in one class: k-anonymity holds with at least k records
// (l-diversity and t-closeness need a quasi-identifier). Why not, when it does not hold.
std::optional<UnmetModels> unmetInOneClass(const PrivacyModels& models, uint64_t records);

}  // namespace custodian::anon
