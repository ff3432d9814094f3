#include "gateway/release/copy_text.hpp"

#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace custodian::release {

namespace {

constexpr size_t kInLine = std::string::npos;  // spans_ marker: the field is a view into the line

bool isOctal(char c) noexcept { return c >= '0' && c <= '7'; }

// The first tab or backslash in [p, end), or end: sixteen bytes per step where SSE2 is there.
const char* findTabOrBackslash(const char* p, const char* end) noexcept {
#ifdef __SSE2__
    const __m128i tab = _mm_set1_epi8('\t'), backslash = _mm_set1_epi8('\\');
    for (; end - p >= 16; p += 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(bytes, tab), _mm_cmpeq_epi8(bytes, backslash)));
        if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    }
#endif
    while (p < end && *p != '\t' && *p != '\\') ++p;
    return p;
}

int hexValue(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

Status CopyTextRow::parse(std::string_view line, size_t fields) {
    Status s = split(line, fields);
    if (!s) values_.clear();
    return s;
}

Status CopyTextRow::split(std::string_view line, size_t fields) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    values_.resize(fields);
    // Most rows hold no backslash, hence no escape and no NULL marker: their fields are the bytes
    // between tabs, found with memchr.
    if (line.empty() || std::memchr(line.data(), '\\', line.size()) == nullptr) {
        const char* p = line.data();
        const char* const end = p + line.size();
        for (size_t n = 0;; ++n) {
            const auto* tab =
                p == end ? nullptr : static_cast<const char*>(std::memchr(p, '\t', static_cast<size_t>(end - p)));
            const char* const fieldEnd = tab ? tab : end;
            if (n == fields)
                return invalidArgument("a COPY row from the source has more than " + std::to_string(fields) +
                                       " fields");
            values_[n] = std::string_view(p, static_cast<size_t>(fieldEnd - p));
            if (!tab) {
                if (n + 1 != fields)
                    return invalidArgument("a COPY row from the source has " + std::to_string(n + 1) +
                                           " fields, expected " + std::to_string(fields));
                return Status::ok();
            }
            p = tab + 1;
        }
    }
    spans_.assign(fields, {kInLine, 0});
    unescaped_.clear();
    const char* p = line.data();
    const char* const end = p + line.size();
    size_t n = 0;  // fields seen
    bool escaped = false;
    for (;; ++n) {
        if (n == fields)
            return invalidArgument("a COPY row from the source has more than " + std::to_string(fields) + " fields");
        const char* const start = p;
        if (end - p >= 2 && p[0] == '\\' && p[1] == 'N' && (end - p == 2 || p[2] == '\t')) {
            // The null marker is recognized before unescaping: \\N is the text "\N", a\Nb is "aNb".
            values_[n] = std::nullopt;
            p += 2;
        } else {
            p = findTabOrBackslash(p, end);
            if (p == end || *p == '\t') {
                values_[n] = std::string_view(start, static_cast<size_t>(p - start));
            } else {
                // Escapes: decode the field into unescaped_. A backslash takes the next byte with it,
                // so an escaped tab (\<TAB>) is data, not a separator.
                const size_t offset = unescaped_.size();
                unescaped_.append(start, p);
                while (p < end && *p != '\t') {
                    if (*p != '\\') {
                        const char* run = p;
                        p = findTabOrBackslash(p, end);
                        unescaped_.append(run, p);
                        continue;
                    }
                    if (++p == end) return invalidArgument("a COPY row from the source ends inside an escape");
                    char c = *p++;
                    switch (c) {
                    case 'b': c = '\b'; break;
                    case 'f': c = '\f'; break;
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'v': c = '\v'; break;
                    case 'x':
                        // \x with no hex digit after it is the letter x, as PostgreSQL reads it.
                        if (p < end && hexValue(*p) >= 0) {
                            int value = hexValue(*p++);
                            if (p < end && hexValue(*p) >= 0) value = value * 16 + hexValue(*p++);
                            c = static_cast<char>(value);
                        }
                        break;
                    default:
                        if (isOctal(c)) {
                            int value = c - '0';
                            for (int digits = 1; digits < 3 && p < end && isOctal(*p); ++digits)
                                value = value * 8 + (*p++ - '0');
                            c = static_cast<char>(value & 0xFF);
                        }
                        break;  // any other byte stands for itself: \\ is a backslash
                    }
                    unescaped_.push_back(c);
                }
                spans_[n] = {offset, unescaped_.size() - offset};
                escaped = true;
            }
        }
        if (p == end) break;
        ++p;  // the tab after the field
    }
    if (n + 1 != fields)
        return invalidArgument("a COPY row from the source has " + std::to_string(n + 1) + " fields, expected " +
                               std::to_string(fields));
    // unescaped_ no longer grows: the views into it can be made now.
    for (size_t i = 0; escaped && i < spans_.size(); ++i)
        if (spans_[i].first != kInLine)
            values_[i] = std::string_view(unescaped_.data() + spans_[i].first, spans_[i].second);
    return Status::ok();
}

}  // namespace custodian::release
