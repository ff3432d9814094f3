#include "anonymizer/csv.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <istream>
#include <ostream>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "anonymizer/value.hpp"

namespace custodian::anon {

namespace {

constexpr size_t kInitialBuffer = 1u << 20;

class StringSource final : public ByteSource {
public:
    explicit StringSource(std::string bytes) : bytes_(std::move(bytes)) {}
    Result<size_t> read(char* buffer, size_t capacity) override {
        const size_t n = std::min(capacity, bytes_.size() - offset_);
        std::memcpy(buffer, bytes_.data() + offset_, n);
        offset_ += n;
        return n;
    }
    std::optional<size_t> sizeHint() const override { return bytes_.size() - offset_; }

private:
    std::string bytes_;
    size_t offset_ = 0;
};

class FileSource final : public ByteSource {
public:
    FileSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
        struct stat st {};
        if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) size_ = static_cast<size_t>(st.st_size);
    }
    FileSource(const FileSource&) = delete;
    FileSource& operator=(const FileSource&) = delete;
    ~FileSource() override { ::close(fd_); }
    Result<size_t> read(char* buffer, size_t capacity) override {
        while (true) {
            const ssize_t n = ::read(fd_, buffer, capacity);
            if (n >= 0) {
                if (size_) *size_ -= std::min(*size_, static_cast<size_t>(n));
                return static_cast<size_t>(n);
            }
            if (errno == EINTR) continue;
            return Status(StatusCode::Unavailable, "cannot read '" + path_ + "': " + std::strerror(errno));
        }
    }

    std::optional<size_t> sizeHint() const override { return size_; }

private:
    int fd_;
    std::string path_;
    std::optional<size_t> size_;  // bytes left, for regular files
};

class StreamSource final : public ByteSource {
public:
    explicit StreamSource(std::istream& in) : in_(&in) {}
    Result<size_t> read(char* buffer, size_t capacity) override {
        in_->read(buffer, static_cast<std::streamsize>(capacity));
        if (in_->bad()) return Status(StatusCode::Unavailable, "cannot read the input stream");
        return static_cast<size_t>(in_->gcount());
    }

private:
    std::istream* in_;
};

std::string where(uint64_t line, size_t column) {
    return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
}

std::string describeByte(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

uint64_t broadcast(char c) { return 0x0101010101010101ULL * static_cast<unsigned char>(c); }

// Non-zero iff some byte of v is zero; the lowest set bit marks the first zero byte exactly (borrows
// only disturb the bits above it).
uint64_t zeroBytes(uint64_t v) { return (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL; }

// The four bytes that end an unquoted field, broadcast to every byte of a word.
struct FieldEnds {
    uint64_t delimiter, quote, lf, cr;
    const uint8_t* table;  // 1 for the same four bytes
};

// Index of the first delimiter, quote, CR or LF in buf[i, end), or end. Eight bytes at a time
// (little-endian load, so the first match is the lowest flagged byte), then byte by byte.
[[gnu::always_inline]] inline size_t scanUnquoted(const FieldEnds& ends, const char* buf, size_t i, size_t end) {
    if constexpr (std::endian::native == std::endian::little) {
        while (i + 8 <= end) {
            uint64_t w;
            std::memcpy(&w, buf + i, 8);
            const uint64_t hits = zeroBytes(w ^ ends.delimiter) | zeroBytes(w ^ ends.quote) | zeroBytes(w ^ ends.lf) |
                                  zeroBytes(w ^ ends.cr);
            if (hits != 0) return i + static_cast<size_t>(std::countr_zero(hits) >> 3);
            i += 8;
        }
    }
    while (i < end && ends.table[static_cast<unsigned char>(buf[i])] == 0) ++i;
    return i;
}

}  // namespace

std::unique_ptr<ByteSource> stringSource(std::string bytes) { return std::make_unique<StringSource>(std::move(bytes)); }

Result<std::unique_ptr<ByteSource>> fileSource(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        const std::string message = "cannot open '" + path + "': " + std::strerror(err);
        if (err == ENOENT) return notFound(message);
        if (err == EACCES) return permissionDenied(message);
        return Status(StatusCode::Unavailable, message);
    }
    return std::unique_ptr<ByteSource>(std::make_unique<FileSource>(fd, path));
}

