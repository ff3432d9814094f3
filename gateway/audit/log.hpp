#pragma once
// The database-backed, tamper-evident audit log (docs/audit.md, docs/formats/audit.md).
//
// Appending: AuditLog::append() hands the entry to one appender thread per process, which batches
// every append waiting at that moment into ONE PostgreSQL transaction (group commit):
//   UPDATE audit_log_head SET next_index = next_index + n RETURNING next_index   -- row lock
//   INSERT INTO audit_entries ... (n rows, canonical bytes + leaf hash per entry)
//   COMMIT                                                  -- synchronous_commit = on
// The row lock on audit_log_head serialises appenders across every gateway process; a failed or
// rolled-back transaction rolls the counter back with it, so indices are 0, 1, 2, … without gaps
// or forks. The transaction waits at most `lockTimeout` for any lock it needs (SET LOCAL
// lock_timeout): a session that holds audit_log_head or audit_entries (an operator's LOCK TABLE, a
// transaction left open) makes the batch fail with Unavailable instead of stalling every audited
// request. An append queued behind such a batch waits at most about twice `lockTimeout`. The index and the time are
// assigned inside the transaction, then the canonical entry bytes and the leaf hash are computed (both are part of the
// entry). append() returns only after COMMIT succeeded; if it did not (database down, INSERT privilege revoked, …)
// every entry of the batch gets Unavailable and the caller must fail closed (503, nothing released).
//
// Every group commit also reads the latest stored tree head in the same statement that reserves
// the indices, so a request that appended an entry can answer "the latest head" without another
// round trip (latestTreeHeadSince): the head observed by a snapshot taken after the request began
// is as recent as any head stored before it began.
//
// The Merkle tree: each process keeps the tree in memory and catches up from audit_entries (leaf
// hashes by index) before it computes a root or a proof, so entries appended by other processes are
// included. It keeps only the roots of blocks of 1024 entries (about 64 bytes per block, so memory
// stays flat however long the gateway runs) and the leaves of the last block; a proof reads the one
// or two older blocks it needs back from audit_entries and checks them against the kept roots. Signed tree heads are
// made at least every `treeHeadEveryEntries` entries and every `treeHeadInterval` while there are unsigned entries, and
// stored in audit_tree_heads. Several processes may sign: a head is only inserted if it is larger than every stored
// head (under an advisory lock), with a timestamp no earlier than theirs, so the sequence of heads is increasing in
// size and non-decreasing in time; the same size always has the same root because every process computes it from the
// same committed leaves.
//
// Integrity (docs/audit.md, "Integrity checks"): a third thread first runs the start-up check of
// gateway/audit/integrity.hpp (every entry re-hashed, the tree recomputed and compared with every
// signed head) and adopts the tree it recomputed; until it passed, appends wait for it (at most
// `lockTimeout`, then Unavailable) and nothing is signed. Then, every `integrityCheckInterval`, it
// re-reads the entries appended since its last run — the current, incomplete block entry by entry
// against the leaf hashes the tree holds, every block completed since against the block's kept
// root — and `integrityRecheckBlocks` older blocks in rotation, each stored leaf hash against its
// bytes and each block against its kept root, and the latest signed head against the tree.
// The background check is paced (after each block it pauses three times as long as the block
// took) and runs at a lower CPU priority, so it never takes the cores from requests in a burst.
// The signer, catch-up and proofs check what they read, too. The first mismatch anyone finds makes the
// log untrusted for the rest of the process's life: append() and signTreeHead() refuse with
// Unavailable, one log line names the first bad index (or the smallest range the roots allow),
// and integrity() reports it (for /readyz, the 503 of audited requests and /metrics).
//
// Thread-safety: every member function may be called from any thread. append() blocks until the
// batch containing the entry is committed (or failed); the other functions block on the database.
// The log uses its own connections (never the request pool), so a handler may call append() while
// it holds a pool connection.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "anonymizer/status.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/audit/integrity.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/crypto/keys.hpp"

#include <pqxx/connection>  // pqxx::connection is an alias in libpqxx 6.4: cannot be forward-declared

