#include "gateway/release/authorization.hpp"

#include <algorithm>

#include "anonymizer/value.hpp"
#include "json/canonical.hpp"

namespace custodian::release {

Result<ExtractRequest> parseExtractRequest(std::string_view body) {
    auto json = json::parseJson(body);
    if (!json) return invalidArgument("the request body is not valid JSON: " + json.status().message());
    if (!json->isObject()) return invalidArgument("the request body must be a JSON object");
    ExtractRequest request;
    auto text = [&](const char* name, bool required, std::string& out) -> Status {
        const json::JsonValue* v = json->find(name);
        if (!v) return required ? invalidArgument(std::string("\"") + name + "\" is required") : Status::ok();
        if (!v->isString() || v->asString().empty())
            return invalidArgument(std::string("\"") + name + "\" must be a non-empty string");
        if (v->asString().size() > 256) return invalidArgument(std::string("\"") + name + "\" is too long");
        out = v->asString();
        return Status::ok();
    };
    for (const auto& [name, value] : json->asObject()) {
        if (name != "dataset" && name != "policy" && name != "purpose" && name != "format" && name != "encryption")
            return invalidArgument("unknown member \"" + json::sanitizeUtf8(name) +
                                   "\"; an extract request has dataset, policy, purpose, format and encryption");
    }
    if (Status s = text("dataset", true, request.dataset); !s) return s;
    if (Status s = text("policy", true, request.policy); !s) return s;
    if (Status s = text("purpose", true, request.purpose); !s) return s;
    std::string format = "csv", encryption = "sealed";
    if (Status s = text("format", false, format); !s) return s;
    if (Status s = text("encryption", false, encryption); !s) return s;
    auto parsed = parseFormat(format);
    if (!parsed) return invalidArgument("\"format\" must be \"csv\" or \"ndjson\"");
    request.format = *parsed;
    if (encryption != "sealed" && encryption != "none")
        return invalidArgument("\"encryption\" must be \"sealed\" or \"none\"");
    request.encrypted = encryption == "sealed";
    return request;
}

std::string isoTimeMicros(int64_t micros) {
    std::string out;
    anon::appendTimestamp(out, micros);
    return out;
}

std::optional<Refusal> authorizeAccess(const policies::PolicyModel& policy, std::string_view purpose,
                                       const AuthorizationFacts& facts) {
    if (!policy.allowsRecipient(facts.principal, facts.groups))
        return Refusal{kRuleRecipient, "'" + facts.principal +
                                           "' is not a recipient of this policy (neither named in it nor a member "
                                           "of a group it names)"};
    if (facts.policyRetired) return Refusal{kRuleRetired, "the policy is retired; nothing may be released under it"};
    if (!policy.allowsPurpose(purpose))
        return Refusal{kRulePurpose, "the purpose '" + json::sanitizeUtf8(purpose) + "' is not allowed by this policy"};
    if (policy.validity.notBefore && facts.nowMicros < *policy.validity.notBefore)
        return Refusal{kRuleNotBefore, "the policy is not valid before " + isoTimeMicros(*policy.validity.notBefore)};
    if (policy.validity.expires && facts.nowMicros >= *policy.validity.expires)
        return Refusal{kRuleExpires, "the policy expired at " + isoTimeMicros(*policy.validity.expires)};
    return std::nullopt;
}

std::optional<Refusal> authorizeExtract(const policies::PolicyModel& policy, const ExtractRequest& request,
                                        const AuthorizationFacts& facts) {
    if (auto refusal = authorizeAccess(policy, request.purpose, facts)) return refusal;
    const auto wanted =
        request.format == ExtractFormat::Csv ? policies::OutputFormat::Csv : policies::OutputFormat::Ndjson;
    if (std::find(policy.output.formats.begin(), policy.output.formats.end(), wanted) == policy.output.formats.end())
        return Refusal{kRuleFormat,
                       std::string("the format '") + formatName(request.format) + "' is not allowed by this policy"};
    if (!request.encrypted && policy.output.encryptionRequired)
        return Refusal{kRuleEncryption, "this policy requires encrypted extracts"};
    if (request.encrypted && !facts.hasPublicKey)
        return Refusal{kRulePublicKey,
                       "'" + facts.principal + "' has no registered X25519 public key to seal the extract to"};
    if (policy.extractsPerDayPerRecipient && facts.extractsToday >= *policy.extractsPerDayPerRecipient)
        return Refusal{kRulePerDay, "the limit of " + std::to_string(*policy.extractsPerDayPerRecipient) +
                                        " extracts per day under this policy is reached"};
    return std::nullopt;
}

std::optional<Refusal> refuseRowCount(const policies::PolicyModel& policy, uint64_t selectedRows) {
    if (policy.output.maxRows && selectedRows > *policy.output.maxRows)
        return Refusal{kRuleMaxRows, "the policy allows at most " + std::to_string(*policy.output.maxRows) +
                                         " rows per extract; it selects " + std::to_string(selectedRows)};
    return std::nullopt;
}

}  // namespace custodian::release
