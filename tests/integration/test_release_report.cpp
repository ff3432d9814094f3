// The policy preview (POST /v1/datasets/{d}/policies/{p}/preview, on the agency's PostgreSQL) and
// `custodian anonymize --report` (on the CSV file) compute one report (gateway/release/report.hpp):
// run both on UCI Adult under the same policy and compare their risk and information-loss figures.
// `custodian anonymize` once wrote risk.after as all zeros for Adult at k = 5 while the preview
// reported 48 classes.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "json/canonical.hpp"
#include "gateway_fixture.hpp"
#include "support/http_client.hpp"
#include "support/pg_cluster.hpp"

using namespace custodian;
using namespace custodian::testing;
namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> splitFields(const std::string& line, char delimiter) {
    std::vector<std::string> out(1);
    for (char c : line) {
        if (c == delimiter) out.emplace_back();
        else if (c != '\r') out.back().push_back(c);
    }
    return out;
}

// An ARX hierarchy file (leaf;level 1;…;*) as the policy language's "groups" builder, which the
// gateway accepts (a stored policy cannot name files): level i maps each node of level i + 1 to the
// nodes of level i under it.
void addGroupsHierarchy(rapidjson::Value& column, const fs::path& file, rapidjson::Document::AllocatorType& a) {
    std::ifstream in(file);
    std::vector<std::map<std::string, std::vector<std::string>>> levels;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line == "\r") continue;
        const auto fields = splitFields(line, ';');
        if (levels.size() < fields.size() - 1) levels.resize(fields.size() - 1);
        for (size_t l = 1; l < fields.size(); ++l) {
            auto& members = levels[l - 1][fields[l]];
            if (std::find(members.begin(), members.end(), fields[l - 1]) == members.end())
                members.push_back(fields[l - 1]);
        }
    }
    rapidjson::Value spec(rapidjson::kObjectType), array(rapidjson::kArrayType);
    for (const auto& level : levels) {
        rapidjson::Value groups(rapidjson::kObjectType);
        for (const auto& [group, members] : level) {
            rapidjson::Value list(rapidjson::kArrayType);
            for (const auto& m : members) list.PushBack(rapidjson::Value(m.c_str(), a), a);
            groups.AddMember(rapidjson::Value(group.c_str(), a), list, a);
        }
        array.PushBack(groups, a);
    }
    spec.AddMember("builder", "groups", a);
    spec.AddMember("levels", array, a);
    column["hierarchy"] = spec;
}

// policies/examples/NAME with its hierarchy files inlined as groups.
std::string inlinedExamplePolicy(const std::string& name) {
    const fs::path path = fs::path(CUSTODIAN_SOURCE_DIR) / "policies/examples" / name;
    rapidjson::Document doc;
    doc.Parse(readFile(path).c_str());
    REQUIRE_FALSE(doc.HasParseError());
    for (auto& column : doc["columns"].GetArray()) {
        if (!column.HasMember("hierarchy") || !column["hierarchy"].HasMember("file")) continue;
        const fs::path file = path.parent_path() / column["hierarchy"]["file"].GetString();
        addGroupsHierarchy(column, file, doc.GetAllocator());
    }
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    doc.Accept(w);
    return out.GetString();
}

// Numbers equal to 1e-12 relative (the two sides sum the same terms, possibly in another order),
// everything else exactly; objects must have the same members.
void requireSameJson(const rapidjson::Value& a, const rapidjson::Value& b, const std::string& where) {
    INFO(where);
    if (a.IsNumber() && b.IsNumber()) {
        const double x = a.GetDouble(), y = b.GetDouble();
        REQUIRE(std::fabs(x - y) <= 1e-12 * std::max(1.0, std::max(std::fabs(x), std::fabs(y))));
        return;
    }
    REQUIRE(a.GetType() == b.GetType());
    if (a.IsObject()) {
        REQUIRE(a.MemberCount() == b.MemberCount());
        for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
            const std::string name = it->name.GetString();
            INFO("member " << where << "/" << name);
            REQUIRE(b.HasMember(name.c_str()));
            requireSameJson(it->value, b[name.c_str()], where + "/" + name);
        }
    } else if (a.IsArray()) {
        REQUIRE(a.Size() == b.Size());
        for (rapidjson::SizeType i = 0; i < a.Size(); ++i) requireSameJson(a[i], b[i], where + "/" + std::to_string(i));
    } else {
        REQUIRE(a == b);
    }
}

