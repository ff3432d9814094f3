#include "gateway/audit/entry.hpp"

namespace custodian::audit {

using json::JsonValue;

namespace {

JsonValue text(const std::string& s) { return json::sanitizeUtf8(s); }
JsonValue optionalText(const std::optional<std::string>& s) { return s ? text(*s) : JsonValue(); }

}  // namespace

JsonValue entryToJson(const AuditEntry& e) {
    return JsonValue::Object{
        {"action", text(e.action)},
        {"actor", text(e.actor)},
        {"client_address", text(e.clientAddress)},
        {"decision", text(e.decision)},
        {"details", e.details},
        {"index", e.index},
        {"purpose", optionalText(e.purpose)},
        {"reason", optionalText(e.reason)},
        {"request_id", text(e.requestId)},
        {"role", text(e.role)},
        {"target",
         JsonValue::Object{
             {"dataset", optionalText(e.target.dataset)},
             {"policy", optionalText(e.target.policy)},
             {"policy_version", e.target.policyVersion ? JsonValue(*e.target.policyVersion) : JsonValue()},
             {"source", optionalText(e.target.source)},
         }},
        {"time_ms", e.timeMs},
    };
}

namespace {

Status readString(const JsonValue& obj, const char* name, std::string& out, const char* where) {
    const JsonValue* v = obj.find(name);
    if (v == nullptr || !v->isString()) return invalidArgument(std::string(where) + name + ": must be a string");
    out = v->asString();
    return Status::ok();
}

Status readOptionalString(const JsonValue& obj, const char* name, std::optional<std::string>& out, const char* where) {
    const JsonValue* v = obj.find(name);
    if (v == nullptr) return invalidArgument(std::string(where) + name + ": missing (use null)");
    if (v->isNull()) {
        out.reset();
        return Status::ok();
    }
    if (!v->isString()) return invalidArgument(std::string(where) + name + ": must be a string or null");
    out = v->asString();
    return Status::ok();
}

}  // namespace

Result<AuditEntry> entryFromJson(const JsonValue& json) {
    if (!json.isObject()) return invalidArgument("entry: must be an object");
    AuditEntry e;
    const char* w = "entry.";
    const JsonValue* index = json.find("index");
    if (index == nullptr || !index->isInteger() || !index->fitsUint64()) {
        return invalidArgument("entry.index: must be a non-negative integer");
    }
    e.index = index->asUint64();
    const JsonValue* time = json.find("time_ms");
    if (time == nullptr || !time->isInteger() || !time->fitsInt64()) {
        return invalidArgument("entry.time_ms: must be an integer");
    }
    e.timeMs = time->asInt64();
    for (auto [name, field] : {std::pair{"action", &e.action},
                               {"actor", &e.actor},
                               {"client_address", &e.clientAddress},
                               {"decision", &e.decision},
                               {"request_id", &e.requestId},
                               {"role", &e.role}}) {
        if (auto st = readString(json, name, *field, w); !st) return st;
    }
    if (auto st = readOptionalString(json, "purpose", e.purpose, w); !st) return st;
    if (auto st = readOptionalString(json, "reason", e.reason, w); !st) return st;
    const JsonValue* details = json.find("details");
    if (details == nullptr || !details->isObject()) return invalidArgument("entry.details: must be an object");
    e.details = *details;
    const JsonValue* target = json.find("target");
    if (target == nullptr || !target->isObject()) return invalidArgument("entry.target: must be an object");
    const char* tw = "entry.target.";
    if (auto st = readOptionalString(*target, "source", e.target.source, tw); !st) return st;
    if (auto st = readOptionalString(*target, "dataset", e.target.dataset, tw); !st) return st;
    if (auto st = readOptionalString(*target, "policy", e.target.policy, tw); !st) return st;
    const JsonValue* version = target->find("policy_version");
    if (version == nullptr) return invalidArgument("entry.target.policy_version: missing (use null)");
    if (!version->isNull()) {
        if (!version->isInteger() || !version->fitsInt64()) {
            return invalidArgument("entry.target.policy_version: must be an integer or null");
        }
        e.target.policyVersion = version->asInt64();
    }
    return e;
}

Result<std::string> canonicalEntryBytes(const AuditEntry& entry) {
    auto bytes = json::canonicalJson(entryToJson(entry));
    if (!bytes) return bytes.status().withContext("audit entry " + std::to_string(entry.index));
    return bytes;
}

Result<Hash> entryLeafHash(const AuditEntry& entry) {
    auto bytes = canonicalEntryBytes(entry);
    if (!bytes) return bytes.status();
    return leafHash(crypto::asBytes(*bytes));
}

}  // namespace custodian::audit
