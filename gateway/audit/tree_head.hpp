#pragma once
// Signed tree heads (docs/formats/audit.md). The signed bytes are fixed-width binary so that any
// language can rebuild them without a JSON library:
//   "custodian-tree-head-v1\n" (23 bytes) ‖ tree_size (u64 big-endian) ‖ timestamp_ms (u64
//   big-endian, Unix time in milliseconds) ‖ root_hash (32 bytes)          = 71 bytes
// signed with the gateway's Ed25519 key (detached signature, 64 bytes).
// JSON form (API and export): {"root_hash":"<hex>","signature":"<base64>","timestamp_ms":N,"tree_size":N}

#include <cstdint>
#include <string>

#include "anonymizer/status.hpp"
#include "gateway/audit/merkle.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::audit {

inline constexpr std::string_view kTreeHeadDomain = "custodian-tree-head-v1\n";

struct TreeHead {
    uint64_t treeSize = 0;
    Hash rootHash{};
    uint64_t timestampMs = 0;
    friend bool operator==(const TreeHead&, const TreeHead&) = default;
};

struct SignedTreeHead {
    TreeHead head;
    crypto::Ed25519Signature signature{};
    friend bool operator==(const SignedTreeHead&, const SignedTreeHead&) = default;
};

crypto::Bytes treeHeadSignedBytes(const TreeHead& head);
SignedTreeHead signTreeHead(const TreeHead& head, const crypto::SigningKey& key);
[[nodiscard]] bool verifyTreeHead(const SignedTreeHead& head, const crypto::Ed25519PublicKey& key);

json::JsonValue treeHeadToJson(const SignedTreeHead& head);
// Reads the four members above; other members (such as "type") are ignored.
Result<SignedTreeHead> treeHeadFromJson(const json::JsonValue& json);

}  // namespace custodian::audit
