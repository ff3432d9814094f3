#pragma once
// CPU time for the benchmarks: stable when other processes compete for the two cores, unlike wall
// time.

#include <sys/resource.h>

#include <ctime>

namespace custodian::bench {

// User + system seconds of a getrusage() result.
inline double cpuOf(const rusage& usage) {
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// CPU seconds (user + system) of this process (RUSAGE_SELF) or of its waited-for children
// (RUSAGE_CHILDREN).
inline double cpuSeconds(int who) {
    rusage usage{};
    ::getrusage(who, &usage);
    return cpuOf(usage);
}

// CPU seconds of this process, at nanosecond resolution (for short timed sections).
inline double processCpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace custodian::bench
