// Fuzzes the audit export verifier (NDJSON parsing, canonicalisation, tree heads) with the gateway
// key the seed corpus is signed with (RFC 8032 test 1). Any outcome is fine except a crash or a
// sanitizer report; a report that is not ok must say why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/audit/verifier.hpp"
#include "gateway/crypto/keys.hpp"

using namespace custodian;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const crypto::Ed25519PublicKey key =
        crypto::SigningKey::fromSeed(
            crypto::fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").value())
            .value()
            .publicKey();
    const auto report = audit::verifyAuditExport(std::string_view(reinterpret_cast<const char*>(data), size), key);
    if (!report.ok && report.problem.empty()) std::abort();
    if (report.ok && report.verifiedSize > report.entries) std::abort();
    return 0;
}
