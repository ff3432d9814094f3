// The extract lifecycle (gateway/api/extract_lifecycle.hpp) against a real database and audit log:
// every legal transition changes the `extracts` row as documented and records exactly one audit
// entry where it records one; an illegal transition records nothing and changes nothing; two
// closings that race record one entry; the manifest is signed once, its signature stored as served.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <thread>

#include "gateway/api/extract_lifecycle.hpp"
#include "gateway/crypto/manifest.hpp"
#include "gateway/release/extract_store.hpp"
#include "gateway_fixture.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
using namespace std::chrono_literals;
using api::ExtractLifecycle;
using api::ExtractState;

namespace {

// A gateway (for its audit log, database pool, signing key and live extracts) and one request of
// partner-a to extract visits under research.
struct LifecycleWorld {
    TestDatabase db = TestDatabase::create("lifecycle");
    RunningGateway gw{db.conninfo(), {{}, [](config::GatewayConfig& c) { c.release.sweepInterval = 3600s; }}};
    auth::Principal partner;
    http::HttpRequest request;
    api::PathParams params;
    api::RequestContext ctx{request, gw.services(), params, &partner};  // one request for every extract

    LifecycleWorld() {
        REQUIRE(gw.waitForReadiness(200, 10000ms) == 200);
        partner.name = "partner-a";
        partner.role = auth::Role::Partner;
        request.method = "POST";
        request.path = request.target = "/v1/extracts";
        request.remoteAddress = "192.0.2.7:40000";
        request.requestId = "req-lifecycle";
    }

    static api::ExtractFacts facts() {
        api::ExtractFacts f;
        f.extractId = release::newExtractId();
        f.dataset = "visits";
        f.policy = "research";
        f.policyVersion = 3;
        f.policyHash = std::string(64, 'a');
        f.purpose = "research";
        f.recipient = "partner-a";
        f.role = "partner";
        f.requestId = "req-lifecycle";
        f.clientAddress = "192.0.2.7";
        f.createdMs = 1767225600000;
        f.keyDerivation = 2;
        return f;
    }

    // A new extract taken to `state` (admitted, preparing or requested).
    std::unique_ptr<ExtractLifecycle> extractIn(ExtractState state) {
        auto admitted = ExtractLifecycle::admit(ctx, facts(), std::string("partner-a"));
        REQUIRE(admitted);
        std::unique_ptr<ExtractLifecycle> extract = std::move(admitted).value();
        if (state == ExtractState::Preparing || state == ExtractState::Requested) REQUIRE(extract->open());
        if (state == ExtractState::Requested) REQUIRE(extract->start());
        REQUIRE(extract->state() == state);
        return extract;
    }

    // "action:decision" of every entry naming the extract, in order.
    std::vector<std::string> entries(const std::string& id) {
        pqxx::connection conn(db.conninfo());
        pqxx::read_transaction tx(conn);
        std::vector<std::string> out;
        for (const auto& row : tx.exec_params("SELECT action || ':' || decision FROM audit_entries WHERE "
                                              "convert_from(entry, 'UTF8') LIKE $1 ORDER BY entry_index",
                                              "%\"extract_id\":\"" + id + "\"%"))
            out.emplace_back(row[0].c_str());
        return out;
    }

    // The entry's details member `name` as canonical JSON, from the last entry naming the extract.
    std::string lastDetail(const std::string& id, const std::string& name) {
        pqxx::connection conn(db.conninfo());
        pqxx::read_transaction tx(conn);
        auto r = tx.exec_params("SELECT convert_from(entry, 'UTF8')::json -> 'details' ->> $2 FROM audit_entries WHERE "
                                "convert_from(entry, 'UTF8') LIKE $1 ORDER BY entry_index DESC LIMIT 1",
                                "%\"extract_id\":\"" + id + "\"%", name);
        return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
    }

    // "status finished_entry_index" of the extract's row ("none" without a row; "-" for no index).
    std::string row(const std::string& id) {
        pqxx::connection conn(db.conninfo());
        pqxx::read_transaction tx(conn);
        auto r = tx.exec_params(
            "SELECT status || ' ' || coalesce(finished_entry_index::text, '-') FROM extracts WHERE id = $1", id);
        return r.empty() ? "none" : r[0][0].c_str();
    }

