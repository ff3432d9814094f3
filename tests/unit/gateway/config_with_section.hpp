#pragma once
// Configuration tests: a minimal valid gateway configuration plus one section under test.

#include <string>

namespace custodian::testing {

// The minimal configuration with `"<section>": <sectionJson>` added at the top level.
inline std::string configWithSection(const std::string& section, const std::string& sectionJson) {
    return R"({"listen": {"address": "127.0.0.1", "port": 8080}, "database": {"conninfo": "dbname=x"},
               "keys": {"signing_key_file": "/k/sign", "master_key_file": "/k/master"}, ")" +
           section + "\": " + sectionJson + "}";
}

}  // namespace custodian::testing
