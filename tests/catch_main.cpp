#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "support/openapi_contract.hpp"

// Catch2's own main, plus the HTTP contract: a test process whose requests received a response that
// docs/openapi.yaml does not describe fails, listing each difference (support/openapi_contract.hpp).
int main(int argc, char* argv[]) {
    int result = Catch::Session().run(argc, argv);
    const auto violations = custodian::testing::contractViolations();
    if (violations.empty()) return result;
    std::fprintf(stderr, "\n%zu response(s) differ from docs/openapi.yaml:\n", violations.size());
    for (const auto& v : violations) std::fprintf(stderr, "  %s\n", v.c_str());
    return result != 0 ? result : 1;
}
