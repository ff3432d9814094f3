#!/usr/bin/env bash
# Whole-process figures for `custodian anonymize` on UCI Adult itself (`adult`) and on Adult
# resamples of N rows (rows drawn with replacement from Adult with a fixed seed, ages jittered by
# ±2 years so the table is not just 33 copies of Adult): wall time, user time and peak RSS (GNU
# time) for global recoding (adult.json, k = 5, 9 QIs, 0% suppression) and Mondrian (k = 10, the 8
# quasi-identifiers of adult-mondrian.json: age, workclass, education, marital-status, occupation,
# race, sex, native-country) in its four variants, strict / relaxed x "categorical_release"
# hierarchy_node / value_set, plus `wc -l` over the same file as a baseline for reading the bytes.
# Every Mondrian output is scored by an evaluator of its own (bench/ncp.py: NCP / GCP counted on
# the released CSV against the input, hierarchies read from the ARX files; classes, smallest class
# and discernibility from the released label tuples).
#
# independent:N draws every column of a row from a different Adult row (the product of the
# marginals: far more distinct combinations, the harder case for utility).
#
#   bench/anonymize_cli.sh [adult|ROWS|independent:ROWS...]     default: adult 1000000 independent:1000000
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CUSTODIAN:-build/release/gateway/custodian}
adult=${CUSTODIAN_ADULT_DIR:-data/adult}
rows=("$@"); [ ${#rows[@]} -gt 0 ] || rows=(adult 1000000 independent:1000000)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

# Policies pointing at the shipped hierarchies: adult.json, and adult-mondrian.json in four variants.
python3 - "$tmp" "$adult" <<'PY'
import json, os, sys
tmp, adult = sys.argv[1], os.path.abspath(sys.argv[2])
for name in ("adult.json", "adult-mondrian.json"):
    p = json.load(open(os.path.join("policies/examples", name)))
    for c in p["columns"]:
        h = c.get("hierarchy")
        if h and "file" in h:
            h["file"] = os.path.join(adult, os.path.basename(h["file"]))
    if name == "adult.json":
        json.dump(p, open(os.path.join(tmp, name), "w"))
        continue
    for mode in ("strict", "relaxed"):
        for release, short in (("hierarchy_node", "nodes"), ("value_set", "sets")):
            p["algorithm"] = {"name": "mondrian", "mode": mode, "categorical_release": release}
            json.dump(p, open(os.path.join(tmp, "adult-mondrian-%s-%s.json" % (short, mode)), "w"))
PY

for n in "${rows[@]}"; do
  if [ "$n" = adult ]; then
    cp "$adult/adult.csv" "$tmp/in.csv"
    label="UCI Adult, $(($(wc -l < "$tmp/in.csv") - 1)) rows"
  else
    independent=0
    case "$n" in independent:*) independent=1; n=${n#independent:} ;; esac
    python3 - "$adult/adult.csv" "$tmp/in.csv" "$n" "$independent" <<'PY'
import random, sys
src, dst, n, independent = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
lines = open(src, newline="").read().splitlines()
header, body = lines[0], [l.split(";") for l in lines[1:]]
rng = random.Random(20261127)
with open(dst, "w", newline="") as out:
    out.write(header + "\r\n")
    for _ in range(n):
        if independent:
            r = [rng.choice(body)[c] for c in range(len(body[0]))]
        else:
            r = list(rng.choice(body))
            r[1] = str(min(90, max(17, int(r[1]) + rng.randint(-2, 2))))
        out.write(";".join(r) + "\r\n")
PY
    if [ "$independent" = 1 ]; then label="$n rows, Adult columns drawn independently, CRLF"
    else label="$n rows, Adult resample, CRLF"; fi
  fi
  echo "== $label ($(du -h "$tmp/in.csv" | cut -f1) CSV)"
  /usr/bin/time -f "baseline wc -l: %e s wall, %M KiB peak RSS" wc -l "$tmp/in.csv" >/dev/null
  for policy in adult.json adult-mondrian-nodes-strict.json adult-mondrian-nodes-relaxed.json \
                adult-mondrian-sets-strict.json adult-mondrian-sets-relaxed.json; do
    /usr/bin/time -f "custodian anonymize $policy: %e s wall, %U s user, %M KiB peak RSS" \
      "$bin" anonymize --policy "$tmp/$policy" --in "$tmp/in.csv" --out "$tmp/out.csv" --report "$tmp/report.json"
    case $policy in adult-mondrian*) python3 bench/ncp.py "$tmp/$policy" "$tmp/in.csv" "$tmp/out.csv" ;; esac
  done
done
