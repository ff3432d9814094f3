#pragma once
// The memory budget of releases (docs/configuration.md, `release.memory_budget_mb`,
// `release.extract_memory_budget_mb`, `release.memory_wait_ms`).
//
// A release holds memory that grows with its data, not with its rows' width alone: the table that
// counts the quasi-identifier combinations, the frequency sink's dictionaries and group rows (or,
// under Mondrian, one code per quasi-identifier per row), the frequency table and the search's
// working set, then, while it streams, the decision (suppressed classes, Mondrian's partitions)
// and the final check's counter per released class. Each release gets a MemoryCharge and states,
// structure by structure, how many bytes that structure holds now (computed from the real
// containers' capacities; see FrequencySink::memoryBytes and friends). A charge that grows past
//   - release.extract_memory_budget_mb (one release) is refused at once: that release cannot run
//     under this configuration;
//   - release.memory_budget_mb (every release of the gateway together) first waits up to
//     release.memory_wait_ms for other releases to give memory back, then is refused.
// A refused charge fails the release with ResourceExhausted before the structure grows further
// (the caller stops reading), and refusal() says what to tell the client. Everything a charge
// holds goes back to the budget when it is destroyed: the release stream owns it, so an extract
// gives its memory back when its stream ends, completed, aborted or refused.
//
// Thread-safety: MemoryBudget may be used from any thread. One MemoryCharge is used by one thread
// at a time.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymizer/status.hpp"

namespace custodian::release {

// The structures a release states to its charge (also the names its refusals give).
inline constexpr std::string_view kCountingTable = "combination counting table";
inline constexpr std::string_view kFrequencySink = "frequency sink";
inline constexpr std::string_view kSearch = "frequency table and search";
inline constexpr std::string_view kSearchWorkingSet = "optimal search working set";
inline constexpr std::string_view kDecision = "release decision";

// Why a charge was refused.
struct MemoryRefusal {
    std::string limit;         // "release.memory_budget_mb" or "release.extract_memory_budget_mb"
    uint64_t limitMiB = 0;     // its configured value
    uint64_t neededBytes = 0;  // what this release would have held with the refused growth
    uint64_t othersBytes = 0;  // held by the other releases at that moment (gateway-wide refusal)
    std::string structure;     // the structure whose growth was refused
    bool retryable = true;     // false: this release alone exceeds its budget
    std::string message;
};

struct MemoryBudgetStats {
    uint64_t heldBytes = 0;       // by every release now
    uint64_t peakBytes = 0;       // the most held at once since start
    uint64_t limitBytes = 0;      // release.memory_budget_mb (0 = unlimited)
    uint64_t refusedGateway = 0;  // charges refused by release.memory_budget_mb
    uint64_t refusedExtract = 0;  // … by release.extract_memory_budget_mb
    uint64_t waits = 0;           // charges that waited for memory
};

class MemoryBudget;

// The memory of one release, by structure.
class MemoryCharge {
public:
    // A charge that only keeps accounts (no budget): the benchmark and `custodian anonymize`.
    MemoryCharge() = default;
    MemoryCharge(const MemoryCharge&) = delete;
    MemoryCharge& operator=(const MemoryCharge&) = delete;
    ~MemoryCharge();

    // States that `structure` now holds `bytes` (growing or shrinking; 0 when freed). Growth past a
    // budget: ResourceExhausted with refusal() set, and the structure is accounted at its old size.
    Status set(std::string_view structure, uint64_t bytes);
    // Gives everything back (also done by the destructor).
    void releaseAll() noexcept;

    uint64_t bytes() const noexcept { return total_; }
    uint64_t peakBytes() const noexcept { return peak_; }
    // The structures held now, largest first, with their bytes ("frequency table 12.3 MiB, ...").
    std::string describe() const;
    const std::optional<MemoryRefusal>& refusal() const noexcept { return refusal_; }

private:
    friend class MemoryBudget;
    explicit MemoryCharge(MemoryBudget* budget) : budget_(budget) {}
    MemoryBudget* budget_ = nullptr;
    std::vector<std::pair<std::string, uint64_t>> structures_;
    uint64_t total_ = 0;
    uint64_t peak_ = 0;
    std::optional<MemoryRefusal> refusal_;
};

class MemoryBudget {
public:
    // `totalBytes`: every release together; `perExtractBytes`: one release (≤ totalBytes); `wait`:
    // how long growth past totalBytes waits for others. 0 bytes = unlimited.
    MemoryBudget(uint64_t totalBytes, uint64_t perExtractBytes, std::chrono::milliseconds wait);
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    // A new, empty charge on this budget; the budget must outlive it.
    std::shared_ptr<MemoryCharge> open();
    MemoryBudgetStats stats() const;

private:
    friend class MemoryCharge;
    // Moves the charge's total from `from` to `to` bytes (waiting when the total does not fit).
    Status resize(MemoryCharge& charge, std::string_view structure, uint64_t from, uint64_t to);
    void give(uint64_t bytes) noexcept;

    const uint64_t totalBytes_, perExtractBytes_;
    const std::chrono::milliseconds wait_;
    mutable std::mutex mutex_;
    std::condition_variable released_;
    uint64_t held_ = 0;
    uint64_t peak_ = 0;
    uint64_t refusedGateway_ = 0, refusedExtract_ = 0, waits_ = 0;
};

// "12.3 MiB"
std::string mebibytes(uint64_t bytes);

// Returns the memory freed by a finished release to the operating system (glibc malloc_trim: the
// heap top and free pages inside every arena). Without it, freed memory stays resident in the
// arenas of the threads that used it. A no-op elsewhere.
void returnFreedMemory() noexcept;

// Sets how the gateway's process allocates: blocks of 4 MiB or more are mapped on their own and
// unmapped when freed (glibc's M_MMAP_THRESHOLD, fixed instead of rising with the largest block
// freed). A release's large structures — counting slots, code columns, class indexes — then leave
// no resident memory behind in the arenas of the threads that built them, which malloc_trim does
// not always return. Called once at startup, before other threads exist. A no-op elsewhere.
void configureAllocator() noexcept;

}  // namespace custodian::release
