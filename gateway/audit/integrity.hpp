#pragma once
// Checking the stored audit log against what was signed and appended (docs/audit.md, "Integrity
// checks"). A superuser can disable the append-only triggers and rewrite audit_entries; these
// checks are how a running gateway notices, so that it stops serving instead of extending a log it
// can no longer vouch for.
//
// StoredEntryReader streams rows of audit_entries in index order through a binary COPY on a libpq
// connection of its own: the entry bytes arrive as they are stored (no hex text to decode), one row
// at a time, so memory does not grow with the log.
//
// checkStoredLog() is the start-up check: in ONE snapshot it reads every signed tree head and the
// counter, streams every entry and
//   - checks that indices run 0, 1, 2, … without a gap or a repeat, and end at the counter;
//   - recomputes each leaf hash from the stored bytes and compares it with the stored leaf_hash;
//   - recomputes the Merkle tree from those leaf hashes and compares its root with every signed
//     head as the stream reaches the head's size (after checking the head's signature with the
//     gateway's key and that heads never go back in time);
//   - checks that no signed head covers more entries than are stored.
// It fills the caller's MerkleTree with the recomputed leaf hashes, so a gateway starts from a tree
// it checked, not from stored leaf hashes it merely read.
//
// readCheckedLeaves() re-reads a range for the background check (gateway/audit/log.hpp), which then
// compares the recomputed leaf hashes with the tree the gateway holds in memory.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/crypto/keys.hpp"

struct pg_conn;

namespace custodian::audit {

// Where the stored log first departs from what was signed or appended.
struct IntegrityFailure {
    // The first bad entry is in [firstBadIndex, badRangeEnd); badRangeEnd == firstBadIndex + 1 when
    // the index is exact. When only a signed root or a block root disagrees, the range is what that
    // root covers beyond the last root that still agreed.
    uint64_t firstBadIndex = 0;
    uint64_t badRangeEnd = 0;
    bool exact() const { return badRangeEnd == firstBadIndex + 1; }
    std::string problem;  // a sentence naming the index (or range) and what was found there
};

// "first bad entry index 7" or "first bad entry in [1024, 2048)".
std::string describeLocation(const IntegrityFailure& failure);

class StoredEntryReader {
public:
    explicit StoredEntryReader(std::string conninfo);
    ~StoredEntryReader();
    StoredEntryReader(const StoredEntryReader&) = delete;
    StoredEntryReader& operator=(const StoredEntryReader&) = delete;

    // Opens (or reopens) the connection and starts a REPEATABLE READ, READ ONLY transaction: every
    // read until finish() sees one snapshot. Unavailable when the database cannot be reached.
    Status start();
    void finish();  // ends the transaction (rollback: nothing was written)

    // Every stored tree head, by increasing size.
    Result<std::vector<SignedTreeHead>> treeHeads();
    // audit_log_head.next_index (the next index an append will take).
    Result<uint64_t> nextIndex();
    // The smallest and largest stored entry_index, or nullopt when the table is empty.
    Result<std::optional<std::pair<int64_t, int64_t>>> indexBounds();
    // The smallest stored entry_index ≥ from, or nullopt.
    Result<std::optional<int64_t>> nextStoredIndex(int64_t from);

    // visit(index, entry bytes, stored leaf hash bytes) for every row with entry_index in
    // [from, to), in index order (rows with equal indices in any order). Returning false stops the
    // visits (the rest of the COPY is read and dropped).
    using Visitor = std::function<bool(int64_t index, std::string_view entry, std::string_view leafHash)>;
    Status scan(int64_t from, int64_t to, const Visitor& visit);

private:
    Status fail(const std::string& during);
    Result<std::vector<std::vector<std::string>>> query(const std::string& sql, const std::string& during);

    std::string conninfo_;
    pg_conn* conn_ = nullptr;
    bool inTransaction_ = false;
};

struct StartCheckReport {
    uint64_t entries = 0;       // entries read and hashed
    uint64_t bytes = 0;         // their stored bytes
    uint64_t treeHeads = 0;     // signed heads that verified
    uint64_t lastHeadSize = 0;  // the largest of them
    std::optional<IntegrityFailure> failure;
};

// The start-up check described above, on `reader` (which it starts and finishes). `tree` must be
// empty; it receives the recomputed leaf hashes up to the failure (all of them when there is none).
// `progress(entries)` is called every 65536 entries; returning false abandons the check (Unavailable).
// A Status error means the check could not run (database unreachable, …); a log that does not
// verify is a report with `failure` set.
Result<StartCheckReport> checkStoredLog(StoredEntryReader& reader, const crypto::Ed25519PublicKey& gatewayKey,
                                        MerkleTree& tree, const std::function<bool(uint64_t)>& progress = {});

// Reads entries [begin, end) in their own snapshot, checks that every index is there exactly once
// and that each stored leaf hash is the hash of the stored bytes, and appends the recomputed leaf
// hashes to `leaves`. `bytes` receives the entry bytes read. A mismatch is returned as the failure.
Result<std::optional<IntegrityFailure>> readCheckedLeaves(StoredEntryReader& reader, uint64_t begin, uint64_t end,
                                                          std::vector<Hash>& leaves, uint64_t& bytes);

}  // namespace custodian::audit
