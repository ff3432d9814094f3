#!/usr/bin/env python3
"""Runs a peer implementation, qiyuangong/Mondrian (Python, https://github.com/qiyuangong/Mondrian),
on the same input and quasi-identifiers as Custodian, so that one evaluator (bench/ncp.py) scores
both. The peer's code is not part of Custodian: check it out anywhere outside the project tree and
pass its directory.

    bench/peer_mondrian.py PEER_DIR IN.csv OUT.csv strict|relaxed
    bench/ncp.py POLICY.json IN.csv OUT.csv      # POLICY: adult-mondrian.json with value sets

IN.csv is Custodian's Adult layout (data/adult/adult.csv, ';'-separated, with a header). The eight
quasi-identifiers of issue 21 are handed to the peer's mondrian(data, k=10, relax) unchanged: age
as a number, every categorical attribute as codes in order of first appearance (as the peer's own
Adult reader does). Its release is written as CSV the evaluator reads: age as [lo-hi] (or a
number), a categorical cell as the set of values its code range covers (a|b|c), then salary-class.
Prints the peer's own NCP, its partitioning time, the whole run's time and peak RSS.
"""
import csv, os, resource, sys, time

started = time.time()
peer_dir, src, dst, mode = sys.argv[1:5]
sys.path.insert(0, os.path.abspath(peer_dir))
from mondrian import mondrian  # noqa: E402  (the peer's module, from its own checkout)

QIS = ["age", "workclass", "education", "marital-status", "occupation", "race", "sex", "native-country"]
with open(src, newline="") as f:
    r = csv.reader(f, delimiter=";")
    header = next(r)
    rows = [x for x in r if x]
idx = [header.index(q) for q in QIS]
sal = header.index("salary-class")
order = [dict() for _ in QIS]
names = [list() for _ in QIS]
data = []
for x in rows:
    rec = []
    for i, c in enumerate(idx):
        v = x[c]
        if i == 0:
            rec.append(int(v))
            continue
        if v not in order[i]:
            order[i][v] = len(names[i])
            names[i].append(v)
        rec.append(order[i][v])
    rec.append(x[sal])
    data.append(rec)
result, (ncp, rtime) = mondrian(data, 10, mode == "relaxed")
with open(dst, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(QIS + ["salary-class"])
    for rec in result:
        out = []
        for i in range(len(QIS)):
            v = str(rec[i])
            if i == 0:
                out.append("[%s-%s]" % tuple(v.split("~")) if "~" in v else v)
            elif "~" in v:
                lo, hi = map(int, v.split("~"))
                out.append("|".join(names[i][j] for j in range(lo, hi + 1)))
            else:
                out.append(names[i][int(v)])
        out.append(rec[-1])
        w.writerow(out)
print("peer qiyuangong %s: own NCP %.2f %%, partitioning %.2f s, whole run %.2f s, peak RSS %d MB" % (
    mode, ncp, rtime, time.time() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024))