std::unique_ptr<ByteSource> streamSource(std::istream& in) { return std::make_unique<StreamSource>(in); }

void CsvRecords::clear() noexcept {
    data_.clear();
    ends_.clear();
    quoted_.clear();
    lines_.clear();
}

CsvReader::CsvReader(std::unique_ptr<ByteSource> source, CsvDialect dialect)
    : source_(std::move(source)), dialect_(dialect) {
    // Small inputs get a small buffer (one more byte than the input, so a single read sees the end).
    const auto hint = source_->sizeHint();
    buffer_.resize(hint && *hint < kInitialBuffer ? std::max<size_t>(*hint + 1, 64) : kInitialBuffer);
    special_[static_cast<unsigned char>(dialect_.delimiter)] = 1;
    special_[static_cast<unsigned char>(dialect_.quote)] = 1;
    special_[static_cast<unsigned char>('\n')] = 1;
    special_[static_cast<unsigned char>('\r')] = 1;
}

Result<CsvReader> CsvReader::open(std::unique_ptr<ByteSource> source, CsvDialect dialect) {
    const auto isBad = [](char c) { return c == '\n' || c == '\r' || static_cast<unsigned char>(c) >= 0x80; };
    if (dialect.delimiter == dialect.quote || isBad(dialect.delimiter) || isBad(dialect.quote))
        return invalidArgument("CSV dialect: the delimiter and the quote must be two different ASCII characters "
                               "other than CR and LF");
    if (dialect.maxRecordBytes < 64) return invalidArgument("CSV dialect: maxRecordBytes must be at least 64");
    if (!source) return invalidArgument("CSV reader: no input");
    CsvReader reader(std::move(source), dialect);
    if (dialect.header) {
        CsvRecords first;
        auto n = reader.read(first, 1);
        if (!n) return n.status();
        if (*n == 0) return invalidArgument("empty input: expected a header row");
        for (size_t c = 0; c < first.columns(); ++c) reader.header_.emplace_back(first.field(0, c));
    }
    return reader;
}

Result<CsvReader> CsvReader::openFile(const std::string& path, CsvDialect dialect) {
    auto source = fileSource(path);
    if (!source) return source.status();
    auto reader = open(std::move(source.value()), dialect);
    if (!reader) return reader.status().withContext(path);
    return reader;
}

Result<CsvReader> CsvReader::fromString(std::string text, CsvDialect dialect) {
    return open(stringSource(std::move(text)), dialect);
}

Status CsvReader::fill() {
    if (pos_ > 0) {
        std::memmove(buffer_.data(), buffer_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    // What is left in the buffer is the start of one incomplete record.
    if (end_ >= dialect_.maxRecordBytes)
        return Status(StatusCode::ResourceExhausted, "line " + std::to_string(line_) + ": record longer than " +
                                                         std::to_string(dialect_.maxRecordBytes) + " bytes");
    if (end_ == buffer_.size()) buffer_.resize(std::min(buffer_.size() * 2, dialect_.maxRecordBytes + 1));
    // Fill the buffer completely (or reach the end), so that a record is re-parsed from its start only
    // after the buffer doubled: parsing stays linear even when the source hands out small chunks.
    while (end_ < buffer_.size() && !eof_) {
        auto n = source_->read(buffer_.data() + end_, buffer_.size() - end_);
        if (!n) return n.status();
        if (*n == 0) eof_ = true;
        else end_ += *n;
    }
    return Status::ok();
}

Status CsvReader::checkRecord(CsvRecords& out, size_t fieldBegin, size_t dataBegin, uint64_t line) {
    const size_t fields = out.ends_.size() - fieldBegin;
    if (columns_ == 0) {
        columns_ = fields;
        out.columns_ = fields;
    } else if (fields != columns_) {
        return invalidArgument("line " + std::to_string(line) + ": expected " + std::to_string(columns_) +
                               " fields, found " + std::to_string(fields));
    }
    size_t bad = 0;
    const std::string_view bytes(out.data_.data() + dataBegin, out.data_.size() - dataBegin);
    if (!isValidUtf8(bytes, &bad)) {
        const size_t absolute = dataBegin + bad;
        size_t field = fieldBegin;
        while (out.ends_[field] <= absolute) ++field;
        const size_t fieldStart = field == 0 ? 0 : out.ends_[field - 1];
        const auto newlines =
            static_cast<uint64_t>(std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bad), '\n'));
        return invalidArgument(where(line + newlines, field - fieldBegin + 1) + "invalid UTF-8 (" +
                               describeByte(out.data_[absolute]) + " at byte " +
                               std::to_string(absolute - fieldStart + 1) + " of the field)");
    }
    return Status::ok();
}

