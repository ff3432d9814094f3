#pragma once
// What the catalog's route files (sources, datasets, policies, the partner catalog) share: the
// opening of every handler (openCatalogCall), the JSON writer of their responses, the audit entries
// of their changes and refusals, and the small request helpers.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/connection>

#include "anonymizer/status.hpp"
#include "json/writer.hpp"
#include "gateway/api/router.hpp"
#include "gateway/api/services.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/catalog/source_access.hpp"
#include "gateway/catalog/store.hpp"
#include "json/canonical.hpp"
#include "gateway/db/guarded.hpp"
#include "policies/policy.hpp"

namespace custodian::api {

// The opening every catalog handler shares: the catalog's services are configured and the caller
// is authenticated. Unavailable (503) or Unauthenticated otherwise.
struct CatalogCall {
    RequestContext& ctx;
    const auth::Principal& who;
    const catalog::Catalog& catalog;
};
Result<CatalogCall> openCatalogCall(RequestContext& ctx);

// {"error":{"code":..., "message":..., "details":[{"pointer":..., "message":...}]}} with 422.
HttpResponse validationFailure(std::string_view code, std::string_view message,
                               const policies::ValidationErrors& errors);

// The request's audit entry under `action` with the catalog objects it concerns.
audit::AuditEntry entryWith(const RequestContext& ctx, const std::string& action, const std::string& decision,
                            const std::optional<std::string>& source, const std::optional<std::string>& dataset,
                            const std::optional<std::string>& policy);
// The audit hook of store changes: appends an "allowed" entry; its failure rolls the change back.
catalog::BeforeCommit auditChange(RequestContext& ctx);
// Records a scoping refusal as a denied `action`; fails (503) if the log cannot take it.
Status recordDenial(RequestContext& ctx, const std::string& action, const Status& refusal,
                    const std::optional<std::string>& source, const std::optional<std::string>& dataset,
                    const std::optional<std::string>& policy);
// Records a scoping refusal and returns it — or the audit log's 503 if the refusal cannot be
// recorded (nothing was changed or shown either way).
Status denied(RequestContext& ctx, const std::string& action, Status refusal, const std::optional<std::string>& source,
              const std::optional<std::string>& dataset, const std::optional<std::string>& policy);

// The connect timeout for probing agency databases.
std::chrono::seconds probeTimeout(const RequestContext& ctx);
// How this request reaches agency databases: the configured endpoint rules and the identity of
// the gateway's own database, read now on the gateway's own connection (any role may read it).
Result<catalog::SourceAccess> sourceAccessFor(RequestContext& ctx);
// A source rule's refusal (source_access.hpp): 422 {"error":{"code":"source_refused","message":...,
// "details":{"rule":...}}}, audited as a denied `action` like the scope refusals.
Result<HttpResponse> sourceRefused(RequestContext& ctx, const std::string& action, const Status& refusal,
                                   const std::optional<std::string>& source, const std::optional<std::string>& dataset);

// The body as a JSON object (parsed iteratively: no recursion on deep input).
Result<rapidjson::Document> parseBody(const RequestContext& ctx);
// The member `name` of `object`, or null.
const rapidjson::Value* member(const rapidjson::Value& object, const char* name);

template <typename T>
Result<T> withConnection(RequestContext& ctx, const std::function<Result<T>(pqxx::connection&)>& work) {
    return db::resultOnConnection<T>(*ctx.services.db, work);
}

std::string nowIso();
std::optional<std::string> isoFromMicros(const std::optional<int64_t>& micros);
int64_t nowMicros();

Status validateAgency(const std::string& agency);

}  // namespace custodian::api
