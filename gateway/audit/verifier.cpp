#include "gateway/audit/verifier.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "gateway/audit/proof_verify.hpp"
#include "gateway/crypto/canonical_json.hpp"

namespace custodian::audit {

namespace {

constexpr int kMaxDepth = 64;
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

// Canonical JSON (gateway/crypto/canonical_json.hpp rules) straight from a RapidJSON value, so the
// verifier does not build an intermediate tree per line. Tests check it against canonicalJson().
bool appendCanonicalRapid(const rapidjson::Value& v, std::string& out, std::string& error, int depth) {
    if (depth > kMaxDepth) {
        error = "nested deeper than 64 levels";
        return false;
    }
    switch (v.GetType()) {
    case rapidjson::kNullType: out += "null"; return true;
    case rapidjson::kFalseType: out += "false"; return true;
    case rapidjson::kTrueType: out += "true"; return true;
    case rapidjson::kNumberType: {
        char buf[24];
        std::to_chars_result r{};
        if (v.IsUint64()) r = std::to_chars(buf, buf + sizeof buf, v.GetUint64());
        else if (v.IsInt64()) r = std::to_chars(buf, buf + sizeof buf, v.GetInt64());
        else {
            error = "only integers are allowed (fractions travel as decimal strings)";
            return false;
        }
        out.append(buf, r.ptr);
        return true;
    }
    case rapidjson::kStringType:
        if (!crypto::appendCanonicalString({v.GetString(), v.GetStringLength()}, out)) {
            error = "a string is not valid UTF-8";
            return false;
        }
        return true;
    case rapidjson::kArrayType: {
        out.push_back('[');
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            if (i > 0) out.push_back(',');
            if (!appendCanonicalRapid(v[i], out, error, depth + 1)) return false;
        }
        out.push_back(']');
        return true;
    }
    case rapidjson::kObjectType: {
        const auto name = [](const rapidjson::Value::Member& m) {
            return std::string_view(m.name.GetString(), m.name.GetStringLength());
        };
        // Exports written by the gateway are already canonical: members sorted, so no copy is
        // needed. Anything else is sorted through a pointer array.
        const bool sorted = std::is_sorted(v.MemberBegin(), v.MemberEnd(),
                                           [&](const auto& a, const auto& b) { return name(a) < name(b); });
        std::vector<const rapidjson::Value::Member*> members;
        if (!sorted) {
            members.reserve(v.MemberCount());
            for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) members.push_back(&*it);
            std::sort(members.begin(), members.end(), [&](auto* a, auto* b) { return name(*a) < name(*b); });
        }
        const size_t count = v.MemberCount();
        const auto member = [&](size_t i) -> const rapidjson::Value::Member& {
            return sorted ? *(v.MemberBegin() + static_cast<std::ptrdiff_t>(i)) : *members[i];
        };
        out.push_back('{');
        for (size_t i = 0; i < count; ++i) {
            if (i > 0) {
                if (name(member(i)) == name(member(i - 1))) {
                    error = "duplicate member name \"" + std::string(name(member(i))) + "\"";
                    return false;
                }
                out.push_back(',');
            }
            if (!crypto::appendCanonicalString(name(member(i)), out)) {
                error = "a member name is not valid UTF-8";
                return false;
            }
            out.push_back(':');
            if (!appendCanonicalRapid(member(i).value, out, error, depth + 1)) return false;
        }
        out.push_back('}');
        return true;
    }
    }
    error = "unknown JSON type";
    return false;
}

