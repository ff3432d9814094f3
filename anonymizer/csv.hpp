#pragma once
// Streaming CSV reader and writer (RFC 4180 dialect, see docs/formats/csv-and-hierarchies.md).
//
// The reader pulls bytes from a ByteSource through a bounded buffer and hands out records in
// batches (CsvRecords, ~2048 rows), so memory is proportional to the batch and the longest record,
// never to the file. Every error names the physical line (1-based, counting line breaks inside
// quoted fields) and, where it applies, the column (1-based field index):
//   "line 17, column 3: unterminated quoted field"
// A CsvReader is not thread-safe; use one per input.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::anon {

enum class LineEnding { LF, CRLF };

struct CsvDialect {
    char delimiter = ',';
    char quote = '"';
    bool header = true;                      // first record names the columns
    LineEnding lineEnding = LineEnding::LF;  // writer only: the reader accepts LF and CRLF
    size_t maxRecordBytes = 16u << 20;       // reader: longer records fail with ResourceExhausted
};

// Where the reader gets its bytes from. read() returns the number of bytes stored (0 = end of input).
class ByteSource {
public:
    virtual ~ByteSource() = default;
    virtual Result<size_t> read(char* buffer, size_t capacity) = 0;
    // Bytes left to read, when known: lets the reader size its buffer for small inputs.
    virtual std::optional<size_t> sizeHint() const { return std::nullopt; }
};

std::unique_ptr<ByteSource> stringSource(std::string bytes);
// Reads the file with plain read(2) calls; the descriptor is closed with the source.
Result<std::unique_ptr<ByteSource>> fileSource(const std::string& path);
// The stream must outlive the source.
std::unique_ptr<ByteSource> streamSource(std::istream& in);

// One batch of records with unescaped field bytes, in one contiguous arena (no per-field allocation).
class CsvRecords {
public:
    size_t rows() const noexcept { return lines_.size(); }
    size_t columns() const noexcept { return columns_; }
    std::string_view field(size_t row, size_t column) const noexcept {
        const size_t i = row * columns_ + column;
        const size_t begin = i == 0 ? 0 : ends_[i - 1];
        return {data_.data() + begin, ends_[i] - begin};
    }
    // Whether the field was written in quotes; `""` (quoted, empty) is how CSV tells an empty
    // string from a missing value (the same convention as PostgreSQL's COPY ... CSV).
    bool quoted(size_t row, size_t column) const noexcept { return quoted_[row * columns_ + column] != 0; }
    // Physical line on which the record starts (1-based).
    uint64_t line(size_t row) const noexcept { return lines_[row]; }
    void clear() noexcept;

private:
    friend class CsvReader;
    size_t columns_ = 0;
    std::string data_;
    std::vector<size_t> ends_;     // end offset in data_ of each field, row-major
    std::vector<uint8_t> quoted_;  // per field
    std::vector<uint64_t> lines_;  // per record
};

class CsvReader {
public:
    static constexpr size_t kDefaultBatchRows = 2048;

    // Validates the dialect and, if dialect.header, reads the header record (an empty input is then
    // an error). Without a header, the first record fixes the number of columns.
    static Result<CsvReader> open(std::unique_ptr<ByteSource> source, CsvDialect dialect);
    static Result<CsvReader> openFile(const std::string& path, CsvDialect dialect);
    static Result<CsvReader> fromString(std::string text, CsvDialect dialect);

    CsvReader(CsvReader&&) noexcept = default;
    CsvReader& operator=(CsvReader&&) noexcept = default;

    const std::vector<std::string>& header() const noexcept { return header_; }
    // Number of fields per record; 0 before the first record when there is no header.
    size_t columns() const noexcept { return columns_; }
    const CsvDialect& dialect() const noexcept { return dialect_; }

    // Replaces `out` with up to maxRows records. Returns the number read; 0 means end of input.
    // After an error the reader must not be used again.
    Result<size_t> read(CsvRecords& out, size_t maxRows = kDefaultBatchRows);

private:
    enum class Step { Record, NeedMore, End, Failed };

    CsvReader(std::unique_ptr<ByteSource> source, CsvDialect dialect);
    Status fill();
    Step parseRecord(CsvRecords& out, Status& error);
    Status checkRecord(CsvRecords& out, size_t fieldBegin, size_t dataBegin, uint64_t line);

    std::unique_ptr<ByteSource> source_;
    CsvDialect dialect_;
    std::vector<char> buffer_;
    size_t pos_ = 0;
    size_t end_ = 0;
    bool eof_ = false;
    bool started_ = false;
    uint64_t line_ = 1;
    size_t columns_ = 0;
    std::vector<std::string> header_;
    uint8_t special_[256] = {};  // bytes that end an unquoted field
};

// Appends one field, quoted only when it contains the delimiter, the quote character, CR or LF, starts
// with U+FEFF (which would read back as a byte-order mark), or when `quoteIfEmpty` (to write an empty
// string as opposed to a missing value).
void appendCsvField(std::string& out, std::string_view value, const CsvDialect& dialect, bool quoteIfEmpty = false);
void appendCsvLineEnd(std::string& out, const CsvDialect& dialect);

// Buffered writer to a std::ostream; the stream must outlive the writer. Call flush() at the end
// (the destructor does not, so that write errors are never lost silently).
class CsvWriter {
public:
    CsvWriter(std::ostream& out, CsvDialect dialect);
    Status writeRecord(std::span<const std::string_view> fields);
    Status writeRecord(std::span<const std::string> fields);
    // The buffer the next record is assembled in; call endRecord() after appending fields to it
    // with appendCsvField (and the delimiter between them).
    std::string& buffer() noexcept { return buffer_; }
    Status endRecord();
    Status flush();
    const CsvDialect& dialect() const noexcept { return dialect_; }

private:
    void drain();

    std::ostream* out_;
    CsvDialect dialect_;
    std::string buffer_;
    bool failed_ = false;
};

}  // namespace custodian::anon
