#include "gateway/api/router.hpp"

#include <algorithm>
#include <set>

namespace custodian::api {
namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
    std::vector<std::string_view> parts;
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    while (true) {
        size_t slash = path.find('/');
        parts.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

bool isParam(std::string_view segment) { return segment.size() > 2 && segment.front() == '{' && segment.back() == '}'; }

}  // namespace

const std::string& RequestContext::param(const std::string& name) const {
    static const std::string kEmpty;
    auto it = params.find(name);
    return it == params.end() ? kEmpty : it->second;
}

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {}

void Router::add(Route route) { routes_.push_back(std::move(route)); }

Status Router::validate() const {
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& r : routes_) {
        const std::string where = "route " + r.method + " " + r.pattern;
        if (r.pattern.empty() || r.pattern.front() != '/')
            return invalidArgument(where + ": pattern must start with /");
        std::set<std::string_view> names;
        const auto segments = splitPath(r.pattern);
        for (size_t i = 0; i < segments.size(); ++i) {
            const std::string_view segment = segments[i];
            // Only the last segment may be empty: "/console/" is a folder's own page.
            if (segment.empty() && i + 1 < segments.size()) return invalidArgument(where + ": empty path segment");
            if (segment.find_first_of("{}") != std::string_view::npos && !isParam(segment))
                return invalidArgument(where + ": a parameter must be a whole segment like {name}");
            if (isParam(segment) && !names.insert(segment).second)
                return invalidArgument(where + ": parameter " + std::string(segment) + " appears twice");
        }
        if (!seen.insert({r.method, r.pattern}).second) return invalidArgument(where + ": declared twice");
        if (!r.handler) return invalidArgument(where + ": no handler");
        if (r.access.requiresToken && r.access.roles.empty())
            return invalidArgument(where + ": a protected route must allow at least one role");
        if (r.extractSlot && !r.access.requiresToken)
            return invalidArgument(where + ": an extract route must require a token (slots are per principal)");
        const bool underV1 = r.pattern == "/v1" || r.pattern.starts_with("/v1/");
        if ((underV1 || r.access.requiresToken) && r.action.empty())
            return invalidArgument(where + ": a /v1 or protected route needs an audit action");
        if (!r.action.empty() &&
            r.action.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._") != std::string::npos)
            return invalidArgument(where + ": audit action '" + r.action +
                                   "' must be lower-case words joined by . or _");
        if (r.access.requiresToken && r.inlineSafe)
            return invalidArgument(where + ": a protected route cannot run inline (authentication uses the database)");
    }
    return Status::ok();
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
    RouteMatch result;
    const auto requested = splitPath(path);
    for (const auto& r : routes_) {
        const auto pattern = splitPath(r.pattern);
        if (pattern.size() != requested.size()) continue;
        PathParams params;
        bool matched = true;
        for (size_t i = 0; i < pattern.size() && matched; ++i) {
            if (isParam(pattern[i])) {
                if (requested[i].empty()) {
                    matched = false;
                    break;
                }
                auto decoded = http::percentDecode(requested[i]);
                if (!decoded) {
                    result.error = invalidArgument("malformed path: " + decoded.status().message());
                    return result;
                }
                params[std::string(pattern[i].substr(1, pattern[i].size() - 2))] = std::move(decoded).value();
            } else {
                matched = pattern[i] == requested[i];
            }
        }
        if (!matched) continue;
        if (r.method == method) {
            if (!result.route) {
                result.route = &r;
                result.params = std::move(params);
            }
        } else if (std::find(result.allowed.begin(), result.allowed.end(), r.method) == result.allowed.end()) {
            result.allowed.push_back(r.method);
        }
    }
    return result;
}

}  // namespace custodian::api
