#include "gateway/api/audit_routes.hpp"

#include <algorithm>
#include <charconv>
#include <set>
#include <string>

#include "gateway/audit/log.hpp"
#include "json/writer.hpp"
#include "gateway/api/record.hpp"
#include "gateway/audit/verifier.hpp"
#include "json/canonical.hpp"
#include "gateway/api/services.hpp"

namespace custodian::api {

using http::HttpResponse;

namespace {

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 1000;
constexpr uint64_t kExportChunkEntries = 2000;

// Rejects query parameters the route does not know, so a typo ("datset=") is an error instead
// of a silently unfiltered answer.
Status checkQueryNames(const http::HttpRequest& request, const std::set<std::string, std::less<>>& known) {
    std::string_view q = request.query;
    while (!q.empty()) {
        const size_t amp = q.find('&');
        std::string_view pair = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        if (pair.empty()) continue;
        auto name = http::percentDecode(pair.substr(0, pair.find('=')), true);
        if (!name) return invalidArgument("query: " + name.status().message());
        if (!known.contains(*name)) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            return invalidArgument("unknown query parameter " + json::quoted(json::sanitizeUtf8(*name)) +
                                   " (allowed: " + list + ")");
        }
    }
    return Status::ok();
}

Result<std::optional<uint64_t>> uintParam(const RequestContext& ctx, const char* name) {
    auto v = ctx.request.queryParam(name);
    if (!v) return std::optional<uint64_t>();
    uint64_t out = 0;
    const char* end = v->data() + v->size();
    auto r = std::from_chars(v->data(), end, out);
    if (v->empty() || r.ec != std::errc() || r.ptr != end || out > static_cast<uint64_t>(INT64_MAX))
        return invalidArgument(std::string(name) + ": must be a non-negative integer, got " +
                               json::quoted(json::sanitizeUtf8(*v)));
    return std::optional<uint64_t>(out);
}

Result<uint64_t> requiredUint(const RequestContext& ctx, const char* name) {
    auto v = uintParam(ctx, name);
    if (!v) return v.status();
    if (!*v) return invalidArgument(std::string(name) + ": required");
    return **v;
}

void writeHashes(json::JsonOut& out, std::string_view name, const std::vector<audit::Hash>& hashes) {
    out.beginArray(name);
    for (const auto& h : hashes) out.hex(h);
    out.endArray();
}

audit::AuditLog* logOf(const RequestContext& ctx) { return ctx.services.audit; }

// Records the auditor's own access before answering: reading the log is an access too.
Status recordAccess(RequestContext& ctx, const char* action, json::JsonValue::Object details) {
    audit::AuditEntry e = entryFor(ctx, action, "allowed");
    e.details = std::move(details);
    auto index = record(ctx, std::move(e));
    return index ? Status::ok() : index.status();
}

Result<HttpResponse> handleQuery(RequestContext& ctx) {
    audit::AuditLog* log = logOf(ctx);
    if (!log) return unavailable("the audit log is not available");
    if (Status s = checkQueryNames(ctx.request,
                                   {"actor", "role", "dataset", "action", "decision", "from", "to", "cursor", "limit"});
        !s)
        return s;
    audit::AuditQuery q;
    json::JsonValue::Object filters;
    for (auto [name, field] : {std::pair{"actor", &q.actor},
                               {"role", &q.role},
                               {"dataset", &q.dataset},
                               {"action", &q.action},
                               {"decision", &q.decision}}) {
        auto v = ctx.request.queryParam(name);
        if (!v) continue;
        if (v->empty()) return invalidArgument(std::string(name) + ": must not be empty");
        *field = *v;
        filters.emplace(name, json::sanitizeUtf8(*v));
    }
    for (auto [name, field] : {std::pair{"from", &q.fromMs}, {"to", &q.toMs}}) {
        auto v = ctx.request.queryParam(name);
        if (!v) continue;
        auto ms = parseRfc3339Ms(*v);
        if (!ms) return ms.status().withContext(name);
        *field = *ms;
        filters.emplace(name, json::sanitizeUtf8(*v));
    }
    if (q.fromMs && q.toMs && *q.fromMs > *q.toMs) return invalidArgument("from: must not be later than to");
    auto cursor = uintParam(ctx, "cursor");
    if (!cursor) return cursor.status();
    q.after = *cursor;
    auto limit = uintParam(ctx, "limit");
    if (!limit) return limit.status();
    q.limit = kDefaultLimit;
    if (*limit) {
        if (**limit < 1 || **limit > kMaxLimit)
            return invalidArgument("limit: must be between 1 and " + std::to_string(kMaxLimit) + ", got " +
                                   std::to_string(**limit));
        q.limit = static_cast<size_t>(**limit);
    }
    if (*cursor) filters.emplace("cursor", **cursor);
    if (Status s = recordAccess(ctx, "audit.query", std::move(filters)); !s) return s;

    auto page = log->query(q);
    if (!page) return page.status();
    json::JsonOut out;
    out.beginObject().beginArray("entries");
    for (const audit::StoredEntry& e : page->entries) {
        out.beginObject();
        // The stored canonical bytes are JSON; they are returned verbatim so the auditor can hash
        // them. A row that is no longer JSON (tampering) is returned as a string instead.
        if (e.parsed || json::parseJson(e.canonicalBytes).isOk()) out.raw("entry", e.canonicalBytes);
        else out.field("entry", e.canonicalBytes);
        out.key("index").uint(e.index);
        out.key("leaf_hash").hex(e.leafHash);
        out.endObject();
    }
    out.endArray().optional("next_cursor", page->nextCursor).endObject();
    return HttpResponse::json(200, out.text());
}

// Streams the log as it stood when the export started: every stored tree head, and the entries
// below max(largest head size, largest index + 1), in index order, each head right after the
// entries it covers. Entries and heads are written exactly as stored (bytes and recorded leaf
// hashes) so that the verifier sees any tampering.
class AuditExportProducer : public http::BodyProducer {
public:
    AuditExportProducer(audit::AuditLog& log, uint64_t bound, std::vector<audit::SignedTreeHead> heads)
        : log_(log), bound_(bound), heads_(std::move(heads)) {}

