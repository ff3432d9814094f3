#pragma once
// A small, strict command-line parser shared by every subcommand: `--name value` and `--flag`
// options, with unknown options and missing values reported as errors rather than ignored.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::cli {

struct OptionSpec {
    std::string name;  // without the leading "--"
    bool takesValue = true;
    bool required = false;
    std::string help;  // one line for the usage text
    std::string valueName = "VALUE";
};

class ParsedArgs {
public:
    bool has(const std::string& name) const { return values_.count(name) > 0 || flags_.count(name) > 0; }
    std::optional<std::string> get(const std::string& name) const;
    std::string getOr(const std::string& name, const std::string& fallback) const;
    const std::vector<std::string>& positional() const { return positional_; }
    bool helpRequested() const { return help_; }

private:
    friend Result<ParsedArgs> parseArgs(int argc, char** argv, const std::vector<OptionSpec>& specs,
                                        size_t maxPositional);
    std::map<std::string, std::string> values_;
    std::set<std::string> flags_;
    std::vector<std::string> positional_;
    bool help_ = false;
};

// Parses argv against specs. `--help`/`-h` sets helpRequested() and skips the required checks.
Result<ParsedArgs> parseArgs(int argc, char** argv, const std::vector<OptionSpec>& specs, size_t maxPositional = 0);

// "usage: custodian <synopsis>\n\n<description>\n\noptions:\n  --name VALUE  help\n..."
std::string usageText(const std::string& synopsis, const std::string& description,
                      const std::vector<OptionSpec>& specs);

}  // namespace custodian::cli
