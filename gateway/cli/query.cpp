// `custodian query`: the partner client of the differentially private aggregates channel
// (docs/aggregates.md). Sends one POST /v1/queries and prints the answer as a table (each group,
// its noisy value and 95 % interval, then the budget left), or the gateway's JSON with --json.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gateway/cli/args.hpp"
#include "gateway/cli/http_get.hpp"

namespace custodian::cli {

namespace {

// The request body from the options (numbers and the row filter are checked by the gateway).
Result<std::string> requestBody(const ParsedArgs& args) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    auto member = [&](const char* name, const std::string& value) {
        w.Key(name);
        w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
    };
    auto number = [&](const char* name, const std::string& text) -> Status {
        size_t used = 0;
        double v = 0;
        try {
            v = std::stod(text, &used);
        } catch (const std::exception&) { used = 0; }
        if (used != text.size() || text.empty()) return invalidArgument("--" + std::string(name) + " must be a number");
        w.Key(name);
        w.Double(v);
        return Status::ok();
    };
    w.StartObject();
    for (const char* name : {"dataset", "policy", "purpose", "aggregate"}) member(name, *args.get(name));
    if (auto c = args.get("column")) member("column", *c);
    if (auto g = args.get("group-by")) {
        w.Key("group_by");
        w.StartArray();
        std::string list = *g;
        for (size_t start = 0; start <= list.size();) {
            const size_t comma = std::min(list.find(',', start), list.size());
            const std::string column = list.substr(start, comma - start);
            if (column.empty()) return invalidArgument("--group-by takes column names separated by commas");
            w.String(column.c_str(), static_cast<rapidjson::SizeType>(column.size()));
            start = comma + 1;
        }
        w.EndArray();
    }
    if (auto f = args.get("filter")) {
        rapidjson::Document filter;
        filter.Parse(f->c_str(), f->size());
        if (filter.HasParseError()) return invalidArgument("--filter is not valid JSON");
        w.Key("row_filter");
        filter.Accept(w);
    }
    if (Status s = number("epsilon", *args.get("epsilon")); !s) return s;
    if (auto m = args.get("mechanism")) member("mechanism", *m);
    if (auto d = args.get("delta")) {
        if (Status s = number("delta", *d); !s) return s;
    }
    w.EndObject();
    return std::string(buffer.GetString());
}

std::string numberText(const rapidjson::Value& v) {
    if (!v.IsNumber()) return "-";
    char out[64];
    std::snprintf(out, sizeof out, "%.6g", v.GetDouble());
    return out;
}

void printTable(const rapidjson::Document& a) {
    std::printf("%s of %s under %s v%d: %s noise, epsilon %s, scale %s\n", a["aggregate"].GetString(),
                a["dataset"].GetString(), a["policy"].GetString(), a["policy_version"].GetInt(),
                a["mechanism"].GetString(), numberText(a["epsilon"]).c_str(), numberText(a["noise_scale"]).c_str());
    for (const auto& g : a["groups"].GetArray()) {
        std::string key;
        for (auto m = g["key"].MemberBegin(); m != g["key"].MemberEnd(); ++m)
            key += (key.empty() ? "" : ", ") + std::string(m->name.GetString()) + "=" + m->value.GetString();
        if (key.empty()) key = "(all rows)";
        std::printf("  %-40s %14s   95%% in [%s, %s]\n", key.c_str(), numberText(g["value"]).c_str(),
                    numberText(g["interval"][0]).c_str(), numberText(g["interval"][1]).c_str());
    }
    const auto& b = a["budget"];
    std::printf("budget: epsilon %s of %s left this %s%s%s (audit entry %llu, query %s)\n",
                numberText(b["epsilon_remaining"]).c_str(), numberText(b["epsilon_total"]).c_str(),
                b["period"].GetString(), b["period_end"].IsString() ? ", renews " : "",
                b["period_end"].IsString() ? b["period_end"].GetString() : "",
                static_cast<unsigned long long>(a["audit_index"].GetUint64()), a["query_id"].GetString());
}

}  // namespace

int runQuery(int argc, char** argv) {
    const std::vector<OptionSpec> specs = {
        {"url", true, true, "the gateway, e.g. https://gateway.example:8443", "URL"},
        {"token", true, true, "the partner's API token", "TOKEN"},
        {"dataset", true, true, "the dataset", "NAME"},
        {"policy", true, true, "the policy whose aggregates and budget apply", "NAME"},
        {"purpose", true, true, "one of the policy's purposes", "PURPOSE"},
        {"aggregate", true, true, "count, histogram, sum or mean", "KIND"},
        {"column", true, false, "the measure to sum or average", "COLUMN"},
        {"group-by", true, false, "columns to group by, separated by commas", "A,B"},
        {"filter", true, false, "a row filter in the policy language, as JSON", "JSON"},
        {"epsilon", true, true, "the privacy budget this answer spends", "EPSILON"},
        {"mechanism", true, false, "laplace (default) or gaussian", "NAME"},
        {"delta", true, false, "the delta a gaussian answer spends", "DELTA"},
        {"ca-file", true, false, "PEM bundle to verify an https gateway (default: system store)", "FILE"},
        {"json", false, false, "print the gateway's JSON answer instead of a table"},
    };
    const std::string synopsis =
        "query --url URL --token TOKEN --dataset D --policy P --purpose P --aggregate KIND --epsilon E [options]";
    const std::string description =
        "Asks the gateway for a differentially private count, histogram, sum or mean\n"
        "(docs/aggregates.md) and prints each group's noisy value with its 95 % interval and the\n"
        "privacy budget left. Exits 1 with the gateway's error (an exhausted budget says when it\n"
        "renews), 2 for bad options.";
    auto args = parseArgs(argc, argv, specs);
    if (!args) {
        std::fprintf(stderr, "custodian query: %s\n\n%s", args.status().message().c_str(),
                     usageText(synopsis, description, specs).c_str());
        return 2;
    }
    if (args->helpRequested()) {
        std::printf("%s", usageText(synopsis, description, specs).c_str());
        return 0;
    }
    auto body = requestBody(*args);
    if (!body) {
        std::fprintf(stderr, "custodian query: %s\n", body.status().message().c_str());
        return 2;
    }
    HttpGetOptions options;
    options.bearerToken = *args->get("token");
    options.caFile = args->getOr("ca-file", "");
    std::string url = *args->get("url");
    while (!url.empty() && url.back() == '/') url.pop_back();
    auto r = httpPostJson(url + "/v1/queries", *body, options);
    if (!r) {
        std::fprintf(stderr, "custodian query: %s\n", r.status().message().c_str());
        return 1;
    }
    rapidjson::Document answer;
    answer.Parse(r->body.c_str(), r->body.size());
    if (r->status != 200) {
        const bool hasMessage = !answer.HasParseError() && answer.IsObject() && answer.HasMember("error") &&
                                answer["error"].IsObject() && answer["error"].HasMember("message") &&
                                answer["error"]["message"].IsString();
        std::fprintf(stderr, "custodian query: HTTP %d: %s\n", r->status,
                     hasMessage ? answer["error"]["message"].GetString() : r->body.c_str());
        return 1;
    }
    if (args->has("json") || answer.HasParseError() || !answer.IsObject() || !answer.HasMember("groups")) {
        std::printf("%s\n", r->body.c_str());
        return 0;
    }
    printTable(answer);
    return 0;
}

}  // namespace custodian::cli
