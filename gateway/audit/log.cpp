#include "gateway/audit/log.hpp"

#include <pqxx/pqxx>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "json/canonical.hpp"
#include "gateway/db/pool.hpp"

namespace custodian::audit {

namespace {

// pg_advisory_xact_lock key that serialises tree-head signers across processes ("custodia").
constexpr int64_t kTreeHeadLockKey = 0x637573746f646961;
constexpr size_t kCatchUpRows = 50000;

int64_t systemNowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Text for the filter projections: valid UTF-8 without NUL (which PostgreSQL text cannot hold).
std::string projectionText(std::string_view s) {
    std::string out = json::sanitizeUtf8(s);
    size_t pos = 0;
    while ((pos = out.find('\0', pos)) != std::string::npos) out.replace(pos, 1, "\xEF\xBF\xBD");
    return out;
}

std::string byteaLiteral(crypto::ByteView bytes) { return "'\\x" + crypto::toHex(bytes) + "'::bytea"; }

Hash hashFromField(const pqxx::field& f) {
    pqxx::binarystring b(f);
    Hash h{};
    if (b.size() == h.size()) std::memcpy(h.data(), b.data(), h.size());
    return h;
}

// `SET LOCAL lock_timeout` for a transaction that must not wait on other sessions indefinitely.
std::string setLockTimeout(std::chrono::milliseconds timeout) {
    return "SET LOCAL lock_timeout TO " + std::to_string(std::max<int64_t>(timeout.count(), 1));
}

// Every failure to write the log is Unavailable: the caller fails closed with 503 whatever the
// cause (database down, privilege revoked, disk full, a lock held elsewhere, ...), and the message
// says which it was.
Status appendFailure(std::exception_ptr error, std::chrono::milliseconds lockTimeout) {
    if (db::isLockTimeout(error))
        return unavailable("the audit log cannot be written: another database session holds a lock on the audit "
                           "tables and it was not released within " +
                           std::to_string(lockTimeout.count()) + " ms (audit.lock_timeout_ms)");
    Status s = db::statusFromException(error, "audit log");
    if (s.code() == StatusCode::Unavailable) return s;
    return unavailable("the audit log cannot be written: " + s.message());
}

// The head in columns first … first + 3 of `row` (tree_size, root_hash, timestamp_ms, signature).
SignedTreeHead headFromRow(const pqxx::row& row, pqxx::row::size_type first = 0) {
    SignedTreeHead h;
    h.head.treeSize = row[first].as<uint64_t>();
    h.head.rootHash = hashFromField(row[first + 1]);
    h.head.timestampMs = row[first + 2].as<uint64_t>();
    pqxx::binarystring sig(row[first + 3]);
    if (sig.size() == h.signature.size()) std::memcpy(h.signature.data(), sig.data(), sig.size());
    return h;
}

constexpr const char* kLatestHeadQuery =
    "SELECT tree_size, root_hash, timestamp_ms, signature FROM audit_tree_heads ORDER BY tree_size DESC LIMIT 1";

}  // namespace

AuditLog::AuditLog(AuditLogOptions options, const crypto::SigningKey& signingKey)
    : options_(std::move(options)), signingKey_(signingKey) {
    if (options_.maxBatch == 0) options_.maxBatch = 1;
    if (options_.treeHeadEveryEntries == 0) options_.treeHeadEveryEntries = 1;
    if (options_.integrityCheckInterval.count() < 1) options_.integrityCheckInterval = std::chrono::milliseconds(1);
    tree_ = newTree();
    checkReader_ = std::make_unique<StoredEntryReader>(options_.conninfo);
    appender_ = std::thread([this] { appenderLoop(); });
    headThread_ = std::thread([this] { headLoop(); });
    integrityThread_ = std::thread([this] { integrityLoop(); });
}

MerkleTree AuditLog::newTree() {
    MerkleTree tree([this](uint64_t begin, uint64_t end) { return readLeaves(begin, end); }, options_.merkleBlockLevel);
    tree.setMismatchHandler([this](uint64_t begin, uint64_t end, const std::string& problem) {
        markUntrusted({begin, end, problem}, "a read of stored leaf hashes for a root or a proof");
    });
    return tree;
}

AuditLog::~AuditLog() {
    {
        std::lock_guard lock(integrityMutex_);
        integrityStopping_ = true;
    }
    integrityChanged_.notify_all();
    integrityThread_.join();
    {
        std::lock_guard lock(queueMutex_);
        stopping_ = true;
    }
    queueReady_.notify_all();
    {
        std::lock_guard lock(headMutex_);
        headStopping_ = true;
    }
    headWake_.notify_all();
    appender_.join();
    headThread_.join();
}

int64_t AuditLog::nowMs() const { return options_.clock ? options_.clock() : systemNowMs(); }

Result<uint64_t> AuditLog::append(AuditEntry entry) {
    std::promise<Result<uint64_t>> promise;
    std::future<Result<uint64_t>> done = promise.get_future();
    appendAsync(std::move(entry), [&promise](Result<uint64_t> r) { promise.set_value(std::move(r)); });
    return done.get();
}

void AuditLog::appendAsync(AuditEntry entry, AppendCallback done) {
    // Reject entries whose details cannot be canonicalised here, on the caller's thread, so one bad
    // entry never fails the batch it would have shared with others.
    entry.index = 0;
    entry.timeMs = 0;
    if (auto bytes = canonicalEntryBytes(entry); !bytes) return done(bytes.status());
    if (Status s = awaitTrusted(); !s) return done(s);
    {
        std::lock_guard lock(queueMutex_);
        if (!stopping_) {
            queue_.push_back(Pending{std::move(entry), std::move(done)});
            done = nullptr;
        }
    }
    if (done) return done(unavailable("the audit log is shutting down"));
    queueReady_.notify_one();
}

void AuditLog::appenderLoop() {
    for (;;) {
        std::vector<Pending> batch;
        {
            std::unique_lock lock(queueMutex_);
            queueReady_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping and drained
            const size_t n = std::min(queue_.size(), options_.maxBatch);
            batch.reserve(n);
            for (size_t i = 0; i < n; ++i) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        std::vector<Hash> leaves;
        uint64_t first = 0;
        Status s = commitBatch(batch, leaves, first);
        if (!s) {
            {
                std::lock_guard lock(queueMutex_);
                failedEntries_ += batch.size();
            }
            for (auto& p : batch) p.done(s);
            continue;
        }
        {
            // Our batch extends the in-memory tree directly when nothing from another process came
            // in between; otherwise the next catch-up reads it from the table.
            std::unique_lock tree(treeMutex_);
            if (tree_.size() == first)
                for (const Hash& h : leaves) tree_.append(h);
        }
        {
            std::lock_guard lock(queueMutex_);
            entriesCommitted_ += batch.size();
            ++commits_;
        }
        for (size_t i = 0; i < batch.size(); ++i) batch[i].done(first + i);
        bool wake = false;
        {
            std::lock_guard lock(headMutex_);
            unsignedEntries_ += batch.size();
            if (unsignedEntries_ >= options_.treeHeadEveryEntries && !headRequested_) {
                headRequested_ = true;
                wake = true;
            }
        }
        if (wake) headWake_.notify_one();
    }
}

Status AuditLog::commitBatch(std::vector<Pending>& batch, std::vector<Hash>& leafHashes, uint64_t& firstIndex) {
    try {
        // A connection the server closed while idle (a restart) is replaced before it costs a batch.
        if (!appenderConnection_ || !appenderConnection_->is_open() || db::closedByServer(*appenderConnection_)) {
            appenderConnection_.reset();
            appenderConnection_ = std::make_unique<pqxx::connection>(options_.conninfo);
        }
    } catch (...) {
        appenderConnection_.reset();
        return appendFailure(std::current_exception(), options_.lockTimeout);
    }
    pqxx::connection& conn = *appenderConnection_;
    bool inTransaction = false;
    try {
        // Two round trips per batch: reserve the indices (row lock on the counter, held until
        // COMMIT) and read the latest stored tree head, then insert every entry and commit.
        // synchronous_commit is forced on for this transaction whatever the server default is, and
        // every lock wait (the counter's row, the tables) is bounded by lock_timeout.
        pqxx::nontransaction tx(conn);
        inTransaction = true;
        const auto snapshotNotBefore = std::chrono::steady_clock::now();
        pqxx::result reserved =
            tx.exec("BEGIN; SET LOCAL synchronous_commit TO on; " + setLockTimeout(options_.lockTimeout) +
                    "; WITH latest AS (" + kLatestHeadQuery + ") UPDATE audit_log_head SET next_index = next_index + " +
                    std::to_string(batch.size()) +
                    " RETURNING next_index, (SELECT tree_size FROM latest), (SELECT root_hash FROM latest), "
                    "(SELECT timestamp_ms FROM latest), (SELECT signature FROM latest)");
        if (reserved.size() != 1) {
            tx.exec("ROLLBACK");
            inTransaction = false;
            return unavailable(
                "the audit log cannot be written: audit_log_head has no row (migration 0002 not applied?)");
        }
        observeHead(snapshotNotBefore,
                    reserved[0][1].is_null() ? std::nullopt : std::optional(headFromRow(reserved[0], 1)));
        const int64_t next = reserved[0][0].as<int64_t>();
        firstIndex = static_cast<uint64_t>(next) - batch.size();
        const int64_t now = nowMs();
        leafHashes.clear();
        leafHashes.reserve(batch.size());
        std::string sql =
            "INSERT INTO audit_entries (entry_index, entry, leaf_hash, recorded_at, actor, role, action, dataset, "
            "decision) VALUES ";
        for (size_t i = 0; i < batch.size(); ++i) {
            AuditEntry& e = batch[i].entry;
            e.index = firstIndex + i;
            e.timeMs = now;
            auto bytes = canonicalEntryBytes(e);
            if (!bytes) {
                tx.exec("ROLLBACK");
                inTransaction = false;
                return internalError("audit entry could not be encoded: " + bytes.status().message());
            }
            const Hash leaf = leafHash(crypto::asBytes(*bytes));
            leafHashes.push_back(leaf);
            if (i > 0) sql += ',';
            sql += '(' + std::to_string(e.index) + ',' + byteaLiteral(crypto::asBytes(*bytes)) + ',' +
                   byteaLiteral(leaf) + ",to_timestamp(" + std::to_string(now) + "::double precision / 1000)," +
                   tx.quote(projectionText(e.actor)) + ',' + tx.quote(projectionText(e.role)) + ',' +
                   tx.quote(projectionText(e.action)) + ',' +
                   (e.target.dataset ? tx.quote(projectionText(*e.target.dataset)) : std::string("NULL")) + ',' +
                   tx.quote(projectionText(e.decision)) + ')';
        }
        sql += "; COMMIT";
        tx.exec(sql);
        inTransaction = false;
        return Status::ok();
    } catch (...) {
        Status s = appendFailure(std::current_exception(), options_.lockTimeout);
        // Whatever libpqxx threw, a batch whose connection is gone lost the database (as in
        // db::ConnectionPool::withConnection): the answer is database_unavailable, not a bare 503.
        if (!conn.is_open() && s.reason() != db::kDatabaseUnavailable)
            s = db::databaseUnavailable("the audit log cannot be written: the connection to the database was lost: " +
                                        s.message());
        if (inTransaction && conn.is_open()) {
            try {
                pqxx::nontransaction rollback(conn);
                rollback.exec("ROLLBACK");
            } catch (...) { appenderConnection_.reset(); }
        }
        if (appenderConnection_ && !appenderConnection_->is_open()) appenderConnection_.reset();
        return s;
    }
}

Status AuditLog::withReader(const std::function<Status(pqxx::connection&)>& work) {
    // Callers hold readerMutex_.
    try {
        if (!readerConnection_ || !readerConnection_->is_open() || db::closedByServer(*readerConnection_)) {
            readerConnection_.reset();
            readerConnection_ = std::make_unique<pqxx::connection>(options_.conninfo);
        }
        return work(*readerConnection_);
    } catch (...) {
        Status s = db::statusFromException(std::current_exception(), "audit log");
        if (s.code() == StatusCode::Unavailable || !readerConnection_ || !readerConnection_->is_open())
            readerConnection_.reset();
        return s;
    }
}

Status AuditLog::catchUpLocked(pqxx::connection& conn) {
    for (;;) {
        uint64_t from = 0;
        {
            std::shared_lock tree(treeMutex_);
            from = tree_.size();
        }
        std::vector<std::pair<uint64_t, Hash>> rows;
        {
            pqxx::read_transaction tx(conn);
            pqxx::result r = tx.exec_params(
                "SELECT entry_index, leaf_hash FROM audit_entries WHERE entry_index >= $1 ORDER BY entry_index "
                "LIMIT $2",
                static_cast<int64_t>(from), static_cast<int64_t>(kCatchUpRows));
            rows.reserve(r.size());
            for (const auto& row : r) rows.emplace_back(row[0].as<uint64_t>(), hashFromField(row[1]));
        }
        bool gap = false;
        {
            std::unique_lock tree(treeMutex_);
            for (const auto& [index, hash] : rows) {
                if (index < tree_.size()) continue;  // the appender added it meanwhile
                if (index != tree_.size()) {
                    // Committed indices are contiguous in every snapshot; a hole means rows were
                    // removed. The tree stops before it and the log is no longer trusted.
                    gap = true;
                    const uint64_t missing = tree_.size();
                    tree.unlock();
                    markUntrusted({missing, missing + 1,
                                   "entries " + std::to_string(missing) + ".." + std::to_string(index - 1) +
                                       " are missing (the next stored entry is " + std::to_string(index) + ")"},
                                  "catching up with the stored log");
                    break;
                }
                tree_.append(hash);
            }
        }
        if (gap || rows.size() < kCatchUpRows) return Status::ok();
    }
}

Result<std::vector<Hash>> AuditLog::readLeaves(uint64_t begin, uint64_t end) {
    std::lock_guard lock(leafMutex_);
    try {
        if (!leafConnection_ || !leafConnection_->is_open()) {
            leafConnection_.reset();
            leafConnection_ = std::make_unique<pqxx::connection>(options_.conninfo);
        }
        pqxx::read_transaction tx(*leafConnection_);
        pqxx::result r = tx.exec_params(
            "SELECT leaf_hash FROM audit_entries WHERE entry_index >= $1 AND entry_index < $2 ORDER BY entry_index",
            static_cast<int64_t>(begin), static_cast<int64_t>(end));
        std::vector<Hash> leaves;
        leaves.reserve(r.size());
        for (const auto& row : r) leaves.push_back(hashFromField(row[0]));
        return leaves;
    } catch (...) {
        leafConnection_.reset();
        return db::statusFromException(std::current_exception(), "audit log (reading Merkle leaves)");
    }
}

Result<uint64_t> AuditLog::treeSize() {
    std::lock_guard reader(readerMutex_);
    Status s = withReader([&](pqxx::connection& conn) { return catchUpLocked(conn); });
    if (!s) return s;
    std::shared_lock tree(treeMutex_);
    return tree_.size();
}

Result<SignedTreeHead> AuditLog::latestTreeHead() {
    std::lock_guard reader(readerMutex_);
    Result<SignedTreeHead> out = notFound("no tree head has been signed yet");
    Status s = withReader([&](pqxx::connection& conn) {
        const auto snapshotNotBefore = std::chrono::steady_clock::now();
        pqxx::nontransaction tx(conn);  // one statement: its own snapshot, one round trip
        pqxx::result r = tx.exec(kLatestHeadQuery);
        std::optional<SignedTreeHead> latest;
        if (!r.empty()) latest = headFromRow(r[0]);
        observeHead(snapshotNotBefore, latest);
        if (latest) out = *latest;
        return Status::ok();
    });
    if (!s) return s;
    return out;
}

Result<SignedTreeHead> AuditLog::latestTreeHeadSince(std::chrono::steady_clock::time_point notBefore) {
    {
        std::lock_guard lock(observedMutex_);
        if (observedAt_ && *observedAt_ >= notBefore) {
            if (observedHead_) return *observedHead_;
            return notFound("no tree head has been signed yet");
        }
    }
    return latestTreeHead();
}

void AuditLog::observeHead(std::chrono::steady_clock::time_point at, const std::optional<SignedTreeHead>& head) {
    std::lock_guard lock(observedMutex_);
    if (!observedAt_ || at > *observedAt_) observedAt_ = at;
    if (head && (!observedHead_ || head->head.treeSize > observedHead_->head.treeSize)) observedHead_ = head;
}

AuditLogStats AuditLog::stats() const {
    AuditLogStats s;
    {
        std::lock_guard lock(queueMutex_);
        s.entriesCommitted = entriesCommitted_;
        s.commits = commits_;
        s.failedEntries = failedEntries_;
        s.queued = queue_.size();
    }
    std::lock_guard lock(integrityMutex_);
    s.integrity = integrityState_;
    s.integrityChecks = integrityChecks_;
    s.integrityCheckedEntries = integrityCheckedEntries_;
    s.integrityFailures = integrityFailures_;
    s.integrityCheckErrors = integrityCheckErrors_;
    s.treeHeadFailures = treeHeadFailures_;
    if (integrityFailure_) s.firstBadIndex = integrityFailure_->firstBadIndex;
    return s;
}

// --- integrity -----------------------------------------------------------------------------

IntegrityStatus AuditLog::integrity() const {
    std::lock_guard lock(integrityMutex_);
    return {integrityState_, integrityMessage_, integrityFailure_};
}

IntegrityStatus AuditLog::awaitStartCheck(std::chrono::milliseconds timeout) {
    std::unique_lock lock(integrityMutex_);
    integrityChanged_.wait_for(lock, timeout,
                               [&] { return integrityState_ != IntegrityState::Checking || !startCheckRunning_; });
    return {integrityState_, integrityMessage_, integrityFailure_};
}

Status AuditLog::awaitTrusted() {
    if (trusted_.load(std::memory_order_acquire)) return Status::ok();
    std::unique_lock lock(integrityMutex_);
    integrityChanged_.wait_for(lock, options_.lockTimeout, [&] {
        return integrityState_ != IntegrityState::Checking || !startCheckRunning_ || integrityStopping_;
    });
    switch (integrityState_) {
    case IntegrityState::Trusted: return Status::ok();
    case IntegrityState::Untrusted:
        return unavailable("nothing is appended to an untrusted audit log: " + integrityMessage_);
    case IntegrityState::Checking: break;
    }
    return unavailable("the audit log cannot be written before its start-up integrity check has passed: " +
                       integrityMessage_);
}

void AuditLog::log(const std::string& message) const {
    if (options_.logMessage) {
        options_.logMessage(message);
        return;
    }
    std::fprintf(stderr, "custodian: %s\n", message.c_str());
    std::fflush(stderr);
}

void AuditLog::logOnce(std::string& last, const std::string& message, const std::string& recovered) {
    if (message.empty()) {
        if (!last.empty() && !recovered.empty()) log(recovered);
        last.clear();
        return;
    }
    if (message == last) return;
    last = message;
    log(message);
}

void AuditLog::markUntrusted(IntegrityFailure failure, const std::string& foundBy) {
    {
        std::lock_guard lock(integrityMutex_);
        ++integrityFailures_;
        if (integrityState_ == IntegrityState::Untrusted) return;  // the first mismatch is the one reported
        integrityState_ = IntegrityState::Untrusted;
        trusted_.store(false, std::memory_order_release);
        integrityMessage_ = "the audit log no longer matches what this gateway appended and signed (" +
                            describeLocation(failure) + ", found by " + foundBy + "): " + failure.problem;
        integrityFailure_ = std::move(failure);
        const std::string line =
            "AUDIT LOG UNTRUSTED: " + integrityMessage_ +
            ". Audited requests are refused with 503 audit_log_untrusted and no tree head is signed until the "
            "gateway is restarted on an audit log that verifies (docs/operations.md)";
        // Logged before anyone can see the state: whoever finds the log untrusted finds the line too.
        log(line);
    }
    integrityChanged_.notify_all();
}

// How much of its time the background check may work: after each block it pauses for
// kCheckPauseFactor times as long as the block took, so it uses at most a quarter of one core and
// never takes the cores from requests in one burst (reading 64 blocks at once stalled audited
// requests on a 2-core machine for up to a second every interval).
constexpr int kCheckPauseFactor = 3;

bool AuditLog::pauseAfterCheckStep(std::chrono::steady_clock::time_point started) {
    const auto worked = std::chrono::steady_clock::now() - started;
    std::unique_lock lock(integrityMutex_);
    integrityChanged_.wait_for(lock, worked * kCheckPauseFactor, [&] { return integrityStopping_; });
    return !integrityStopping_;
}

void AuditLog::integrityLoop() {
    // The checks run beside requests: this thread yields the CPU to them (Linux: the nice value is
    // per thread). Should the system refuse, the check runs at normal priority, paced all the same.
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
    for (;;) {
        {
            std::unique_lock lock(integrityMutex_);
            if (integrityStopping_) return;
            if (integrityState_ == IntegrityState::Untrusted) {
                // Nothing more to learn: the first mismatch stands until a restart.
                integrityChanged_.wait(lock, [&] { return integrityStopping_; });
                return;
            }
        }
        const Status s = checkIntegrityNow();
        std::unique_lock lock(integrityMutex_);
        // A start-up check that could not run is retried soon; a passed one goes on to the
        // background checks at their interval.
        const auto delay = integrityState_ == IntegrityState::Checking && !s
                               ? std::min(options_.integrityCheckInterval, std::chrono::milliseconds(1000))
                               : options_.integrityCheckInterval;
        integrityChanged_.wait_for(lock, delay, [&] { return integrityStopping_; });
        if (integrityStopping_) return;
    }
}

Status AuditLog::checkIntegrityNow() {
    std::lock_guard check(checkMutex_);
    IntegrityState state;
    {
        std::lock_guard lock(integrityMutex_);
        state = integrityState_;
    }
    if (state == IntegrityState::Untrusted) return Status::ok();
    Status s = state == IntegrityState::Checking ? runStartCheck() : runBackgroundCheck();
    if (!s) {
        std::lock_guard lock(integrityMutex_);
        ++integrityCheckErrors_;
    }
    logOnce(lastCheckError_, s ? "" : "audit log integrity check could not run: " + s.message(),
            "audit log integrity checks run again");
    return s;
}

Status AuditLog::runStartCheck() {
    {
        std::lock_guard lock(integrityMutex_);
        startCheckRunning_ = true;
    }
    MerkleTree checked = newTree();
    const auto started = std::chrono::steady_clock::now();
    auto report = checkStoredLog(*checkReader_, signingKey_.publicKey(), checked, [this](uint64_t entries) {
        std::lock_guard lock(integrityMutex_);
        integrityMessage_ = "the audit log is being checked against its signed tree heads (" + std::to_string(entries) +
                            " entries so far)";
        return !integrityStopping_;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!report) {
        {
            std::lock_guard lock(integrityMutex_);
            startCheckRunning_ = false;
            integrityMessage_ =
                "the start-up integrity check of the audit log could not run: " + report.status().message();
        }
        integrityChanged_.notify_all();
        return report.status();
    }
    {
        std::lock_guard lock(integrityMutex_);
        ++integrityChecks_;
        integrityCheckedEntries_ += report->entries;
    }
    if (report->failure) {
        markUntrusted(*report->failure, "the start-up check");
    } else {
        {
            // Adopt the tree recomputed from the stored bytes (not the stored leaf hashes catch-up
            // read). readerMutex_ keeps catch-up out while the tree is replaced.
            std::lock_guard reader(readerMutex_);
            std::unique_lock tree(treeMutex_);
            tree_ = std::move(checked);
            const uint64_t width = tree_.blockSize();
            checkedBlocks_ = width > 0 ? tree_.size() / width : 0;
            rotationBlock_ = 0;
        }
        {
            std::lock_guard lock(integrityMutex_);
            lastVerifiedHeadSize_ = std::max(lastVerifiedHeadSize_, report->lastHeadSize);
            if (integrityState_ == IntegrityState::Checking) {
                integrityState_ = IntegrityState::Trusted;
                integrityMessage_.clear();
                trusted_.store(true, std::memory_order_release);
            }
        }
        char rate[64];
        std::snprintf(rate, sizeof rate, "%.1f MB in %.2f s, %.0f MB/s", static_cast<double>(report->bytes) / 1e6,
                      seconds, seconds > 0 ? static_cast<double>(report->bytes) / 1e6 / seconds : 0.0);
        log("audit log checked at start: " + std::to_string(report->entries) + " entries (" + rate + "), " +
            std::to_string(report->treeHeads) + " signed tree heads verified");
    }
    {
        std::lock_guard lock(integrityMutex_);
        startCheckRunning_ = false;
    }
    integrityChanged_.notify_all();
    return Status::ok();
}

Result<bool> AuditLog::checkBlock(uint64_t block, uint64_t& entries) {
    uint64_t width = 0;
    {
        std::shared_lock tree(treeMutex_);
        width = tree_.blockSize();
    }
    std::vector<Hash> leaves;
    leaves.reserve(width);
    uint64_t bytes = 0;
    auto failure = readCheckedLeaves(*checkReader_, block * width, (block + 1) * width, leaves, bytes);
    if (!failure) return failure.status();
    if (*failure) {
        markUntrusted(std::move(**failure), "the background check");
        return false;
    }
    entries += leaves.size();
    const Hash root = MerkleTree(leaves).root();
    Result<Hash> kept = internalError("no block root");
    {
        std::shared_lock tree(treeMutex_);
        kept = tree_.blockRoot(block);
    }
    if (!kept) return kept.status();
    if (root != *kept) {
        const uint64_t first = block * width, end = (block + 1) * width;
        markUntrusted({first, end,
                       "the stored entries " + std::to_string(first) + ".." + std::to_string(end - 1) +
                           " hash to their stored leaf hashes, but together they give the block root " +
                           crypto::toHex(root) + " where this gateway computed " + crypto::toHex(*kept) +
                           " when they were appended or checked: an entry in [" + std::to_string(first) + ", " +
                           std::to_string(end) + ") was rewritten together with its leaf hash"},
                      "the background check");
        return false;
    }
    return true;
}

Status AuditLog::runBackgroundCheck() {
    auto size = treeSize();  // catches up with entries other processes appended
    if (!size) return size.status();
    uint64_t width = 0;
    {
        std::shared_lock tree(treeMutex_);
        width = tree_.blockSize();
    }
    if (width == 0) return internalError("the audit log's Merkle tree keeps no blocks");
    const uint64_t complete = *size / width;
    uint64_t entries = 0;

    // 1. Blocks completed since the last check, against the roots the tree kept for them.
    for (; checkedBlocks_ < complete; ++checkedBlocks_) {
        const auto started = std::chrono::steady_clock::now();
        auto ok = checkBlock(checkedBlocks_, entries);
        if (!ok) return ok.status();
        if (!*ok) return Status::ok();
        if (!pauseAfterCheckStep(started)) return Status::ok();
    }

    // 2. The current, incomplete block, entry by entry against the leaf hashes the tree holds.
    const uint64_t begin = complete * width;
    if (begin < *size) {
        std::vector<Hash> leaves;
        uint64_t bytes = 0;
        auto failure = readCheckedLeaves(*checkReader_, begin, *size, leaves, bytes);
        if (!failure) return failure.status();
        if (*failure) {
            markUntrusted(std::move(**failure), "the background check");
            return Status::ok();
        }
        entries += leaves.size();
        std::optional<IntegrityFailure> mismatch;
        {
            std::shared_lock tree(treeMutex_);
            // If appends completed the block meanwhile, its leaves are no longer held in memory and
            // reading them back here would hold the tree (and so every append) for one read per
            // leaf; the next run checks the completed block against its kept root instead.
            if (tree_.size() / width > complete) leaves.clear();
            for (uint64_t i = 0; i < leaves.size() && !mismatch; ++i) {
                auto held = tree_.leaf(begin + i);
                if (!held) return held.status();
                if (*held != leaves[i]) {
                    const std::string index = std::to_string(begin + i);
                    mismatch = IntegrityFailure{
                        begin + i, begin + i + 1,
                        "entry " + index + "'s stored bytes and leaf hash (" + crypto::toHex(leaves[i]) +
                            ") are not the ones this gateway appended or checked (leaf hash " + crypto::toHex(*held) +
                            "): the row was rewritten together with its leaf hash"};
                }
            }
        }
        if (mismatch) {
            markUntrusted(std::move(*mismatch), "the background check");
            return Status::ok();
        }
    }

    // 3. Older blocks in rotation, so that a rewrite of an old entry is found too.
    const uint64_t older = std::min(options_.integrityRecheckBlocks, complete);
    for (uint64_t k = 0; k < older; ++k) {
        const uint64_t block = rotationBlock_++ % complete;
        const auto started = std::chrono::steady_clock::now();
        auto ok = checkBlock(block, entries);
        if (!ok) return ok.status();
        if (!*ok) return Status::ok();
        if (!pauseAfterCheckStep(started)) return Status::ok();
    }

    // 4. The latest signed head against the tree (signature, root).
    auto latest = latestTreeHead();
    if (!latest && latest.status().code() != StatusCode::NotFound) return latest.status();
    if (latest && latest->head.treeSize <= *size) {
        const uint64_t headSize = latest->head.treeSize;
        uint64_t from = 0;
        {
            std::lock_guard lock(integrityMutex_);
            from = std::min(lastVerifiedHeadSize_, headSize > 0 ? headSize - 1 : 0);
        }
        const std::string name = "the latest signed tree head (tree_size " + std::to_string(headSize) + ")";
        if (!verifyTreeHead(*latest, signingKey_.publicKey())) {
            markUntrusted({from, std::max(headSize, from + 1),
                           name + " does not carry a valid signature of this gateway's key: the head row was forged "
                                  "or altered"},
                          "the background check");
            return Status::ok();
        }
        Result<Hash> root = internalError("no root");
        {
            std::shared_lock tree(treeMutex_);
            root = tree_.rootAt(headSize);
        }
        if (!root) {
            // Leaves read back for it did not match a kept block root: already marked untrusted.
            if (integrity().state == IntegrityState::Untrusted) return Status::ok();
            return root.status();
        }
        if (*root != latest->head.rootHash) {
            markUntrusted({from, std::max(headSize, from + 1),
                           "this gateway's tree gives root " + crypto::toHex(*root) + " for tree_size " +
                               std::to_string(headSize) + " but " + name + " has root " +
                               crypto::toHex(latest->head.rootHash)},
                          "the background check");
            return Status::ok();
        }
        std::lock_guard lock(integrityMutex_);
        lastVerifiedHeadSize_ = std::max(lastVerifiedHeadSize_, headSize);
    }
    std::lock_guard lock(integrityMutex_);
    ++integrityChecks_;
    integrityCheckedEntries_ += entries;
    return Status::ok();
}

Result<SignedTreeHead> AuditLog::signTreeHead() {
    if (Status allowed = signingAllowed(); !allowed) return allowed;
    std::lock_guard reader(readerMutex_);
    Result<SignedTreeHead> out = notFound("the audit log is empty");
    Status s = withReader([&](pqxx::connection& conn) {
        if (Status c = catchUpLocked(conn); !c) return c;
        // Catching up may have found the log damaged.
        if (Status allowed = signingAllowed(); !allowed) return allowed;
        out = signLocked(conn);
        return Status::ok();
    });
    if (s && !out && out.status().code() != StatusCode::NotFound) s = out.status();
    if (!s) {
        std::lock_guard lock(integrityMutex_);
        ++treeHeadFailures_;
        return s;
    }
    if (out) {
        std::lock_guard lock(headMutex_);
        unsignedEntries_ = 0;
    }
    return out;
}

Status AuditLog::signingAllowed() {
    std::lock_guard lock(integrityMutex_);
    if (integrityState_ == IntegrityState::Trusted) return Status::ok();
    ++treeHeadFailures_;
    if (integrityState_ == IntegrityState::Untrusted)
        return unavailable("no tree head is signed over an untrusted audit log: " + integrityMessage_);
    return unavailable("no tree head is signed before the start-up integrity check of the audit log has passed: " +
                       integrityMessage_);
}

Result<SignedTreeHead> AuditLog::signLocked(pqxx::connection& conn) {
    pqxx::work tx(conn);
    // A signer holds readerMutex_: bounded lock waits keep queries and exports from stalling behind
    // a session that holds the advisory lock or audit_tree_heads.
    tx.exec("SET LOCAL synchronous_commit TO on; " + setLockTimeout(options_.lockTimeout));
    tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kTreeHeadLockKey) + ")");
    // Read after the lock: every head stored before this point is visible to this statement.
    const auto snapshotNotBefore = std::chrono::steady_clock::now();
    pqxx::result r = tx.exec(kLatestHeadQuery);
    std::optional<SignedTreeHead> latest;
    if (!r.empty()) latest = headFromRow(r[0]);
    observeHead(snapshotNotBefore, latest);

    std::shared_lock tree(treeMutex_);
    const uint64_t size = tree_.size();
    if (latest && latest->head.treeSize >= size) {
        tx.commit();
        return *latest;
    }
    if (size == 0) {
        tx.commit();
        return notFound("the audit log is empty");
    }
    if (latest) {
        // Never sign a tree that does not extend what was signed before: if the stored leaves no
        // longer give the signed root, the table was tampered with.
        auto signedPrefix = tree_.rootAt(latest->head.treeSize);
        if (!signedPrefix && integrity().state != IntegrityState::Untrusted) {
            // The leaves could not be read back (database unreachable): no verdict, try again later.
            // A read that disagreed with a kept block root has already marked the log untrusted.
            return signedPrefix.status();
        }
        if (!signedPrefix || *signedPrefix != latest->head.rootHash) {
            const uint64_t latestSize = latest->head.treeSize;
            tree.unlock();
            std::string problem = "the audit log does not match the signed tree head of size " +
                                  std::to_string(latestSize) + ": refusing to sign (run custodian audit verify)";
            if (!signedPrefix) problem += ": " + signedPrefix.status().message();
            uint64_t from = 0;
            {
                std::lock_guard lock(integrityMutex_);
                from = std::min(lastVerifiedHeadSize_, latestSize > 0 ? latestSize - 1 : 0);
            }
            markUntrusted({from, latestSize, problem}, "the tree-head signer");
            return unavailable(problem);
        }
    }
    auto root = tree_.rootAt(size);
    tree.unlock();
    if (!root) return root.status();
    TreeHead head;
    head.treeSize = size;
    head.rootHash = *root;
    const int64_t now = nowMs();
    head.timestampMs = static_cast<uint64_t>(std::max<int64_t>(now, 0));
    if (latest) head.timestampMs = std::max(head.timestampMs, latest->head.timestampMs);
    SignedTreeHead sth = audit::signTreeHead(head, signingKey_);
    tx.exec("INSERT INTO audit_tree_heads (tree_size, root_hash, timestamp_ms, signature) VALUES (" +
            std::to_string(head.treeSize) + ',' + byteaLiteral(head.rootHash) + ',' + std::to_string(head.timestampMs) +
            ',' + byteaLiteral(sth.signature) + ") ON CONFLICT (tree_size) DO NOTHING");
    tx.commit();
    observeHead(snapshotNotBefore, sth);  // stored now, and larger than anything stored before
    {
        std::lock_guard lock(integrityMutex_);
        lastVerifiedHeadSize_ = std::max(lastVerifiedHeadSize_, head.treeSize);
    }
    return sth;
}

void AuditLog::headLoop() {
    std::unique_lock lock(headMutex_);
    for (;;) {
        headWake_.wait_for(lock, options_.treeHeadInterval, [&] { return headStopping_ || headRequested_; });
        if (headStopping_) return;
        headRequested_ = false;
        lock.unlock();
        // On the timer this also signs entries appended by other processes; when the database is
        // down it fails and is retried on the next tick. A failure is logged once (and counted in
        // treeHeadFailures), and so is the first success after it.
        auto head = signTreeHead();
        const bool failed = !head && head.status().code() != StatusCode::NotFound;
        logOnce(lastSignError_, failed ? "audit tree head not signed: " + head.status().message() : "",
                "audit tree heads are signed again");
        lock.lock();
    }
}

Result<std::vector<SignedTreeHead>> AuditLog::treeHeads(uint64_t maxSize) {
    std::lock_guard reader(readerMutex_);
    std::vector<SignedTreeHead> heads;
    Status s = withReader([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec_params(
            "SELECT tree_size, root_hash, timestamp_ms, signature FROM audit_tree_heads WHERE tree_size <= $1 "
            "ORDER BY tree_size",
            static_cast<int64_t>(std::min<uint64_t>(maxSize, INT64_MAX)));
        heads.reserve(r.size());
        for (const auto& row : r) heads.push_back(headFromRow(row));
        return Status::ok();
    });
    if (!s) return s;
    return heads;
}

Result<InclusionProof> AuditLog::inclusionProof(uint64_t index, uint64_t treeSize) {
    if (treeSize > 0 && index >= treeSize)
        return invalidArgument("index " + std::to_string(index) + " is not in a tree of size " +
                               std::to_string(treeSize) + " (need index < tree_size)");
    const uint64_t one[] = {index};
    auto proofs = inclusionProofs(one, treeSize);
    if (!proofs) return proofs.status();
    return std::move(proofs->front());
}

Result<std::vector<InclusionProof>> AuditLog::inclusionProofs(std::span<const uint64_t> indices, uint64_t treeSize) {
    if (treeSize == 0) return invalidArgument("tree_size must be at least 1");
    auto size = this->treeSize();
    if (!size) return size.status();
    if (treeSize > *size)
        return notFound("tree_size " + std::to_string(treeSize) + " is beyond the log, which has " +
                        std::to_string(*size) + " entries");
    std::shared_lock tree(treeMutex_);
    auto root = tree_.rootAt(treeSize);
    if (!root) return root.status();
    auto proofs = tree_.inclusionProofs(indices, treeSize);
    if (!proofs) return proofs.status();
    std::vector<InclusionProof> out;
    out.reserve(proofs->size());
    for (size_t i = 0; i < proofs->size(); ++i) {
        auto& p = (*proofs)[i];
        out.push_back({indices[i], treeSize, p.leaf, *root, std::move(p.path)});
    }
    return out;
}

Result<ConsistencyProof> AuditLog::consistencyProof(uint64_t first, uint64_t second) {
    if (first == 0) return invalidArgument("first must be at least 1 (every tree is consistent with the empty tree)");
    if (first > second)
        return invalidArgument("first (" + std::to_string(first) + ") must not be larger than second (" +
                               std::to_string(second) + ")");
    auto size = treeSize();
    if (!size) return size.status();
    if (second > *size)
        return notFound("second " + std::to_string(second) + " is beyond the log, which has " + std::to_string(*size) +
                        " entries");
    std::shared_lock tree(treeMutex_);
    ConsistencyProof p;
    p.first = first;
    p.second = second;
    auto r1 = tree_.rootAt(first);
    auto r2 = tree_.rootAt(second);
    auto path = tree_.consistencyProof(first, second);
    if (!r1) return r1.status();
    if (!r2) return r2.status();
    if (!path) return path.status();
    p.firstRoot = *r1;
    p.secondRoot = *r2;
    p.path = std::move(path).value();
    return p;
}

Result<AuditPage> AuditLog::query(const AuditQuery& q) {
    std::lock_guard reader(readerMutex_);
    AuditPage page;
    Status s = withReader([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        std::string sql = "SELECT entry_index, entry, leaf_hash FROM audit_entries WHERE true";
        const auto text = [&](const char* column, const std::optional<std::string>& v) {
            if (v) sql += std::string(" AND ") + column + " = " + tx.quote(projectionText(*v));
        };
        text("actor", q.actor);
        text("role", q.role);
        text("dataset", q.dataset);
        text("action", q.action);
        text("decision", q.decision);
        if (q.fromMs)
            sql += " AND recorded_at >= to_timestamp(" + std::to_string(*q.fromMs) + "::double precision / 1000)";
        if (q.toMs) sql += " AND recorded_at <= to_timestamp(" + std::to_string(*q.toMs) + "::double precision / 1000)";
        if (q.after) sql += " AND entry_index > " + std::to_string(*q.after);
        const size_t limit = std::max<size_t>(q.limit, 1);
        // One row more than asked tells whether there is a next page.
        sql += " ORDER BY entry_index LIMIT " + std::to_string(limit + 1);
        pqxx::result r = tx.exec(sql);
        for (const auto& row : r) {
            if (page.entries.size() == limit) {
                page.nextCursor = page.entries.back().index;
                break;
            }
            pqxx::binarystring bytes(row[1]);
            StoredEntry e;
            e.index = row[0].as<uint64_t>();
            e.canonicalBytes = bytes.str();
            e.leafHash = hashFromField(row[2]);
            if (auto json = json::parseJson(e.canonicalBytes)) {
                if (auto entry = entryFromJson(*json)) {
                    e.entry = std::move(entry).value();
                    e.parsed = true;
                }
            }
            page.entries.push_back(std::move(e));
        }
        return Status::ok();
    });
    if (!s) return s;
    return page;
}

Result<std::vector<StoredEntry>> AuditLog::entriesInRange(uint64_t from, uint64_t to) {
    std::lock_guard reader(readerMutex_);
    std::vector<StoredEntry> out;
    if (to <= from) return out;
    Status s = withReader([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec_params(
            "SELECT entry_index, entry, leaf_hash FROM audit_entries WHERE entry_index >= $1 AND entry_index < $2 "
            "ORDER BY entry_index",
            static_cast<int64_t>(from), static_cast<int64_t>(std::min<uint64_t>(to, INT64_MAX)));
        out.reserve(r.size());
        for (const auto& row : r) {
            pqxx::binarystring bytes(row[1]);
            StoredEntry e;
            e.index = row[0].as<uint64_t>();
            e.canonicalBytes = bytes.str();
            e.leafHash = hashFromField(row[2]);
            out.push_back(std::move(e));
        }
        return Status::ok();
    });
    if (!s) return s;
    return out;
}

Result<uint64_t> AuditLog::storedBound() {
    std::lock_guard reader(readerMutex_);
    uint64_t bound = 0;
    Status s = withReader([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec("SELECT coalesce(max(entry_index) + 1, 0) FROM audit_entries");
        bound = r[0][0].as<uint64_t>();
        return Status::ok();
    });
    if (!s) return s;
    return bound;
}

Result<bool> AuditLog::writable() {
    std::lock_guard reader(readerMutex_);
    bool ok = false;
    Status s = withReader([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec("SELECT has_table_privilege('audit_entries', 'INSERT') AND "
                                 "has_table_privilege('audit_log_head', 'UPDATE')");
        ok = !r.empty() && r[0][0].as<bool>();
        return Status::ok();
    });
    if (!s) return s;
    return ok;
}

}  // namespace custodian::audit
