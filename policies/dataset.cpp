#include "policies/dataset.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "policies/json_text.hpp"
#include "policies/validation.hpp"

namespace custodian::policies {

const DatasetColumn* DatasetDescription::column(std::string_view columnName) const {
    for (const auto& c : columns)
        if (c.name == columnName) return &c;
    return nullptr;
}

Result<DatasetDescription> parseDatasetDescription(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
    if (doc.HasParseError())
        return invalidArgument(std::string("the dataset description is not valid JSON: ") +
                               rapidjson::GetParseError_En(doc.GetParseError()) + " at byte " +
                               std::to_string(doc.GetErrorOffset()));
    auto fail = [](const std::string& pointer, const std::string& message) {
        return invalidArgument("dataset description " + (pointer.empty() ? std::string("(document)") : pointer) + ": " +
                               message);
    };
    if (!doc.IsObject()) return fail("", "must be an object");
    DatasetDescription out;
    auto name = doc.FindMember("name");
    if (name == doc.MemberEnd() || !name->value.IsString() || name->value.GetStringLength() == 0)
        return fail("/name", "the dataset name must be a non-empty text");
    out.name = name->value.GetString();
    auto columns = doc.FindMember("columns");
    if (columns == doc.MemberEnd() || !columns->value.IsArray()) return fail("/columns", "must be a list of columns");
    for (rapidjson::SizeType i = 0; i < columns->value.Size(); ++i) {
        const auto& c = columns->value[i];
        const std::string at = appendPointer("/columns", i);
        if (!c.IsObject()) return fail(at, "must be an object with name and type");
        DatasetColumn column;
        auto n = c.FindMember("name");
        if (n == c.MemberEnd() || !n->value.IsString() || n->value.GetStringLength() == 0)
            return fail(at + "/name", "must be a non-empty text");
        column.name = n->value.GetString();
        if (out.column(column.name))
            return fail(at + "/name", "the column \"" + printableForMessage(column.name) + "\" is listed twice");
        auto t = c.FindMember("type");
        if (t == c.MemberEnd() || !t->value.IsString()) return fail(at + "/type", "must be a column type");
        auto type = anon::columnTypeFromName({t->value.GetString(), t->value.GetStringLength()});
        if (!type)
            return fail(at + "/type", quotedForMessage(t->value) +
                                          " is not a column type; use integer, decimal, text, date or timestamp");
        column.type = *type;
        if (auto r = c.FindMember("role"); r != c.MemberEnd()) {
            auto role = r->value.IsString() ? columnRoleFromName({r->value.GetString(), r->value.GetStringLength()})
                                            : std::nullopt;
            if (!role)
                return fail(at + "/role",
                            quotedForMessage(r->value) +
                                " is not a role; use identifier, quasi_identifier, sensitive or insensitive");
            column.role = *role;
        }
        out.columns.push_back(std::move(column));
    }
    return out;
}

}  // namespace custodian::policies
