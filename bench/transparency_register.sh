#!/usr/bin/env bash
# The cost of the public transparency register (docs/transparency.md) on a large audit log, next to
# reading the same entries with psql (not part of ops/test). A throwaway cluster, a real
# `custodian serve`, the demo-like catalog (one dataset, one public policy) registered through the
# API, then ENTRIES synthetic audit entries appended in SQL the way the gateway stores them
# (canonical bytes, leaf hash), one in every EVERY an `extract.completed` of the public policy, the
# others `catalog.get` reads, spread over twelve months. The gateway restarts (its start-up check
# re-hashes the whole log), signs a tree head over it, and the register is fetched:
#
#   bench/transparency_register.sh [ENTRIES] [EVERY]     defaults 1000000 and 100 (10,000 releases)
#
# Environment: CUSTODIAN (the binary; default build/release/gateway/custodian), REPEAT (5).
# Prints: the first GET /v1/transparency after the head (the register is built: the releases read
# through the action index, one inclusion proof per release) and the median of REPEAT later ones
# (shared until the next head), the JSON's size, GET /transparency (HTML), and psql reading the
# same entries' bytes (the floor of any register derived from the log).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
entries=${1:-1000000}
every=${2:-100}
repeat=${REPEAT:-5}
bin=${CUSTODIAN:-$root/build/release/gateway/custodian}
case "$entries$every" in ''|*[!0-9]*) echo "usage: bench/transparency_register.sh [ENTRIES] [EVERY]" >&2; exit 2 ;; esac
for tool in curl psql python3; do
  command -v "$tool" >/dev/null || { echo "bench/transparency_register.sh: needs $tool" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/transparency_register.sh: no gateway binary at $bin (set CUSTODIAN)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/custodian-register.XXXXXX)
chmod 755 "$tmp"
server=""
stop_server() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
}
cleanup() { stop_server; ops/pg destroy "$tmp/pg" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

echo "== set-up ($(date -u +%H:%M:%S) UTC): $(uptime)"
admin_ci=$(ops/pg start "$tmp/pg")
psql "$admin_ci" -qtA -v ON_ERROR_STOP=1 -c "CREATE DATABASE custodian" -c "CREATE DATABASE agency"
gateway_ci=${admin_ci/dbname=postgres/dbname=custodian}
runtime_ci=$(ops/pg role "$tmp/pg" custodian_runtime)
gateway_runtime_ci=${runtime_ci/dbname=postgres/dbname=custodian}
agency_ci=${admin_ci/dbname=postgres/dbname=agency}
sock_dir=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$admin_ci")
psql "$agency_ci" -q -v ON_ERROR_STOP=1 -c \
  "CREATE TABLE visits AS SELECT g AS id, 18 + g % 70 AS age, (ARRAY['F','M'])[1 + g % 2] AS sex FROM generate_series(1, 1000) g"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
cat >"$tmp/custodian.json" <<JSON
{
  "listen": { "address": "127.0.0.1", "port": $port },
  "threads": 2,
  "database": { "conninfo": "$gateway_runtime_ci", "owner_conninfo": "$gateway_ci", "pool_size": 4 },
  "keys": { "signing_key_file": "$tmp/gateway.key", "master_key_file": "$tmp/master.key" },
  "log": { "access_log": false },
  "audit": { "tree_head_interval_ms": 200 },
  "sources": { "allowed_hosts": ["$sock_dir"] }
}
JSON
"$bin" migrate --config "$tmp/custodian.json" >/dev/null 2>&1
"$bin" keygen --out "$tmp/partner" >/dev/null
add() { "$bin" principal add --config "$tmp/custodian.json" "$@"; }
publisher=$(add --role publisher --name bench-publisher --agency health)
add --role partner --name partner-a --agency "Institute of Epidemiology" --public-key "$tmp/partner.pub" >/dev/null

serve() {
  "$bin" serve --config "$tmp/custodian.json" 2>>"$tmp/gateway.log" &
  server=$!
  for _ in $(seq 1 600); do
    curl -fs "$url/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || { cat "$tmp/gateway.log" >&2; echo "bench: the gateway exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench: the gateway did not become ready" >&2
  exit 1
}
serve
python3 - "$agency_ci" "$tmp" <<'PY'
import json, sys
agency_ci, tmp = sys.argv[1], sys.argv[2]
json.dump({"conninfo": agency_ci}, open(f"{tmp}/source.json", "w"))
columns = [{"name": "id", "type": "integer", "role": "identifier"},
           {"name": "age", "type": "integer", "role": "quasi_identifier"},
           {"name": "sex", "type": "text", "role": "quasi_identifier"}]
json.dump({"source": "agency", "table": "visits", "columns": columns,
           "description": "Synthetic visits for the register benchmark"}, open(f"{tmp}/dataset.json", "w"))
json.dump({"dataset": "visits", "recipients": ["partner-a"], "purposes": ["research"], "transparency": "public",
           "columns": [dict(columns[0], transform={"name": "drop"}),
                       dict(columns[1], hierarchy={"builder": "intervals", "widths": [10, 20]}),
                       dict(columns[2], hierarchy={"builder": "groups", "levels": [{"*": ["F", "M"]}]})],
           "privacy": {"k": 5}}, open(f"{tmp}/policy.json", "w"))
PY
api() { # METHOD PATH BODY-FILE
  local code
  code=$(curl -s -o "$tmp/response.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $publisher" \
         -H 'Content-Type: application/json' --data-binary @"$3" "$url$2")
  case "$code" in 2??) ;; *) echo "bench: $1 $2 -> $code: $(cat "$tmp/response.json")" >&2; exit 1 ;; esac
}
api PUT /v1/sources/agency "$tmp/source.json"
api PUT /v1/datasets/visits "$tmp/dataset.json"
api PUT /v1/datasets/visits/policies/research "$tmp/policy.json"
sleep 0.5  # a head over the catalog's entries
stop_server

