#pragma once
// Offline verification of an audit export (NDJSON, docs/formats/audit.md). One line per record:
//   {"type":"entry","entry":{...entry object...},"leaf_hash":"<hex>"}      ("leaf_hash" optional)
//   {"type":"tree_head","tree_size":N,"root_hash":"<hex>","timestamp_ms":T,"signature":"<b64>"}
// Entries appear in index order starting at 0. A tree head may appear anywhere; it is checked as
// soon as the entries it covers have been read.
//
// The verifier recomputes every leaf hash from the canonical entry bytes and the Merkle root at
// every signed head's size, checks each head's Ed25519 signature with the trusted gateway key,
// checks consistency proofs and timestamps between successive heads, and reports the FIRST index
// where the export departs from what was signed:
// - an entry whose index is not the next one (deleted, inserted, duplicated, reordered): exact;
// - an entry whose bytes no longer match its recorded leaf_hash (modified): exact;
// - a tail missing below a signed head's size (truncated): exact (the first missing index);
// - an entry modified together with its recorded leaf hash: only the signed roots catch it, so the
//   index is bounded by the heads: at or after the last head that still verifies, before the size
//   of the first head that fails (exactIndex = false, range in [firstBadIndex, badRangeEnd));
// - two entries with the same index one after the other (a forged entry inserted before or after the
//   genuine one, with a leaf hash recomputed to match): the first signed head that covers the index
//   decides which of the two it was signed with, and the other is named — the forged first one at
//   its index, or the inserted second one at the position it took (the next index). Without such a
//   head the pair is reported as a range of those two positions.
// Memory: the Merkle tree of the export (≈ 64 bytes per entry).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::audit {

struct AuditVerifyOptions {
    // A head obtained separately (e.g. GET /v1/audit/tree-head): the export must cover it, which
    // catches a tail truncated together with the heads that covered it.
    std::optional<SignedTreeHead> latestHead;
};

struct AuditVerification {
    bool ok = false;
    uint64_t entries = 0;       // entry lines read before verification stopped
    uint64_t treeHeads = 0;     // heads that verified
    uint64_t verifiedSize = 0;  // largest tree size covered by a verified head
    Hash root{};                // root over all entries read (when ok)
    // Failure details.
    std::optional<uint64_t> firstBadIndex;
    bool exactIndex = false;
    uint64_t badRangeEnd = 0;  // when !exactIndex: the bad entry is in [firstBadIndex, badRangeEnd)
    uint64_t line = 0;         // 1-based line where the problem was found (0: end of input)
    std::string problem;
};

// One export line, parsed, canonicalised and leaf-hashed; independent of every other line.
struct ParsedLine {
    enum class Kind { Blank, Entry, TreeHead, Error } kind = Kind::Blank;
    uint64_t index = 0;             // Entry
    Hash computed{};                // Entry: leaf hash of the canonical entry bytes
    std::optional<Hash> recorded;   // Entry: the "leaf_hash" the log recorded, if present
    SignedTreeHead head;            // TreeHead
    std::string error;              // Error
    bool errorAtNextIndex = false;  // Error: the line stands where the next entry should be
};

// Parses lines with reusable buffers. One per thread.
//
// An entry line is read one of two ways. The fast path is a SAX pass that writes the canonical
// bytes of "entry" while it reads, and takes only lines whose objects already have their members
// in canonical order (what the gateway writes); anything else goes to the DOM path, which builds
// the line's tree and encodes "entry" with the one canonical encoder (json::appendCanonical) and
// words every refusal. The fast path is kept only because the fuzz target fuzz_audit_line checks,
// on every line it takes, that the DOM path gives the same index, leaf hashes and bytes.
class LineParser {
public:
    // fastPath false: every line takes the DOM path (the fuzz target's reference).
    explicit LineParser(bool fastPath = true);
    // `line` is parsed in place (modified).
    ParsedLine parse(std::string& line);
    // Whether the last parse() was answered by the fast path.
    bool tookFastPath() const noexcept { return tookFastPath_; }
    // The canonical bytes of the entry the last parse() returned as Kind::Entry; empty after any
    // other outcome (valid until the next parse()).
    const std::string& canonicalEntry() const noexcept { return canonical_; }

private:
    bool fastPath_ = true;
    bool tookFastPath_ = false;
    std::string canonical_;
    std::string copy_;
    std::vector<char> arena_;
};