namespace custodian::audit {

struct AuditLogOptions {
    std::string conninfo;                               // the gateway database (connect_timeout applied)
    uint64_t treeHeadEveryEntries = 1000;               // sign a head after this many new entries
    std::chrono::milliseconds treeHeadInterval{10000};  // … and at least this often while unsigned entries exist
    size_t maxBatch = 1000;                             // entries per group-commit transaction
    std::chrono::milliseconds lockTimeout{5000};  // longest wait for a lock by a group commit or a signer (≥ 1 ms)
    std::function<int64_t()> clock;               // Unix ms; default: system clock (tests inject one)
    // The in-memory Merkle tree keeps the roots of blocks of 2^merkleBlockLevel entries (and the
    // last block's leaves); proofs read an older block's leaf hashes from audit_entries.
    unsigned merkleBlockLevel = 10;
    // The background integrity check: how often it runs (≥ 1 ms), and how many older complete blocks
    // each run re-reads in rotation besides the entries appended since the previous run.
    std::chrono::milliseconds integrityCheckInterval{10000};
    uint64_t integrityRecheckBlocks = 64;
    // Where the log's own messages go (integrity failures, refused or failed signing, checks that
    // could not run); default: one line on stderr, prefixed "custodian: ". It may be called with the
    // log's locks held: it must not call back into the AuditLog.
    std::function<void(const std::string&)> logMessage;
};

enum class IntegrityState {
    Checking,   // the start-up check has not passed yet (running, or waiting for the database)
    Trusted,    // the start-up check passed and no check found a mismatch since
    Untrusted,  // a check found a mismatch: nothing is appended or signed until a restart
};

struct IntegrityStatus {
    IntegrityState state = IntegrityState::Checking;
    // Checking: what the start-up check is doing or why it cannot run; Untrusted: the mismatch.
    std::string message;
    std::optional<IntegrityFailure> failure;  // Untrusted
};

// Counters of this process's appender (for /metrics and the benchmarks). Monotonic except `queued`.
struct AuditLogStats {
    uint64_t entriesCommitted = 0;  // entries durably committed by this process
    uint64_t commits = 0;           // group-commit transactions that committed
    uint64_t failedEntries = 0;     // entries whose append returned an error (caller failed closed)
    uint64_t queued = 0;            // appends waiting for the appender right now
    // Integrity (docs/audit.md): state, completed checks (start-up and background), entries and
    // bytes they re-read and hashed, mismatches found (sticky), checks that could not run, and
    // signing attempts that failed or were refused.
    IntegrityState integrity = IntegrityState::Checking;
    uint64_t integrityChecks = 0;
    uint64_t integrityCheckedEntries = 0;
    uint64_t integrityFailures = 0;
    uint64_t integrityCheckErrors = 0;
    uint64_t treeHeadFailures = 0;
    std::optional<uint64_t> firstBadIndex;  // when untrusted
};

// One stored audit entry: the canonical bytes exactly as stored and the recorded leaf hash (nothing
// is re-derived, so an export shows tampering instead of hiding it), plus the parsed entry.
struct StoredEntry {
    uint64_t index = 0;  // the row's entry_index
    std::string canonicalBytes;
    Hash leafHash{};
    AuditEntry entry;     // parsed from canonicalBytes by query(); entriesInRange() leaves it empty
    bool parsed = false;  // false when not parsed, or the stored bytes no longer parse (tampering)
};

// Filters of GET /v1/audit; every set member must match. `after` is the cursor: entries with a
// larger index only.
struct AuditQuery {
    std::optional<std::string> actor, role, dataset, action, decision;
    std::optional<int64_t> fromMs, toMs;  // time_ms in [fromMs, toMs]
    std::optional<uint64_t> after;
    size_t limit = 100;
};

struct AuditPage {
    std::vector<StoredEntry> entries;
    std::optional<uint64_t> nextCursor;  // set when more entries may match
};

struct InclusionProof {
    uint64_t index = 0;
    uint64_t treeSize = 0;
    Hash leafHash{};
    Hash rootHash{};
    std::vector<Hash> path;
};

struct ConsistencyProof {
    uint64_t first = 0;
    uint64_t second = 0;
    Hash firstRoot{};
    Hash secondRoot{};
    std::vector<Hash> path;
};

class AuditLog {
public:
    // Starts the appender and the tree-head threads. Does not need the database to be up: appends
    // fail with Unavailable until it is, and the tree is caught up on first use.
    AuditLog(AuditLogOptions options, const crypto::SigningKey& signingKey);
    ~AuditLog();  // fails queued appends with Unavailable, joins the threads
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Assigns index and time (entry.index and entry.timeMs are overwritten), commits durably and
    // returns the index. Unavailable if the entry could not be committed.
    Result<uint64_t> append(AuditEntry entry);
    // The same without blocking until the commit: `done` is called exactly once with what append()
    // would return — on the caller's thread when the entry is refused before it is queued, otherwise
    // on the appender thread once its batch committed or failed (so it must be quick and must not
    // call back into the log). A request handler uses it to give its worker thread back while its
    // entry waits for the group commit.
    using AppendCallback = std::function<void(Result<uint64_t>)>;
    void appendAsync(AuditEntry entry, AppendCallback done);