# The synthetic entries, canonical bytes as the gateway writes them (members sorted, no spaces).
t0=$(date +%s.%N)
psql "$gateway_ci" -q -v ON_ERROR_STOP=1 <<SQL
SET ROLE NONE;
WITH first AS (SELECT next_index AS n FROM audit_log_head),
rows AS (
  SELECT f.n + g AS i, g,
         1767225600000::bigint + g::bigint * (365::bigint * 86400000 / $entries) AS t,
         g % $every = 0 AS released
  FROM first f, generate_series(0, $entries - 1) AS g
),
bytes AS (
  SELECT i, t, released, convert_to(CASE WHEN released THEN
    format('{"action":"extract.completed","actor":"partner-a","client_address":"192.0.2.7","decision":"completed","details":{"extract_id":"%s","rows_released":%s},"index":%s,"purpose":"research","reason":null,"request_id":"req-%s","role":"partner","target":{"dataset":"visits","policy":"research","policy_version":1,"source":null},"time_ms":%s}',
           md5(i::text), 900 + i % 200, i, i, t)
  ELSE
    format('{"action":"catalog.get","actor":"partner-a","client_address":"192.0.2.7","decision":"allowed","details":{},"index":%s,"purpose":null,"reason":null,"request_id":"req-%s","role":"partner","target":{"dataset":null,"policy":null,"policy_version":null,"source":null},"time_ms":%s}',
           i, i, t)
  END, 'UTF8') AS e
  FROM rows
)
INSERT INTO audit_entries (entry_index, entry, leaf_hash, recorded_at, actor, role, action, dataset, decision)
SELECT i, e, sha256('\x00'::bytea || e), to_timestamp(t / 1000.0), 'partner-a', 'partner',
       CASE WHEN released THEN 'extract.completed' ELSE 'catalog.get' END,
       CASE WHEN released THEN 'visits' END, CASE WHEN released THEN 'completed' ELSE 'allowed' END
FROM bytes;
UPDATE audit_log_head SET next_index = (SELECT max(entry_index) + 1 FROM audit_entries);
VACUUM ANALYZE audit_entries;
SQL
total=$(psql "$gateway_ci" -qtA -c "SELECT next_index FROM audit_log_head")
released=$(psql "$gateway_ci" -qtA -c "SELECT count(*) FROM audit_entries WHERE action = 'extract.completed'")
printf 'log: %s entries (%s synthetic, appended in %.0f s), %s extract.completed\n' \
  "$total" "$entries" "$(python3 -c "print($(date +%s.%N) - $t0)")" "$released"

serve
for _ in $(seq 1 300); do
  [ "$(psql "$gateway_ci" -qtA -c "SELECT coalesce(max(tree_size), 0) FROM audit_tree_heads")" = "$total" ] && break
  sleep 0.1
done
grep -o 'audit log checked at start: [^,]*, [^)]*)' "$tmp/gateway.log" | tail -1 | sed 's/^/gateway /'

ms() { python3 -c "print('%.0f' % ($1 * 1000))"; }
read -r code first size < <(curl -s -o "$tmp/register.json" -w '%{http_code} %{time_total} %{size_download}\n' "$url/v1/transparency")
[ "$code" = 200 ] || { echo "bench: GET /v1/transparency -> $code: $(head -c 300 "$tmp/register.json")" >&2; exit 1; }
python3 - "$tmp/register.json" "$released" <<'PY'
import json, sys
reg = json.load(open(sys.argv[1]))
counted = sum(m["releases"] for d in reg["datasets"] for p in d["policies"] for m in p["months"])
assert counted == int(sys.argv[2]), (counted, sys.argv[2])
print(f"register: tree size {reg['tree_head']['tree_size']}, {counted} releases counted in "
      f"{sum(len(p['months']) for d in reg['datasets'] for p in d['policies'])} months")
PY
later=()
for _ in $(seq 1 "$repeat"); do
  later+=("$(curl -s -o /dev/null -w '%{time_total}' "$url/v1/transparency")")
done
html=$(curl -s -o "$tmp/register.html" -w '%{time_total} %{size_download}' "$url/transparency")
median() { python3 -c 'import sys, statistics; print("%.0f" % (statistics.median(float(x) for x in sys.argv[1:]) * 1000))' "$@"; }
psql_times=()
for _ in $(seq 1 "$repeat"); do
  psql_times+=("$(psql "$gateway_ci" -qtA -c '\timing on' \
    -c "\\copy (SELECT entry FROM audit_entries WHERE action = 'extract.completed' AND decision = 'completed') TO '/dev/null'" \
    | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | python3 -c 'import sys; print(float(sys.stdin.read()) / 1000)')")
done
echo
printf 'GET /v1/transparency, first after the head (builds the register): %s ms, %s bytes\n' "$(ms "$first")" "$size"
printf 'GET /v1/transparency, later (shared until the next head), median of %s: %s ms\n' "$repeat" "$(median "${later[@]}")"
printf 'GET /transparency (HTML): %s ms, %s bytes\n' "$(ms "${html% *}")" "${html#* }"
printf 'psql \\copy of the same %s entries, median of %s: %s ms\n' "$released" "$repeat" "$(median "${psql_times[@]}")"