// Incremental verifier: feed lines in order, then finish(). Stops at the first problem.
// Not thread-safe; addLines() uses one helper thread internally.
class AuditExportVerifier {
public:
    explicit AuditExportVerifier(const crypto::Ed25519PublicKey& gatewayKey, AuditVerifyOptions options = {});

    // One line without its newline. `line` may be modified in place (parsed in situ).
    void addLine(std::string& line);
    // The first `count` lines of `lines`, in order; parsed on two threads (lines are modified).
    void addLines(std::vector<std::string>& lines, size_t count);
    bool failed() const { return failed_; }
    AuditVerification finish();

    const MerkleTree& tree() const { return tree_; }

private:
    void fail(std::string problem, std::optional<uint64_t> index, bool exact, uint64_t rangeEnd = 0);
    void apply(const ParsedLine& parsed);
    void addEntry(uint64_t index, const Hash& computed, const std::optional<Hash>& recorded);
    void addTreeHead(const SignedTreeHead& head, uint64_t line);
    void checkReadyHeads();
    void checkHead(const SignedTreeHead& head, uint64_t line);
    // Decides a pending duplicate with the verified head `head` (which covers its index); fails.
    void resolveDuplicate(const SignedTreeHead& head, const std::string& where);
    void failUnresolvedDuplicate(const std::string& why);

    crypto::Ed25519PublicKey key_;
    AuditVerifyOptions options_;
    MerkleTree tree_;
    struct PendingHead {
        SignedTreeHead head;
        uint64_t line;
    };
    std::vector<PendingHead> pending_;
    uint64_t pendingMinSize_ = UINT64_MAX;
    std::optional<SignedTreeHead> lastVerified_;
    uint64_t lineNumber_ = 0;
    uint64_t lastEntryLine_ = 0;  // line of the entry last appended to tree_
    // A second entry with the index just appended (one of the two is not the signed one): held back
    // until a head covering that index says which, or until something else goes wrong first.
    struct Duplicate {
        uint64_t index = 0;
        Hash leaf{};             // the second entry's leaf hash (the first one is in tree_)
        uint64_t firstLine = 0;  // line of the entry in tree_
        uint64_t line = 0;       // line of the second entry
    };
    std::optional<Duplicate> duplicate_;
    LineParser parsers_[2];
    std::vector<ParsedLine> results_;
    AuditVerification result_;
    bool failed_ = false;
};

AuditVerification verifyAuditExport(std::string_view ndjson, const crypto::Ed25519PublicKey& gatewayKey,
                                    const AuditVerifyOptions& options = {});
// Streams the file in large blocks; Status only for IO errors (verification failures are in the
// returned report).
Result<AuditVerification> verifyAuditExportFile(const std::string& path, const crypto::Ed25519PublicKey& gatewayKey,
                                                const AuditVerifyOptions& options = {});

// One export line for an entry / a tree head (what the gateway's export writes).
std::string exportEntryLine(const std::string& canonicalEntryBytes, bool withLeafHash = true);
// The line for an entry as stored by the gateway: the stored bytes with the RECORDED leaf hash (not
// one recomputed from the bytes), so a modified entry shows up as a mismatch.
std::string exportEntryLine(std::string_view storedEntryBytes, const Hash& recordedLeafHash);
std::string exportTreeHeadLine(const SignedTreeHead& head);

}  // namespace custodian::audit