    // The index of the last entry naming the extract.
    std::string lastIndex(const std::string& id) {
        pqxx::connection conn(db.conninfo());
        pqxx::read_transaction tx(conn);
        return tx
            .exec_params1("SELECT max(entry_index)::text FROM audit_entries WHERE convert_from(entry, 'UTF8') LIKE $1",
                          "%\"extract_id\":\"" + id + "\"%")[0]
            .c_str();
    }
};

api::ReleasedExtract released() {
    api::ReleasedExtract r;
    r.rowsReleased = 95;
    r.rowsSuppressed = 5;
    r.achieved = json::JsonValue::Object{{"k", 10}};
    r.informationLoss = json::JsonValue::Object{{"ncp", "0.2500"}, {"attributes", json::JsonValue::Object{}}};
    r.columns = {{"age", "generalize:level=1"}, {"diagnosis", "keep"}};
    r.digests.plaintextSha256.fill(0x11);
    r.digests.ciphertextSha256.fill(0x22);
    r.digests.plaintextBytes = 1000;
    r.digests.ciphertextBytes = 1100;
    r.search = json::JsonValue::Object{{"levels", json::JsonValue::Object{{"age", 1}}}};
    return r;
}

}  // namespace

TEST_CASE("an extract goes admitted, preparing, requested, completed, one audit entry where a transition records one",
          "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    auto& ctx = w.ctx;
    auto extract = w.extractIn(ExtractState::Admitted);
    const std::string id = extract->facts().extractId;
    CHECK(extract->state() == ExtractState::Admitted);
    CHECK(ctx.entriesRecorded == 1);  // the request handler records no second entry
    CHECK(w.entries(id) == std::vector<std::string>{"extract.requested:allowed"});
    CHECK(w.lastDetail(id, "recipient_entry") == "partner-a");
    CHECK(extract->facts().requestedEntryIndex == std::stoull(w.lastIndex(id)));
    CHECK(w.row(id) == "none");
    CHECK_FALSE(w.gw.services().liveExtracts->contains(id));

    REQUIRE(extract->open());
    CHECK(extract->state() == ExtractState::Preparing);
    CHECK(w.row(id) == "preparing -");
    CHECK(w.gw.services().liveExtracts->contains(id));  // a sweeper of this process leaves it alone
    REQUIRE(extract->start());
    CHECK(extract->state() == ExtractState::Requested);
    CHECK(w.row(id) == "requested -");
    CHECK(w.entries(id).size() == 1);  // preparing and requested are row changes only

    REQUIRE(extract->complete(released()));
    CHECK(extract->state() == ExtractState::Completed);
    CHECK(w.entries(id) == std::vector<std::string>{"extract.requested:allowed", "extract.completed:completed"});
    const std::string completedIndex = w.lastIndex(id);
    CHECK(w.row(id) == "completed " + completedIndex);
    CHECK(w.lastDetail(id, "requested_entry") == std::to_string(extract->facts().requestedEntryIndex));
    CHECK(w.lastDetail(id, "rows_released") == "95");
    CHECK(w.lastDetail(id, "levels") == "{\"age\":1}");
    CHECK(ctx.entriesRecorded == 1);  // completion is not the request's entry

    // The manifest: signed once, the signature stored beside the document is the one it carries.
    pqxx::connection conn(w.db.conninfo());
    pqxx::read_transaction tx(conn);
    auto stored = tx.exec_params1("SELECT manifest, manifest_signature FROM extracts WHERE id = $1", id);
    const std::string document = stored[0].c_str();
    auto manifest = crypto::verifyManifest(document, w.gw.services().signingKey->publicKey());
    REQUIRE(manifest);
    CHECK(std::to_string(manifest->auditIndex) == completedIndex);
    CHECK(manifest->rowsReleased == 95);
    CHECK(manifest->keyDerivation == 2);
    CHECK(manifest->columns == released().columns);
    CHECK(document.find("\"signature\":\"" + std::string(stored[1].c_str()) + "\"") != std::string::npos);

    // A completed extract takes no other transition, and records nothing for trying.
    CHECK(extract->complete(released()).code() == StatusCode::FailedPrecondition);
    CHECK(extract->abort("aborted", unavailable("gone"), std::nullopt).code() == StatusCode::FailedPrecondition);
    CHECK(extract->notReleased(ctx, "failed", unavailable("gone"), {}).code() == StatusCode::FailedPrecondition);
    CHECK(extract->start().code() == StatusCode::FailedPrecondition);
    CHECK(w.entries(id).size() == 2);
    CHECK(w.row(id) == "completed " + completedIndex);
    CHECK(extract->state() == ExtractState::Completed);
    extract.reset();
    CHECK_FALSE(w.gw.services().liveExtracts->contains(id));
}

