#pragma once
// Loads the UCI Adult benchmark (adult.csv + ARX hierarchies) with plain line splitting, independent of
// the product's CSV reader: ';'-separated, CRLF or LF, no quoting in these files.

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "anonymizer/hierarchy.hpp"

namespace custodian::anon::testing {

inline std::vector<std::vector<std::string>> readSemicolonFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<std::vector<std::string>> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        std::vector<std::string> fields;
        size_t start = 0;
        for (;;) {
            const size_t end = line.find(';', start);
            fields.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
            if (end == std::string::npos) break;
            start = end + 1;
        }
        rows.push_back(std::move(fields));
    }
    return rows;
}

struct AdultData {
    std::vector<std::string> columns;                                  // header
    std::vector<std::vector<std::string>> rows;                        // values
    std::vector<std::vector<std::vector<std::string>>> hierarchyRows;  // per column, raw hierarchy rows
    std::vector<std::shared_ptr<const Hierarchy>> hierarchies;         // per column
};

inline const AdultData& adult() {
    static const AdultData data = [] {
        AdultData a;
        const std::string dir = CUSTODIAN_ADULT_DIR;
        auto all = readSemicolonFile(dir + "/adult.csv");
        a.columns = all.front();
        a.rows.assign(all.begin() + 1, all.end());
        for (const auto& c : a.columns) {
            a.hierarchyRows.push_back(readSemicolonFile(dir + "/adult_hierarchy_" + c + ".csv"));
            auto h = Hierarchy::fromRows(c, a.hierarchyRows.back());
            if (!h) throw std::runtime_error(h.status().message());
            a.hierarchies.push_back(std::make_shared<const Hierarchy>(std::move(h.value())));
        }
        return a;
    }();
    return data;
}

}  // namespace custodian::anon::testing
