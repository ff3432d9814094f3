#include "openapi_contract.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "http_client.hpp"

#ifndef CUSTODIAN_OPENAPI_JSON
#define CUSTODIAN_OPENAPI_JSON ""
#endif

namespace custodian::testing {
namespace {

using rapidjson::Value;

const Value* member(const Value& v, const char* name) {
    if (!v.IsObject()) return nullptr;
    auto it = v.FindMember(name);
    return it == v.MemberEnd() ? nullptr : &it->value;
}

// OpenAPI 3.0 says `nullable: true` where JSON Schema says `"type": [T, "null"]`; an enum of a
// nullable value must list null as well.
void translateNullable(Value& v, rapidjson::Document::AllocatorType& a) {
    if (v.IsArray()) {
        for (auto& e : v.GetArray()) translateNullable(e, a);
        return;
    }
    if (!v.IsObject()) return;
    for (auto& m : v.GetObject()) translateNullable(m.value, a);
    auto nullable = v.FindMember("nullable");
    if (nullable == v.MemberEnd()) return;
    const bool on = nullable->value.IsBool() && nullable->value.GetBool();
    v.RemoveMember("nullable");
    if (!on) return;
    auto type = v.FindMember("type");
    if (type != v.MemberEnd() && type->value.IsString()) {
        Value both(rapidjson::kArrayType);
        both.PushBack(Value(type->value.GetString(), a), a);
        both.PushBack(Value("null", a), a);
        type->value = both;
    }
    auto e = v.FindMember("enum");
    if (e != v.MemberEnd() && e->value.IsArray()) e->value.PushBack(Value(rapidjson::kNullType), a);
}

std::string text(const Value& v) {
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    v.Accept(w);
    return b.GetString();
}

std::vector<std::string> segments(const std::string& path) {
    std::vector<std::string> out;
    size_t i = 1;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        out.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

bool templateMatches(const std::string& pattern, const std::string& path) {
    auto p = segments(pattern);
    auto s = segments(path);
    if (p.size() != s.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
        const bool param = p[i].size() > 2 && p[i].front() == '{' && p[i].back() == '}';
        if (param ? s[i].empty() : p[i] != s[i]) return false;
    }
    return true;
}

class OpenApiDocument {
public:
    static OpenApiDocument& instance() {
        static OpenApiDocument doc;
        return doc;
    }

    std::string check(const std::string& method, const std::string& target, const HttpResult& r) {
        const std::string path = target.substr(0, target.find('?'));
        if (path.starts_with("/test/")) return {};
        const std::string where = method + " " + path + " -> " + std::to_string(r.status);

        // The most specific documented path: literal segments beat parameters
        // (/v1/audit/tree-head before /v1/audit/{x}).
        const Value* pathItem = nullptr;
        int bestLiterals = -1;
        const Value& paths = *member(root_, "paths");
        for (const auto& p : paths.GetObject()) {
            const std::string pattern = p.name.GetString();
            if (!templateMatches(pattern, path)) continue;
            int literals = 0;
            for (const auto& seg : segments(pattern)) literals += seg.find('{') == std::string::npos;
            if (literals > bestLiterals) {
                bestLiterals = literals;
                pathItem = &p.value;
            }
        }
        std::string lowerMethod;
        for (char c : method) lowerMethod += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const Value* operation = pathItem ? member(*pathItem, lowerMethod.c_str()) : nullptr;
        if (!pathItem) {
            if (r.status == 404 || r.status == 401) return checkError(where, r);
            return where + ": the path is not in docs/openapi.yaml";
        }
        if (!operation) {
            if (method == "HEAD" && r.status == 200) return {};
            if (r.status == 405 || r.status == 401 || r.status == 403) return checkError(where, r);
            return where + ": the method is not documented for this path";
        }
        const Value* responses = member(*operation, "responses");
        const Value* response = responses ? member(*responses, std::to_string(r.status).c_str()) : nullptr;
        if (!response && responses) response = member(*responses, "default");
        if (!response) {
            static const int kEverywhere[] = {401, 403, 405, 413, 429, 431, 503};
            for (int s : kEverywhere)
                if (s == r.status) return checkError(where, r);
            // Transport-level refusals, before any route is chosen: malformed HTTP framing and
            // plain HTTP on a TLS port.
            if (r.status == 400 && (r.body.find("\"code\":\"bad_request\"") != std::string::npos ||
                                    r.body.find("\"code\":\"tls_required\"") != std::string::npos))
                return checkError(where, r);
            return where + ": status " + std::to_string(r.status) +
                   " is not documented for this operation (body: " + r.body.substr(0, 300) + ")";
        }
        return checkBody(where, *response, r);
    }

private:
    OpenApiDocument() {
        const std::string file = CUSTODIAN_OPENAPI_JSON;
        std::ifstream in(file);
        if (file.empty() || !in) throw std::runtime_error("cannot read the OpenAPI document as JSON: '" + file + "'");
        std::stringstream s;
        s << in.rdbuf();
        root_.Parse(s.str().c_str());
        if (root_.HasParseError() || !member(root_, "paths") || !member(root_, "components"))
            throw std::runtime_error("the OpenAPI document " + file + " is not an OpenAPI JSON document");
        translateNullable(root_, root_.GetAllocator());
    }

    // Follows $ref to components/responses.
    const Value* resolve(const Value* v) const {
        for (int hop = 0; v && hop < 8; ++hop) {
            const Value* ref = member(*v, "$ref");
            if (!ref || !ref->IsString()) return v;
            std::string target = ref->GetString();
            if (!target.starts_with("#")) return nullptr;
            v = rapidjson::Pointer(target.substr(1).c_str()).Get(root_);
        }
        return v;
    }

    std::string checkError(const std::string& where, const HttpResult& r) {
        const Value* schema = rapidjson::Pointer("/components/schemas/Error").Get(root_);
        if (!schema) return where + ": docs/openapi.yaml has no components.schemas.Error";
        if (!r.header("content-type").starts_with("application/json"))
            return where + ": an error must be application/json (got '" + r.header("content-type") + "')";
        return validate(where, "/components/schemas/Error", *schema, r.body);
    }

    std::string checkBody(const std::string& where, const Value& responseIn, const HttpResult& r) {
        const Value* response = resolve(&responseIn);
        if (!response) return where + ": dangling $ref in the response";
        const Value* content = member(*response, "content");
        const std::string contentType = r.header("content-type");
        if (!content || content->MemberCount() == 0) {
            if (!r.body.empty() && r.status != 204)
                return where + ": the document describes no body, but one was sent (" + contentType + ")";
            return {};
        }
        const std::string mediaType = contentType.substr(0, contentType.find(';'));
        const Value* media = member(*content, mediaType.c_str());
        if (!media)
            return where + ": content type '" + contentType +
                   "' is not documented (documented: " + text(*content).substr(0, 200) + ")";
        const Value* schema = member(*media, "schema");
        if (!schema || mediaType != "application/json") return {};
        std::string pointer = "inline:" + where.substr(0, where.find(" -> ")) + ":" + std::to_string(r.status);
        return validate(where, pointer, *schema, r.body);
    }

    struct Compiled {
        rapidjson::Document document;
        std::unique_ptr<rapidjson::SchemaDocument> schema;
        std::mutex validating;  // RapidJSON 1.1's regex state lives in the compiled schema
    };

    Compiled& compiled(const std::string& key, const Value& schema) {
        std::lock_guard lock(mutex_);
        auto& slot = compiled_[key];
        if (!slot) {
            auto c = std::make_unique<Compiled>();
            c->document.CopyFrom(schema, c->document.GetAllocator());
            if (!c->document.IsObject()) c->document.SetObject();
            if (!c->document.HasMember("components")) {
                Value copy(*member(root_, "components"), c->document.GetAllocator());
                c->document.AddMember("components", copy, c->document.GetAllocator());
            }
            c->schema = std::make_unique<rapidjson::SchemaDocument>(c->document);
            slot = std::move(c);
        }
        return *slot;
    }

    std::string validate(const std::string& where, const std::string& key, const Value& schema,
                         const std::string& body) {
        rapidjson::Document doc;
        doc.Parse(body.c_str(), body.size());
        if (doc.HasParseError())
            return where + ": the body is not JSON (" + rapidjson::GetParseError_En(doc.GetParseError()) +
                   "): " + body.substr(0, 200);
        Compiled& c = compiled(key, schema);
        std::lock_guard lock(c.validating);
        rapidjson::SchemaValidator validator(*c.schema);
        if (doc.Accept(validator)) return {};
        rapidjson::StringBuffer schemaAt, docAt;
        validator.GetInvalidSchemaPointer().StringifyUriFragment(schemaAt);
        validator.GetInvalidDocumentPointer().StringifyUriFragment(docAt);
        const Value* offending = validator.GetInvalidDocumentPointer().Get(doc);
        return where + ": body does not match the schema: keyword '" + validator.GetInvalidSchemaKeyword() +
               "' at schema " + schemaAt.GetString() + ", body " + docAt.GetString() +
               (offending ? " = " + text(*offending).substr(0, 200) : std::string()) +
               " (body: " + body.substr(0, 300) + ")";
    }

    rapidjson::Document root_;
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Compiled>> compiled_;
};

std::mutex violationsMutex;
std::vector<std::string>& violations() {
    static std::vector<std::string> v;
    return v;
}

}  // namespace

std::string checkAgainstOpenApi(const std::string& method, const std::string& target, const HttpResult& response) {
    return OpenApiDocument::instance().check(method, target, response);
}

void recordContract(const std::string& method, const std::string& target, const HttpResult& response) {
    std::string problem;
    try {
        problem = checkAgainstOpenApi(method, target, response);
    } catch (const std::exception& e) { problem = std::string("the OpenAPI contract check failed: ") + e.what(); }
    if (problem.empty()) return;
    std::lock_guard lock(violationsMutex);
    violations().push_back(std::move(problem));
}

std::vector<std::string> contractViolations() {
    std::lock_guard lock(violationsMutex);
    return violations();
}

}  // namespace custodian::testing