TEST_CASE("a refusal before admission records extract.requested denied and leaves no row",
          "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    auto& ctx = w.ctx;
    const api::ExtractFacts facts = LifecycleWorld::facts();
    REQUIRE(ExtractLifecycle::refuse(ctx, facts, permissionDenied("not a recipient"), {{"rule", "recipients"}}));
    CHECK(ctx.entriesRecorded == 1);
    CHECK(w.entries(facts.extractId) == std::vector<std::string>{"extract.requested:denied"});
    CHECK(w.lastDetail(facts.extractId, "rule") == "recipients");
    CHECK(w.row(facts.extractId) == "none");
}

TEST_CASE("an extract closed before its first byte ends not_released from admitted, preparing or requested",
          "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    auto& ctx = w.ctx;
    // Admitted: no row was inserted, so only the closing entry.
    auto admitted = w.extractIn(ExtractState::Admitted);
    REQUIRE(admitted->notReleased(ctx, "failed", unavailable("the database is not available"), {}));
    CHECK(admitted->state() == ExtractState::NotReleased);
    CHECK(w.entries(admitted->facts().extractId) ==
          std::vector<std::string>{"extract.requested:allowed", "extract.aborted:failed"});
    CHECK(w.lastDetail(admitted->facts().extractId, "requested_entry") ==
          std::to_string(admitted->facts().requestedEntryIndex));
    CHECK(w.row(admitted->facts().extractId) == "none");
    CHECK(admitted->open().code() == StatusCode::FailedPrecondition);
    CHECK(w.row(admitted->facts().extractId) == "none");

    // Preparing: a rule refused the row count.
    auto preparing = w.extractIn(ExtractState::Preparing);
    REQUIRE(preparing->notReleased(ctx, "denied", permissionDenied("too many rows"), {{"rule", "output.max_rows"}}));
    const std::string preparingId = preparing->facts().extractId;
    CHECK(w.entries(preparingId) == std::vector<std::string>{"extract.requested:allowed", "extract.aborted:denied"});
    CHECK(w.lastDetail(preparingId, "rule") == "output.max_rows");
    CHECK(w.row(preparingId) == "not_released " + w.lastIndex(preparingId));

    // Requested, no byte sent (the producer could not be made).
    auto requested = w.extractIn(ExtractState::Requested);
    REQUIRE(requested->notReleased(ctx, "failed", failedPrecondition("no public key"), {}));
    const std::string requestedId = requested->facts().extractId;
    CHECK(w.row(requestedId) == "not_released " + w.lastIndex(requestedId));
    CHECK(requested->abort("failed", unavailable("late"), std::nullopt).code() == StatusCode::FailedPrecondition);
    CHECK(requested->complete(released()).code() == StatusCode::FailedPrecondition);
    CHECK(w.entries(requestedId).size() == 2);
    CHECK(ctx.entriesRecorded == 6);  // three requested entries and three closing entries, all this request's
}

TEST_CASE("transitions out of order are refused, record nothing and leave the row as it was",
          "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    auto& ctx = w.ctx;
    auto extract = w.extractIn(ExtractState::Admitted);
    const std::string id = extract->facts().extractId;
    CHECK(extract->start().code() == StatusCode::FailedPrecondition);  // no row yet
    CHECK(extract->complete(released()).code() == StatusCode::FailedPrecondition);
    CHECK(extract->abort("aborted", unavailable("gone"), std::nullopt).code() == StatusCode::FailedPrecondition);
    CHECK(extract->state() == ExtractState::Admitted);
    CHECK(w.row(id) == "none");
    REQUIRE(extract->open());
    CHECK(extract->open().code() == StatusCode::FailedPrecondition);                // one row per extract
    CHECK(extract->complete(released()).code() == StatusCode::FailedPrecondition);  // nothing was streamed
    CHECK(extract->abort("aborted", unavailable("gone"), std::nullopt).code() == StatusCode::FailedPrecondition);
    CHECK(extract->state() == ExtractState::Preparing);
    CHECK(w.row(id) == "preparing -");
    CHECK(w.entries(id) == std::vector<std::string>{"extract.requested:allowed"});
    CHECK(ctx.entriesRecorded == 1);
    const auto refused = extract->complete(released());
    CHECK_THAT(refused.message(), Catch::Contains(id) && Catch::Contains("preparing"));
}

