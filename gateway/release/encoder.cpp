#include "gateway/release/encoder.hpp"

#include "anonymizer/csv.hpp"
#include "anonymizer/value.hpp"

namespace custodian::release {

const char* formatName(ExtractFormat format) noexcept { return format == ExtractFormat::Csv ? "csv" : "ndjson"; }

std::optional<ExtractFormat> parseFormat(std::string_view name) noexcept {
    if (name == "csv") return ExtractFormat::Csv;
    if (name == "ndjson") return ExtractFormat::Ndjson;
    return std::nullopt;
}

const char* formatMediaType(ExtractFormat format) noexcept {
    return format == ExtractFormat::Csv ? "text/csv; charset=utf-8" : "application/x-ndjson";
}

void appendJsonString(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            // Copy the run of plain ASCII at once.
            size_t j = i + 1;
            while (j < s.size()) {
                const auto d = static_cast<unsigned char>(s[j]);
                if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
                ++j;
            }
            out.append(s.substr(i, j - i));
            i = j;
            continue;
        }
        if (c < 0x80) {
            switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                out += "\\u00";
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 15]);
            }
            ++i;
            continue;
        }
        size_t bad = 0;
        // Validate one code point with the anonymizer's strict UTF-8 check.
        const size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (i + len <= s.size() && anon::isValidUtf8(s.substr(i, len), &bad)) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    out.push_back('"');
}

RowEncoder::RowEncoder(ExtractFormat format, anon::SchemaPtr schema) : format_(format), schema_(std::move(schema)) {
    if (format_ == ExtractFormat::Ndjson) {
        for (size_t i = 0; i < schema_->size(); ++i) {
            std::string member = i == 0 ? "{" : ",";
            appendJsonString(member, (*schema_)[i].name);
            member.push_back(':');
            memberNames_.push_back(std::move(member));
        }
    }
}

void RowEncoder::appendPreamble(std::string& out) const {
    if (format_ != ExtractFormat::Csv) return;
    const anon::CsvDialect dialect;
    for (size_t i = 0; i < schema_->size(); ++i) {
        if (i) out.push_back(',');
        anon::appendCsvField(out, (*schema_)[i].name, dialect, true);
    }
    out.push_back('\n');
}

uint64_t RowEncoder::appendRows(const anon::Batch& batch, std::string& out) const {
    const size_t columns = batch.columnCount();
    uint64_t written = 0;
    if (format_ == ExtractFormat::Csv) {
        const anon::CsvDialect dialect;
        for (size_t r = 0; r < batch.rows(); ++r) {
            if (batch.isSuppressed(r)) continue;
            for (size_t c = 0; c < columns; ++c) {
                if (c) out.push_back(',');
                const anon::Column& col = batch.column(c);
                if (col.isNull(r)) continue;
                if (col.type() == anon::ColumnType::Text) {
                    anon::appendCsvField(out, col.text(r), dialect, true);
                } else {
                    col.appendCanonical(out, r);  // numbers, dates: never need quotes
                }
            }
            out.push_back('\n');
            ++written;
        }
        return written;
    }
    if (columns == 0) {
        for (size_t r = 0; r < batch.rows(); ++r)
            if (!batch.isSuppressed(r)) out += "{}\n", ++written;
        return written;
    }
    for (size_t r = 0; r < batch.rows(); ++r) {
        if (batch.isSuppressed(r)) continue;
        for (size_t c = 0; c < columns; ++c) {
            out += memberNames_[c];
            const anon::Column& col = batch.column(c);
            if (col.isNull(r)) {
                out += "null";
                continue;
            }
            switch (col.type()) {
            case anon::ColumnType::Integer:
            case anon::ColumnType::Decimal: col.appendCanonical(out, r); break;
            case anon::ColumnType::Text: appendJsonString(out, col.text(r)); break;
            case anon::ColumnType::Date:
            case anon::ColumnType::Timestamp:
                out.push_back('"');
                col.appendCanonical(out, r);
                out.push_back('"');
                break;
            }
        }
        out += "}\n";
        ++written;
    }
    return written;
}

}  // namespace custodian::release