CsvReader::Step CsvReader::parseRecord(CsvRecords& out, Status& error) {
    const char* buf = buffer_.data();
    const size_t end = end_;
    size_t p = pos_;
    if (p == end) return eof_ ? Step::End : Step::NeedMore;

    const size_t fieldBegin = out.ends_.size();
    const size_t dataBegin = out.data_.size();
    const char quote = dialect_.quote;
    const char delimiter = dialect_.delimiter;
    uint64_t line = line_;
    size_t column = 0;
    const FieldEnds fieldEnds{broadcast(delimiter), broadcast(quote), broadcast('\n'), broadcast('\r'), special_};

    const auto rollback = [&] {
        out.ends_.resize(fieldBegin);
        out.quoted_.resize(fieldBegin);
        out.data_.resize(dataBegin);
    };
    const auto fail = [&](Status status) {
        rollback();
        error = std::move(status);
        return Step::Failed;
    };
    const auto needMore = [&] {
        rollback();
        return Step::NeedMore;
    };
    const auto endField = [&](bool quoted) __attribute__((always_inline)) {
        out.ends_.push_back(out.data_.size());
        out.quoted_.push_back(quoted ? 1 : 0);
    };

    while (true) {
        ++column;
        if (p == end) {
            // Input ends right after a delimiter: the last field is empty.
            if (!eof_) return needMore();
            endField(false);
            break;
        }
        if (buf[p] == quote) {
            const uint64_t fieldLine = line;
            ++p;
            while (true) {
                const void* hit = std::memchr(buf + p, quote, end - p);
                if (hit == nullptr) {
                    if (!eof_) return needMore();
                    return fail(invalidArgument(where(fieldLine, column) + "unterminated quoted field"));
                }
                const size_t q = static_cast<size_t>(static_cast<const char*>(hit) - buf);
                out.data_.append(buf + p, q - p);
                line += static_cast<uint64_t>(std::count(buf + p, buf + q, '\n'));
                p = q + 1;
                if (p == end && !eof_) return needMore();
                if (p < end && buf[p] == quote) {
                    out.data_.push_back(quote);
                    ++p;
                    continue;
                }
                break;
            }
            endField(true);
            if (p == end) break;
            const char c = buf[p];
            if (c == delimiter) {
                ++p;
                continue;
            }
            if (c == '\n') {
                ++p;
                ++line;
                break;
            }
            if (c == '\r') {
                if (p + 1 == end && !eof_) return needMore();
                if (p + 1 < end && buf[p + 1] == '\n') {
                    p += 2;
                    ++line;
                    break;
                }
                return fail(invalidArgument(where(line, column) + "carriage return not followed by a line feed"));
            }
            return fail(invalidArgument(where(line, column) + "unexpected " + describeByte(c) +
                                        " after the closing quote of a quoted field"));
        }

        const size_t i = scanUnquoted(fieldEnds, buf, p, end);
        if (i == end && !eof_) return needMore();
        out.data_.append(buf + p, i - p);
        endField(false);
        if (i == end) {
            p = i;
            break;
        }
        const char c = buf[i];
        if (c == delimiter) {
            p = i + 1;
            continue;
        }
        if (c == '\n') {
            p = i + 1;
            ++line;
            break;
        }
        if (c == '\r') {
            if (i + 1 == end && !eof_) return needMore();
            if (i + 1 < end && buf[i + 1] == '\n') {
                p = i + 2;
                ++line;
                break;
            }
            return fail(invalidArgument(where(line, column) + "carriage return not followed by a line feed"));
        }
        return fail(invalidArgument(where(line, column) +
                                    "quote character inside an unquoted field (quote the whole field and double "
                                    "the quote)"));
    }

    if (p - pos_ > dialect_.maxRecordBytes)
        return fail(Status(StatusCode::ResourceExhausted, "line " + std::to_string(line_) + ": record longer than " +
                                                              std::to_string(dialect_.maxRecordBytes) + " bytes"));
    if (Status status = checkRecord(out, fieldBegin, dataBegin, line_); !status) return fail(std::move(status));
    out.lines_.push_back(line_);
    pos_ = p;
    line_ = line;
    return Step::Record;
}

