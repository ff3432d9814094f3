#pragma once
// Shared fixtures of the extract tests: an agency database with a deterministic table of visits,
// policies over it, and an independent reader of released CSV.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "anonymizer/csv.hpp"
#include "anonymizer/transform.hpp"
#include "gateway/release/plan.hpp"
#include "policies/policy.hpp"
#include "support/pg_cluster.hpp"

namespace custodian::testing {

// agency.visits: `rows` deterministic rows (id, full_name, age, sex, zip, diagnosis, cost,
// visit_date). Ages 18..87, 2 sexes, 40 zips, 5 diagnoses.
inline void createVisitsTable(const std::string& conninfo, int rows) {
    runPsql(conninfo,
            "CREATE SCHEMA agency;"
            "CREATE TABLE agency.visits (id bigint PRIMARY KEY, full_name text NOT NULL, age integer, sex text,"
            "  zip text, diagnosis text, cost numeric(10,2), visit_date date);"
            "INSERT INTO agency.visits SELECT g, 'Person ' || g, 18 + (g * 7919) % 70,"
            "  CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END, (10000 + (g * 31) % 40)::text,"
            "  (ARRAY['I10','E11','J45','M54','F32'])[1 + (g * 13) % 5], ((g % 1000) * 10.5)::numeric(10,2),"
            "  DATE '2024-01-01' + (g % 365)"
            "  FROM generate_series(1, " +
                std::to_string(rows) +
                ") AS g;"
                "ANALYZE agency.visits;");
}

// A release of agency.visits to `recipient` under the policy named `policy`, keyed with `key` and
// the current key derivation.
inline release::ReleaseContext visitsRelease(const anon::MasterKey& key, const std::string& recipient = "partner-a",
                                             const std::string& policy = "research") {
    return release::ReleaseContext{{anon::kCurrentKeyDerivation, "visits", policy, recipient}, &key, nullptr};
}

// The body of PUT /v1/datasets/visits registering agency.visits from the source named `source`.
inline std::string visitsDatasetJson(const std::string& source) {
    return R"({"source": ")" + source + R"(", "table": "agency.visits", "columns": [
            {"name": "id", "type": "integer", "role": "identifier"},
            {"name": "full_name", "type": "text", "role": "identifier"},
            {"name": "age", "type": "integer", "role": "quasi_identifier"},
            {"name": "sex", "type": "text", "role": "quasi_identifier"},
            {"name": "zip", "type": "text", "role": "quasi_identifier"},
            {"name": "diagnosis", "type": "text", "role": "sensitive"},
            {"name": "cost", "type": "decimal", "role": "insensitive"},
            {"name": "visit_date", "type": "date", "role": "insensitive"}]})";
}

// A policy over agency.visits. `privacy` is the JSON of the "privacy" member; `extra` is added at the
// top level (e.g. ",\"row_filter\": {...}").
inline std::string visitsPolicyJson(const std::string& privacy, const std::string& extra = "",
                                    const std::string& recipients = "[\"partner-a\"]") {
    return R"({
  "dataset": "visits",
  "recipients": )" +
           recipients + R"(,
  "purposes": ["research"],
  "columns": [
    {"name": "id", "type": "integer", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "full_name", "type": "text", "role": "identifier", "transform": {"name": "drop"}},
    {"name": "age", "type": "integer", "role": "quasi_identifier",
     "hierarchy": {"builder": "intervals", "widths": [5, 10, 20, 40]}},
    {"name": "sex", "type": "text", "role": "quasi_identifier",
     "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
    {"name": "zip", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "prefix"}},
    {"name": "diagnosis", "type": "text", "role": "sensitive"},
    {"name": "cost", "type": "decimal", "role": "insensitive", "transform": {"name": "round", "params": {"base": 100}}},
    {"name": "visit_date", "type": "date", "role": "insensitive"}
  ],
  "privacy": )" +
           privacy + R"(,
  "algorithm": {"name": "optimal"},
  "metric": "loss")" +
           extra + "\n}";
}

// The same policy partitioned by Mondrian (`mode` "strict" or "relaxed").
inline std::string visitsMondrianPolicyJson(const std::string& privacy, const std::string& extra = "",
                                            const std::string& mode = "strict") {
    std::string json = visitsPolicyJson(privacy, extra);
    const std::string optimal = R"({"name": "optimal"})";
    json.replace(json.find(optimal), optimal.size(), R"({"name": "mondrian", "mode": ")" + mode + "\"}");
    return json;
}

inline std::shared_ptr<const policies::Policy> loadTestPolicy(const std::string& json) {
    auto loaded = policies::loadPolicy(json);
    if (!loaded.ok()) {
        std::string all;
        for (const auto& e : loaded.errors) all += e.pointer + ": " + e.message + "\n";
        throw std::runtime_error("test policy does not load:\n" + all);
    }
    return loaded.policy;
}

