#include "gateway/api/transparency_routes.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "gateway/api/catalog_request.hpp"
#include "gateway/api/console_routes.hpp"
#include "gateway/api/services.hpp"
#include "gateway/audit/integrity.hpp"
#include "gateway/audit/log.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/auth/principals.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/catalog/store.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/http/errors.hpp"
#include "policies/policy_model.hpp"
#include "json/writer.hpp"

namespace custodian::api {
namespace {

using Transparency = policies::PolicyModel::Transparency;

// One extract.completed entry the register counts, with its proof against the register's head.
struct CountedRelease {
    uint64_t index = 0;
    uint64_t rows = 0;
    audit::Hash leafHash{};
    std::vector<audit::Hash> path;
};

// Releases of one calendar month (UTC), as indices into Register::releases.
struct MonthRow {
    uint64_t releases = 0;
    uint64_t rows = 0;
    std::vector<size_t> entries;
};
using Months = std::map<std::string, MonthRow>;  // "2026-12" → row, in calendar order

struct PolicyRow {
    std::string name;
    int32_t describedBy = 0;  // the public version whose purposes are shown (the latest)
    std::vector<std::string> purposes;
    std::set<std::string> recipients;  // organisations that received a counted release
    Months months;
};

struct DatasetRow {
    std::string name, agency, description;
    uint64_t releases = 0, rows = 0;
    std::map<std::string, PolicyRow> policies;  // public policies, by name
    Months other;                               // releases under `summary` versions, unnamed
};

struct Register {
    std::optional<audit::SignedTreeHead> head;
    std::string publicKey;  // base64, as GET /v1/keys
    std::vector<CountedRelease> releases;
    std::vector<DatasetRow> datasets;
    std::map<uint64_t, size_t> byIndex;  // audit index → releases[i]
};

// What a stored policy version declares for the register. Parsed from the stored document, so an
// old version that no longer loads against its dataset still says how its releases are shown.
struct VersionFacts {
    Transparency transparency = Transparency::Summary;
    std::vector<std::string> purposes;
};

VersionFacts versionFacts(const std::string& document) {
    VersionFacts facts;
    rapidjson::Document doc;
    doc.Parse(document.c_str(), document.size());
    if (doc.HasParseError() || !doc.IsObject()) return facts;
    if (auto t = doc.FindMember("transparency"); t != doc.MemberEnd() && t->value.IsString())
        facts.transparency = policies::transparencyFromName(t->value.GetString()).value_or(Transparency::Summary);
    if (auto p = doc.FindMember("purposes"); p != doc.MemberEnd() && p->value.IsArray())
        for (const auto& v : p->value.GetArray())
            if (v.IsString()) facts.purposes.emplace_back(v.GetString(), v.GetStringLength());
    return facts;
}

// A time in UTC, formatted with strftime's `format`.
std::string utcText(uint64_t timeMs, const char* format) {
    const std::time_t seconds = static_cast<std::time_t>(timeMs / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char out[64];
    return std::string(out, std::strftime(out, sizeof out, format, &tm));
}

std::string monthOf(int64_t timeMs) { return utcText(static_cast<uint64_t>(std::max<int64_t>(timeMs, 0)), "%Y-%m"); }

// How a partner appears: its agency, never its principal name (which may name a person).
std::string organisationOf(const std::map<std::string, std::string>& agencies, const std::string& actor) {
    auto it = agencies.find(actor);
    if (it == agencies.end() || it->second.empty()) return "a partner without a declared organisation";
    return it->second;
}

void count(Months& months, const std::string& month, size_t release, uint64_t rows) {
    MonthRow& row = months[month];
    ++row.releases;
    row.rows += rows;
    row.entries.push_back(release);
}

Result<std::shared_ptr<const Register>> buildRegister(RequestContext& ctx, audit::AuditLog& log,
                                                      std::optional<audit::SignedTreeHead> head) {
    auto reg = std::make_shared<Register>();
    reg->head = head;
    if (const crypto::SigningKey* key = ctx.services.signingKey) reg->publicKey = crypto::toBase64(key->publicKey());
    const catalog::Catalog* catalog = ctx.services.catalog;
    if (!catalog) return unavailable("the catalog is not configured");

    // The catalog side: datasets, every policy version's declaration, partners' agencies.
    struct Catalog {
        std::vector<catalog::Dataset> datasets;
        std::map<std::pair<std::string, std::string>, std::map<int32_t, VersionFacts>> versions;
        std::map<std::string, std::string> agencies;
    };
    auto read = withConnection<Catalog>(ctx, [&](pqxx::connection& conn) -> Result<Catalog> {
        Catalog c;
        auto names = catalog::listDatasetPolicies(conn, std::nullopt);
        if (!names) return names.status();
        for (const auto& entry : *names) {
            auto d = catalog->loadDataset(conn, entry.dataset);
            if (d) c.datasets.push_back(std::move(d).value());
            else if (d.status().code() != StatusCode::NotFound) return d.status();
        }
        auto versions = catalog::listPolicyVersions(conn);
        if (!versions) return versions.status();
        for (const auto& v : *versions) c.versions[{v.dataset, v.policy}][v.version] = versionFacts(v.document);
        auto principals = auth::listPrincipals(conn);
        if (!principals) return principals.status();
        for (const auto& p : *principals) c.agencies[p.name] = p.agency;
        return c;
    });
    if (!read) return read.status();

    // Listed: a dataset one of whose policies' current version is not private, and any dataset with
    // a counted release (a release made public stays public).
    std::map<std::string, DatasetRow> datasets;
    std::set<std::string> listed;
    for (const auto& d : read->datasets) {
        for (const auto& [key, versions] : read->versions)
            if (key.first == d.name && !versions.empty() &&
                versions.rbegin()->second.transparency != Transparency::Private)
                listed.insert(d.name);
        DatasetRow row;
        row.name = d.name;
        row.agency = d.agency;
        row.description = d.descriptionText;
        for (const auto& [key, versions] : read->versions) {
            if (key.first != d.name) continue;
            for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
                if (it->second.transparency != Transparency::Public) continue;
                PolicyRow& p = row.policies[key.second];
                p.name = key.second;
                p.describedBy = it->first;
                p.purposes = it->second.purposes;
                break;
            }
        }
        datasets.emplace(d.name, std::move(row));
    }

    // The releases: completed extracts covered by the head, classified by their policy version.
    const uint64_t size = head ? head->head.treeSize : 0;
    audit::AuditQuery q;
    q.action = "extract.completed";
    q.decision = "completed";
    q.limit = 1000;
    bool more = size > 0;
    while (more) {
        auto page = log.query(q);
        if (!page) return page.status();
        for (const audit::StoredEntry& e : page->entries) {
            if (e.index >= size) {
                more = false;
                break;
            }
            if (!e.parsed)
                return unavailable("audit entry " + std::to_string(e.index) +
                                   " no longer parses; the register is "
                                   "not shown until the log is checked");
            const audit::AuditEntry& entry = e.entry;
            const auto& t = entry.target;
            if (!t.dataset || !t.policy || !t.policyVersion) continue;
            auto ds = datasets.find(*t.dataset);
            auto versions = read->versions.find({*t.dataset, *t.policy});
            if (ds == datasets.end() || versions == read->versions.end()) continue;
            auto version = versions->second.find(static_cast<int32_t>(*t.policyVersion));
            if (version == versions->second.end() || version->second.transparency == Transparency::Private) continue;

            CountedRelease release;
            release.index = e.index;
            if (const json::JsonValue* rows = entry.details.find("rows_released"); rows && rows->fitsUint64())
                release.rows = rows->asUint64();
            // The leaf the register vouches for is the hash of the bytes it just counted; its proof
            // (below) must lead from that very leaf to the signed root.
            release.leafHash = audit::leafHash(crypto::ByteView(
                reinterpret_cast<const unsigned char*>(e.canonicalBytes.data()), e.canonicalBytes.size()));
            const size_t at = reg->releases.size();
            reg->byIndex[e.index] = at;
            reg->releases.push_back(std::move(release));

            DatasetRow& row = ds->second;
            const uint64_t rows = reg->releases[at].rows;
            ++row.releases;
            row.rows += rows;
            const std::string month = monthOf(entry.timeMs);
            if (version->second.transparency == Transparency::Public) {
                PolicyRow& p = row.policies[*t.policy];
                if (p.name.empty()) {  // no current public version: described by this one
                    p.name = *t.policy;
                    p.describedBy = version->first;
                    p.purposes = version->second.purposes;
                }
                p.recipients.insert(organisationOf(read->agencies, entry.actor));
                count(p.months, month, at, rows);
            } else {
                count(row.other, month, at, rows);
            }
        }
        if (!page->nextCursor) break;
        q.after = page->nextCursor;
    }
    // One proof per counted release, all in the head's tree, each older block of leaves read once.
    std::vector<uint64_t> indices;
    indices.reserve(reg->releases.size());
    for (const auto& r : reg->releases) indices.push_back(r.index);
    if (!indices.empty()) {
        auto proofs = log.inclusionProofs(indices, size);
        if (!proofs) return proofs.status();
        for (size_t i = 0; i < proofs->size(); ++i) {
            CountedRelease& release = reg->releases[i];
            if ((*proofs)[i].leafHash != release.leafHash)
                return unavailable("audit entry " + std::to_string(release.index) +
                                   " differs from the tree the gateway signed; the register is not shown");
            release.path = std::move((*proofs)[i].path);
        }
    }
    for (auto& [name, row] : datasets)
        if (listed.contains(name) || row.releases > 0) reg->datasets.push_back(std::move(row));
    return std::shared_ptr<const Register>(std::move(reg));
}

// The register is rebuilt when a new tree head is signed (the catalog changes it shows are audit
// entries too, so they arrive with a head) and shared between requests meanwhile: a public route
// must not cost a read of the log per request.
Result<std::shared_ptr<const Register>> currentRegister(RequestContext& ctx) {
    audit::AuditLog* log = ctx.services.audit;
    if (!log) return unavailable("the audit log is not available");
    std::optional<audit::SignedTreeHead> head;
    auto latest = log->latestTreeHead();
    if (latest) head = std::move(latest).value();
    else if (latest.status().code() != StatusCode::NotFound) return latest.status();

    struct Cached {
        const Services* services = nullptr;
        std::optional<audit::SignedTreeHead> head;
        std::shared_ptr<const Register> reg;
    };
    static std::mutex mutex;       // guards `cached`
    static std::mutex buildMutex;  // one build at a time: requests that arrive meanwhile share it
    static Cached cached;
    auto lookup = [&]() -> std::shared_ptr<const Register> {
        std::lock_guard lock(mutex);
        if (cached.reg && cached.services == &ctx.services && cached.head == head) return cached.reg;
        return nullptr;
    };
    if (auto reg = lookup()) return reg;
    std::lock_guard building(buildMutex);
    if (auto reg = lookup()) return reg;
    auto built = buildRegister(ctx, *log, head);
    if (!built) return built.status();
    std::lock_guard lock(mutex);
    cached = Cached{&ctx.services, head, *built};
    return *built;
}

// A gateway that found its log altered vouches for nothing it counted: the register answers 503
// like every audited route (docs/audit.md, "Integrity checks"), to visitors too.
std::optional<HttpResponse> untrustedLog(RequestContext& ctx) {
    if (!ctx.services.audit) return std::nullopt;
    const auto integrity = ctx.services.audit->integrity();
    if (integrity.state != audit::IntegrityState::Untrusted) return std::nullopt;
    return http::errorResponse(503, "audit_log_untrusted",
                               "the audit log no longer matches its signed tree heads; the register is not shown");
}

// ---- JSON -------------------------------------------------------------------------------------

void writeRelease(json::JsonOut& out, const CountedRelease& r) {
    out.beginObject().key("index").uint(r.index).key("rows_released").uint(r.rows).key("leaf_hash");
    out.hex(r.leafHash);
    out.beginArray("audit_path");
    for (const auto& h : r.path) out.hex(h);
    out.endArray().endObject();
}

void writeMonths(json::JsonOut& out, std::string_view name, const Months& months, const Register& reg) {
    out.beginArray(name);
    for (const auto& [month, row] : months) {
        out.beginObject().field("month", month).key("releases").uint(row.releases).key("rows_released").uint(row.rows);
        out.beginArray("entries");
        for (size_t i : row.entries) writeRelease(out, reg.releases[i]);
        out.endArray().endObject();
    }
    out.endArray();
}

void writeHead(json::JsonOut& out, const Register& reg) {
    out.key("tree_head");
    if (!reg.head) {
        out.null();
        return;
    }
    out.beginObject().key("tree_size").uint(reg.head->head.treeSize).key("root_hash");
    out.hex(reg.head->head.rootHash);
    out.key("timestamp_ms").uint(reg.head->head.timestampMs);
    out.field("signature", crypto::toBase64(crypto::ByteView(reg.head->signature.data(), reg.head->signature.size())));
    out.endObject();
}

std::string registerJson(const Register& reg) {
    json::JsonOut out;
    out.beginObject();
    writeHead(out, reg);
    out.field("public_key", reg.publicKey);
    out.beginArray("datasets");
    for (const DatasetRow& d : reg.datasets) {
        out.beginObject()
            .field("name", d.name)
            .field("agency", d.agency)
            .field("description", d.description)
            .key("releases")
            .uint(d.releases)
            .key("rows_released")
            .uint(d.rows);
        out.beginArray("policies");
        for (const auto& [name, p] : d.policies) {
            out.beginObject().field("name", p.name).key("version_described").uint(static_cast<uint64_t>(p.describedBy));
            out.beginArray("purposes");
            for (const auto& purpose : p.purposes) out.str(purpose);
            out.endArray().beginArray("recipients");
            for (const auto& r : p.recipients) out.str(r);
            out.endArray();
            writeMonths(out, "months", p.months, reg);
            out.endObject();
        }
        out.endArray();
        writeMonths(out, "other_releases", d.other, reg);
        out.endObject();
    }
    out.endArray().endObject();
    return out.text();
}

Result<HttpResponse> handleRegisterJson(RequestContext& ctx) {
    if (!ctx.request.query.empty()) return invalidArgument("GET /v1/transparency takes no query parameters");
    if (auto refused = untrustedLog(ctx)) return std::move(*refused);
    auto reg = currentRegister(ctx);
    if (!reg) return reg.status();
    HttpResponse r = HttpResponse::json(200, registerJson(**reg));
    r.setHeader("Cache-Control", "max-age=10");
    r.setHeader("Access-Control-Allow-Origin", "*");  // public data: any site may check it
    return r;
}

Result<HttpResponse> handleRegisterEntry(RequestContext& ctx) {
    if (!ctx.request.query.empty())
        return invalidArgument("GET /v1/transparency/entries/{index} takes no query parameters");
    if (auto refused = untrustedLog(ctx)) return std::move(*refused);
    const std::string& text = ctx.param("index");
    uint64_t index = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (ec != std::errc() || end != text.data() + text.size())
        return invalidArgument("index must be a non-negative integer, got \"" + json::sanitizeUtf8(text) + "\"");
    auto reg = currentRegister(ctx);
    if (!reg) return reg.status();
    auto it = (*reg)->byIndex.find(index);
    if (it == (*reg)->byIndex.end())
        return notFound("audit entry " + std::to_string(index) + " is not a release the register counts");
    json::JsonOut out;
    out.beginObject();
    writeHead(out, **reg);
    out.key("entry");
    writeRelease(out, (*reg)->releases[it->second]);
    out.endObject();
    HttpResponse r = HttpResponse::json(200, out.text());
    r.setHeader("Access-Control-Allow-Origin", "*");
    return r;
}

// ---- HTML -------------------------------------------------------------------------------------

std::string escapeHtml(std::string_view text) {
    const std::string clean = json::sanitizeUtf8(text);
    std::string out;
    out.reserve(clean.size());
    for (char c : clean) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string withThousands(uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

void htmlMonths(std::string& html, const Months& months, const Register& reg) {
    html += "<table><thead><tr><th>Month</th><th class=\"number\">Releases</th><th class=\"number\">Rows "
            "released</th><th>Audit entries</th></tr></thead><tbody>";
    for (const auto& [month, row] : months) {
        html += "<tr><td>" + escapeHtml(month) + "</td><td class=\"number\">" + withThousands(row.releases) +
                "</td><td class=\"number\">" + withThousands(row.rows) + "</td><td>";
        for (size_t i = 0; i < row.entries.size(); ++i) {
            const std::string index = std::to_string(reg.releases[row.entries[i]].index);
            html +=
                (i ? ", " : "") + std::string("<a href=\"/v1/transparency/entries/") + index + "\">" + index + "</a>";
        }
        html += "</td></tr>";
    }
    html += "</tbody></table>";
}

std::string registerHtml(const Register& reg) {
    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Transparency register</title><link rel=\"stylesheet\" href=\"/console/register.css\"><link "
        "rel=\"icon\" href=\"/console/favicon.svg\"></head><body>"
        "<header><h1>Transparency register</h1><p>The releases of personal data this gateway made to partners "
        "under policies their publishers made public or summary (private ones are not shown), counted from its "
        "tamper-evident audit log up to the signed tree head below. Each count links the audit entries it rests on; "
        "<a href=\"/v1/transparency\">the same register as JSON</a> carries an inclusion proof of each entry "
        "against the signed tree head below, checkable with the gateway's public key "
        "(<a href=\"/v1/keys\">/v1/keys</a>).</p></header><main>";
    if (reg.head) {
        html += "<section class=\"head\"><h2>Signed tree head</h2><dl><dt>Entries covered</dt><dd id=\"tree-size\">" +
                withThousands(reg.head->head.treeSize) + "</dd><dt>Signed at</dt><dd>" +
                utcText(reg.head->head.timestampMs, "%Y-%m-%d %H:%M:%S UTC") + "</dd><dt>Root hash</dt><dd><code>" +
                crypto::toHex(reg.head->head.rootHash) + "</code></dd></dl></section>";
    } else {
        html += "<p class=\"empty\">The audit log has no signed tree head yet: nothing is counted.</p>";
    }
    if (reg.datasets.empty()) html += "<p class=\"empty\">No dataset is listed in the register.</p>";
    for (const DatasetRow& d : reg.datasets) {
        html += "<section class=\"dataset\"><h2>" + escapeHtml(d.name) +
                "</h2><p class=\"agency\">Agency: " + escapeHtml(d.agency) + "</p>";
        if (!d.description.empty()) html += "<p class=\"description\">" + escapeHtml(d.description) + "</p>";
        html += "<p class=\"totals\">" + withThousands(d.releases) + " release" + (d.releases == 1 ? "" : "s") + ", " +
                withThousands(d.rows) + " rows released in all.</p>";
        for (const auto& [name, p] : d.policies) {
            html += "<article class=\"policy\"><h3>Policy " + escapeHtml(p.name) + "</h3><p>Purposes: ";
            for (size_t i = 0; i < p.purposes.size(); ++i) html += (i ? ", " : "") + escapeHtml(p.purposes[i]);
            html += "</p><p>Received by: ";
            if (p.recipients.empty()) html += "nobody yet";
            size_t i = 0;
            for (const auto& r : p.recipients) html += (i++ ? ", " : "") + escapeHtml(r);
            html += "</p>";
            if (!p.months.empty()) htmlMonths(html, p.months, reg);
            html += "</article>";
        }
        if (!d.other.empty()) {
            html += "<article class=\"policy other\"><h3>Other releases</h3><p>Releases under policies that are "
                    "counted but not described.</p>";
            htmlMonths(html, d.other, reg);
            html += "</article>";
        }
        html += "</section>";
    }
    html += "</main></body></html>\n";
    return html;
}

Result<HttpResponse> handleRegisterHtml(RequestContext& ctx) {
    if (auto refused = untrustedLog(ctx)) return std::move(*refused);
    auto reg = currentRegister(ctx);
    if (!reg) return reg.status();
    HttpResponse r = HttpResponse::text(200, registerHtml(**reg), "text/html; charset=utf-8");
    pageSecurityHeaders(r);
    r.setHeader("Cache-Control", "max-age=10");
    return r;
}

}  // namespace

std::vector<Route> transparencyRoutes() {
    // Public and unaudited (a citizen's visit is not an access to personal data), like /v1/keys;
    // audited when credentials are sent. Not inline: they read the log and the catalog.
    return {
        {"GET", "/transparency", Access::publicRoute(), handleRegisterHtml, false, "transparency.get"},
        {"GET", "/v1/transparency", Access::publicRoute(), handleRegisterJson, false, "transparency.get"},
        {"GET", "/v1/transparency/entries/{index}", Access::publicRoute(), handleRegisterEntry, false,
         "transparency.entry.get"},
    };
}

}  // namespace custodian::api
