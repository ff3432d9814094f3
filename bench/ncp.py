#!/usr/bin/env python3
"""Independent NCP / GCP evaluator (Ghinita et al. 2007) for a Mondrian release of `custodian anonymize`.

    bench/ncp.py POLICY.json INPUT.csv RELEASED.csv

Counts on the bytes of the two files only (no Custodian code): for every quasi-identifier of the
policy, each released cell costs
  - numeric ("[lo-hi]" or a number): (hi - lo) / (largest - smallest input value);
  - categorical: (input values the cell covers - 1) / (distinct input values - 1), where a value set
    "a|b|c" covers its members and any other label covers the input values that have it as a
    hierarchy ancestor (or as themselves);
averaged over rows per attribute, then over attributes. Also prints the released classes (distinct
quasi-identifier tuples), the smallest class and the discernibility (sum of class sizes squared).
"""
import collections, csv, json, os, sys

policy_path, input_path, output_path = sys.argv[1:4]
policy = json.load(open(policy_path))
delimiter = policy.get("input", {}).get("delimiter", ",")
qis = [c for c in policy["columns"] if c.get("role") == "quasi_identifier"]

def rows(path, delim):
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter=delim)
        header = next(reader)
        return header, [r for r in reader if r]

in_header, in_rows = rows(input_path, delimiter)
out_header, out_rows = rows(output_path, ",")
assert len(in_rows) == len(out_rows), "Mondrian releases every row"

total = 0.0
per_attribute = {}
for c in qis:
    name = c["name"]
    values = [r[in_header.index(name)] for r in in_rows]
    released = [r[out_header.index(name)] for r in out_rows]
    present = sorted(set(values))
    if c["type"] in ("integer", "decimal"):
        nums = [float(v) for v in present]
        width = max(nums) - min(nums)
        def cost(label):
            if label.startswith("["):
                lo, hi = label[1:-1].split("-", 1)
                return (float(hi) - float(lo)) / width if width else 0.0
            return 0.0
    else:
        ancestors = collections.defaultdict(set)  # label -> input values under it
        for v in present:
            ancestors[v].add(v)
        if "hierarchy" in c:
            path = c["hierarchy"]["file"]
            if not os.path.isabs(path):
                path = os.path.join(os.path.dirname(policy_path), path)
            for line in open(path, newline=""):
                fields = line.rstrip("\r\n").split(";")
                if fields and fields[0] in ancestors:
                    for a in fields[1:]:
                        ancestors[a].add(fields[0])
        d = len(present)
        def cost(label):
            covered = len(set(label.split("|"))) if "|" in label else len(ancestors[label])
            assert covered >= 1, "label %r covers no input value of %s" % (label, name)
            return (covered - 1) / (d - 1) if d > 1 else 0.0
    memo = {}
    s = 0.0
    for label in released:
        if label not in memo:
            memo[label] = cost(label)
        s += memo[label]
    per_attribute[name] = s / len(released)
    total += per_attribute[name]

classes = collections.Counter(tuple(r[out_header.index(c["name"])] for c in qis) for r in out_rows)
print("  NCP %.4f %% (%s); %d classes, smallest %d, discernibility %d" % (
    100 * total / len(qis), ", ".join("%s %.1f %%" % (k, 100 * v) for k, v in per_attribute.items()),
    len(classes), min(classes.values()), sum(n * n for n in classes.values())))
