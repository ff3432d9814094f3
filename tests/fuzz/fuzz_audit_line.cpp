// Fuzzes the audit verifier's fast path for export lines against the canonical encoder: whenever
// the fast path (a SAX pass that writes canonical bytes while reading) takes a line, the DOM path
// — the line's tree encoded by json::appendCanonical, the project's one canonical encoder — must
// read the same entry index, recorded leaf hash and canonical bytes. Any difference aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gateway/audit/verifier.hpp"

using namespace custodian;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static audit::LineParser fast(true);
    static audit::LineParser reference(false);
    std::string line(reinterpret_cast<const char*>(data), size);
    std::string copy = line;
    const audit::ParsedLine quick = fast.parse(line);
    const audit::ParsedLine full = reference.parse(copy);
    if (reference.tookFastPath()) std::abort();  // the reference never takes the fast path
    if (!fast.tookFastPath()) return 0;
    if (quick.kind != audit::ParsedLine::Kind::Entry || full.kind != audit::ParsedLine::Kind::Entry) std::abort();
    if (quick.index != full.index || quick.recorded != full.recorded || quick.computed != full.computed) std::abort();
    if (fast.canonicalEntry() != reference.canonicalEntry()) std::abort();
    return 0;
}
