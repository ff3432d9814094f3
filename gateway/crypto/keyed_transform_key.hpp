#pragma once
// The key of the keyed transforms (pseudonymize, date_shift): subkey kKeyedTransformSubkeyId of
// context kKeyedTransformContext derived from the gateway master key with crypto_kdf; the
// anonymizer derives its per-dataset, per-recipient keys from it (docs/formats/csv-and-hierarchies.md).
// The gateway's releases and `custodian anonymize --key` use this one derivation, so one master
// key gives the same pseudonyms on both paths.

#include <cstdint>
#include <string_view>

#include "anonymizer/status.hpp"
#include "anonymizer/transform.hpp"

namespace custodian::crypto {

inline constexpr std::string_view kKeyedTransformContext = "custpsdn";
inline constexpr uint64_t kKeyedTransformSubkeyId = 1;

// `master` is anything with deriveSubkey(id, context) → Result<bytes with view()> — the gateway's
// auth::TokenHasher, which never lets the master key itself out.
template <typename MasterKeyHolder> Result<anon::MasterKey> keyedTransformKey(const MasterKeyHolder& master) {
    auto bytes = master.deriveSubkey(kKeyedTransformSubkeyId, kKeyedTransformContext);
    if (!bytes) return bytes.status();
    return anon::MasterKey::fromBytes(bytes->view());
}

}  // namespace custodian::crypto