Result<size_t> CsvReader::read(CsvRecords& out, size_t maxRows) {
    out.clear();
    out.columns_ = columns_;
    size_t rows = 0;
    while (rows < maxRows) {
        if (!started_) {
            // Skip a UTF-8 byte-order mark (spreadsheet exports start with one).
            if (end_ - pos_ < 3 && !eof_) {
                if (Status s = fill(); !s) return s;
                continue;
            }
            started_ = true;
            if (end_ - pos_ >= 3 && std::memcmp(buffer_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
        }
        Status error;
        switch (parseRecord(out, error)) {
        case Step::Record: ++rows; break;
        case Step::End: return rows;
        case Step::Failed: return error;
        case Step::NeedMore:
            if (Status s = fill(); !s) return s;
            break;
        }
    }
    return rows;
}

namespace {

// Whether `value` holds the delimiter, the quote, a line feed or a carriage return: sixteen bytes
// a step where SSE2 is there.
bool needsQuoting(std::string_view value, const CsvDialect& dialect) noexcept {
    const char* p = value.data();
    const char* const end = p + value.size();
#ifdef __SSE2__
    const __m128i delimiter = _mm_set1_epi8(dialect.delimiter), quote = _mm_set1_epi8(dialect.quote);
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    for (; end - p >= 16; p += 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, delimiter), _mm_cmpeq_epi8(bytes, quote)),
                                          _mm_or_si128(_mm_cmpeq_epi8(bytes, lf), _mm_cmpeq_epi8(bytes, cr)));
        if (_mm_movemask_epi8(hits) != 0) return true;
    }
#endif
    for (; p < end; ++p) {
        const char c = *p;
        if (c == dialect.delimiter || c == dialect.quote || c == '\n' || c == '\r') return true;
    }
    return false;
}

}  // namespace

void appendCsvField(std::string& out, std::string_view value, const CsvDialect& dialect, bool quoteIfEmpty) {
    // A leading U+FEFF would be taken for a byte-order mark at the start of a file and dropped.
    const bool needsQuotes =
        (quoteIfEmpty && value.empty()) || value.starts_with("\xEF\xBB\xBF") || needsQuoting(value, dialect);
    if (!needsQuotes) {
        out.append(value);
        return;
    }
    out.push_back(dialect.quote);
    for (const char c : value) {
        if (c == dialect.quote) out.push_back(c);
        out.push_back(c);
    }
    out.push_back(dialect.quote);
}

void appendCsvLineEnd(std::string& out, const CsvDialect& dialect) {
    if (dialect.lineEnding == LineEnding::CRLF) out.push_back('\r');
    out.push_back('\n');
}

CsvWriter::CsvWriter(std::ostream& out, CsvDialect dialect) : out_(&out), dialect_(dialect) {
    buffer_.reserve(1u << 16);
}

Status CsvWriter::writeRecord(std::span<const std::string_view> fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) buffer_.push_back(dialect_.delimiter);
        appendCsvField(buffer_, fields[i], dialect_);
    }
    return endRecord();
}

Status CsvWriter::writeRecord(std::span<const std::string> fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) buffer_.push_back(dialect_.delimiter);
        appendCsvField(buffer_, fields[i], dialect_);
    }
    return endRecord();
}

Status CsvWriter::endRecord() {
    appendCsvLineEnd(buffer_, dialect_);
    if (buffer_.size() >= (1u << 16)) drain();
    return failed_ ? Status(StatusCode::Unavailable, "cannot write the CSV output") : Status::ok();
}

void CsvWriter::drain() {
    if (!failed_ && !buffer_.empty()) {
        out_->write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
        if (!*out_) failed_ = true;
    }
    buffer_.clear();
}

Status CsvWriter::flush() {
    drain();
    if (!failed_) {
        out_->flush();
        if (!*out_) failed_ = true;
    }
    return failed_ ? Status(StatusCode::Unavailable, "cannot write the CSV output") : Status::ok();
}

}  // namespace custodian::anon
