// `custodian policy validate FILE.json [--dataset DATASET.json] [--json]`: checks a release policy
// the way the gateway will, for data stewards and their CI. Prints every error with its JSON
// pointer; exit code 0 = valid, 1 = invalid (or unreadable), 2 = wrong usage. Never crashes on any
// input: every failure of the policy library is a value, and anything unexpected is caught here.
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gateway/cli/args.hpp"
#include "policies/dataset.hpp"
#include "policies/json_text.hpp"
#include "policies/policy.hpp"

namespace custodian::cli {

namespace {

const char* kSynopsis = "policy validate FILE.json [--dataset DATASET.json] [--json]";
const char* kDescription =
    "Validates a release policy against the policy language (JSON Schema and semantic rules, see\n"
    "docs/policies.md): every error is printed with the JSON pointer of the offending part.\n"
    "Hierarchy files are resolved relative to the policy file. With --dataset, columns, types and\n"
    "roles are also checked against a dataset description\n"
    "({\"name\": ..., \"columns\": [{\"name\", \"type\", \"role\"}]}).\n"
    "Exit status: 0 valid, 1 invalid, 2 usage error.";

std::vector<OptionSpec> specs() {
    return {
        {"dataset", true, false, "check against this dataset description (JSON)", "DATASET.json"},
        {"json", false, false, "print the result as one JSON object instead of text", ""},
    };
}

Result<std::string> readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return notFound("cannot open '" + path + "'");
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in && !in.eof()) return unavailable("cannot read '" + path + "'");
    return bytes.str();
}

void printJson(const std::string& file, const policies::PolicyLoadResult& result) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("file");
    w.String(file.c_str(), static_cast<rapidjson::SizeType>(file.size()));
    w.Key("valid");
    w.Bool(result.ok());
    if (result.ok()) {
        w.Key("dataset");
        w.String(result.policy->model().dataset.c_str());
        w.Key("content_hash");
        w.String(("sha256:" + result.policy->contentHash()).c_str());
    }
    w.Key("errors");
    w.StartArray();
    for (const auto& e : result.errors) {
        w.StartObject();
        w.Key("pointer");
        w.String(e.pointer.c_str(), static_cast<rapidjson::SizeType>(e.pointer.size()));
        w.Key("message");
        w.String(e.message.c_str(), static_cast<rapidjson::SizeType>(e.message.size()));
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", buffer.GetString());
}

int validate(const std::string& file, const ParsedArgs& args) {
    policies::PolicyLoadOptions options;
    policies::DatasetDescription dataset;
    if (auto datasetFile = args.get("dataset")) {
        auto text = readFile(*datasetFile);
        if (!text) {
            std::fprintf(stderr, "custodian policy validate: %s\n", text.status().message().c_str());
            return 1;
        }
        auto parsed = policies::parseDatasetDescription(*text);
        if (!parsed) {
            std::fprintf(stderr, "custodian policy validate: %s: %s\n", datasetFile->c_str(),
                         parsed.status().message().c_str());
            return 1;
        }
        dataset = std::move(parsed).value();
        options.dataset = &dataset;
    }
    const auto result = policies::loadPolicyFile(file, options);
    if (args.has("json")) {
        printJson(file, result);
        return result.ok() ? 0 : 1;
    }
    const std::string shownFile = policies::printableForMessage(file);
    if (result.ok()) {
        std::printf("%s: valid policy for dataset \"%s\" (content hash sha256:%s)\n", shownFile.c_str(),
                    result.policy->model().dataset.c_str(), result.policy->contentHash().c_str());
        return 0;
    }
    for (const auto& e : result.errors) {
        // Pointers and messages quote untrusted text only through printableForMessage, but the
        // pointer itself is built from member names: keep the terminal safe there as well.
        const std::string pointer = e.pointer.empty() ? "(document)" : policies::printableForMessage(e.pointer);
        std::printf("%s: %s: %s\n", shownFile.c_str(), pointer.c_str(), e.message.c_str());
    }
    std::printf("%s: invalid policy, %zu error%s\n", shownFile.c_str(), result.errors.size(),
                result.errors.size() == 1 ? "" : "s");
    return 1;
}

}  // namespace

int runPolicy(int argc, char** argv) {
    const auto options = specs();
    try {
        auto args = parseArgs(argc, argv, options, 2);
        if (!args) {
            std::fprintf(stderr, "custodian policy: %s\n\n%s", args.status().message().c_str(),
                         usageText(kSynopsis, kDescription, options).c_str());
            return 2;
        }
        if (args->helpRequested()) {
            std::printf("%s", usageText(kSynopsis, kDescription, options).c_str());
            return 0;
        }
        const auto& positional = args->positional();
        if (positional.size() != 2 || positional[0] != "validate") {
            std::fprintf(stderr, "custodian policy: expected `policy validate FILE.json`\n\n%s",
                         usageText(kSynopsis, kDescription, options).c_str());
            return 2;
        }
        return validate(positional[1], *args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custodian policy validate: internal error: %s\n", e.what());
        return 1;
    }
}

}  // namespace custodian::cli