    Result<std::optional<std::string>> nextChunk() override {
        if (next_ >= bound_) {
            if (nextHead_ == heads_.size()) return std::optional<std::string>();
            std::string chunk;
            emitHeads(UINT64_MAX, chunk);
            return std::optional<std::string>(std::move(chunk));
        }
        const uint64_t to = std::min(bound_, next_ + kExportChunkEntries);
        auto rows = log_.entriesInRange(next_, to);
        if (!rows) return rows.status();
        std::string chunk;
        chunk.reserve(rows->size() * 420);
        for (const audit::StoredEntry& e : *rows) {
            emitHeads(e.index, chunk);  // heads covering only earlier entries
            chunk += audit::exportEntryLine(e.canonicalBytes, e.leafHash);
            chunk += '\n';
        }
        next_ = to;
        emitHeads(to, chunk);
        return std::optional<std::string>(std::move(chunk));
    }

    void clientGone(const std::string&) override {}

private:
    void emitHeads(uint64_t coveredSize, std::string& out) {
        while (nextHead_ < heads_.size() && heads_[nextHead_].head.treeSize <= coveredSize) {
            out += audit::exportTreeHeadLine(heads_[nextHead_++]);
            out += '\n';
        }
    }

    audit::AuditLog& log_;
    uint64_t bound_;
    std::vector<audit::SignedTreeHead> heads_;
    uint64_t next_ = 0;
    size_t nextHead_ = 0;
};

Result<HttpResponse> handleExport(RequestContext& ctx) {
    audit::AuditLog* log = logOf(ctx);
    if (!log) return unavailable("the audit log is not available");
    if (Status s = checkQueryNames(ctx.request, {}); !s) return s;
    if (Status s = recordAccess(ctx, "audit.export", {}); !s) return s;
    // Cover everything recorded so far (this export's own entry included) with a fresh head: the
    // export promises it. If that cannot be done (database lost, a lock held elsewhere, the log no
    // longer matching its signed heads) the export fails with the reason instead of going out with
    // less than it promises.
    if (auto head = log->signTreeHead(); !head) return head.status();
    auto heads = log->treeHeads(UINT64_MAX);
    if (!heads) return heads.status();
    auto stored = log->storedBound();
    if (!stored) return stored.status();
    uint64_t bound = *stored;
    if (!heads->empty()) bound = std::max(bound, heads->back().head.treeSize);
    auto producer = std::make_shared<AuditExportProducer>(*log, bound, std::move(heads).value());
    HttpResponse r = HttpResponse::streaming(200, "application/x-ndjson", std::move(producer));
    r.setHeader("Content-Disposition", "attachment; filename=\"custodian-audit.ndjson\"");
    r.setHeader("Cache-Control", "no-store");
    return r;
}

Result<HttpResponse> handleTreeHead(RequestContext& ctx) {
    audit::AuditLog* log = logOf(ctx);
    if (!log) return unavailable("the audit log is not available");
    if (Status s = checkQueryNames(ctx.request, {}); !s) return s;
    // Any head stored before this request began is in the answer; the group commit that records
    // the access usually observed the latest head already, which saves a query per request.
    const auto began = std::chrono::steady_clock::now();
    if (Status s = recordAccess(ctx, "audit.tree_head", {}); !s) return s;
    auto head = log->latestTreeHeadSince(began);
    if (!head && head.status().code() == StatusCode::NotFound) head = log->signTreeHead();
    if (!head) return head.status();
    auto body = json::canonicalJson(audit::treeHeadToJson(*head));
    if (!body) return body.status();
    HttpResponse r = HttpResponse::json(200, std::move(body).value());
    r.setHeader("Cache-Control", "no-store");
    return r;
}

Result<HttpResponse> handleInclusion(RequestContext& ctx) {
    audit::AuditLog* log = logOf(ctx);
    if (!log) return unavailable("the audit log is not available");
    if (Status s = checkQueryNames(ctx.request, {"index", "tree_size"}); !s) return s;
    auto index = requiredUint(ctx, "index");
    if (!index) return index.status();
    auto size = requiredUint(ctx, "tree_size");
    if (!size) return size.status();
    if (*size == 0) return invalidArgument("tree_size: must be at least 1");
    if (*index >= *size)
        return invalidArgument("index: " + std::to_string(*index) + " is not in a tree of size " +
                               std::to_string(*size) + " (need index < tree_size)");
    // Recorded once the proof exists: a proof that cannot be given (a tree larger than the log:
    // 404) is recorded as denied by handleRequest, not as allowed.
    auto proof = log->inclusionProof(*index, *size);
    if (!proof) return proof.status();
    if (Status s = recordAccess(ctx, "audit.proof.inclusion", {{"index", *index}, {"tree_size", *size}}); !s) return s;
    json::JsonOut out;
    out.beginObject();
    writeHashes(out, "audit_path", proof->path);
    out.key("index").uint(proof->index);
    out.key("leaf_hash").hex(proof->leafHash);
    out.key("root_hash").hex(proof->rootHash);
    out.key("tree_size").uint(proof->treeSize).endObject();
    return HttpResponse::json(200, out.text());
}

Result<HttpResponse> handleConsistency(RequestContext& ctx) {
    audit::AuditLog* log = logOf(ctx);
    if (!log) return unavailable("the audit log is not available");
    if (Status s = checkQueryNames(ctx.request, {"first", "second"}); !s) return s;
    auto first = requiredUint(ctx, "first");
    if (!first) return first.status();
    auto second = requiredUint(ctx, "second");
    if (!second) return second.status();
    if (*first == 0) return invalidArgument("first: must be at least 1");
    if (*first > *second)
        return invalidArgument("first: " + std::to_string(*first) + " is larger than second (" +
                               std::to_string(*second) + ")");
    auto proof = log->consistencyProof(*first, *second);  // recorded once it exists, as above
    if (!proof) return proof.status();
    if (Status s = recordAccess(ctx, "audit.proof.consistency", {{"first", *first}, {"second", *second}}); !s) return s;
    json::JsonOut out;
    out.beginObject();
    writeHashes(out, "consistency_path", proof->path);
    out.key("first").uint(proof->first);
    out.key("first_root").hex(proof->firstRoot);
    out.key("second").uint(proof->second);
    out.key("second_root").hex(proof->secondRoot);
    out.endObject();
    return HttpResponse::json(200, out.text());
}

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t daysFromCivil(int y, int m, int d) {
    y -= m <= 2 ? 1 : 0;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

}  // namespace

Result<int64_t> parseRfc3339Ms(std::string_view s) {
    const auto bad = [&](const std::string& why) {
        return invalidArgument("not an RFC 3339 date-time (" + why + "): " + json::quoted(json::sanitizeUtf8(s)) +
                               "; example: 2026-11-27T21:00:00Z");
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
        !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) ||
        s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second))
        return bad("expected YYYY-MM-DDTHH:MM:SS");
    static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12) return bad("month out of range");
    if (day < 1 || day > kDays[month - 1] || (month == 2 && day == 29 && !leap)) return bad("day out of range");
    if (hour > 23 || minute > 59 || second > 60) return bad("time out of range");
    if (second == 60) second = 59;  // a leap second is clamped to the second before it
    size_t pos = 19;
    int64_t millis = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        size_t n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 3) millis = millis * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0) return bad("no digits after the decimal point");
        for (size_t i = n; i < 3; ++i) millis *= 10;
    }
    int64_t offsetMinutes = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh = 0, om = 0;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om) ||
            oh > 23 || om > 59)
            return bad("offset must be Z or ±HH:MM");
        offsetMinutes = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
        pos += 6;
    } else {
        return bad("missing time zone offset (Z or ±HH:MM)");
    }
    if (pos != s.size()) return bad("unexpected characters after the offset");
    const int64_t secs =
        daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
    return secs * 1000 + millis;
}

std::vector<Route> auditRoutes() {
    using auth::Role;
    const Access auditors = Access::only({Role::Auditor});
    // method  pattern  who  handler  inline  audit action
    return {
        {"GET", "/v1/audit", auditors, handleQuery, false, "audit.query"},
        {"GET", "/v1/audit/export", auditors, handleExport, false, "audit.export"},
        {"GET", "/v1/audit/tree-head", auditors, handleTreeHead, false, "audit.tree_head"},
        {"GET", "/v1/audit/proof/inclusion", auditors, handleInclusion, false, "audit.proof.inclusion"},
        {"GET", "/v1/audit/proof/consistency", auditors, handleConsistency, false, "audit.proof.consistency"},
    };
}

}  // namespace custodian::api
