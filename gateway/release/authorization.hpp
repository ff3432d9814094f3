#pragma once
// Who may take what: the rules of a release policy applied to one extract request, before anything
// is read from the source. Each refusal names the rule that refused, so a partner (and the audit
// log) can tell "not a recipient" from "purpose not allowed" from "too many extracts today".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/release/encoder.hpp"
#include "policies/policy_model.hpp"

namespace custodian::release {

// The body of POST /v1/extracts:
//   {"dataset": "...", "policy": "...", "purpose": "...", "format": "csv"|"ndjson",
//    "encryption": "sealed"|"none"}
// format defaults to "csv", encryption to "sealed". Unknown members are refused.
struct ExtractRequest {
    std::string dataset;
    std::string policy;
    std::string purpose;
    ExtractFormat format = ExtractFormat::Csv;
    bool encrypted = true;
};

// InvalidArgument naming the member at fault.
Result<ExtractRequest> parseExtractRequest(std::string_view body);

// The rules, as named in refusals (and documented in docs/extracts.md).
inline constexpr const char* kRuleRecipient = "recipient";
inline constexpr const char* kRulePurpose = "purpose";
inline constexpr const char* kRuleNotBefore = "validity.not_before";
inline constexpr const char* kRuleExpires = "validity.expires";
inline constexpr const char* kRuleRetired = "retired";
inline constexpr const char* kRuleFormat = "output.formats";
inline constexpr const char* kRuleEncryption = "output.encryption_required";
inline constexpr const char* kRulePublicKey = "recipient.public_key";
inline constexpr const char* kRuleMaxRows = "output.max_rows";
inline constexpr const char* kRulePerDay = "limits.extracts_per_day_per_recipient";
inline constexpr const char* kRuleAggregates = "aggregates";
inline constexpr const char* kRuleBudget = "aggregates.budget";

struct Refusal {
    std::string rule;
    std::string message;
};

struct AuthorizationFacts {
    std::string principal;  // the partner's name
    // Names (without "group:") of the recipient groups the partner is a member of, read from the
    // database for this request (auth::groupsOfPrincipal), so membership changes apply at once.
    std::vector<std::string> groups;
    bool hasPublicKey = false;
    bool policyRetired = false;
    int64_t nowMicros = 0;       // Unix time, microseconds
    uint64_t extractsToday = 0;  // this recipient's extracts of this policy since 00:00 UTC
};

// The rules every release channel shares, in the order: recipient (named, or a member of a named
// group), retired, purpose, validity. nullopt = allowed so far.
std::optional<Refusal> authorizeAccess(const policies::PolicyModel& policy, std::string_view purpose,
                                       const AuthorizationFacts& facts);

// The first rule the request breaks, in the order: recipient (named, or a member of a named group),
// retired, purpose, validity, format, encryption (and the partner's key), daily limit. nullopt =
// allowed so far (the row limit is checked once the source has counted the rows: refuseRowCount).
std::optional<Refusal> authorizeExtract(const policies::PolicyModel& policy, const ExtractRequest& request,
                                        const AuthorizationFacts& facts);

// The row limit, once the number of selected rows is known.
std::optional<Refusal> refuseRowCount(const policies::PolicyModel& policy, uint64_t selectedRows);

// "2026-11-27T21:00:00Z" for microseconds since the epoch.
std::string isoTimeMicros(int64_t micros);

}  // namespace custodian::release
