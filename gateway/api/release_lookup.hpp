#pragma once
// What the release channels (extracts, queries, previews) look up before they read a dataset: its
// catalog objects in one connection checkout, and where and how its table is read.

#include <optional>
#include <string>
#include <vector>

#include "anonymizer/transform.hpp"
#include "anonymizer/status.hpp"
#include "gateway/catalog/catalog.hpp"
#include "gateway/release/stream.hpp"

namespace custodian::api {

struct Services;

// The catalog objects of one request, read in one connection checkout.
struct Lookup {
    catalog::Dataset dataset;
    catalog::LoadedPolicy policy;
    catalog::Source source;
    uint64_t extractsToday = 0;
    std::vector<std::string> recipientGroups;                         // the recipient's groups, read now (no cache)
    anon::KeyDerivation keyDerivation = anon::kCurrentKeyDerivation;  // of the recipient's keyed transforms
};

// The dataset, the current version of its policy and its source; with `recipient`, also the
// recipient's extracts today, its groups and its keyed transforms' key derivation. NotFound or
// FailedPrecondition when an object is missing or unusable.
Result<Lookup> lookup(Services& services, const std::string& dataset, const std::string& policy,
                      const std::optional<std::string>& recipient);

// Where and how a release reads its dataset's table, as the gateway is configured. The stored
// conninfo goes through the source endpoint rules again (a rule may have tightened, a host name
// may resolve elsewhere since the source was registered), and the snapshot refuses the gateway's
// own database: FailedPrecondition naming the rule (catalog/source_access.hpp).
Result<release::SourceLocation> sourceOf(const Services& services, const std::string& conninfo,
                                         const std::string& schema, const std::string& table);

}  // namespace custodian::api
