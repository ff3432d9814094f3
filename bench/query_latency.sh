#!/usr/bin/env bash
# Latency of differentially private queries (POST /v1/queries, docs/aggregates.md) on a large
# agency table, next to the plain GROUP BY a database user would run in psql on the same table
# (not part of ops/test). A throwaway PostgreSQL cluster, a synthetic benefits table of ROWS rows
# (person_id the primary key, so one row per person; region 12 values, birth_year 80, amount
# 0..4000) plus a copy whose person key is not unique (up to 3 rows per person: the per-person row
# limit runs a window function), a real `custodian serve`, and REPEAT runs of each query.
#
#   bench/query_latency.sh [ROWS]        default 10000000
#
# Environment: CUSTODIAN (the binary; default build/release/gateway/custodian), REPEAT (5).
# Prints, per query: the gateway's median and best wall time (curl, end to end: authentication,
# budget, the GROUP BY in PostgreSQL, noise, the audit entry and the spend committed) and psql's
# median and best for the exact GROUP BY with \timing (for the per-person limit, the same window
# function the gateway runs), and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rows=${1:-10000000}
repeat=${REPEAT:-5}
bin=${CUSTODIAN:-$root/build/release/gateway/custodian}
case "$rows" in ''|*[!0-9]*) echo "usage: bench/query_latency.sh [ROWS]" >&2; exit 2 ;; esac
for tool in curl psql python3; do
  command -v "$tool" >/dev/null || { echo "bench/query_latency.sh: needs $tool" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/query_latency.sh: no gateway binary at $bin (set CUSTODIAN)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/custodian-query.XXXXXX)
chmod 755 "$tmp"
server=""
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  ops/pg destroy "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== set-up ($(date -u +%H:%M:%S) UTC): $(uptime)"
admin_ci=$(ops/pg start "$tmp/pg")
psql "$admin_ci" -qtA -v ON_ERROR_STOP=1 -c "CREATE DATABASE custodian" -c "CREATE DATABASE agency"
gateway_ci=${admin_ci/dbname=postgres/dbname=custodian}
runtime_ci=$(ops/pg role "$tmp/pg" custodian_runtime)
gateway_runtime_ci=${runtime_ci/dbname=postgres/dbname=custodian}
agency_ci=${admin_ci/dbname=postgres/dbname=agency}
sock_dir=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$admin_ci")
t0=$(date +%s)
psql "$agency_ci" -q -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA benefits;
CREATE TABLE benefits.payments AS
SELECT g AS person_id,
       (ARRAY['north','south','east','west','centre','coast','hills','lakes','islands','capital','valley','plain'])[1 + (hashint4(g::int) & 2147483647) % 12] AS region,
       1930 + (hashint4(g::int + 7) & 2147483647) % 80 AS birth_year,
       ((hashint4(g::int + 13) & 2147483647) % 400000) / 100.0 AS amount
FROM generate_series(1, $rows) AS g;
ALTER TABLE benefits.payments ADD PRIMARY KEY (person_id);
CREATE VIEW benefits.payments_shared AS SELECT person_id / 3 AS person_id, region, birth_year, amount FROM benefits.payments;
ANALYZE benefits.payments;
SQL
echo "table: $rows rows in $(( $(date +%s) - t0 )) s"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
cat >"$tmp/custodian.json" <<JSON
{
  "listen": { "address": "127.0.0.1", "port": $port },
  "threads": 2,
  "database": { "conninfo": "$gateway_runtime_ci", "owner_conninfo": "$gateway_ci", "pool_size": 4 },
  "keys": { "signing_key_file": "$tmp/gateway.key", "master_key_file": "$tmp/master.key" },
  "log": { "access_log": false },
  "sources": { "allowed_hosts": ["$sock_dir"] }
}
JSON
"$bin" migrate --config "$tmp/custodian.json" >/dev/null 2>&1
"$bin" keygen --out "$tmp/partner" >/dev/null  # every partner has a key (queries do not use it)
add() { "$bin" principal add --config "$tmp/custodian.json" "$@"; }
publisher=$(add --role publisher --name bench-publisher --agency social)
partner=$(add --role partner --name bench.partner --public-key "$tmp/partner.pub")
"$bin" serve --config "$tmp/custodian.json" 2>"$tmp/gateway.log" &
server=$!
for _ in $(seq 1 150); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$tmp/gateway.log" >&2; echo "bench/query_latency.sh: the gateway exited" >&2; exit 1; }
  sleep 0.2
done

python3 - "$agency_ci" "$tmp" <<'PY'
import json, sys
agency_ci, tmp = sys.argv[1], sys.argv[2]
json.dump({"agency": "social", "conninfo": agency_ci}, open(f"{tmp}/source.json", "w"))
columns = [{"name": "person_id", "type": "integer", "role": "identifier"},
           {"name": "region", "type": "text", "role": "quasi_identifier"},
           {"name": "birth_year", "type": "integer", "role": "quasi_identifier"},
           {"name": "amount", "type": "decimal", "role": "sensitive"}]