TEST_CASE("an aborted extract records its progress once, a later abort or completion records nothing",
          "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    auto& ctx = w.ctx;
    auto extract = w.extractIn(ExtractState::Requested);
    const std::string id = extract->facts().extractId;
    REQUIRE(extract->abort("aborted", unavailable("the client disconnected: reset"), api::StreamProgress{40, 37}));
    CHECK(extract->state() == ExtractState::Aborted);
    CHECK(w.entries(id) == std::vector<std::string>{"extract.requested:allowed", "extract.aborted:aborted"});
    CHECK(w.lastDetail(id, "rows_read") == "40");
    CHECK(w.lastDetail(id, "rows_released") == "37");
    CHECK(w.row(id) == "aborted " + w.lastIndex(id));
    CHECK(extract->abort("failed", unavailable("again"), std::nullopt).code() == StatusCode::FailedPrecondition);
    CHECK(extract->complete(released()).code() == StatusCode::FailedPrecondition);
    CHECK(w.entries(id).size() == 2);
    CHECK(ctx.entriesRecorded == 1);
}

TEST_CASE("a completion and an abort that race record one closing entry", "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    for (int round = 0; round < 8; ++round) {
        auto extract = w.extractIn(ExtractState::Requested);
        const std::string id = extract->facts().extractId;
        Status completed, aborted;
        std::thread other(
            [&] { aborted = extract->abort("aborted", unavailable("the client disconnected"), std::nullopt); });
        completed = extract->complete(released());
        other.join();
        INFO("round " << round << ": complete " << completed.message() << ", abort " << aborted.message());
        CHECK(completed.isOk() != aborted.isOk());
        const auto trail = w.entries(id);
        REQUIRE(trail.size() == 2);
        CHECK(trail[1] == (completed.isOk() ? "extract.completed:completed" : "extract.aborted:aborted"));
        CHECK(w.row(id) == (completed.isOk() ? "completed " : "aborted ") + w.lastIndex(id));
    }
}

TEST_CASE("an extract its request left open is closed interrupted once, preparing as not_released",
          "[integration][extract][lifecycle]") {
    LifecycleWorld w;
    const int32_t self = w.gw.services().instance;
    auto preparing = w.extractIn(ExtractState::Preparing);
    auto streaming = w.extractIn(ExtractState::Requested);
    const std::string preparingId = preparing->facts().extractId, streamingId = streaming->facts().extractId;
    // The requests end without closing them (as when the database was lost).
    preparing.reset();
    streaming.reset();
    std::vector<release::ExtractRecord> open;
    REQUIRE(w.gw.services().db->withConnection([&](pqxx::connection& conn) -> Status {
        auto found = release::findOwnOpenExtracts(conn, self);
        if (!found) return found.status();
        open = std::move(found).value();
        return Status::ok();
    }));
    REQUIRE(open.size() == 2);
    for (const auto& extract : open) {
        auto closed = ExtractLifecycle::closeInterrupted(w.gw.services(), extract, self, true);
        REQUIRE(closed);
        CHECK(*closed);
        auto again = ExtractLifecycle::closeInterrupted(w.gw.services(), extract, self, true);
        REQUIRE(again);
        CHECK_FALSE(*again);
    }
    CHECK(w.entries(preparingId) ==
          std::vector<std::string>{"extract.requested:allowed", "extract.aborted:interrupted"});
    CHECK(w.entries(streamingId) ==
          std::vector<std::string>{"extract.requested:allowed", "extract.aborted:interrupted"});
    CHECK(w.row(preparingId) == "not_released " + w.lastIndex(preparingId));
    CHECK(w.row(streamingId) == "aborted " + w.lastIndex(streamingId));
    CHECK(w.lastDetail(streamingId, "recorded_by_instance") == std::to_string(self));
}
