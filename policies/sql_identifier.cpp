#include "policies/sql_identifier.hpp"

namespace custodian::policies {

Status validateSqlIdentifier(std::string_view name) {
    if (name.empty()) return invalidArgument("identifier is empty");
    if (name.size() > 63)
        return invalidArgument("identifier '" + std::string(name.substr(0, 63)) + "...' is longer than 63 bytes");
    for (unsigned char c : name) {
        if (c < 0x20 || c == 0x7f) return invalidArgument("identifier contains a control character");
        if (c == '"') return invalidArgument("identifier '" + std::string(name) + "' contains a double quote");
        if (c >= 0x80) return invalidArgument("identifier '" + std::string(name) + "' contains non-ASCII bytes");
    }
    return Status::ok();
}

std::string quoteSqlIdentifier(std::string_view name) {
    std::string out;
    out.reserve(name.size() + 2);
    out.push_back('"');
    for (char c : name) {
        out.push_back(c);
        if (c == '"') out.push_back('"');  // never reached after validation; kept for defence in depth
    }
    out.push_back('"');
    return out;
}

Result<std::string> quoteQualifiedName(std::string_view qualified) {
    std::string_view schema = "public";
    std::string_view table = qualified;
    if (auto dot = qualified.find('.'); dot != std::string_view::npos) {
        schema = qualified.substr(0, dot);
        table = qualified.substr(dot + 1);
    }
    if (auto s = validateSqlIdentifier(schema); !s) return s.withContext("schema name");
    if (auto s = validateSqlIdentifier(table); !s) return s.withContext("table name");
    return quoteSqlIdentifier(schema) + "." + quoteSqlIdentifier(table);
}

}  // namespace custodian::policies
