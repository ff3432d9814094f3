#include "gateway/audit/integrity.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>

namespace custodian::audit {

namespace {

// Rows per COPY of the start-up check: index ranges keep each statement an index range scan (never
// a sort of the whole table), and a range with no rows jumps to the next stored index.
constexpr int64_t kScanRange = 65536;
constexpr uint64_t kProgressEvery = 65536;

std::string hex(const Hash& h) { return crypto::toHex(h); }

uint32_t be32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return uint32_t{u[0]} << 24 | uint32_t{u[1]} << 16 | uint32_t{u[2]} << 8 | uint32_t{u[3]};
}
uint16_t be16(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return static_cast<uint16_t>(u[0] << 8 | u[1]);
}
int64_t be64(const char* p) { return static_cast<int64_t>(uint64_t{be32(p)} << 32 | uint64_t{be32(p + 4)}); }

Result<Hash> hashFromHexText(std::string_view text) {
    // bytea text output: \x followed by hex digits.
    if (text.size() != 66 || text.substr(0, 2) != "\\x") return internalError("not a 32-byte hash");
    auto bytes = crypto::fromHex(text.substr(2));
    if (!bytes || bytes->size() != 32) return internalError("not a 32-byte hash");
    Hash h{};
    std::memcpy(h.data(), bytes->data(), 32);
    return h;
}

// The binary COPY stream (PostgreSQL "COPY … (FORMAT binary)"): an 11-byte signature, flags and a
// header extension, then per row a 16-bit field count and each field as a 32-bit length (-1: NULL)
// and its bytes, then a field count of -1.
class BinaryCopyParser {
public:
    // Parses whole rows at the front of `data`; returns how many bytes it consumed. Sets error_ on a
    // malformed stream.
    size_t parse(std::string_view data, const StoredEntryReader::Visitor& visit) {
        size_t pos = 0;
        if (!headerDone_) {
            static constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // + the terminating NUL: 11 bytes
            if (data.size() < 19) return 0;
            if (std::memcmp(data.data(), kSignature, 11) != 0) return malformed("bad signature");
            const uint32_t extension = be32(data.data() + 15);
            if (data.size() < 19 + static_cast<size_t>(extension)) return 0;
            pos = 19 + extension;
            headerDone_ = true;
        }
        while (error_.empty() && pos + 2 <= data.size()) {
            const int16_t fields = static_cast<int16_t>(be16(data.data() + pos));
            if (fields == -1) {
                ended_ = true;
                return data.size();
            }
            if (fields != 3) return malformed("expected 3 fields, got " + std::to_string(fields));
            size_t p = pos + 2;
            std::string_view values[3];
            bool nulls[3] = {false, false, false};
            bool complete = true;
            for (int f = 0; f < 3; ++f) {
                if (p + 4 > data.size()) {
                    complete = false;
                    break;
                }
                const auto length = static_cast<int32_t>(be32(data.data() + p));
                p += 4;
                if (length < 0) {
                    nulls[f] = true;
                    continue;
                }
                if (p + static_cast<size_t>(length) > data.size()) {
                    complete = false;
                    break;
                }
                values[f] = data.substr(p, static_cast<size_t>(length));
                p += static_cast<size_t>(length);
            }
            if (!complete) break;
            pos = p;
            if (nulls[0] || values[0].size() != 8) return malformed("entry_index is not a bigint");
            if (!stopped_ && !visit(be64(values[0].data()), values[1], nulls[2] ? std::string_view() : values[2]))
                stopped_ = true;
        }
        return pos;
    }
    const std::string& error() const { return error_; }

private:
    size_t malformed(std::string what) {
        error_ = "malformed COPY data from audit_entries: " + std::move(what);
        return 0;
    }
    bool headerDone_ = false;
    bool ended_ = false;
    bool stopped_ = false;
    std::string error_;
};

}  // namespace

std::string describeLocation(const IntegrityFailure& f) {
    if (f.exact()) return "first bad entry index " + std::to_string(f.firstBadIndex);
    return "first bad entry in [" + std::to_string(f.firstBadIndex) + ", " + std::to_string(f.badRangeEnd) + ")";
}

StoredEntryReader::StoredEntryReader(std::string conninfo) : conninfo_(std::move(conninfo)) {}

StoredEntryReader::~StoredEntryReader() {
    if (conn_ != nullptr) PQfinish(conn_);
}

Status StoredEntryReader::fail(const std::string& during) {
    std::string message = conn_ != nullptr ? PQerrorMessage(conn_) : "no connection";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    const bool lost = conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK;
    if (lost && conn_ != nullptr) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    inTransaction_ = false;
    const std::string text = "audit log integrity check (" + during + "): " + message;
    return lost ? unavailable(text) : internalError(text);
}