    // Catches the in-memory tree up with every committed entry and returns its size.
    Result<uint64_t> treeSize();
    // The latest stored signed tree head (NotFound when none was signed yet), read now.
    Result<SignedTreeHead> latestTreeHead();
    // The latest stored signed tree head as seen by a database snapshot taken no earlier than
    // `notBefore` (steady clock). Group commits and signing observe the latest head as they go;
    // when the newest such observation is recent enough it is returned without a query, otherwise
    // the head is read as latestTreeHead() does. Take `notBefore` when a request begins, before its
    // append(): the answer then covers every head stored before the request began.
    Result<SignedTreeHead> latestTreeHeadSince(std::chrono::steady_clock::time_point notBefore);
    // Signs and stores a head over every committed entry if it is larger than the latest stored
    // head; returns the latest stored head afterwards (which covers at least every entry committed
    // before the call, unless another process stored an even larger one).
    Result<SignedTreeHead> signTreeHead();
    // Signed heads with treeSize ≤ maxSize, in increasing size.
    Result<std::vector<SignedTreeHead>> treeHeads(uint64_t maxSize);

    // Proofs over the committed log. InvalidArgument for indices/sizes that do not fit together,
    // NotFound when a size is beyond the committed log.
    Result<InclusionProof> inclusionProof(uint64_t index, uint64_t treeSize);
    // The proofs of `indices` (ascending) in one tree, as inclusionProof() gives them one by one,
    // reading each older block of leaf hashes once (the transparency register's many proofs).
    Result<std::vector<InclusionProof>> inclusionProofs(std::span<const uint64_t> indices, uint64_t treeSize);
    Result<ConsistencyProof> consistencyProof(uint64_t first, uint64_t second);

    Result<AuditPage> query(const AuditQuery& query);
    // Entries with index in [from, to) in index order (at most `to - from`), for the export.
    Result<std::vector<StoredEntry>> entriesInRange(uint64_t from, uint64_t to);
    // One more than the largest stored entry_index (0 when the table is empty).
    Result<uint64_t> storedBound();

    // Whether the gateway's database role may insert into audit_entries (readiness).
    Result<bool> writable();

    AuditLogStats stats() const;

    // See "Integrity" above.
    IntegrityStatus integrity() const;
    // Waits until the start-up check has an outcome (or the last attempt could not run), at most
    // `timeout`; returns integrity() then.
    IntegrityStatus awaitStartCheck(std::chrono::milliseconds timeout);
    // Runs the start-up check (while Checking) or one background check (while Trusted) on the
    // calling thread now. A Status error means the check could not run; a mismatch is reported by
    // integrity().
    Status checkIntegrityNow();

private:
    struct Pending {
        AuditEntry entry;
        AppendCallback done;
    };
    void appenderLoop();
    void headLoop();
    Status commitBatch(std::vector<Pending>& batch, std::vector<Hash>& leafHashes, uint64_t& firstIndex);
    // Runs `work` on the reader connection (reconnecting after failures); serialised by readerMutex_.
    Status withReader(const std::function<Status(pqxx::connection&)>& work);
    // With readerMutex_ held.
    Status catchUpLocked(pqxx::connection& conn);
    // The stored leaf hashes of entries [begin, end), for the tree's older blocks, on a connection
    // of their own: roots and proofs may need them while the reader connection is in a transaction.
    Result<std::vector<Hash>> readLeaves(uint64_t begin, uint64_t end);
    Result<SignedTreeHead> signLocked(pqxx::connection& conn);
    // Records what a snapshot taken at or after `at` saw as the latest head (nullopt: none).
    void observeHead(std::chrono::steady_clock::time_point at, const std::optional<SignedTreeHead>& head);
    int64_t nowMs() const;