// Text values that are hard to carry: COPY's and CSV's separators and escapes, NULL look-alikes,
// the empty string, control characters and UTF-8. nullopt is SQL NULL.
inline const std::vector<std::optional<std::string>>& hostileTexts() {
    static const std::vector<std::optional<std::string>> values{"tab\there",
                                                                "new\nline",
                                                                "cr\rlf\r\n",
                                                                "back\\slash",
                                                                "\\N",
                                                                "\\\\N",
                                                                "",
                                                                std::nullopt,
                                                                "quote\"comma,",
                                                                "Z\u00fcrich \u6771\u4eac \U0001F642",
                                                                "\\t literal",
                                                                "\b\f\v controls",
                                                                "ends with\\",
                                                                "\\x41\\101"};
    return values;
}

// Gives the diagnosis of every third visit one of hostileTexts() (each value on many rows).
inline void makeDiagnosesHostile(const std::string& conninfo) {
    pqxx::connection conn(conninfo);
    pqxx::work tx(conn);
    const auto& values = hostileTexts();
    for (size_t i = 0; i < values.size(); ++i) {
        const std::string where =
            " WHERE id % 3 = 0 AND (id / 3) % " + std::to_string(values.size()) + " = " + std::to_string(i);
        if (values[i]) tx.exec_params("UPDATE agency.visits SET diagnosis = $1" + where, *values[i]);
        else tx.exec("UPDATE agency.visits SET diagnosis = NULL" + where);
    }
    tx.commit();
}

// How many rows hold each diagnosis (nullopt: NULL) in the table.
inline std::map<std::optional<std::string>, uint64_t> diagnosisCounts(const std::string& conninfo) {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    std::map<std::optional<std::string>, uint64_t> counts;
    for (const auto& row : tx.exec("SELECT diagnosis, count(*) FROM agency.visits GROUP BY 1"))
        counts[row[0].is_null() ? std::nullopt : std::optional<std::string>(row[0].c_str())] = row[1].as<uint64_t>();
    return counts;
}

struct ParsedCsv {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    // Per row and field: written as an empty unquoted field, CSV's NULL (`""` is the empty string).
    std::vector<std::vector<bool>> nulls;
    size_t column(const std::string& name) const {
        for (size_t i = 0; i < header.size(); ++i)
            if (header[i] == name) return i;
        throw std::runtime_error("no column " + name);
    }
};

inline ParsedCsv parseCsv(const std::string& text) {
    auto reader = anon::CsvReader::fromString(text, anon::CsvDialect{});
    if (!reader) throw std::runtime_error(reader.status().message());
    ParsedCsv out;
    out.header = reader->header();
    anon::CsvRecords records;
    for (;;) {
        auto n = reader->read(records);
        if (!n) throw std::runtime_error(n.status().message());
        if (*n == 0) break;
        for (size_t r = 0; r < records.rows(); ++r) {
            std::vector<std::string> row;
            std::vector<bool> nulls;
            for (size_t c = 0; c < records.columns(); ++c) {
                row.emplace_back(records.field(r, c));
                nulls.push_back(records.field(r, c).empty() && !records.quoted(r, c));
            }
            out.rows.push_back(std::move(row));
            out.nulls.push_back(std::move(nulls));
        }
    }
    return out;
}

// Checks that the released values of `column` are exactly source values: each released value (NULL
// included) occurs at most as often as in `source`, and the rows missing are the suppressed ones.
inline void checkReleasedValuesAreSourceValues(const ParsedCsv& csv, const std::string& column,
                                               const std::map<std::optional<std::string>, uint64_t>& source,
                                               uint64_t suppressed) {
    std::map<std::optional<std::string>, uint64_t> released;
    const size_t c = csv.column(column);
    for (size_t r = 0; r < csv.rows.size(); ++r)
        ++released[csv.nulls[r][c] ? std::nullopt : std::optional<std::string>(csv.rows[r][c])];
    uint64_t missing = 0;
    for (const auto& [value, count] : released) {
        INFO("released value: " << (value ? "'" + *value + "'" : std::string("NULL")));
        REQUIRE(source.count(value) == 1);
        REQUIRE(count <= source.at(value));
    }
    for (const auto& [value, count] : source) missing += count - (released.count(value) ? released.at(value) : 0);
    CHECK(missing == suppressed);
}

// Size of the smallest group of rows sharing the values of `columns` (0 for no rows).
inline size_t smallestGroup(const ParsedCsv& csv, const std::vector<std::string>& columns) {
    std::map<std::vector<std::string>, size_t> groups;
    std::vector<size_t> idx;
    for (const auto& c : columns) idx.push_back(csv.column(c));
    for (const auto& row : csv.rows) {
        std::vector<std::string> key;
        for (size_t i : idx) key.push_back(row[i]);
        ++groups[key];
    }
    size_t smallest = 0;
    for (const auto& [k, n] : groups) smallest = smallest == 0 ? n : std::min(smallest, n);
    return smallest;
}

}  // namespace custodian::testing
