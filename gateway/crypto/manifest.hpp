#pragma once
// Signed extract manifests (docs/formats/manifest.md).
//
// Signed bytes = "custodian-manifest-v1\n" ‖ canonicalJson(manifest object). The signature covers
// the manifest object exactly as it travels, unknown members included, so a verifier never needs
// to know every field to check it. The served document is
//   {"manifest":{...},"signature":"<base64 Ed25519>","public_key":"<base64 Ed25519>"}
// (public_key is informational: verification uses the key the caller trusts).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"
#include "json/canonical.hpp"
#include "gateway/crypto/extract.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::crypto {

inline constexpr std::string_view kManifestDomain = "custodian-manifest-v1\n";

struct ManifestColumn {
    std::string name;
    std::string transform;  // e.g. "keep", "drop", "pseudonymize", "generalize:level=2"
    friend bool operator==(const ManifestColumn&, const ManifestColumn&) = default;
};

// Declared before ExtractManifest, whose defaulted operator== compares its digests with it.
bool operator==(const ExtractDigests& a, const ExtractDigests& b);

struct ExtractManifest {
    std::string extractId;
    std::string dataset;
    std::string policy;
    int64_t policyVersion = 0;
    std::string policySha256;  // hex of the policy version's content hash
    std::string purpose;
    std::string recipient;  // the partner principal
    // How the keyed transforms' keys were derived (docs/formats/csv-and-hierarchies.md): 1 per
    // (dataset, recipient), 2 per (dataset, policy, recipient); 0 = absent (manifests signed before
    // it was added, all derivation 1).
    uint64_t keyDerivation = 0;
    int64_t createdMs = 0;  // Unix time in milliseconds
    std::string format;     // "csv" | "ndjson"
    uint64_t rowsReleased = 0;
    uint64_t rowsSuppressed = 0;
    std::vector<ManifestColumn> columns;
    // Achieved privacy model values, e.g. {"k":10,"l":3,"t":"0.150"}; fractions as decimal strings.
    json::JsonValue models = json::JsonValue::Object{};
    // Information loss of the release, {"ncp":"0.1184","attributes":{"age":"0.0712",...}} (decimal
    // strings); null = absent (manifests signed before it was added).
    json::JsonValue informationLoss;
    ExtractDigests digests;
    uint64_t auditIndex = 0;  // index of the audit entry recording the completed extract

    friend bool operator==(const ExtractManifest&, const ExtractManifest&) = default;
};

json::JsonValue manifestToJson(const ExtractManifest& manifest);
Result<ExtractManifest> manifestFromJson(const json::JsonValue& json);

// The exact bytes that are signed.
Result<std::string> manifestSignedBytes(const ExtractManifest& manifest);

struct SignedManifest {
    std::string document;   // the served JSON document (canonical form, one line, no trailing newline)
    std::string signature;  // base64 of the Ed25519 signature over the signed bytes: the document's "signature"
};
// Signs once; the signature travels in the document and is also returned on its own (the
// `extracts` row stores both).
Result<SignedManifest> signManifest(const ExtractManifest& manifest, const SigningKey& key);
// Verifies a served document against the trusted gateway key; returns the manifest only if the
// signature is valid. PermissionDenied for a bad signature, InvalidArgument for malformed input.
Result<ExtractManifest> verifyManifest(std::string_view document, const Ed25519PublicKey& gatewayKey);
// Checks that a decrypted extract matches its manifest's digests and sizes; the message names the
// first mismatch.
Status checkExtractAgainstManifest(const ExtractManifest& manifest, const ExtractDigests& actual);

}  // namespace custodian::crypto
