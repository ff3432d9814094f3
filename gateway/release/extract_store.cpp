#include "gateway/release/extract_store.hpp"

#include <sodium.h>

#include <pqxx/pqxx>

#include <string_view>

#include "gateway/catalog/store.hpp"
#include "gateway/crypto/keys.hpp"
#include "gateway/db/pool.hpp"
#include "gateway/db/readiness.hpp"

namespace custodian::release {

std::string newExtractId() {
    (void)crypto::ensureSodium();
    uint8_t bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    return "ext_" + crypto::toHex(crypto::ByteView(bytes, sizeof bytes));
}

Result<uint64_t> countExtractsToday(pqxx::connection& conn, const std::string& recipient, const std::string& dataset,
                                    const std::string& policy) {
    try {
        static const std::string sql =
            std::string("SELECT count(*) FROM extracts WHERE recipient = $1 AND dataset = $2 AND policy = $3 AND ") +
            catalog::kCountedTodaySql;
        pqxx::read_transaction tx(conn);
        pqxx::row r = tx.exec_params1(sql, recipient, dataset, policy);
        tx.commit();
        return static_cast<uint64_t>(r[0].as<int64_t>());
    } catch (...) { return db::statusFromException(std::current_exception(), "counting today's extracts"); }
}

Status insertExtract(pqxx::connection& conn, const ExtractRecord& r) {
    try {
        pqxx::work tx(conn);
        tx.exec_params0(
            "INSERT INTO extracts (id, dataset, policy, policy_version, policy_hash, recipient, purpose, format, "
            "status, requested_entry_index, gateway_instance, key_derivation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
            "'preparing', $9, NULLIF($10, 0), $11)",
            r.id, r.dataset, r.policy, r.policyVersion, r.policyHash, r.recipient, r.purpose, r.format,
            static_cast<int64_t>(r.requestedEntryIndex), r.gatewayInstance, r.keyDerivation);
        tx.commit();
        return Status::ok();
    } catch (...) { return db::statusFromException(std::current_exception(), "recording the extract"); }
}

Status startExtract(pqxx::connection& conn, const std::string& id, const std::optional<LedgerRow>& ledger) {
    try {
        pqxx::work tx(conn);
        pqxx::result r =
            tx.exec_params("UPDATE extracts SET status = 'requested' WHERE id = $1 AND status = 'preparing'", id);
        if (r.affected_rows() != 1) return internalError("extract " + id + " is not being prepared");
        if (ledger) {
            tx.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           ledger->recipient + '\x1f' + ledger->dataset + '\x1f' + ledger->keyScope);
            // Releases of the same policy version are not joined (linkage.hpp): only the others count.
            const auto filed = tx.exec_params1("SELECT count(*) FROM release_ledger WHERE recipient = $1 AND "
                                               "dataset = $2 AND key_scope = $3 AND NOT (policy = $4 AND "
                                               "policy_version = $5)",
                                               ledger->recipient, ledger->dataset, ledger->keyScope, ledger->policy,
                                               ledger->policyVersion)[0]
                                   .as<uint64_t>();
            if (filed != ledger->releasesChecked)
                return Status(StatusCode::Aborted,
                              "another release of the same key scope started while this one was checked for "
                              "linkage; request it again");
        }
        if (ledger)
            tx.exec_params("INSERT INTO release_ledger (extract_id, recipient, dataset, key_scope, policy, "
                           "policy_version, disclosed) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
                           id, ledger->recipient, ledger->dataset, ledger->keyScope, ledger->policy,
                           ledger->policyVersion, ledger->disclosed);
        tx.commit();
        return Status::ok();
    } catch (...) { return db::statusFromException(std::current_exception(), "starting the extract"); }
}

