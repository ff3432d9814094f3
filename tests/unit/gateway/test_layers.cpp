// The gateway's folders are layers (README "Layout"): a file includes only its own folder and the
// folders below it. This test reads every #include under gateway/ and names each arrow that points
// up, so that a new one fails the suite instead of growing a knot.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The folders each gateway folder may include besides itself. "anonymizer", "json", "policies" and "dp"
// (the noise samplers) are the libraries below the gateway; "gateway" is gateway/main.cpp.
const std::map<std::string, std::set<std::string>>& allowedBelow() {
    static const std::set<std::string> kBase = {"anonymizer", "json", "policies", "dp"};
    static const auto with = [](std::set<std::string> more) {
        more.insert(kBase.begin(), kBase.end());
        return more;
    };
    static const std::map<std::string, std::set<std::string>> kAllowed = {
        {"config", with({})},
        {"crypto", with({})},
        {"db", with({"config"})},
        {"http", with({"config"})},  // transport: no domain folder, no api
        {"audit", with({"crypto", "db", "config"})},
        {"auth", with({"crypto", "db", "config"})},
        {"catalog", with({"auth", "crypto", "db", "config"})},
        {"release", with({"auth", "catalog", "crypto", "db", "config"})},
        {"api", with({"http", "audit", "auth", "catalog", "release", "crypto", "db", "config"})},
        {"cli", with({"api", "http", "audit", "auth", "catalog", "release", "crypto", "db", "config"})},
        {"gateway", with({"cli", "api", "http", "audit", "auth", "catalog", "release", "crypto", "db", "config"})},
    };
    return kAllowed;
}

std::string folderOf(const fs::path& relative) {  // relative to gateway/
    return relative.has_parent_path() ? relative.begin()->string() : "gateway";
}

}  // namespace

TEST_CASE("gateway folders include only their own layer and the layers below", "[unit][layers]") {
    const fs::path root = fs::path(CUSTODIAN_SOURCE_DIR) / "gateway";
    const std::regex include(R"re(^\s*#\s*include\s+"([^"]+)")re");
    std::vector<std::string> upward;
    std::set<std::string> foldersSeen;
    int files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        const auto ext = entry.path().extension();
        if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
        ++files;
        const fs::path relative = fs::relative(entry.path(), root);
        const std::string from = folderOf(relative);
        foldersSeen.insert(from);
        const auto allowed = allowedBelow().find(from);
        if (allowed == allowedBelow().end()) {
            upward.push_back(relative.string() + ": folder gateway/" + from + "/ has no place in the layers");
            continue;
        }
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            std::smatch m;
            if (!std::regex_search(line, m, include)) continue;
            const fs::path target(m[1].str());
            std::string to;
            auto part = target.begin();
            if (target.has_parent_path() && part->string() == "gateway") {
                ++part;
                to = std::next(part) == target.end() ? "gateway" : part->string();
            } else if (target.has_parent_path()) {
                to = part->string();
            } else {
                continue;  // same folder
            }
            if (to != from && !allowed->second.count(to)) upward.push_back(relative.string() + " -> " + m[1].str());
        }
    }
    INFO("files read: " << files);
    CHECK(files > 100);
    CHECK(foldersSeen.count("api"));
    CHECK(foldersSeen.count("http"));
    for (const auto& arrow : upward) UNSCOPED_INFO(arrow);
    CHECK(upward.empty());
}
