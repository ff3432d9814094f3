#pragma once
// The source endpoints the integration tests register: agency databases on the test cluster, by
// 127.0.0.1 (the private cluster of pg_cluster.hpp) or by the Unix socket directory named in
// CUSTODIAN_TEST_PG (ops/test). Test configurations allow exactly these (sources.allowed_hosts),
// so a test that reaches anything else is refused like a publisher would be.

#include <sstream>
#include <string>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/http/message.hpp"
#include "support/pg_cluster.hpp"
#include "json/writer.hpp"

namespace custodian::testing {

// "127.0.0.1", and the socket directory of the test cluster when its conninfo names one.
inline std::vector<std::string> testSourceHosts() {
    std::vector<std::string> hosts{"127.0.0.1"};
    std::istringstream words(adminConninfo());
    for (std::string word; words >> word;)
        if (word.rfind("host=/", 0) == 0) hosts.push_back(word.substr(5));
    return hosts;
}

inline void allowTestSources(config::GatewayConfig& c) {
    for (const auto& host : testSourceHosts()) {
        Status s = config::addAllowedHost(host, "sources.allowed_hosts", c.sources.allowedHosts);
        if (!s) throw std::runtime_error(s.message());
    }
}

// The same as a configuration member: "sources":{"allowed_hosts":[...]}
inline std::string testSourcesJson() {
    std::string out = "\"sources\":{\"allowed_hosts\":[";
    const auto hosts = testSourceHosts();
    for (size_t i = 0; i < hosts.size(); ++i) out += (i ? "," : "") + json::quoted(hosts[i]);
    return out + "]}";
}

}  // namespace custodian::testing
