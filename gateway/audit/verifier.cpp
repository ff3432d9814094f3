#include "gateway/audit/verifier.hpp"

// RapidJSON's SSE2 string scanning roughly halves parse time here; SSE2 is part of x86-64. It may
// read up to 15 bytes past the end of a line within one aligned block, which AddressSanitizer
// reports, so sanitizer builds use the scalar code.
#if defined(__SANITIZE_ADDRESS__)  // g++
#define CUSTODIAN_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang
#define CUSTODIAN_ADDRESS_SANITIZER 1
#endif
#endif
#if defined(__SSE2__) && !defined(CUSTODIAN_ADDRESS_SANITIZER) && !defined(RAPIDJSON_SSE2) && !defined(RAPIDJSON_SSE42)
#define RAPIDJSON_SSE2
#endif
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "gateway/audit/proof_verify.hpp"
#include "json/canonical.hpp"

namespace custodian::audit {

namespace {

constexpr int kMaxDepth = 64;
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

std::optional<Hash> hashFromHex(std::string_view text) {
    // Nibble values, 0xff for bytes that are not hex digits.
    static constexpr auto kNibble = [] {
        std::array<uint8_t, 256> t{};
        t.fill(0xff);
        for (int c = 0; c < 10; ++c) t[static_cast<size_t>('0' + c)] = static_cast<uint8_t>(c);
        for (int c = 0; c < 6; ++c) {
            t[static_cast<size_t>('a' + c)] = static_cast<uint8_t>(10 + c);
            t[static_cast<size_t>('A' + c)] = static_cast<uint8_t>(10 + c);
        }
        return t;
    }();
    if (text.size() != 64) return std::nullopt;
    Hash h{};
    uint8_t invalid = 0;
    for (size_t i = 0; i < 32; ++i) {
        const uint8_t hi = kNibble[static_cast<unsigned char>(text[2 * i])];
        const uint8_t lo = kNibble[static_cast<unsigned char>(text[2 * i + 1])];
        invalid |= static_cast<uint8_t>((hi | lo) & 0xf0);
        h[i] = static_cast<uint8_t>(hi << 4 | (lo & 0x0f));
    }
    if (invalid != 0) return std::nullopt;
    return h;
}

std::string hex(const Hash& h) { return crypto::toHex(h); }

}  // namespace

AuditExportVerifier::AuditExportVerifier(const crypto::Ed25519PublicKey& gatewayKey, AuditVerifyOptions options)
    : key_(gatewayKey), options_(std::move(options)) {
    if (options_.latestHead) {
        pending_.push_back({*options_.latestHead, 0});
        pendingMinSize_ = options_.latestHead->head.treeSize;
    }
}

void AuditExportVerifier::fail(std::string problem, std::optional<uint64_t> index, bool exact, uint64_t rangeEnd) {
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

// --- fast path for entry lines -------------------------------------------------------------

// SAX handler that writes the canonical bytes of the "entry" member while the line is read,
// without building a DOM. It only handles the common case — an entry line whose objects already
// have their members in canonical order (what the gateway writes) — and gives up (returns false
// and sets fallback) on anything else; the DOM path below then decides, with precise messages.
class EntryLineHandler {
public:
    explicit EntryLineHandler(std::string& out) : out_(out) {}

    bool fallback = false;
    bool sawType = false, sawEntry = false, sawLeafHash = false;
    bool typeIsEntry = false;
    bool indexCaptured = false;
    uint64_t index = 0;
    std::string leafHash;

    bool Null() { return literal("null"); }
    bool Bool(bool b) { return literal(b ? "true" : "false"); }
    bool Int(int i) { return signedInteger(i); }
    bool Int64(int64_t i) { return signedInteger(i); }
    bool Uint(unsigned u) { return unsignedInteger(u); }
    bool Uint64(uint64_t u) { return unsignedInteger(u); }
    bool Double(double) { return giveUp(); }
    bool RawNumber(const char*, rapidjson::SizeType, bool) { return giveUp(); }
    bool String(const char* s, rapidjson::SizeType n, bool) {
        expectIndex_ = false;
        const std::string_view text(s, n);
        if (depth_ == 1) {
            if (key_ == "type") typeIsEntry = text == "entry";
            else if (key_ == "leaf_hash") leafHash.assign(text);
            return true;
        }
        if (!inEntry()) return true;
        separate();
        return json::appendCanonicalString(text, out_) || giveUp();
    }
    bool Key(const char* s, rapidjson::SizeType n, bool) {
        const std::string_view name(s, n);
        if (depth_ == 1) {
            key_.assign(name);
            bool* seen = name == "type"        ? &sawType
                         : name == "entry"     ? &sawEntry
                         : name == "leaf_hash" ? &sawLeafHash
                                               : nullptr;
            if (seen != nullptr) {
                if (*seen) return giveUp();  // duplicate top-level member
                *seen = true;
            }
            return true;
        }
        if (!inEntry()) return true;
        Frame& f = frames_.back();
        if (!f.first) {
            // Unsorted or duplicate names: the DOM path sorts or rejects them.
            if (!(std::string_view(f.previousKey) < name)) return giveUp();
            out_.push_back(',');
        }
        f.first = false;
        f.previousKey.assign(name);
        if (!json::appendCanonicalString(name, out_)) return giveUp();
        out_.push_back(':');
        expectIndex_ = depth_ == entryDepth_ && name == "index";
        return true;
    }
    bool StartObject() { return open(true); }
    bool EndObject(rapidjson::SizeType) { return close('}'); }
    bool StartArray() { return depth_ == 0 ? giveUp() : open(false); }
    bool EndArray(rapidjson::SizeType) { return close(']'); }

private:
    struct Frame {
        bool isObject = false;
        bool first = true;
        std::string previousKey;
    };

    bool giveUp() {
        fallback = true;
        return false;
    }
    bool inEntry() const { return entryDepth_ != 0; }
    // Before a value inside the entry: the comma between array elements.
    void separate() {
        Frame& f = frames_.back();
        if (!f.isObject) {
            if (!f.first) out_.push_back(',');
            f.first = false;
        }
    }
    bool literal(const char* text) {
        expectIndex_ = false;
        if (!inEntry()) return true;
        separate();
        out_ += text;
        return true;
    }
    bool signedInteger(int64_t v) {
        expectIndex_ = false;  // a negative index is not captured: the DOM path reports it
        if (!inEntry()) return true;
        separate();
        char buf[24];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
        return true;
    }
    bool unsignedInteger(uint64_t v) {
        if (std::exchange(expectIndex_, false)) {
            index = v;
            indexCaptured = true;
        }
        if (!inEntry()) return true;
        separate();
        char buf[24];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
        return true;
    }
    bool open(bool isObject) {
        expectIndex_ = false;
        if (depth_ >= kMaxDepth) return giveUp();
        if (depth_ == 1 && key_ == "entry" && isObject) {
            entryDepth_ = depth_ + 1;
        } else if (inEntry()) {
            separate();
        }
        ++depth_;
        if (inEntry()) {
            frames_.push_back({isObject, true, {}});
            out_.push_back(isObject ? '{' : '[');
        }
        return true;
    }
    bool close(char bracket) {
        if (inEntry()) {
            out_.push_back(bracket);
            frames_.pop_back();
            if (depth_ == entryDepth_) entryDepth_ = 0;
        }
        --depth_;
        return true;
    }

    std::string& out_;
    std::vector<Frame> frames_;
    std::string key_;           // current top-level member name
    int depth_ = 0;             // 1 = inside the line's object, 2 = inside one of its members' values…
    int entryDepth_ = 0;        // depth of the entry object while inside it, else 0
    bool expectIndex_ = false;  // the next value is the entry's "index"
};

// --- parsing (no verifier state: runs on any thread) ------------------------------------------

LineParser::LineParser(bool fastPath) : fastPath_(fastPath), arena_(64 * 1024) {}

ParsedLine LineParser::parse(std::string& line) {
    ParsedLine out;
    tookFastPath_ = false;
    canonical_.clear();
    if (line.find_first_not_of(" \t\r") == std::string::npos) return out;  // blank lines carry nothing
    const auto error = [&out](std::string message, bool atNextIndex) {
        out.kind = ParsedLine::Kind::Error;
        out.error = std::move(message);
        out.errorAtNextIndex = atNextIndex;
        return out;
    };
    if (fastPath_) {
        // Fast path on a copy (in-situ parsing modifies its input, and the DOM path may need it).
        copy_.assign(line);
        canonical_.clear();
        EntryLineHandler handler(canonical_);
        rapidjson::Reader reader;
        rapidjson::InsituStringStream stream(copy_.data());
        const bool parsed = !reader.Parse<rapidjson::kParseInsituFlag>(stream, handler).IsError();
        if (parsed && !handler.fallback && handler.sawType && handler.typeIsEntry && handler.sawEntry &&
            handler.indexCaptured) {
            std::optional<Hash> recorded;
            if (handler.sawLeafHash) recorded = hashFromHex(handler.leafHash);
            if (!handler.sawLeafHash || recorded) {
                out.kind = ParsedLine::Kind::Entry;
                out.index = handler.index;
                out.recorded = recorded;
                out.computed = leafHash(crypto::asBytes(canonical_));
                tookFastPath_ = true;
                return out;
            }
        }
        canonical_.clear();  // declined: what it wrote is not an entry's bytes
    }
    // Values of one line live in a reused buffer (no heap allocation per line for typical entries).
    rapidjson::MemoryPoolAllocator<> pool(arena_.data(), arena_.size());
    rapidjson::Document doc(&pool);
    doc.ParseInsitu<kParseFlags>(line.data());
    if (doc.HasParseError()) {
        return error(std::string("invalid JSON at byte ") + std::to_string(doc.GetErrorOffset()) + ": " +
                         rapidjson::GetParseError_En(doc.GetParseError()),
                     true);
    }
    if (!doc.IsObject()) return error("not a JSON object", true);
    // Const iterators: comparing RapidJSON's non-const member iterators is ambiguous in C++20.
    const rapidjson::Value& root = doc;
    auto type = root.FindMember("type");
    if (type == root.MemberEnd() || !type->value.IsString()) return error("missing \"type\"", true);
    const std::string_view kind(type->value.GetString(), type->value.GetStringLength());
    if (kind == "entry") {
        auto entry = root.FindMember("entry");
        if (entry == root.MemberEnd() || !entry->value.IsObject()) {
            return error("an entry line needs an \"entry\" object", true);
        }
        auto index = entry->value.FindMember("index");
        if (index == entry->value.MemberEnd() || !index->value.IsUint64()) {
            return error("entry.index must be a non-negative integer", true);
        }
        auto leaf = root.FindMember("leaf_hash");
        if (leaf != root.MemberEnd()) {
            if (leaf->value.IsString())
                out.recorded = hashFromHex({leaf->value.GetString(), leaf->value.GetStringLength()});
            if (!out.recorded) return error("leaf_hash must be 64 hex digits", true);
        }
        canonical_.clear();
        std::string problem;
        if (!json::appendCanonical(entry->value, json::Numbers::IntegersOnly, canonical_, problem)) {
            return error("entry " + std::to_string(index->value.GetUint64()) + ": " + problem, true);
        }
        out.kind = ParsedLine::Kind::Entry;
        out.index = index->value.GetUint64();
        out.computed = leafHash(crypto::asBytes(canonical_));
        return out;
    }
    if (kind == "tree_head") {
        auto size = root.FindMember("tree_size");
        auto time = root.FindMember("timestamp_ms");
        auto rootHashMember = root.FindMember("root_hash");
        auto sig = root.FindMember("signature");
        std::optional<Hash> rootHash;
        if (rootHashMember != root.MemberEnd() && rootHashMember->value.IsString()) {
            rootHash = hashFromHex({rootHashMember->value.GetString(), rootHashMember->value.GetStringLength()});
        }
        Result<crypto::Bytes> sigBytes = invalidArgument("missing");
        if (sig != root.MemberEnd() && sig->value.IsString()) {
            sigBytes = crypto::fromBase64({sig->value.GetString(), sig->value.GetStringLength()});
        }
        if (size == root.MemberEnd() || !size->value.IsUint64() || time == root.MemberEnd() ||
            !time->value.IsUint64() || !rootHash || !sigBytes || sigBytes->size() != 64) {
            return error("a tree_head line needs tree_size, timestamp_ms (integers), root_hash (64 hex digits) "
                         "and signature (base64 of 64 bytes)",
                         false);
        }
        out.kind = ParsedLine::Kind::TreeHead;
        out.head.head.treeSize = size->value.GetUint64();
        out.head.head.timestampMs = time->value.GetUint64();
        out.head.head.rootHash = *rootHash;
        std::memcpy(out.head.signature.data(), sigBytes->data(), 64);
        return out;
    }
    return error("unknown line type \"" + std::string(kind) + "\"", true);
}

// --- applying, in order --------------------------------------------------------------------

void AuditExportVerifier::apply(const ParsedLine& parsed) {
    if (failed_) return;
    ++lineNumber_;
    switch (parsed.kind) {
    case ParsedLine::Kind::Blank: return;
    case ParsedLine::Kind::Entry: addEntry(parsed.index, parsed.computed, parsed.recorded); return;
    case ParsedLine::Kind::TreeHead: addTreeHead(parsed.head, lineNumber_); return;
    case ParsedLine::Kind::Error:
        if (duplicate_) {
            failUnresolvedDuplicate("line " + std::to_string(lineNumber_) + " is unreadable (" + parsed.error + ")");
            return;
        }
        fail("line " + std::to_string(lineNumber_) + ": " + parsed.error,
             parsed.errorAtNextIndex ? std::optional<uint64_t>(tree_.size()) : std::nullopt, parsed.errorAtNextIndex);
        return;
    }
}

void AuditExportVerifier::addLine(std::string& line) {
    if (failed_) return;
    apply(parsers_[0].parse(line));
}

void AuditExportVerifier::addLines(std::vector<std::string>& lines, size_t count) {
    if (failed_) return;
    results_.resize(std::max(results_.size(), count));
    // Parsing, canonicalisation and leaf hashing are independent per line: split them over two
    // threads; the Merkle tree and every check then run in order on this thread.
    const size_t half = count >= 256 ? count / 2 : 0;
    std::thread helper;
    if (half > 0) {
        helper = std::thread([&] {
            for (size_t i = 0; i < half; ++i) results_[i] = parsers_[1].parse(lines[i]);
        });
    }
    for (size_t i = half; i < count; ++i) results_[i] = parsers_[0].parse(lines[i]);
    if (helper.joinable()) helper.join();
    for (size_t i = 0; i < count && !failed_; ++i) apply(results_[i]);
}

void AuditExportVerifier::addEntry(uint64_t index, const Hash& computed, const std::optional<Hash>& recorded) {
    const uint64_t expected = tree_.size();
    const bool consistent = !recorded || *recorded == computed;
    if (duplicate_) {
        if (index != expected || !consistent) {
            failUnresolvedDuplicate("line " + std::to_string(lineNumber_) + " holds entry " + std::to_string(index) +
                                    (consistent ? "" : " with bytes that do not match its recorded leaf hash") +
                                    " where entry " + std::to_string(expected) + " was expected");
            return;
        }
    } else if (expected > 0 && index == expected - 1 && consistent && computed != *tree_.leaf(index)) {
        // Two different entries claim this index. Which one the gateway signed is decided by the
        // first signed head that covers it (checkHead); until then the second one is held back.
        duplicate_ = Duplicate{index, computed, lastEntryLine_, lineNumber_};
        return;
    }
    if (index != expected) {
        std::string what = index > expected ? "entries " + std::to_string(expected) + ".." + std::to_string(index - 1) +
                                                  " are missing here (deleted or moved)"
                                            : "entry " + std::to_string(index) +
                                                  " appears again here (inserted, duplicated or reordered)";
        fail("line " + std::to_string(lineNumber_) + ": expected entry " + std::to_string(expected) + ", found entry " +
                 std::to_string(index) + ": " + what,
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
    lastEntryLine_ = lineNumber_;
    ++result_.entries;
    checkReadyHeads();
}

void AuditExportVerifier::addTreeHead(const SignedTreeHead& head, uint64_t line) {
    pending_.push_back({head, line});
    pendingMinSize_ = std::min(pendingMinSize_, head.head.treeSize);
    checkReadyHeads();
}

void AuditExportVerifier::checkReadyHeads() {
    // Heads are checked in the order they were read once the entries they cover are present.
    // Usually nothing is pending; the smallest pending size keeps this O(1) per entry otherwise.
    if (pending_.empty() || tree_.size() < pendingMinSize_) return;
    while (!failed_) {
        auto ready = std::find_if(pending_.begin(), pending_.end(),
                                  [&](const PendingHead& p) { return p.head.head.treeSize <= tree_.size(); });
        if (ready == pending_.end()) return;
        const PendingHead p = *ready;
        pending_.erase(ready);
        pendingMinSize_ = UINT64_MAX;
        for (const auto& q : pending_) pendingMinSize_ = std::min(pendingMinSize_, q.head.head.treeSize);
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
    if (duplicate_ && h.treeSize > duplicate_->index) {
        resolveDuplicate(sth, where);
        return;
    }
    const Hash computed = *tree_.rootAt(h.treeSize);
    if (computed != h.rootHash) {
        // Only the heads bound what changed: after the last head that verified at or below this size.
        const uint64_t from =
            lastVerified_ && lastVerified_->head.treeSize <= h.treeSize ? lastVerified_->head.treeSize : 0;
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

void AuditExportVerifier::resolveDuplicate(const SignedTreeHead& sth, const std::string& where) {
    const Duplicate d = *duplicate_;
    const TreeHead& h = sth.head;
    const std::string index = std::to_string(d.index);
    const std::string size = std::to_string(h.treeSize);
    const std::string head = (where.rfind("the ", 0) == 0 ? "" : "the ") + where;
    const bool firstSigned = *tree_.rootAt(h.treeSize) == h.rootHash;
    auto path = tree_.inclusionProof(d.index, h.treeSize);
    const bool secondSigned = path && verifyInclusion(d.index, h.treeSize, d.leaf, *path, h.rootHash);
    if (secondSigned && !firstSigned) {
        // The forged entry came first: it is the first position that disagrees with the signed tree.
        fail("line " + std::to_string(d.firstLine) + ": entry " + index + " is not the entry " + index + " that " +
                 head + " (tree_size " + size + ") signed; the entry " + index + " on line " + std::to_string(d.line) +
                 " is (with it the entries give the signed root): a forged entry " + index +
                 " was inserted before the genuine one",
             d.index, true);
        result_.line = d.firstLine;
    } else if (firstSigned) {
        fail("line " + std::to_string(d.line) + ": expected entry " + std::to_string(d.index + 1) +
                 ", found a second entry " + index + "; the entry " + index + " on line " +
                 std::to_string(d.firstLine) + " is the one " + head + " (tree_size " + size + ") signed: line " +
                 std::to_string(d.line) + " was inserted",
             d.index + 1, true);
        result_.line = d.line;
    } else {
        const uint64_t from = lastVerified_ ? std::min(lastVerified_->head.treeSize, d.index) : 0;
        fail(where + ": the signed root for tree_size " + size + " is " + hex(h.rootHash) +
                 " but the entries give it neither with the entry " + index + " on line " +
                 std::to_string(d.firstLine) + " nor with the one on line " + std::to_string(d.line) +
                 ": an entry in [" + std::to_string(from) + ", " + size +
                 ") was modified, inserted, removed or reordered",
             from, false, h.treeSize);
    }
}

void AuditExportVerifier::failUnresolvedDuplicate(const std::string& why) {
    const Duplicate d = *duplicate_;
    const std::string index = std::to_string(d.index);
    fail("entry " + index + " appears twice, on lines " + std::to_string(d.firstLine) + " and " +
             std::to_string(d.line) + " (one of them was inserted), and " + why +
             " before any signed tree head covering entry " + index + " said which of the two is genuine",
         d.index, false, d.index + 2);
    result_.line = d.line;
}

AuditVerification AuditExportVerifier::finish() {
    if (!failed_ && duplicate_) {
        lineNumber_ = 0;
        failUnresolvedDuplicate("the export ends");
    }
    if (!failed_ && !pending_.empty()) {
        const auto& p = pending_.front();
        const uint64_t have = tree_.size();
        lineNumber_ = 0;
        fail("the export ends after " + std::to_string(have) + " entries, but " +
                 (p.line == 0 ? std::string("the given latest tree head")
                              : "the tree head on line " + std::to_string(p.line)) +
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
    constexpr size_t kBatch = 8192;
    std::vector<std::string> batch(kBatch);  // strings keep their capacity from batch to batch
    size_t inBatch = 0;
    std::vector<char> block(4 << 20);
    std::string carry;
    while (!verifier.failed()) {
        const size_t n = std::fread(block.data(), 1, block.size(), in);
        if (n == 0) break;
        size_t pos = 0;
        while (pos < n) {
            const void* nl = std::memchr(block.data() + pos, '\n', n - pos);
            if (nl == nullptr) {
                carry.append(block.data() + pos, n - pos);
                break;
            }
            const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - block.data());
            std::string& line = batch[inBatch++];
            if (carry.empty()) {
                line.assign(block.data() + pos, end - pos);
            } else {
                carry.append(block.data() + pos, end - pos);
                line.swap(carry);
                carry.clear();
            }
            pos = end + 1;
            if (inBatch == kBatch) {
                verifier.addLines(batch, inBatch);
                inBatch = 0;
            }
        }
    }
    const bool readError = std::ferror(in) != 0;
    std::fclose(in);
    if (readError) return unavailable(path + ": read error");
    if (!carry.empty()) batch[inBatch++].swap(carry);
    verifier.addLines(batch, inBatch);
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
    json::JsonValue json = treeHeadToJson(head);
    json.asObject().emplace("type", "tree_head");
    return *json::canonicalJson(json);
}

}  // namespace custodian::audit
