#!/usr/bin/env bash
# Whole-process figures for `custodian anonymize` on Adult-like synthetic tables (rows drawn with
# replacement from UCI Adult with a fixed seed, ages jittered by ±2 years so the table is not just
# 33 copies of Adult): wall time and peak RSS (GNU time) for global recoding (adult.json, k = 5,
# 9 QIs, 0% suppression) and Mondrian (adult-mondrian.json, k = 10, 8 QIs), plus `wc -l` and
# `cut` over the same file as a baseline for reading the bytes. Mondrian also runs with value sets
# (adult-mondrian-sets: "categorical_release": "value_set", strict and relaxed), and every Mondrian
# output is scored by an evaluator of its own (bench/ncp.py: NCP / GCP counted on the released CSV
# against the input, hierarchies read from the ARX files; classes and discernibility from the
# released label tuples).
#
#   bench/anonymize_cli.sh [ROWS...]     default: 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CUSTODIAN:-build/release/gateway/custodian}
adult=${CUSTODIAN_ADULT_DIR:-data/adult}
rows=("$@"); [ ${#rows[@]} -gt 0 ] || rows=(1000000)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

# Policies pointing at the shipped hierarchies, with the extended age domain (0..99).
python3 - "$tmp" "$adult" <<'PY'
import json, os, sys
tmp, adult = sys.argv[1], os.path.abspath(sys.argv[2])
for name in ("adult.json", "adult-mondrian.json"):
    p = json.load(open(os.path.join("policies/examples", name)))
    for c in p["columns"]:
        h = c.get("hierarchy")
        if h and "file" in h:
            h["file"] = os.path.join(adult, os.path.basename(h["file"]))
    json.dump(p, open(os.path.join(tmp, name), "w"))
    if name == "adult-mondrian.json":
        for mode in ("strict", "relaxed"):
            p["algorithm"] = {"name": "mondrian", "mode": mode, "categorical_release": "value_set"}
            json.dump(p, open(os.path.join(tmp, "adult-mondrian-sets-%s.json" % mode), "w"))
PY

for n in "${rows[@]}"; do
  python3 - "$adult/adult.csv" "$tmp/in.csv" "$n" <<'PY'
import random, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src, newline="").read().splitlines()
header, body = lines[0], [l.split(";") for l in lines[1:]]
rng = random.Random(20261127)
with open(dst, "w", newline="") as out:
    out.write(header + "\r\n")
    for _ in range(n):
        r = list(rng.choice(body))
        r[1] = str(min(90, max(17, int(r[1]) + rng.randint(-2, 2))))
        out.write(";".join(r) + "\r\n")
PY
  size=$(du -h "$tmp/in.csv" | cut -f1)
  echo "== $n rows ($size CSV, Adult-like, CRLF)"
  /usr/bin/time -f "baseline wc -l:            %e s wall, %M KiB peak RSS" wc -l "$tmp/in.csv" >/dev/null
  for policy in adult.json adult-mondrian.json adult-mondrian-sets-strict.json adult-mondrian-sets-relaxed.json; do
    /usr/bin/time -f "custodian anonymize $policy: %e s wall, %U s user, %M KiB peak RSS" \
      "$bin" anonymize --policy "$tmp/$policy" --in "$tmp/in.csv" --out "$tmp/out.csv" --report "$tmp/report.json"
    case $policy in adult-mondrian*) python3 bench/ncp.py "$tmp/$policy" "$tmp/in.csv" "$tmp/out.csv" ;; esac
  done
done