Status StoredEntryReader::start() {
    finish();
    if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    if (conn_ == nullptr) {
        conn_ = PQconnectdb(conninfo_.c_str());
        if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) return fail("connecting");
    }
    // A statement that failed (a table not there yet, before the migrations ran) leaves its
    // transaction aborted on a live connection: end it, or every later check fails the same way.
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) PQclear(PQexec(conn_, "ROLLBACK"));
    PGresult* r = PQexec(conn_, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) return fail("starting a snapshot");
    inTransaction_ = true;
    return Status::ok();
}

void StoredEntryReader::finish() {
    if (!inTransaction_ || conn_ == nullptr) return;
    PQclear(PQexec(conn_, "ROLLBACK"));
    inTransaction_ = false;
}

Result<std::vector<std::vector<std::string>>> StoredEntryReader::query(const std::string& sql,
                                                                       const std::string& during) {
    if (conn_ == nullptr) return unavailable("audit log integrity check (" + during + "): not connected");
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return fail(during);
    }
    std::vector<std::vector<std::string>> rows(static_cast<size_t>(PQntuples(r)));
    for (int i = 0; i < PQntuples(r); ++i) {
        for (int j = 0; j < PQnfields(r); ++j)
            rows[static_cast<size_t>(i)].emplace_back(PQgetisnull(r, i, j) ? "" : PQgetvalue(r, i, j));
    }
    PQclear(r);
    return rows;
}

Result<std::vector<SignedTreeHead>> StoredEntryReader::treeHeads() {
    auto rows = query("SELECT tree_size, root_hash, timestamp_ms, encode(signature, 'base64') FROM audit_tree_heads "
                      "ORDER BY tree_size",
                      "reading the signed tree heads");
    if (!rows) return rows.status();
    std::vector<SignedTreeHead> heads;
    heads.reserve(rows->size());
    for (const auto& row : *rows) {
        SignedTreeHead h;
        h.head.treeSize = std::stoull(row[0]);
        auto root = hashFromHexText(row[1]);
        if (!root) return internalError("audit_tree_heads: the root_hash of tree_size " + row[0] + " is not 32 bytes");
        h.head.rootHash = *root;
        h.head.timestampMs = std::stoull(row[2]);
        std::string b64 = row[3];
        std::erase(b64, '\n');  // encode() wraps base64 at 76 characters
        auto sig = crypto::fromBase64(b64);
        if (!sig || sig->size() != h.signature.size())
            return internalError("audit_tree_heads: the signature of tree_size " + row[0] + " is not 64 bytes");
        std::memcpy(h.signature.data(), sig->data(), sig->size());
        heads.push_back(h);
    }
    return heads;
}

Result<uint64_t> StoredEntryReader::nextIndex() {
    auto rows = query("SELECT next_index FROM audit_log_head", "reading audit_log_head");
    if (!rows) return rows.status();
    if (rows->size() != 1) return internalError("audit_log_head has " + std::to_string(rows->size()) + " rows, not 1");
    return static_cast<uint64_t>(std::stoll((*rows)[0][0]));
}

Result<std::optional<std::pair<int64_t, int64_t>>> StoredEntryReader::indexBounds() {
    using Bounds = std::optional<std::pair<int64_t, int64_t>>;
    auto rows = query("SELECT min(entry_index), max(entry_index) FROM audit_entries", "reading the entry indices");
    if (!rows) return rows.status();
    if (rows->empty() || (*rows)[0][0].empty()) return Bounds();
    return Bounds(std::pair<int64_t, int64_t>(std::stoll((*rows)[0][0]), std::stoll((*rows)[0][1])));
}

Result<std::optional<int64_t>> StoredEntryReader::nextStoredIndex(int64_t from) {
    auto rows = query("SELECT min(entry_index) FROM audit_entries WHERE entry_index >= " + std::to_string(from),
                      "reading the entry indices");
    if (!rows) return rows.status();
    if (rows->empty() || (*rows)[0][0].empty()) return std::optional<int64_t>();
    return std::optional<int64_t>(std::stoll((*rows)[0][0]));
}