    void integrityLoop();
    Status runStartCheck();       // with checkMutex_
    Status runBackgroundCheck();  // with checkMutex_
    // Compares the stored block `block` (complete) with its kept root; false after marking untrusted.
    Result<bool> checkBlock(uint64_t block, uint64_t& entries);
    // Waits kCheckPauseFactor times the time since `started` (the background check's pacing);
    // false if the log is stopping.
    bool pauseAfterCheckStep(std::chrono::steady_clock::time_point started);
    // Waits for the start-up check (append): Ok when trusted.
    Status awaitTrusted();
    // Ok when a head may be signed; otherwise the refusal (counted).
    Status signingAllowed();
    // Records the first mismatch found (later ones are only counted) and logs it once.
    void markUntrusted(IntegrityFailure failure, const std::string& foundBy);
    // Logs `message` unless it is the same as the last one logged in `last` (retries of the same
    // failure stay one line); an empty message means "no failure": `recovered` is logged if one was.
    void logOnce(std::string& last, const std::string& message, const std::string& recovered);
    MerkleTree newTree();  // empty, reading older leaves back through readLeaves(), mismatches reported
    void log(const std::string& message) const;

    AuditLogOptions options_;
    const crypto::SigningKey& signingKey_;

    mutable std::mutex queueMutex_;
    std::condition_variable queueReady_;
    std::deque<Pending> queue_;
    bool stopping_ = false;

    std::unique_ptr<pqxx::connection> appenderConnection_;             // appender thread only
    uint64_t entriesCommitted_ = 0, commits_ = 0, failedEntries_ = 0;  // with queueMutex_

    // The newest observation of the latest stored head: heads only grow, so the largest head seen
    // together with the latest time any snapshot was taken is a valid observation at that time.
    mutable std::mutex observedMutex_;
    std::optional<std::chrono::steady_clock::time_point> observedAt_;  // none: nothing observed yet
    std::optional<SignedTreeHead> observedHead_;                       // none: no head was stored

    std::mutex readerMutex_;
    std::unique_ptr<pqxx::connection> readerConnection_;  // with readerMutex_
    std::shared_mutex treeMutex_;
    // With treeMutex_; grown by the appender thread and by catch-up (under readerMutex_). Its roots
    // and proofs may read older leaves through readLeaves() (lock order: treeMutex_, leafMutex_).
    MerkleTree tree_;
    std::mutex leafMutex_;
    std::unique_ptr<pqxx::connection> leafConnection_;  // with leafMutex_

    std::mutex headMutex_;
    std::condition_variable headWake_;
    uint64_t unsignedEntries_ = 0;  // entries this process appended since it last signed
    bool headRequested_ = false;
    bool headStopping_ = false;

    std::thread appender_;
    std::thread headThread_;

    mutable std::mutex integrityMutex_;
    std::condition_variable integrityChanged_;  // state changes, start attempts ending, stop
    IntegrityState integrityState_ = IntegrityState::Checking;
    std::string integrityMessage_ = "the audit log has not been checked against its signed tree heads yet";
    std::optional<IntegrityFailure> integrityFailure_;
    bool startCheckRunning_ = true;  // an attempt is running or about to (the thread starts with one)
    bool integrityStopping_ = false;
    uint64_t integrityChecks_ = 0, integrityCheckedEntries_ = 0, integrityFailures_ = 0, integrityCheckErrors_ = 0,
             treeHeadFailures_ = 0;      // with integrityMutex_
    uint64_t lastVerifiedHeadSize_ = 0;  // with integrityMutex_: the largest head the tree was seen to match
    std::atomic<bool> trusted_{false};   // integrityState_ == Trusted, for append()'s fast path
    std::string lastSignError_;          // head thread only (logOnce)
    std::string lastCheckError_;         // with checkMutex_ (logOnce)

    std::mutex checkMutex_;                           // one check at a time (thread and checkIntegrityNow)
    std::unique_ptr<StoredEntryReader> checkReader_;  // with checkMutex_
    uint64_t checkedBlocks_ = 0;                      // with checkMutex_: blocks [0, checkedBlocks_) were checked once
    uint64_t rotationBlock_ = 0;                      // with checkMutex_: the next older block to re-read
    std::thread integrityThread_;
};

}  // namespace custodian::audit
