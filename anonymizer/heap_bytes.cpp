#include "anonymizer/heap_bytes.hpp"

#include <sys/mman.h>
#include <unistd.h>

namespace custodian::anon::heap {

void returnPages(void* block, size_t from, size_t to) noexcept {
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    auto* bytes = static_cast<unsigned char*>(block);
    const PageSpan span = wholePages(reinterpret_cast<uintptr_t>(bytes), from, to, static_cast<size_t>(page));
    if (span.length > 0) madvise(bytes + span.offset, span.length, MADV_DONTNEED);
}

}  // namespace custodian::anon::heap
