#include "gateway/cli/args.hpp"

#include <algorithm>

namespace custodian::cli {

std::optional<std::string> ParsedArgs::get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
}

std::string ParsedArgs::getOr(const std::string& name, const std::string& fallback) const {
    auto v = get(name);
    return v ? *v : fallback;
}

Result<ParsedArgs> parseArgs(int argc, char** argv, const std::vector<OptionSpec>& specs, size_t maxPositional) {
    ParsedArgs out;
    for (int i = 0; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            out.help_ = true;
            continue;
        }
        if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
            if (out.positional_.size() >= maxPositional) return invalidArgument("unexpected argument '" + arg + "'");
            out.positional_.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2);
        std::optional<std::string> inlineValue;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inlineValue = name.substr(eq + 1);
            name.resize(eq);
        }
        auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.name == name; });
        if (spec == specs.end()) return invalidArgument("unknown option --" + name);
        if (!spec->takesValue) {
            if (inlineValue) return invalidArgument("option --" + name + " takes no value");
            out.flags_.insert(name);
            continue;
        }
        if (inlineValue) {
            out.values_[name] = *inlineValue;
        } else {
            if (i + 1 >= argc) return invalidArgument("option --" + name + " needs a value");
            out.values_[name] = argv[++i];
        }
    }
    if (!out.help_) {
        for (const auto& s : specs) {
            if (s.required && !out.has(s.name)) return invalidArgument("missing required option --" + s.name);
        }
    }
    return out;
}

std::string usageText(const std::string& synopsis, const std::string& description,
                      const std::vector<OptionSpec>& specs) {
    std::string text = "usage: custodian " + synopsis + "\n\n" + description + "\n\noptions:\n";
    size_t width = 4;
    for (const auto& s : specs) width = std::max(width, s.name.size() + (s.takesValue ? s.valueName.size() + 1 : 0));
    // Option names take width + 2 columns ("--" and the name), then two spaces before the help.
    auto line = [&](const std::string& left, const std::string& help) {
        text += "  " + left + std::string(width + 4 - left.size(), ' ') + help + "\n";
    };
    for (const auto& s : specs)
        line("--" + s.name + (s.takesValue ? " " + s.valueName : ""), s.help + (s.required ? " (required)" : ""));
    line("--help", "show this text");
    return text;
}

}  // namespace custodian::cli