std::optional<Hash> hashFromHex(std::string_view text) {
    if (text.size() != 64) return std::nullopt;
    const auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    Hash h{};
    for (size_t i = 0; i < 32; ++i) {
        const int hi = nibble(text[2 * i]);
        const int lo = nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        h[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return h;
}

std::string hex(const Hash& h) { return crypto::toHex(h); }

} // namespace

AuditExportVerifier::AuditExportVerifier(const crypto::Ed25519PublicKey& gatewayKey, AuditVerifyOptions options)
    : key_(gatewayKey), options_(std::move(options)) {
    if (options_.latestHead) pending_.push_back({*options_.latestHead, 0});
}

void AuditExportVerifier::fail(std::string problem, std::optional<uint64_t> index, bool exact,
                               uint64_t rangeEnd) {
    if (failed_) return;
    failed_ = true;
    result_.ok = false;
    result_.problem = std::move(problem);
    result_.firstBadIndex = index;
    // A range of one entry is an exact answer (e.g. a signed head after every entry).
    result_.exactIndex = exact || (index && rangeEnd == *index + 1);
    result_.badRangeEnd = exact && index ? *index + 1 : rangeEnd;
    result_.line = lineNumber_;
}

void AuditExportVerifier::addLine(std::string& line) {
    if (failed_) return;
    ++lineNumber_;
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;  // blank lines carry nothing
    // Values of one line live in a reused buffer (no heap allocation per line for typical entries).
    if (parseArena_.empty()) parseArena_.resize(64 * 1024);
    rapidjson::MemoryPoolAllocator<> arena(parseArena_.data(), parseArena_.size());
    rapidjson::Document doc(&arena);
    doc.ParseInsitu<kParseFlags>(line.data());
    if (doc.HasParseError()) {
        fail("line " + std::to_string(lineNumber_) + ": invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) +
                 ": " + rapidjson::GetParseError_En(doc.GetParseError()),
             tree_.size(), false, tree_.size() + 1);
        return;
    }
    const auto where = [this] { return "line " + std::to_string(lineNumber_) + ": "; };
    if (!doc.IsObject()) {
        fail(where() + "not a JSON object", tree_.size(), false, tree_.size() + 1);
        return;
    }
    auto type = doc.FindMember("type");
    if (type == doc.MemberEnd() || !type->value.IsString()) {
        fail(where() + "missing \"type\"", tree_.size(), false, tree_.size() + 1);
        return;
    }
    const std::string_view kind(type->value.GetString(), type->value.GetStringLength());
    if (kind == "entry") {
        auto entry = doc.FindMember("entry");
        if (entry == doc.MemberEnd() || !entry->value.IsObject()) {
            fail(where() + "an entry line needs an \"entry\" object", tree_.size(), true);
            return;
        }
        auto index = entry->value.FindMember("index");
        if (index == entry->value.MemberEnd() || !index->value.IsUint64()) {
            fail(where() + "entry.index must be a non-negative integer", tree_.size(), true);
            return;
        }
        std::optional<Hash> recorded;
        auto leaf = doc.FindMember("leaf_hash");
        if (leaf != doc.MemberEnd()) {
            if (leaf->value.IsString()) recorded = hashFromHex({leaf->value.GetString(), leaf->value.GetStringLength()});
            if (!recorded) {
                fail(where() + "leaf_hash must be 64 hex digits", tree_.size(), true);
                return;
            }
        }
        canonical_.clear();
        std::string error;
        if (!appendCanonicalRapid(entry->value, canonical_, error, 0)) {
            fail(where() + "entry " + std::to_string(index->value.GetUint64()) + ": " + error, tree_.size(), true);
            return;
        }
        addEntry(index->value.GetUint64(), leafHash(crypto::asBytes(canonical_)), recorded);
    } else if (kind == "tree_head") {
        SignedTreeHead head;
        auto size = doc.FindMember("tree_size");
        auto time = doc.FindMember("timestamp_ms");
        auto root = doc.FindMember("root_hash");
        auto sig = doc.FindMember("signature");
        std::optional<Hash> rootHash;
        if (root != doc.MemberEnd() && root->value.IsString()) {
            rootHash = hashFromHex({root->value.GetString(), root->value.GetStringLength()});
        }
        Result<crypto::Bytes> sigBytes = invalidArgument("missing");
        if (sig != doc.MemberEnd() && sig->value.IsString()) {
            sigBytes = crypto::fromBase64({sig->value.GetString(), sig->value.GetStringLength()});
        }
        if (size == doc.MemberEnd() || !size->value.IsUint64() || time == doc.MemberEnd() ||
            !time->value.IsUint64() || !rootHash || !sigBytes || sigBytes->size() != 64) {
            fail(where() + "a tree_head line needs tree_size, timestamp_ms (integers), root_hash (64 hex digits) "
                         "and signature (base64 of 64 bytes)",
                 std::nullopt, false);
            return;
        }
        head.head.treeSize = size->value.GetUint64();
        head.head.timestampMs = time->value.GetUint64();
        head.head.rootHash = *rootHash;
        std::memcpy(head.signature.data(), sigBytes->data(), 64);
        addTreeHead(head, lineNumber_);
    } else {
        fail(where() + "unknown line type \"" + std::string(kind) + "\"", tree_.size(), false, tree_.size() + 1);
    }
}

void AuditExportVerifier::addEntry(uint64_t index, const Hash& computed, const std::optional<Hash>& recorded) {
    const uint64_t expected = tree_.size();
    if (index != expected) {
        std::string what = index > expected ? "entries " + std::to_string(expected) + ".." +
                                                  std::to_string(index - 1) + " are missing here (deleted or moved)"
                                            : "entry " + std::to_string(index) +
                                                  " appears again here (inserted, duplicated or reordered)";
        fail("line " + std::to_string(lineNumber_) + ": expected entry " + std::to_string(expected) +
                 ", found entry " + std::to_string(index) + ": " + what,
             expected, true);
        return;
    }
    if (recorded && *recorded != computed) {
        fail("line " + std::to_string(lineNumber_) + ": entry " + std::to_string(index) +
                 " was modified: its bytes hash to " + hex(computed) + " but the log recorded leaf hash " +
                 hex(*recorded),
             index, true);
        return;
    }
    tree_.append(computed);
    ++result_.entries;
    checkReadyHeads();
}

void AuditExportVerifier::addTreeHead(const SignedTreeHead& head, uint64_t line) {
    pending_.push_back({head, line});
    checkReadyHeads();
}

void AuditExportVerifier::checkReadyHeads() {
    // Heads are checked in the order they were read once the entries they cover are present.
    while (!failed_) {
        auto ready = std::find_if(pending_.begin(), pending_.end(),
                                  [&](const PendingHead& p) { return p.head.head.treeSize <= tree_.size(); });
        if (ready == pending_.end()) return;
        const PendingHead p = *ready;
        pending_.erase(ready);
        checkHead(p.head, p.line);
    }
}

void AuditExportVerifier::checkHead(const SignedTreeHead& sth, uint64_t line) {
    const std::string where = line == 0 ? "the given latest tree head" : "tree head on line " + std::to_string(line);
    const TreeHead& h = sth.head;
    if (!verifyTreeHead(sth, key_)) {
        fail(where + " (tree_size " + std::to_string(h.treeSize) +
                 "): the signature is not valid for the gateway key (forged or modified tree head)",
             std::nullopt, false);
        return;
    }
    const Hash computed = *tree_.rootAt(h.treeSize);
    if (computed != h.rootHash) {
        // Only the heads bound what changed: after the last head that verified at or below this size.
        const uint64_t from = lastVerified_ && lastVerified_->head.treeSize <= h.treeSize ? lastVerified_->head.treeSize : 0;
        fail(where + ": the signed root for tree_size " + std::to_string(h.treeSize) + " is " + hex(h.rootHash) +
                 " but the entries give " + hex(computed) + ": an entry in [" + std::to_string(from) + ", " +
                 std::to_string(h.treeSize) + ") was modified, inserted, removed or reordered",
             from, false, h.treeSize);
        return;
    }
    if (lastVerified_) {
        const TreeHead& prev = lastVerified_->head;
        if (h.treeSize < prev.treeSize) {
            fail(where + ": tree_size " + std::to_string(h.treeSize) + " after a head of size " +
                     std::to_string(prev.treeSize) + " (tree heads out of order)",
                 std::nullopt, false);
            return;
        }
        if (h.timestampMs < prev.timestampMs) {
            fail(where + ": timestamp " + std::to_string(h.timestampMs) + " is earlier than the previous head's " +
                     std::to_string(prev.timestampMs),
                 std::nullopt, false);
            return;
        }
        if (prev.treeSize > 0) {
            // Cross-check with an RFC 9162 consistency proof between successive heads.
            auto proof = tree_.consistencyProof(prev.treeSize, h.treeSize);
            if (!proof || !verifyConsistency(prev.treeSize, h.treeSize, prev.rootHash, h.rootHash, *proof)) {
                fail(where + ": not consistent with the previous tree head of size " + std::to_string(prev.treeSize),
                     prev.treeSize, false, h.treeSize);
                return;
            }
        }
    }
    lastVerified_ = sth;
    ++result_.treeHeads;
    result_.verifiedSize = std::max(result_.verifiedSize, h.treeSize);
}

AuditVerification AuditExportVerifier::finish() {
    if (!failed_ && !pending_.empty()) {
        const auto& p = pending_.front();
        const uint64_t have = tree_.size();
        lineNumber_ = 0;
        fail("the export ends after " + std::to_string(have) + " entries, but " +
                 (p.line == 0 ? std::string("the given latest tree head") : "the tree head on line " + std::to_string(p.line)) +
                 " covers " + std::to_string(p.head.head.treeSize) + ": entries from " + std::to_string(have) +
                 " on are missing (truncated tail)",
             have, true);
    }
    if (!failed_ && result_.treeHeads == 0 && tree_.size() > 0) {
        lineNumber_ = 0;
        fail("the export has no signed tree head: nothing in it is authenticated", 0, false, tree_.size());
    }
    if (!failed_) {
        result_.ok = true;
        result_.root = tree_.root();
    }
    return result_;
}

AuditVerification verifyAuditExport(std::string_view ndjson, const crypto::Ed25519PublicKey& gatewayKey,
                                    const AuditVerifyOptions& options) {
    AuditExportVerifier verifier(gatewayKey, options);
    std::string line;
    size_t pos = 0;
    while (pos < ndjson.size() && !verifier.failed()) {
        size_t end = ndjson.find('\n', pos);
        if (end == std::string_view::npos) end = ndjson.size();
        line.assign(ndjson.substr(pos, end - pos));
        verifier.addLine(line);
        pos = end + 1;
    }
    return verifier.finish();
}

Result<AuditVerification> verifyAuditExportFile(const std::string& path, const crypto::Ed25519PublicKey& gatewayKey,
                                                const AuditVerifyOptions& options) {
    std::FILE* in = std::fopen(path.c_str(), "rb");
    if (in == nullptr) return notFound(path + ": cannot open the export");
    AuditExportVerifier verifier(gatewayKey, options);
    std::vector<char> block(4 << 20);
    std::string carry;
    std::string line;
    while (!verifier.failed()) {
        const size_t n = std::fread(block.data(), 1, block.size(), in);
        if (n == 0) break;
        size_t pos = 0;
        while (pos < n && !verifier.failed()) {
            const void* nl = std::memchr(block.data() + pos, '\n', n - pos);
            if (nl == nullptr) {
                carry.append(block.data() + pos, n - pos);
                break;
            }
            const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - block.data());
            if (carry.empty()) {
                line.assign(block.data() + pos, end - pos);
            } else {
                carry.append(block.data() + pos, end - pos);
                line.swap(carry);
                carry.clear();
            }
            verifier.addLine(line);
            pos = end + 1;
        }
    }
    const bool readError = std::ferror(in) != 0;
    std::fclose(in);
    if (readError) return unavailable(path + ": read error");
    if (!carry.empty() && !verifier.failed()) verifier.addLine(carry);
    return verifier.finish();
}

std::string exportEntryLine(const std::string& canonicalEntryBytes, bool withLeafHash) {
    // Keys in canonical order (entry < leaf_hash < type), so the line is itself canonical JSON.
    std::string line = "{\"entry\":" + canonicalEntryBytes;
    if (withLeafHash) line += ",\"leaf_hash\":\"" + hex(leafHash(crypto::asBytes(canonicalEntryBytes))) + "\"";
    line += ",\"type\":\"entry\"}";
    return line;
}

std::string exportEntryLine(std::string_view storedEntryBytes, const Hash& recordedLeafHash) {
    std::string line;
    line.reserve(storedEntryBytes.size() + 110);
    line += "{\"entry\":";
    line += storedEntryBytes;
    line += ",\"leaf_hash\":\"" + hex(recordedLeafHash) + "\",\"type\":\"entry\"}";
    return line;
}

std::string exportTreeHeadLine(const SignedTreeHead& head) {
    crypto::JsonValue json = treeHeadToJson(head);
    json.asObject().emplace("type", "tree_head");
    return *crypto::canonicalJson(json);
}

} // namespace custodian::audit
