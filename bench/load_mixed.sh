#!/usr/bin/env bash
# Mixed load on a real `custodian serve` (not part of ops/test): a throwaway PostgreSQL cluster,
# the demo agency database (ops/demo/hospital.sql) plus a 2,000-row copy of it for small extracts,
# demo-like principals, source, datasets and policies, then `wrk` with bench/load_mixed.lua
# (catalog, audit tree head, small sealed extracts, healthz, metrics) for SECONDS. Meanwhile the
# gateway's resident memory is sampled every few seconds. Prints requests/s, p50/p99, responses by
# status (only deliberate 429 rate_limited / 503 overloaded are allowed), RSS at start / max / end
# with its trend, and verifies the audit log written under load (custodian audit verify).
#
#   bench/load_mixed.sh [SECONDS]        default 180
#
# Environment: CUSTODIAN (the binary; default build/release/gateway/custodian), CONNECTIONS (32),
# WRK_THREADS (2), SAMPLE_EVERY (seconds, 5), WARMUP (seconds, 10), RATE_LIMIT (requests/s per
# principal, 2000), BURST (4000), MAX_EXTRACTS (limits.max_inflight_extracts, 4), POOL (8),
# LOAD_ONLY (`catalog`: only audited GET /v1/catalog reads, for the audited-read throughput).
# Audited-read throughput, as in docs/audit.md:
#   POOL=4 LOAD_ONLY=catalog RATE_LIMIT=1000000 BURST=1000000 WARMUP=5 bench/load_mixed.sh 20
# Exit status 1 if any other error happened, or the audit log does not verify.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-180}
bin=${CUSTODIAN:-$root/build/release/gateway/custodian}
connections=${CONNECTIONS:-32}
wrk_threads=${WRK_THREADS:-2}
every=${SAMPLE_EVERY:-5}
warmup=${WARMUP:-10}
case "$seconds" in ''|*[!0-9]*) echo "usage: bench/load_mixed.sh [SECONDS]" >&2; exit 2 ;; esac
for tool in wrk curl psql python3; do
  command -v "$tool" >/dev/null || { echo "bench/load_mixed.sh: needs $tool" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/load_mixed.sh: no gateway binary at $bin (set CUSTODIAN)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/custodian-load.XXXXXX)
chmod 755 "$tmp"
server=""
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  ops/pg destroy "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== set-up ($(date -u +%H:%M:%S) UTC): $(uptime)"
admin_ci=$(ops/pg start "$tmp/pg")
psql "$admin_ci" -qtA -v ON_ERROR_STOP=1 -c "CREATE DATABASE custodian" -c "CREATE DATABASE agency"
gateway_ci=${admin_ci/dbname=postgres/dbname=custodian}
# Two roles (docs/operations.md, "Database roles"): `migrate` applies the schema as the owner (the
# cluster's superuser here) and grants the runtime role `custodian_runtime`, which `serve` runs as.
runtime_ci=$(ops/pg role "$tmp/pg" custodian_runtime)
gateway_runtime_ci=${runtime_ci/dbname=postgres/dbname=custodian}
agency_ci=${admin_ci/dbname=postgres/dbname=agency}
sock_dir=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$admin_ci")  # the only allowed source endpoint
psql "$agency_ci" -q -v ON_ERROR_STOP=1 -f ops/demo/hospital.sql >/dev/null
psql "$agency_ci" -q -v ON_ERROR_STOP=1 -c \
  "CREATE TABLE hospital.visits_small AS SELECT * FROM hospital.visits WHERE visit_id <= 2000;
   ALTER TABLE hospital.visits_small ADD PRIMARY KEY (visit_id); ANALYZE hospital.visits_small;"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
cat >"$tmp/custodian.json" <<JSON
{
  "listen": { "address": "127.0.0.1", "port": $port },
  "threads": 2,
  "database": { "conninfo": "$gateway_runtime_ci", "owner_conninfo": "$gateway_ci", "pool_size": ${POOL:-8} },
  "keys": { "signing_key_file": "$tmp/gateway.key", "master_key_file": "$tmp/master.key" },
  "limits": { "rate_limit": { "requests_per_second": ${RATE_LIMIT:-2000}, "burst": ${BURST:-4000} },
              "max_inflight_extracts": ${MAX_EXTRACTS:-4}, "max_inflight_extracts_per_principal": ${MAX_EXTRACTS:-4} },
  "log": { "access_log": false },
  "sources": { "allowed_hosts": ["$sock_dir"] },
  "shutdown": { "deadline_ms": 10000 }
}
JSON
"$bin" migrate --config "$tmp/custodian.json" >/dev/null 2>&1
"$bin" keygen --out "$tmp/partner" >/dev/null
add() { "$bin" principal add --config "$tmp/custodian.json" "$@" 2>/dev/null; }
publisher=$(add --role publisher --name health-publisher --agency health)
partner=$(add --role partner --name load.partner --public-key "$tmp/partner.pub")
auditor=$(add --role auditor --name load-auditor)

"$bin" serve --config "$tmp/custodian.json" 2>"$tmp/gateway.log" &
server=$!
for _ in $(seq 1 150); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$tmp/gateway.log" >&2; echo "bench/load_mixed.sh: the gateway exited" >&2; exit 1; }
  sleep 0.2
done
curl -fs "$url/v1/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["public_key"])' >"$tmp/gateway.pub"

