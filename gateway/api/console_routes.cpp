#include "gateway/api/console_routes.hpp"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "gateway/api/services.hpp"
#include "gateway/config/config.hpp"
#include "gateway/http/errors.hpp"

namespace custodian::api {
namespace {

// The console is a flat folder of these kinds of files; anything else is not served.
std::optional<std::string_view> contentType(std::string_view name) {
    constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    for (const auto& [suffix, type] : kTypes)
        if (name.size() > suffix.size() && name.ends_with(suffix)) return type;
    return std::nullopt;
}

// A file name of the folder: letters, digits, '.', '_' and '-', not starting with '.', so that no
// name (the path parameter is percent-decoded) can leave the folder.
bool plainFileName(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

Result<HttpResponse> serveFile(RequestContext& ctx, std::string_view name) {
    auto type = plainFileName(name) ? contentType(name) : std::nullopt;
    if (!type) return notFound("no console file named " + std::string(name));
    std::string bytes;
    const std::string& directory = ctx.services.config ? ctx.services.config->consoleDirectory : std::string();
    if (!directory.empty()) {
        std::ifstream in(directory + "/" + std::string(name), std::ios::binary);
        if (!in) return notFound("no console file named " + std::string(name));
        std::ostringstream text;
        text << in.rdbuf();
        bytes = std::move(text).str();
    } else {
        const auto& files = embeddedConsoleFiles();
        auto it = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.first == name; });
        if (it == files.end()) return notFound("no console file named " + std::string(name));
        bytes = std::string(it->second);
    }
    HttpResponse r = HttpResponse::text(200, std::move(bytes), std::string(*type));
    pageSecurityHeaders(r);
    // Pages and modules change with the binary: revalidate instead of keeping a stale module graph.
    r.setHeader("Cache-Control", "no-cache");
    return r;
}

Result<HttpResponse> handleConsoleRedirect(RequestContext&) {
    HttpResponse r = HttpResponse::text(308, "/console/\n");
    r.setHeader("Location", "/console/");
    return r;
}

Result<HttpResponse> handleConsoleIndex(RequestContext& ctx) { return serveFile(ctx, "index.html"); }

Result<HttpResponse> handleConsoleFile(RequestContext& ctx) { return serveFile(ctx, ctx.param("file")); }

}  // namespace

void pageSecurityHeaders(HttpResponse& response) {
    response.setHeader("Content-Security-Policy",
                       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    response.setHeader("X-Content-Type-Options", "nosniff");
    response.setHeader("Referrer-Policy", "no-referrer");
    response.setHeader("X-Frame-Options", "DENY");
}

std::vector<Route> consoleRoutes() {
    // Not inline: with console.directory the files are read from disk. Unaudited: public and
    // outside /v1 (docs/audit.md), unless the request presents credentials.
    return {
        {"GET", "/console", Access::publicRoute(), handleConsoleRedirect, false, "console.get"},
        {"GET", "/console/", Access::publicRoute(), handleConsoleIndex, false, "console.get"},
        {"GET", "/console/{file}", Access::publicRoute(), handleConsoleFile, false, "console.get"},
    };
}

}  // namespace custodian::api