Result<std::vector<LedgerEntry>> ledgerEntries(pqxx::connection& conn, const std::string& recipient,
                                               const std::string& dataset, const std::string& keyScope) {
    try {
        pqxx::read_transaction tx(conn);
        pqxx::result r = tx.exec_params(
            "SELECT extract_id, policy, policy_version, "
            "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM release_ledger "
            "WHERE recipient = $1 AND dataset = $2 AND key_scope = $3 ORDER BY created_at, extract_id",
            recipient, dataset, keyScope);
        tx.commit();
        std::vector<LedgerEntry> out;
        for (const auto& row : r)
            out.push_back(
                {row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<int32_t>(), row[3].as<std::string>()});
        return out;
    } catch (...) { return db::statusFromException(std::current_exception(), "reading the release ledger"); }
}

Status closeUnreleasedExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex) {
    try {
        pqxx::work tx(conn);
        tx.exec_params("UPDATE extracts SET status = 'not_released', finished_at = now(), finished_entry_index = $2 "
                       "WHERE id = $1 AND status IN ('preparing', 'requested')",
                       id, static_cast<int64_t>(finishedEntryIndex));
        tx.commit();
        return Status::ok();
    } catch (...) { return db::statusFromException(std::current_exception(), "closing the extract"); }
}

Status completeExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex,
                       const std::string& manifestDocument, const std::string& signatureBase64) {
    try {
        pqxx::work tx(conn);
        pqxx::result r =
            tx.exec_params("UPDATE extracts SET status = 'completed', finished_at = now(), finished_entry_index = $2, "
                           "manifest = $3, manifest_signature = $4 WHERE id = $1 AND status = 'requested'",
                           id, static_cast<int64_t>(finishedEntryIndex), manifestDocument, signatureBase64);
        if (r.affected_rows() != 1) return internalError("extract " + id + " is not in progress");
        tx.commit();
        return Status::ok();
    } catch (...) { return db::statusFromException(std::current_exception(), "completing the extract"); }
}

Status abortExtract(pqxx::connection& conn, const std::string& id, uint64_t finishedEntryIndex) {
    try {
        pqxx::work tx(conn);
        tx.exec_params("UPDATE extracts SET status = 'aborted', finished_at = now(), finished_entry_index = $2 "
                       "WHERE id = $1 AND status = 'requested'",
                       id, static_cast<int64_t>(finishedEntryIndex));
        tx.commit();
        return Status::ok();
    } catch (...) { return db::statusFromException(std::current_exception(), "marking the extract aborted"); }
}

namespace {

// True for an extract row `e` whose gateway instance holds its lease: a session of this database
// holds the advisory lock (kInstanceLeaseClass, instance), which pg_locks shows as classid, objid
// and objsubid 2.
std::string instanceAlive(const std::string& e) {
    return "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
           "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
           "AND l.classid = " +
           std::to_string(db::kInstanceLeaseClass) + "::oid AND l.objid = " + e + ".gateway_instance::oid)";
}

const char* kExtractColumns =
    "id, dataset, policy, policy_version, policy_hash, recipient, purpose, format, requested_entry_index, "
    "coalesce(gateway_instance, 0), key_derivation";

ExtractRecord extractRecordOf(const pqxx::row& row) {
    ExtractRecord e;
    e.id = row[0].c_str();
    e.dataset = row[1].c_str();
    e.policy = row[2].c_str();
    e.policyVersion = row[3].as<int32_t>();
    e.policyHash = row[4].c_str();
    e.recipient = row[5].c_str();
    e.purpose = row[6].c_str();
    e.format = row[7].c_str();
    e.requestedEntryIndex = static_cast<uint64_t>(row[8].as<int64_t>());
    e.gatewayInstance = row[9].as<int32_t>();
    e.keyDerivation = row[10].as<int>();
    return e;
}

// Open extracts (preparing or requested) for which `whose` holds ($1 is `self`), oldest first.
Result<std::vector<ExtractRecord>> openExtracts(pqxx::connection& conn, const std::string& whose, int32_t self,
                                                const std::string& context) {
    try {
        pqxx::work tx(conn);
        pqxx::result r = tx.exec_params(std::string("SELECT ") + kExtractColumns +
                                            " FROM extracts e WHERE status IN ('preparing', 'requested') AND " + whose +
                                            " ORDER BY requested_at LIMIT 1000",
                                        self);
        tx.commit();
        std::vector<ExtractRecord> out;
        for (const auto& row : r) out.push_back(extractRecordOf(row));
        return out;
    } catch (...) { return db::statusFromException(std::current_exception(), context); }
}

}  // namespace