# The demo source, the demo dataset and a small one on the 2,000-row copy, with the demo policy
# (the load partner as recipient, no daily extract limit).
python3 - "$agency_ci" "$tmp" <<'PY'
import json, sys
agency_ci, tmp = sys.argv[1], sys.argv[2]
json.dump({"agency": "health", "conninfo": agency_ci}, open(f"{tmp}/source.json", "w"))
dataset = json.load(open("ops/demo/dataset.json"))
json.dump(dataset, open(f"{tmp}/dataset.json", "w"))
dataset["table"] = "hospital.visits_small"
json.dump(dataset, open(f"{tmp}/dataset-small.json", "w"))
for name in ("hospital_visits", "hospital_visits_small"):
    policy = json.load(open("ops/demo/policy-research.json"))
    policy["dataset"] = name
    policy["recipients"] = ["load.partner"]
    policy.pop("limits", None)
    policy.pop("$comment", None)
    json.dump(policy, open(f"{tmp}/policy-{name}.json", "w"))
PY
api() { # METHOD PATH BODY-FILE
  local code
  code=$(curl -s -o "$tmp/response.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $publisher" \
         -H 'Content-Type: application/json' --data-binary @"$3" "$url$2")
  case "$code" in 2??) ;; *) echo "bench/load_mixed.sh: $1 $2 -> $code: $(cat "$tmp/response.json")" >&2; exit 1 ;; esac
}
api PUT /v1/sources/health_agency_db "$tmp/source.json"
api PUT /v1/datasets/hospital_visits "$tmp/dataset.json"
api PUT /v1/datasets/hospital_visits_small "$tmp/dataset-small.json"
api PUT /v1/datasets/hospital_visits/policies/research "$tmp/policy-hospital_visits.json"
api PUT /v1/datasets/hospital_visits_small/policies/research "$tmp/policy-hospital_visits_small.json"

export LOAD_PARTNER=$partner LOAD_AUDITOR=$auditor
export LOAD_EXTRACT_BODY='{"dataset":"hospital_visits_small","policy":"research","purpose":"public-health-research","format":"csv"}'
# One extract by hand first: the workload must be able to succeed.
code=$(curl -s -o "$tmp/extract.bin" -w '%{http_code}' -X POST -H "Authorization: Bearer $partner" \
       -H 'Content-Type: application/json' --data-binary "$LOAD_EXTRACT_BODY" "$url/v1/extracts")
[ "$code" = 200 ] || { echo "bench/load_mixed.sh: the small extract fails ($code): $(head -c 300 "$tmp/extract.bin")" >&2; exit 1; }
echo "small extract: $(stat -c %s "$tmp/extract.bin") bytes (sealed CSV of hospital_visits_small)"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
echo "RSS after set-up: $(( $(rss_kb) / 1024 )) MB"
wrk -t"$wrk_threads" -c"$connections" -d"${warmup}s" --timeout 10s -s bench/load_mixed.lua "$url" >"$tmp/warmup.txt" 2>&1 || true
echo "RSS after ${warmup} s warm-up: $(( $(rss_kb) / 1024 )) MB"

(
  start=$(date +%s)
  while kill -0 "$server" 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(rss_kb)"
    sleep "$every"
  done
) >"$tmp/rss.txt" &
sampler=$!

echo "== load ($(date -u +%H:%M:%S) UTC): wrk -t$wrk_threads -c$connections -d${seconds}s --timeout 10s -s bench/load_mixed.lua $url"
wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" --timeout 10s -s bench/load_mixed.lua "$url" | tee "$tmp/wrk.txt"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""
echo "$(( seconds + 1 )) $(rss_kb)" >>"$tmp/rss.txt"
echo "== after the load ($(date -u +%H:%M:%S) UTC): $(uptime)"

# Resident memory: start, max, end, and the least-squares trend over the run.
awk -v every="$every" '
  { t[NR] = $1; r[NR] = $2 / 1024; if (NR == 1 || r[NR] > max) max = r[NR]; sx += $1; sy += r[NR]; n = NR }
  END {
    mx = sx / n; my = sy / n
    for (i = 1; i <= n; i++) { sxy += (t[i] - mx) * (r[i] - my); sxx += (t[i] - mx) ^ 2 }
    slope = sxx > 0 ? sxy / sxx * 60 : 0
    printf "RSS: start %.1f MB, max %.1f MB, end %.1f MB over %d samples (every %s s); trend %+.2f MB/min\n",
           r[1], max, r[n], n, every, slope
    line = "RSS samples (MB):"
    for (i = 1; i <= n; i++) line = line sprintf(" %.0f", r[i])
    print line
  }' "$tmp/rss.txt"

sleep 1  # extracts cut off by the end of wrk release their slots once their next write fails
curl -s "$url/metrics" >"$tmp/metrics.txt"
grep -E '^custodian_(overload_refusals_total|extracts_in_flight|audit_(entries_committed|commits|failed_entries)_total|db_pool_connections)' "$tmp/metrics.txt" || true
# What the audit log's in-memory Merkle tree holds after the run: the roots of blocks of 1024
# entries (64 B each) and the last block's nodes — not a per-entry cost (docs/audit.md).
awk '/^custodian_audit_entries_committed_total / {
       printf "in-memory Merkle tree: %d entries -> %d block roots x 64 B = %.2f MB\n", $2, $2 / 1024, ($2 / 1024) * 64 / 1048576 }' \
  "$tmp/metrics.txt"

status=0
if ! grep -q '^LOAD_RESULT undeliberate=0 socket=0$' "$tmp/wrk.txt"; then
  echo "FAILED: errors other than deliberate 429/503 (see above)"
  status=1
fi
if "$bin" audit verify --url "$url" --token "$auditor" --gateway-key "$tmp/gateway.pub" >"$tmp/verify.txt" 2>&1; then
  echo "audit log: $(tail -n 1 "$tmp/verify.txt")"
else
  cat "$tmp/verify.txt"
  echo "FAILED: the audit log written under load does not verify"
  status=1
fi
exit $status
