// Audit verification benchmark: offline verification of a 1,000,000-entry export against
// `sha256sum` of the same file in the same run, and Merkle proof latency on a 1,000,000-leaf tree.
// Prints figures; not a test.
//
//   bench_audit_verify [--entries N] [--head-every N] [--keep FILE]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/audit_synthetic.hpp"
#include "gateway/audit/entry.hpp"
#include "gateway/audit/merkle.hpp"
#include "gateway/audit/proof_verify.hpp"
#include "gateway/audit/tree_head.hpp"
#include "gateway/audit/verifier.hpp"

using namespace custodian;
using namespace custodian::audit;
using bench::cpuSeconds;
using bench::syntheticEntry;

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t entries = 1000000;
    uint64_t headEvery = 1000;
    std::string keep;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--entries") == 0) entries = std::strtoull(argv[i + 1], nullptr, 10);
        else if (std::strcmp(argv[i], "--head-every") == 0) headEvery = std::strtoull(argv[i + 1], nullptr, 10);
        else if (std::strcmp(argv[i], "--keep") == 0) keep = argv[i + 1];
    }
    auto key = crypto::SigningKey::generate();
    if (!key) return 1;
    const std::string path = keep.empty() ? (std::filesystem::temp_directory_path() /
                                             ("custodian-bench-audit-" + std::to_string(::getpid()) + ".ndjson"))
                                                .string()
                                          : keep;

    // 1. Generate the export (as the gateway would stream it).
    auto t0 = Clock::now();
    std::FILE* out = std::fopen(path.c_str(), "wb");
    if (out == nullptr) return 1;
    std::mt19937_64 rng(2026);
    MerkleTree tree;
    uint64_t heads = 0;
    for (uint64_t i = 0; i < entries; ++i) {
        const std::string bytes = *canonicalEntryBytes(syntheticEntry(i, rng));
        tree.append(leafHash(crypto::asBytes(bytes)));
        std::string line = exportEntryLine(bytes, true);
        line.push_back('\n');
        std::fwrite(line.data(), 1, line.size(), out);
        if ((i + 1) % headEvery == 0 || i + 1 == entries) {
            const TreeHead head{i + 1, tree.root(), 1795000000000 + (i + 1) * 37};
            std::string h = exportTreeHeadLine(signTreeHead(head, *key)) + "\n";
            std::fwrite(h.data(), 1, h.size(), out);
            ++heads;
        }
    }
    std::fclose(out);
    const double generate = seconds(t0);
    const double bytes = static_cast<double>(std::filesystem::file_size(path));
    std::printf("export: %llu entries, %llu signed tree heads, %.1f MB (%.0f bytes/entry), generated in %.2f s\n",
                static_cast<unsigned long long>(entries), static_cast<unsigned long long>(heads), bytes / 1e6,
                bytes / static_cast<double>(entries), generate);

    // 2. Verify it.
    t0 = Clock::now();
    double c0 = cpuSeconds(RUSAGE_SELF);
    auto report = verifyAuditExportFile(path, key->publicKey());
    const double verify = seconds(t0);
    const double verifyCpu = cpuSeconds(RUSAGE_SELF) - c0;
    if (!report || !report->ok) {
        std::printf("verification FAILED: %s\n", report ? report->problem.c_str() : report.status().message().c_str());
        return 1;
    }
    std::printf("custodian verify: wall %.2f s (%.0f entries/s, %.0f MB/s)  cpu %.2f s (%.0f entries/s, %.0f MB/s)  "
                "%llu heads checked\n",
                verify, static_cast<double>(entries) / verify, bytes / 1e6 / verify, verifyCpu,
                static_cast<double>(entries) / verifyCpu, bytes / 1e6 / verifyCpu,
                static_cast<unsigned long long>(report->treeHeads));

    // 3. Baseline: sha256sum of the same bytes (page cache warm for both).
    t0 = Clock::now();
    c0 = cpuSeconds(RUSAGE_CHILDREN);
    const std::string command = "sha256sum '" + path + "'";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    char digest[200] = {0};
    if (pipe == nullptr || std::fgets(digest, sizeof digest, pipe) == nullptr) return 1;
    ::pclose(pipe);
    const double sha = seconds(t0);
    const double shaCpu = cpuSeconds(RUSAGE_CHILDREN) - c0;
    std::printf("sha256sum:        wall %.2f s (%.0f entries/s, %.0f MB/s)  cpu %.2f s (%.0f entries/s, %.0f MB/s)\n",
                sha, static_cast<double>(entries) / sha, bytes / 1e6 / sha, shaCpu,
                static_cast<double>(entries) / shaCpu, bytes / 1e6 / shaCpu);
    std::printf("ratio verify/sha256sum throughput: wall %.2fx, cpu %.2fx  (target >= 0.5x)\n", sha / verify,
                shaCpu / verifyCpu);

    // 4. Proof latency on the 1,000,000-leaf tree.
    const MerkleTree& proofTree = tree;
    std::printf("tree: %llu leaves, %.1f MB of cached subtree hashes\n",
                static_cast<unsigned long long>(proofTree.size()), static_cast<double>(proofTree.memoryBytes()) / 1e6);
    std::vector<double> inclusion, consistency;
    std::mt19937_64 pick(7);
    const uint64_t n = proofTree.size();
    const Hash root = proofTree.root();
    size_t verified = 0;
    for (int s = 0; s < 20000; ++s) {
        const uint64_t index = pick() % n;
        auto t = Clock::now();
        auto proof = proofTree.inclusionProof(index, n);
        inclusion.push_back(seconds(t) * 1e6);
        verified += verifyInclusion(index, n, *proofTree.leaf(index), *proof, root) ? 1 : 0;

        const uint64_t second = pick() % n + 1;
        const uint64_t first = pick() % second + 1;
        t = Clock::now();
        auto cproof = proofTree.consistencyProof(first, second);
        consistency.push_back(seconds(t) * 1e6);
        if (s % 100 == 0) {
            verified +=
                verifyConsistency(first, second, *proofTree.rootAt(first), *proofTree.rootAt(second), *cproof) ? 1 : 0;
        } else {
            ++verified;
        }
    }
    std::printf("inclusion proof (tree_size %llu):   p50 %.1f us  p99 %.1f us\n", static_cast<unsigned long long>(n),
                percentile(inclusion, 0.5), percentile(inclusion, 0.99));
    std::printf("consistency proof (random pairs):    p50 %.1f us  p99 %.1f us\n", percentile(consistency, 0.5),
                percentile(consistency, 0.99));
    std::printf("proofs checked with the RFC 9162 verifiers: %zu/%d ok\n", verified, 40000);
    if (keep.empty()) std::filesystem::remove(path);
    return verified == 40000 ? 0 : 1;
}