regions = ["north", "south", "east", "west", "centre", "coast", "hills", "lakes", "islands", "capital", "valley", "plain"]
policy_columns = [columns[0],
                  dict(columns[1], hierarchy={"builder": "groups", "levels": [{"*": regions}]}),
                  dict(columns[2], hierarchy={"builder": "intervals", "widths": [10, 20], "origin": 1930}),
                  columns[3]]
for name, table, per_person in (("payments", "benefits.payments", 1), ("payments_shared", "benefits.payments_shared", 3)):
    json.dump({"source": "agency", "table": table, "columns": columns}, open(f"{tmp}/dataset-{name}.json", "w"))
    json.dump({"dataset": name, "recipients": ["bench.partner"], "purposes": ["statistics"], "columns": policy_columns,
               "privacy": {"k": 5},
               "aggregates": {"person_key": "person_id", "max_rows_per_person": per_person,
                              "measures": [{"column": "amount", "lower": 0, "upper": 4000}],
                              "group_by": [{"column": "region", "values": regions},
                                           {"column": "birth_year", "values": list(range(1930, 2010))}],
                              "budget": {"epsilon": 100, "period": "lifetime"}}},
              open(f"{tmp}/policy-{name}.json", "w"))
PY
api() { # METHOD PATH BODY-FILE
  local code
  code=$(curl -s -o "$tmp/response.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $publisher" \
         -H 'Content-Type: application/json' --data-binary @"$3" "$url$2")
  case "$code" in 2??) ;; *) echo "bench/query_latency.sh: $1 $2 -> $code: $(cat "$tmp/response.json")" >&2; exit 1 ;; esac
}
api PUT /v1/sources/agency "$tmp/source.json"
for name in payments payments_shared; do
  api PUT "/v1/datasets/$name" "$tmp/dataset-$name.json"
  api PUT "/v1/datasets/$name/policies/stats" "$tmp/policy-$name.json"
done

# median and best of a list of milliseconds
stats() { python3 -c 'import sys, statistics; v=[float(x) for x in sys.argv[1:]]; print("%.0f %.0f" % (statistics.median(v), min(v)))' "$@"; }

gateway_ms() { # DATASET BODY-MEMBERS
  local times=() code t
  for _ in $(seq 1 "$repeat"); do
    read -r code t < <(curl -s -o "$tmp/answer.json" -w '%{http_code} %{time_total}\n' -X POST \
      -H "Authorization: Bearer $partner" -H 'Content-Type: application/json' \
      --data-binary "{\"dataset\":\"$1\",\"policy\":\"stats\",\"purpose\":\"statistics\",$2}" "$url/v1/queries")
    [ "$code" = 200 ] || { echo "bench/query_latency.sh: query failed ($code): $(cat "$tmp/answer.json")" >&2; exit 1; }
    times+=("$(python3 -c "print($t * 1000)")")
  done
  stats "${times[@]}"
}

psql_ms() { # SQL
  local times=()
  for _ in $(seq 1 "$repeat"); do
    times+=("$(psql "$agency_ci" -qtA -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')")
  done
  stats "${times[@]}"
}

echo "== queries ($(date -u +%H:%M:%S) UTC), $repeat runs each, $rows rows"
printf '%-58s %18s %18s %7s\n' "query" "gateway med/best" "psql med/best" "ratio"
run() { # LABEL DATASET MEMBERS SQL
  read -r gmed gbest < <(gateway_ms "$2" "$3")
  read -r pmed pbest < <(psql_ms "$4")
  printf '%-58s %8s/%6s ms %8s/%6s ms %6.2fx\n' "$1" "$gmed" "$gbest" "$pmed" "$pbest" \
    "$(python3 -c "print($gmed / max($pmed, 1))")"
}
run "count by region (1 row/person)" payments \
  '"aggregate":"histogram","group_by":["region"],"epsilon":0.1' \
  "SELECT region, count(*) FROM benefits.payments GROUP BY 1"
run "clamped sum by region x birth_year (960 groups)" payments \
  '"aggregate":"sum","column":"amount","group_by":["region","birth_year"],"epsilon":0.1' \
  "SELECT region, birth_year, sum(LEAST(GREATEST(amount, 0), 4000)) FROM benefits.payments GROUP BY 1, 2"
run "mean by region (1 row/person)" payments \
  '"aggregate":"mean","column":"amount","group_by":["region"],"epsilon":0.1' \
  "SELECT region, avg(LEAST(GREATEST(amount, 0), 4000)) FROM benefits.payments GROUP BY 1"
# The per-person row limit: psql runs the same window (the plain GROUP BY would bound nothing).
run "count by region (up to 3 rows/person: window limit)" payments_shared \
  '"aggregate":"histogram","group_by":["region"],"epsilon":0.1' \
  "SELECT region, count(*) FROM (SELECT region, row_number() OVER (PARTITION BY person_id ORDER BY random()) AS rn
   FROM benefits.payments_shared) AS b WHERE rn <= 3 GROUP BY 1"
echo "last answer: $(head -c 400 "$tmp/answer.json")..."
