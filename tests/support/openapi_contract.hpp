#pragma once
// The HTTP contract, checked on every response the integration suite receives: docs/openapi.yaml
// (converted to JSON at build time, CUSTODIAN_OPENAPI_JSON) must document the request's path and
// method, the response's status and content type, and — for JSON — its body must validate against
// the documented schema (RapidJSON's JSON Schema validator; OpenAPI 3.0's `nullable` is read as
// "or null"). HttpClient::request checks each response it reads; violations are collected (requests
// also come from background threads, where a throw would end the process) and the test process
// fails at exit with every violation listed (tests/catch_main.cpp). Paths under /test/ are routes
// that tests add to the gateway and are not part of the API.
//
// A status the operation does not list is accepted only if the document's description promises it
// for every route (401, 403, 405, 413, 429, 431, 503, and 400 `bad_request` / `tls_required` for
// malformed HTTP or plain HTTP on a TLS port) and the body is the Error schema; an unknown path
// must be a 404 Error.

#include <string>
#include <vector>

namespace custodian::testing {

struct HttpResult;

// Checks one response; returns an empty string if it matches the document, else what differs.
std::string checkAgainstOpenApi(const std::string& method, const std::string& target, const HttpResult& response);

// Checks and records a violation (thread-safe).
void recordContract(const std::string& method, const std::string& target, const HttpResult& response);

// Every violation recorded so far, one line each.
std::vector<std::string> contractViolations();

}  // namespace custodian::testing