Status StoredEntryReader::scan(int64_t from, int64_t to, const Visitor& visit) {
    if (conn_ == nullptr) return unavailable("audit log integrity check (reading entries): not connected");
    const std::string sql =
        "COPY (SELECT entry_index, entry, leaf_hash FROM audit_entries WHERE entry_index >= " + std::to_string(from) +
        " AND entry_index < " + std::to_string(to) + " ORDER BY entry_index) TO STDOUT (FORMAT binary)";
    PGresult* r = PQexec(conn_, sql.c_str());
    const bool copying = PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    if (!copying) return fail("reading entries");
    BinaryCopyParser parser;
    std::string carry;
    for (;;) {
        char* buffer = nullptr;
        const int n = PQgetCopyData(conn_, &buffer, 0);
        if (n == -1) break;
        if (n < 0) return fail("reading entries");
        std::string_view data(buffer, static_cast<size_t>(n));
        if (carry.empty()) {
            const size_t used = parser.parse(data, visit);
            if (used < data.size()) carry.assign(data.substr(used));
        } else {
            carry.append(data);
            carry.erase(0, parser.parse(carry, visit));
        }
        PQfreemem(buffer);
    }
    Status result = Status::ok();
    while (PGresult* end = PQgetResult(conn_)) {
        if (PQresultStatus(end) != PGRES_COMMAND_OK && result) result = fail("reading entries");
        PQclear(end);
    }
    if (!result) return result;
    if (!parser.error().empty()) return internalError(parser.error());
    if (!carry.empty()) return internalError("malformed COPY data from audit_entries: the stream ended inside a row");
    return Status::ok();
}

namespace {

// What the check of one row found wrong with it, in entry-index terms.
struct RowProblem {
    uint64_t index;
    std::string problem;
};

// Checks one stored row against the expected next index and its own leaf hash.
std::optional<RowProblem> checkRow(int64_t index, uint64_t expected, std::string_view entry, std::string_view stored,
                                   Hash& computed) {
    if (index < 0) return RowProblem{0, "a row has the negative entry_index " + std::to_string(index)};
    if (static_cast<uint64_t>(index) < expected) {
        return RowProblem{expected > 0 ? expected - 1 : 0,
                          "entry_index " + std::to_string(index) + " is stored more than once (or out of order)"};
    }
    if (static_cast<uint64_t>(index) > expected) {
        return RowProblem{expected, "entries " + std::to_string(expected) + ".." + std::to_string(index - 1) +
                                        " are missing (the next stored entry is " + std::to_string(index) + ")"};
    }
    computed = leafHash(crypto::asBytes(entry));
    if (stored.size() != computed.size() || std::memcmp(stored.data(), computed.data(), computed.size()) != 0) {
        return RowProblem{expected, "entry " + std::to_string(index) + "'s stored bytes hash to " + hex(computed) +
                                        " but its recorded leaf_hash is " +
                                        (stored.size() == 32 ? crypto::toHex(crypto::asBytes(stored))
                                                             : std::to_string(stored.size()) + " bytes") +
                                        ": the row was rewritten"};
    }
    return std::nullopt;
}

}  // namespace

