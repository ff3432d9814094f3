// Fuzz target: policy documents (untrusted bytes from publishers over HTTP and from stewards' files).
// Loads without a hierarchy base directory (so no file is read), then exercises everything a
// loaded policy offers: canonical bytes, row-filter SQL and data-driven hierarchy building.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policies/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace custodian::policies;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const PolicyLoadResult result = loadPolicy(text);
    // Contract: a policy exactly when there are no errors.
    if (result.ok() == !result.errors.empty()) std::abort();
    if (!result.ok()) return 0;
    const Policy& policy = *result.policy;
    if (policy.contentHash().size() != 64) std::abort();
    // Canonical bytes are a fixed point of loading.
    const PolicyLoadResult again = loadPolicy(policy.canonicalJson());
    if (!again.ok() || again.policy->contentHash() != policy.contentHash()) std::abort();
    if (auto sql = policy.rowFilterSql(); !sql.isOk()) std::abort();
    for (const auto& column : policy.model().columns) {
        if (!column.hierarchy) continue;
        (void)policy.buildHierarchy(column.name, {"1", "2", "2020-01-01", "abc", ""});
    }
    return 0;
}
