// Keyed-transform figures: `pseudonymize` over 1,000,000 integer identifiers (7-digit values, as
// `bench_extract`'s `id` column), through the transform as a release applies it (batches of 8,192
// rows), against two baselines on the same values and key: libsodium's keyed crypto_generichash
// per value (what the transform's digests must equal, bit for bit), and KeyedHasher::hash one value
// at a time (one BLAKE2b compression from the precomputed key block). The transform hashes four
// one-block values at once in AVX2 lanes where the CPU has them (keyed_hash.hpp). Prints the CPU
// time per value (best of 5, robust to other processes on the machine) and checks that the three
// agree on every value.
//
//   build/release/bench/bench_transforms [values]        (default 1000000)
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "anonymizer/table.hpp"
#include "anonymizer/transform.hpp"
#include "anonymizer/transforms/keyed_hash.hpp"
#include "cpu_time.hpp"

using namespace custodian;
using namespace custodian::anon;

namespace {

template <typename F> double bestOf5(F&& f) {
    double best = 1e300;
    for (int run = 0; run < 5; ++run) {
        const double t0 = bench::processCpuSeconds();
        f();
        best = std::min(best, bench::processCpuSeconds() - t0);
    }
    return best;
}

std::string hex(const uint8_t* bytes, size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < size; ++i) {
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 15]);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const long values = argc > 1 ? std::atol(argv[1]) : 1000000;
    if (values <= 0 || !ensureSodium()) {
        std::fprintf(stderr, "usage: bench_transforms [values]\n");
        return 2;
    }
    constexpr size_t kBatchRows = 8192, kDigest = 16;
    std::vector<uint8_t> masterBytes(MasterKey::kBytes, 42);
    auto master = MasterKey::fromBytes(masterBytes);
    const KeyScope scope{kCurrentKeyDerivation, "benefits", "bench", "bench-partner"};
    auto hasher = KeyedHasher::derive(*master, kPseudonymKdfContext, scope);
    auto schema = Schema::make({{"id", ColumnType::Integer}});
    if (!master || !hasher || !schema) return 1;
    const auto schemaPtr = std::make_shared<const Schema>(std::move(schema).value());
    TransformContext context;
    context.keyScope = scope;
    context.masterKey = &*master;
    auto transform = builtinTransforms().create("pseudonymize", {}, context, ColumnType::Integer);
    if (!transform) {
        std::fprintf(stderr, "bench_transforms: %s\n", transform.status().message().c_str());
        return 1;
    }
    // The identifiers, as batches and as their canonical texts.
    std::vector<Batch> batches;
    std::vector<std::string> texts;
    for (long first = 0; first < values; first += static_cast<long>(kBatchRows)) {
        auto column = std::make_shared<Column>(ColumnType::Integer);
        for (long v = first; v < std::min(values, first + static_cast<long>(kBatchRows)); ++v) {
            column->appendInteger(1000000 + v);
            texts.push_back(std::to_string(1000000 + v));
        }
        auto batch = Batch::make(schemaPtr, {column});
        if (!batch) return 1;
        batches.push_back(std::move(batch).value());
    }
    uint8_t key[crypto_generichash_KEYBYTES];
    if (crypto_kdf_derive_from_key(key, sizeof key, releaseSubkeyId(scope), kPseudonymKdfContext, master->data()) != 0)
        return 1;

    std::vector<ColumnPtr> released;
    const double transformCpu = bestOf5([&] {
        released.clear();
        for (const Batch& batch : batches) {
            auto out = (*transform)->apply(batch, 0);
            if (!out) std::exit(1);
            released.push_back(std::move(out).value());
        }
    });
    std::vector<uint8_t> ours(texts.size() * kDigest), theirs(texts.size() * kDigest);
    std::vector<std::string_view> views(texts.begin(), texts.end());
    const double manyCpu = bestOf5([&] {
        for (size_t first = 0; first < views.size(); first += kBatchRows) {
            const size_t n = std::min(kBatchRows, views.size() - first);
            hasher->hashMany({views.data() + first, n}, kDigest, ours.data() + first * kDigest);
        }
    });
    const double oneAtATimeCpu = bestOf5([&] {
        for (size_t i = 0; i < texts.size(); ++i) hasher->hash(texts[i], {ours.data() + i * kDigest, kDigest});
    });
    const double sodiumCpu = bestOf5([&] {
        for (size_t i = 0; i < texts.size(); ++i)
            crypto_generichash(theirs.data() + i * kDigest, kDigest, reinterpret_cast<const uint8_t*>(texts[i].data()),
                               texts[i].size(), key, sizeof key);
    });
    sodium_memzero(key, sizeof key);
    size_t disagree = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        const std::string expected = hex(theirs.data() + i * kDigest, kDigest);
        const std::string_view pseudonym = released[i / kBatchRows]->text(i % kBatchRows);
        if (pseudonym != expected || hex(ours.data() + i * kDigest, kDigest) != expected) ++disagree;
    }
    const double n = static_cast<double>(values);
    std::printf("pseudonymize, %ld integer identifiers (7 digits), 16-byte digests, hex; CPU time, best of 5:\n",
                values);
    auto line = [&](const char* what, double cpu) { std::printf("  %-66s %6.1f ns a value\n", what, cpu / n * 1e9); };
    line("the transform (batches of 8,192; hex text columns out)", transformCpu);
    line("KeyedHasher::hashMany alone (four a compression with AVX2)", manyCpu);
    line("KeyedHasher::hash, one value at a time (one compression)", oneAtATimeCpu);
    line("baseline: libsodium crypto_generichash, keyed (two compressions)", sodiumCpu);
    std::printf("  digests equal to libsodium's: %s (%zu of %ld differ)\n", disagree == 0 ? "yes" : "NO", disagree,
                values);
    return disagree == 0 ? 0 : 1;
}
