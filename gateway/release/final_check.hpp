#pragma once
// The final check of a release: the declared privacy models re-verified on what was actually
// emitted, independently of the search. Equivalence classes are formed from the released text of
// the quasi-identifier columns (not from the search's codes), counted as rows are encoded, and
// checked before the stream's final chunk is sealed: if the check fails, the final tag is never
// sent and the partner's decryption fails.
//
// l-diversity and t-closeness look at the true (input, canonical) sensitive value of every emitted
// row, which is what the models protect; t-closeness compares each class with the distribution of
// the sensitive value over every row the policy selected (as the search does).
//
// Memory is one entry per released class (plus its sensitive histogram), never per row.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "anonymizer/privacy_model.hpp"
#include "anonymizer/table.hpp"

namespace custodian::release {

struct SensitiveCheckInput {
    std::string name;
    bool ordered = false;                                  // ordered EMD (numeric or byte order)
    std::unordered_map<std::string, uint64_t> globalCounts;  // over every selected row
};

struct FinalCheckResult {
    bool satisfied = true;
    std::string failure;              // the first model that does not hold, as a sentence
    uint64_t rows = 0;                // rows emitted
    uint64_t classes = 0;             // equivalence classes emitted
    uint64_t k = 0;                   // smallest class (0 when nothing was emitted)
    std::optional<uint64_t> distinctL;  // smallest number of distinct sensitive values in a class
    std::optional<double> entropyL;     // smallest exp(entropy) of a class
    std::optional<double> t;            // largest EMD of a class
};

class FinalCheck {
public:
    FinalCheck(anon::PrivacyModels models, std::vector<SensitiveCheckInput> sensitive);

    // Counts the emitted (not suppressed) rows of `released`: classes from the columns
    // `qiOutputs` of `released`, sensitive values from the columns `sensitiveInputs` of `input`
    // (the source batch the released one came from; same rows).
    void add(const anon::Batch& released, const std::vector<size_t>& qiOutputs, const anon::Batch& input,
             const std::vector<size_t>& sensitiveInputs);

    FinalCheckResult finish() const;

private:
    struct ClassCounts {
        uint64_t rows = 0;
        std::vector<std::unordered_map<std::string, uint64_t>> sensitive;
    };
    anon::PrivacyModels models_;
    std::vector<SensitiveCheckInput> sensitive_;
    std::unordered_map<std::string, ClassCounts> classes_;
    uint64_t rows_ = 0;
    std::string key_;    // scratch
    std::string value_;  // scratch
};

}  // namespace custodian::release