int runCustodian(const std::string& args) {
    const std::string cmd = std::string(CUSTODIAN_BINARY) + " " + args + " 2>/dev/null";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct AdultAgency {
    TestDatabase gatewayDb = TestDatabase::create("report_gateway");
    TestDatabase agency = TestDatabase::create("report_agency");
    std::unique_ptr<RunningGateway> gw;
    std::string publisher;

    AdultAgency() {
        const fs::path csv = fs::path(CUSTODIAN_ADULT_DIR) / "adult.csv";
        runPsql(agency.conninfo(),
                "CREATE SCHEMA agency;"
                "CREATE TABLE agency.adult (sex text, age integer, race text, \"marital-status\" text, education text,"
                "  \"native-country\" text, workclass text, occupation text, \"salary-class\" text);");
        // Loaded in file order: Mondrian reads the table in its physical order, the CLI the file.
        runPsql(agency.conninfo(),
                "\\copy agency.adult FROM '" + csv.string() + "' WITH (FORMAT csv, DELIMITER ';', HEADER true)");
        gw = std::make_unique<RunningGateway>(gatewayDb.conninfo());
        publisher = gw->addPrincipal(auth::Role::Publisher, "pub-census", "census");
        // The example policies release to this group.
        const std::string admin = gw->addPrincipal(auth::Role::Admin, "admin-census");
        REQUIRE(httpRequest(gw->port(), "PUT", "/v1/groups/census-researchers", {{"Authorization", "Bearer " + admin}})
                    .status < 300);
        REQUIRE(call("PUT", "/v1/sources/census-db",
                     "{\"conninfo\": " + json::canonicalJson(json::JsonValue(agency.conninfo())).value() + "}")
                    .status < 300);
        std::string columns;
        for (const char* c : {"sex", "age", "race", "marital-status", "education", "native-country", "workclass",
                              "occupation", "salary-class"}) {
            const std::string name = c;
            columns += std::string(columns.empty() ? "" : ",") + "{\"name\": \"" + name + "\", \"type\": \"" +
                       (name == "age" ? "integer" : "text") + "\", \"role\": \"" +
                       (name == "salary-class" ? "sensitive" : "quasi_identifier") + "\"}";
        }
        auto dataset = call("PUT", "/v1/datasets/adult",
                            R"({"source": "census-db", "table": "agency.adult", "columns": [)" + columns + "]}");
        INFO(dataset.body);
        REQUIRE(dataset.status < 300);
    }

    HttpResult call(const std::string& method, const std::string& target, const std::string& body = "") {
        std::vector<std::pair<std::string, std::string>> headers{{"Authorization", "Bearer " + publisher}};
        if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
        return httpRequest(gw->port(), method, target, headers, body);
    }
};

// Runs the preview and `custodian anonymize --report` under the example policy `example`, and
// compares `members` of the two reports; returns the CLI report.
rapidjson::Document compareReports(AdultAgency& world, const std::string& example, const std::string& policyName,
                                   const std::vector<std::string>& members) {
    const std::string policy = inlinedExamplePolicy(example);
    auto put = world.call("PUT", "/v1/datasets/adult/policies/" + policyName, policy);
    INFO(put.body);
    REQUIRE(put.status < 300);
    auto preview = world.call("POST", "/v1/datasets/adult/policies/" + policyName + "/preview");
    INFO(preview.body.substr(0, 2000));
    REQUIRE(preview.status == 200);
    rapidjson::Document online;
    online.Parse(preview.body.c_str());
    REQUIRE_FALSE(online.HasParseError());

    const fs::path dir = fs::temp_directory_path() / ("custodian-report-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path policyFile = dir / (policyName + ".json"), out = dir / (policyName + ".csv"),
                   report = dir / (policyName + ".report.json");
    std::ofstream(policyFile) << policy;
    REQUIRE(runCustodian("anonymize --policy " + policyFile.string() + " --in " +
                         (fs::path(CUSTODIAN_ADULT_DIR) / "adult.csv").string() + " --out " + out.string() +
                         " --report " + report.string()) == 0);
    rapidjson::Document offline;
    offline.Parse(readFile(report).c_str());
    REQUIRE_FALSE(offline.HasParseError());
    fs::remove_all(dir);

    REQUIRE(online["records_selected"].GetUint64() == 30162);
    REQUIRE(offline["records"].GetUint64() == 30162);
    for (const auto& member : members) {
        INFO("report member " << member);
        REQUIRE(online.HasMember(member.c_str()));
        REQUIRE(offline.HasMember(member.c_str()));
        requireSameJson(online[member.c_str()], offline[member.c_str()], member);
    }
    return offline;
}

}  // namespace

TEST_CASE("the policy preview and custodian anonymize --report give the same risk and loss on Adult",
          "[integration][report][adult]") {
    AdultAgency world;

    SECTION("optimal full-domain generalization, k = 5") {
        auto report = compareReports(world, "adult.json", "benchmark",
                                     {"risk_before", "information_loss_before", "risk_after", "information_loss_after",
                                      "generalization", "lattice_size"});
        // What the figures must be, independently of the preview: 30,162 records released in
        // classes of at least 5, before: Adult has unique records.
        const auto& after = report["risk_after"];
        CHECK(after["records_released"].GetUint64() == 30162);
        CHECK(after["records_suppressed"].GetUint64() == 0);
        CHECK(after["classes"].GetUint64() > 0);
        CHECK(after["smallest_class"].GetUint64() >= 5);
        CHECK(after["prosecutor_risk_max"].GetDouble() <= 0.2);
        CHECK(after["prosecutor_risk_max"].GetDouble() > 0);
        CHECK(after["classes"].GetUint64() == report["final_check"]["classes"].GetUint64());
        CHECK(report["risk_before"]["prosecutor_risk_max"].GetDouble() == 1.0);
        CHECK(report["risk_before"]["records_released"].GetUint64() == 30162);
        CHECK(report["information_loss_after"]["loss"].GetDouble() >
              report["information_loss_before"]["loss"].GetDouble());
    }
    SECTION("strict Mondrian, k = 10") {
        auto report = compareReports(world, "adult-mondrian.json", "mondrian",
                                     {"risk_before", "risk_after", "information_loss_after"});
        CHECK(report["risk_after"]["classes"].GetUint64() == report["final_check"]["classes"].GetUint64());
        CHECK(report["risk_after"]["smallest_class"].GetUint64() >= 10);
        CHECK(report["information_loss_after"]["loss"].GetDouble() ==
              Approx(report["partitioning"]["ncp"]["overall"].GetDouble()));
        // The partitioning (but for its timing) is the same on both sides.
        auto preview = world.call("POST", "/v1/datasets/adult/policies/mondrian/preview");
        rapidjson::Document online;
        online.Parse(preview.body.c_str());
        online["partitioning"].RemoveMember("search_seconds");
        report["partitioning"].RemoveMember("search_seconds");
        requireSameJson(online["partitioning"], report["partitioning"], "partitioning");
    }
}