Result<StartCheckReport> checkStoredLog(StoredEntryReader& reader, const crypto::Ed25519PublicKey& gatewayKey,
                                        MerkleTree& tree, const std::function<bool(uint64_t)>& progress) {
    StartCheckReport report;
    if (Status s = reader.start(); !s) return s;
    struct Finish {
        StoredEntryReader& r;
        ~Finish() { r.finish(); }
    } finishLater{reader};

    auto heads = reader.treeHeads();
    if (!heads) return heads.status();
    auto next = reader.nextIndex();
    if (!next) return next.status();
    auto bounds = reader.indexBounds();
    if (!bounds) return bounds.status();

    const auto failAt = [&](uint64_t first, uint64_t end, std::string problem) {
        if (!report.failure) report.failure = IntegrityFailure{first, end, std::move(problem)};
    };

    // Heads are checked as the stream reaches their size.
    size_t nextHead = 0;
    uint64_t lastGoodSize = 0;
    uint64_t lastTimestamp = 0;
    const auto checkHeadsAt = [&](uint64_t size) {
        while (!report.failure && nextHead < heads->size() && (*heads)[nextHead].head.treeSize == size) {
            const SignedTreeHead& h = (*heads)[nextHead++];
            const std::string name = "the signed tree head of tree_size " + std::to_string(h.head.treeSize);
            if (!verifyTreeHead(h, gatewayKey)) {
                failAt(lastGoodSize, std::max(h.head.treeSize, lastGoodSize + 1),
                       name + " does not carry a valid signature of this gateway's key: the head row was forged "
                              "or altered");
                return;
            }
            if (h.head.timestampMs < lastTimestamp) {
                failAt(lastGoodSize, std::max(h.head.treeSize, lastGoodSize + 1),
                       name + " is dated before the head that precedes it: heads out of order");
                return;
            }
            const Hash root = tree.root();
            if (root != h.head.rootHash) {
                failAt(lastGoodSize, h.head.treeSize,
                       "the stored entries give root " + hex(root) + " for tree_size " +
                           std::to_string(h.head.treeSize) + " but " + name + " has root " + hex(h.head.rootHash) +
                           ": an entry in [" + std::to_string(lastGoodSize) + ", " + std::to_string(h.head.treeSize) +
                           ") was rewritten together with its leaf hash, inserted, removed or reordered");
                return;
            }
            lastGoodSize = h.head.treeSize;
            lastTimestamp = h.head.timestampMs;
            report.lastHeadSize = lastGoodSize;
            ++report.treeHeads;
        }
    };
    checkHeadsAt(0);  // a head of the empty log

    if (*bounds) {
        uint64_t expected = 0;
        bool abandoned = false;
        int64_t from = std::min<int64_t>((*bounds)->first, 0);
        const int64_t last = (*bounds)->second;
        while (!report.failure && from <= last) {
            const int64_t to = from + kScanRange;
            uint64_t rows = 0;
            Status s = reader.scan(from, to, [&](int64_t index, std::string_view entry, std::string_view stored) {
                ++rows;
                Hash computed{};
                if (auto problem = checkRow(index, expected, entry, stored, computed)) {
                    failAt(problem->index, problem->index + 1, std::move(problem->problem));
                    return false;
                }
                tree.append(computed);
                ++expected;
                ++report.entries;
                report.bytes += entry.size();
                if (progress && report.entries % kProgressEvery == 0 && !progress(report.entries)) {
                    abandoned = true;
                    return false;
                }
                checkHeadsAt(expected);
                return !report.failure;
            });
            if (!s) return s;
            if (abandoned) return unavailable("the audit log integrity check was abandoned (the gateway is stopping)");
            from = to;
            if (rows == 0 && !report.failure) {
                // Nothing in this range: go on at the next stored index (a hole is named there).
                auto after = reader.nextStoredIndex(to);
                if (!after) return after.status();
                if (!*after) break;
                from = **after;
            }
        }
    }
    const uint64_t stored = report.entries;
    if (!report.failure && nextHead < heads->size()) {
        const uint64_t covered = heads->back().head.treeSize;
        failAt(stored, stored + 1,
               "the signed tree head of tree_size " + std::to_string(covered) + " covers " + std::to_string(covered) +
                   " entries but only " + std::to_string(stored) + " are stored: entries from " +
                   std::to_string(stored) + " on are missing (deleted)");
    }
    if (!report.failure && *next != stored) {
        if (*next > stored)
            failAt(stored, stored + 1,
                   "audit_log_head.next_index is " + std::to_string(*next) + " but only " + std::to_string(stored) +
                       " entries are stored: entries from " + std::to_string(stored) + " on are missing (deleted)");
        else
            failAt(*next, *next + 1,
                   "audit_log_head.next_index is " + std::to_string(*next) + " but " + std::to_string(stored) +
                       " entries are stored: entries from " + std::to_string(*next) +
                       " on were added without taking an index from the counter");
    }
    return report;
}

Result<std::optional<IntegrityFailure>> readCheckedLeaves(StoredEntryReader& reader, uint64_t begin, uint64_t end,
                                                          std::vector<Hash>& leaves, uint64_t& bytes) {
    std::optional<IntegrityFailure> failure;
    if (end <= begin) return failure;
    if (Status s = reader.start(); !s) return s;
    struct Finish {
        StoredEntryReader& r;
        ~Finish() { r.finish(); }
    } finishLater{reader};
    uint64_t expected = begin;
    Status s = reader.scan(static_cast<int64_t>(begin), static_cast<int64_t>(end),
                           [&](int64_t index, std::string_view entry, std::string_view stored) {
                               Hash computed{};
                               if (auto problem = checkRow(index, expected, entry, stored, computed)) {
                                   failure = IntegrityFailure{problem->index, problem->index + 1, problem->problem};
                                   return false;
                               }
                               leaves.push_back(computed);
                               bytes += entry.size();
                               ++expected;
                               return true;
                           });
    if (!s) return s;
    if (!failure && expected != end)
        failure = IntegrityFailure{expected, expected + 1,
                                   "entries " + std::to_string(expected) + ".." + std::to_string(end - 1) +
                                       " are missing: the gateway appended them, but they are no longer stored"};
    return failure;
}

}  // namespace custodian::audit