Result<std::vector<ExtractRecord>> findInterruptedExtracts(pqxx::connection& conn, int32_t self) {
    return openExtracts(conn, "gateway_instance IS DISTINCT FROM NULLIF($1, 0) AND NOT " + instanceAlive("e"), self,
                        "looking for interrupted extracts");
}

Result<std::vector<ExtractRecord>> findOwnOpenExtracts(pqxx::connection& conn, int32_t self) {
    return openExtracts(conn, "gateway_instance = $1", self, "looking for this gateway's open extracts");
}

Result<bool> abortInterruptedExtract(pqxx::connection& conn, const std::string& id,
                                     const std::function<Result<uint64_t>(bool streaming)>& record,
                                     int32_t ownInstance) {
    try {
        pqxx::work tx(conn);
        const std::string whose =
            ownInstance != 0 ? "e.gateway_instance = " + std::to_string(ownInstance) : "NOT " + instanceAlive("e");
        pqxx::result r = tx.exec_params("SELECT requested_entry_index, status FROM extracts e WHERE id = $1 AND status "
                                        "IN ('preparing', 'requested') AND " +
                                            whose + " FOR UPDATE SKIP LOCKED",
                                        id);
        if (r.empty()) return false;  // finished meanwhile, alive after all, or another sweeper has it
        const bool streaming = std::string_view(r[0][1].c_str()) == "requested";  // else nothing was sent
        // The audit entry is committed on the log's own connection, before this row is updated. A
        // process that died in between (the streaming gateway after recording a disconnect, or an
        // earlier sweeper) left its "extract.aborted" entry in the log: that entry is the outcome,
        // and a second one would record the same end twice.
        pqxx::result written = tx.exec_params(
            "SELECT entry_index FROM audit_entries WHERE action = 'extract.aborted' AND entry_index >= $2 AND "
            "position($1 in convert_from(entry, 'UTF8')) > 0 ORDER BY entry_index LIMIT 1",
            "\"extract_id\":\"" + id + "\"", r[0][0].as<int64_t>());
        int64_t index = 0;
        if (!written.empty()) {
            index = written[0][0].as<int64_t>();
        } else {
            auto recorded = record(streaming);
            if (!recorded) return recorded.status();  // the transaction rolls back: the next sweep retries
            index = static_cast<int64_t>(*recorded);
        }
        tx.exec_params0("UPDATE extracts SET status = $3, finished_at = now(), finished_entry_index = $2 WHERE id = $1",
                        id, index, std::string(streaming ? "aborted" : "not_released"));
        tx.commit();
        return true;
    } catch (...) {
        return db::statusFromException(std::current_exception(), "marking an interrupted extract aborted");
    }
}

Result<StoredExtract> loadExtract(pqxx::connection& conn, const std::string& id) {
    try {
        pqxx::work tx(conn);
        pqxx::result r = tx.exec_params(
            "SELECT id, dataset, policy, policy_version, policy_hash, recipient, purpose, format, status, "
            "requested_entry_index, manifest, key_derivation FROM extracts WHERE id = $1",
            id);
        tx.commit();
        if (r.empty()) return notFound("no extract " + id);
        StoredExtract e;
        const pqxx::row row = r[0];
        e.record.id = row[0].c_str();
        e.record.dataset = row[1].c_str();
        e.record.policy = row[2].c_str();
        e.record.policyVersion = row[3].as<int32_t>();
        e.record.policyHash = row[4].c_str();
        e.record.recipient = row[5].c_str();
        e.record.purpose = row[6].c_str();
        e.record.format = row[7].c_str();
        e.status = row[8].c_str();
        e.record.requestedEntryIndex = static_cast<uint64_t>(row[9].as<int64_t>());
        if (!row[10].is_null()) e.manifest = std::string(row[10].c_str());
        e.record.keyDerivation = row[11].as<int>();
        return e;
    } catch (...) { return db::statusFromException(std::current_exception(), "loading the extract"); }
}

}  // namespace custodian::release
