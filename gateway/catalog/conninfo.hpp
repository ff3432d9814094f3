#pragma once
// Agency database connection strings (libpq keyword=value form) as accepted by PUT /v1/sources.
//
// The gateway parses the string itself instead of handing it to libpq unchecked: only the keywords
// in kAllowedKeywords are accepted, so a publisher cannot make the gateway read its own files
// (passfile, sslkey, service, ...) or change server settings (options). The string stored is
// rebuilt from the parsed pairs, every value single-quoted with ' and \ escaped; the string used to
// connect is built from it by checkSourceConninfo (source_access.hpp).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::catalog {

using ConninfoPairs = std::vector<std::pair<std::string, std::string>>;

// host, hostaddr, port, dbname, user, password, sslmode, sslrootcert, connect_timeout,
// application_name, target_session_attrs.
bool allowedConninfoKeyword(std::string_view keyword);

// Parses "key=value key='quoted value' ...". InvalidArgument (never quoting a value, so a password
// cannot leak into an error) for syntax errors, repeated keywords, URIs, or a missing dbname;
// FailedPrecondition "conninfo.keywords: ..." for a keyword outside the allow-list. Where the
// hosts may be and how they are reached is checked by source_access.hpp, not here.
Result<ConninfoPairs> parseConninfo(std::string_view conninfo);

// key='value' pairs separated by spaces.
std::string buildConninfo(const ConninfoPairs& pairs);

// The value of `keyword`, or empty.
std::string conninfoValue(const ConninfoPairs& pairs, std::string_view keyword);

}  // namespace custodian::catalog
