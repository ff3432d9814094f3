#pragma once
// The web pages the gateway serves besides its API (docs/console.md):
//   GET /console, /console/, /console/{file}   the console's HTML, CSS and JavaScript modules
// Public, unaudited, read from the copy built into the binary (web/console/, embedded by
// cmake/embed_files.cmake) or from `console.directory`. Every page carries pageSecurityHeaders().

#include <string_view>
#include <utility>
#include <vector>

#include "gateway/api/router.hpp"

namespace custodian::api {

std::vector<Route> consoleRoutes();

// The headers of every HTML page and asset: a Content-Security-Policy that allows scripts, styles
// and connections from the gateway itself only (no inline script, no inline style, no framing),
// nosniff, no referrer.
void pageSecurityHeaders(HttpResponse& response);

// The files built into the binary: (name, bytes), sorted by name (generated source).
const std::vector<std::pair<std::string_view, std::string_view>>& embeddedConsoleFiles();

}  // namespace custodian::api
