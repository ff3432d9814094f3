#!/usr/bin/env bash
# The browser test of the web console and the transparency register (issue 20, docs/console.md):
# a real `custodian serve` on the demo data, driven in headless Debian Chromium by puppeteer-core.
#
#   tests/browser/run.sh BINARY
#
# Environment:
#   CUSTODIAN_TEST_PG       libpq conninfo of a running throwaway cluster as its superuser, with
#                           dbname=postgres (ops/pg start DIR); without it a private cluster is
#                           started under a temporary folder and destroyed at the end
#   CUSTODIAN_SCREENSHOTS   a folder for the screenshots of each screen (docs/screens/ to regenerate them)
#   CUSTODIAN_CONSOLE_DIR   serve the console from this folder (config console.directory) instead of
#                           the copy built into BINARY: for developing the console without a rebuild
#   CUSTODIAN_CHROMIUM      the browser (default /usr/bin/chromium)
#   CUSTODIAN_BROWSER_NPM   where node_modules lives (default: tests/browser/node_modules)
#   CUSTODIAN_BROWSER_LOG_ENTRIES  entries of the synthetic log "Verify the log" is timed on (100000)
#   CUSTODIAN_BROWSER_HOLD  seconds to keep the set-up gateway running before the browser starts, for
#                           looking at it by hand (URL and tokens printed; CUSTODIAN_BROWSER_HOLD_ENV=FILE
#                           also writes them to FILE)
#
# It creates its own databases (custodian_browser_PID, agency_browser_PID) and runtime role in the
# cluster, drops them at exit, and kills the gateway it started. Exit status 0 only if every check passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { printf 'browser test: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ $# -eq 1 ] || { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
binary=$1
[ -x "$binary" ] || die "no executable gateway binary at $binary"
chromium=${CUSTODIAN_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || die "$chromium is missing: install Debian's chromium (apt-get install chromium; ops/bootstrap does)"
command -v node >/dev/null || die "node is missing: install nodejs and npm (ops/bootstrap does)"
command -v npm >/dev/null || die "npm is missing: install nodejs and npm (ops/bootstrap does)"
command -v psql >/dev/null || die "psql is missing (ops/bootstrap installs postgresql)"
command -v curl >/dev/null || die "curl is missing"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node $node_major is too old (puppeteer-core needs 18 or later)"

started=$(date +%s)

# ---- npm dependencies (puppeteer-core only; it never downloads a browser) -----------------------------
modules=${CUSTODIAN_BROWSER_NPM:-$here/node_modules}
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$modules/.custodian-lock" 2>/dev/null)" != "$lock_sum" ]; then
  say "installing puppeteer-core (npm ci)..."
  work=$here
  if [ "$modules" != "$here/node_modules" ]; then
    work=$(dirname "$modules")
    mkdir -p "$work"
    cp "$here/package.json" "$here/package-lock.json" "$work/"
  fi
  (cd "$work" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2) \
    || die "npm ci failed (the npm registry must be reachable to install puppeteer-core the first time)"
  echo "$lock_sum" >"$modules/.custodian-lock"
fi

# ---- the verification code on its own, in node ---------------------------------------------------------
node "$here/unit.mjs" >&2 || die "the console's verification code failed its unit checks (tests/browser/unit.mjs)"

# ---- a temporary folder, the cluster, the databases ---------------------------------------------------------
tmp=$(mktemp -d /tmp/custodian-browser.XXXXXX)
chmod 755 "$tmp"
own_cluster=""
gateway_pid=""
admin_ci=${CUSTODIAN_TEST_PG:-}
suffix=$$
gw_db=custodian_browser_$suffix
ag_db=agency_browser_$suffix
rt_role=custodian_browser_${suffix}_rt

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$gateway_pid" ]; then
    kill -TERM "$gateway_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
  fi
  if [ -n "$admin_ci" ]; then
    psql "$admin_ci" -qtA -c "DROP DATABASE IF EXISTS $gw_db WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$admin_ci" -qtA -c "DROP DATABASE IF EXISTS $ag_db WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$admin_ci" -qtA -c "DROP ROLE IF EXISTS $rt_role" >/dev/null 2>&1 || true
  fi
  if [ -n "$own_cluster" ]; then "$root/ops/pg" destroy "$own_cluster" >/dev/null 2>&1 || true; fi
  if [ $status -ne 0 ] && [ -f "$tmp/gateway.log" ]; then
    say "the gateway's log (last 40 lines):"
    tail -n 40 "$tmp/gateway.log" >&2 || true
  fi
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$admin_ci" ]; then
  say "CUSTODIAN_TEST_PG is not set: starting a private PostgreSQL cluster"
  own_cluster=$tmp/pg
  admin_ci=$("$root/ops/pg" start "$own_cluster") || die "could not start a PostgreSQL cluster (ops/pg start)"
fi
case "$admin_ci" in *dbname=postgres*) ;; *) die "CUSTODIAN_TEST_PG must name dbname=postgres: $admin_ci" ;; esac
psql_admin() { psql "$admin_ci" -v ON_ERROR_STOP=1 -qtA "$@"; }
# (left over from an earlier run that was killed with the same process id: start afresh)
for db in "$gw_db" "$ag_db"; do
  psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  psql_admin -c "CREATE DATABASE $db" >/dev/null
done
psql_admin -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$rt_role') THEN CREATE ROLE $rt_role LOGIN; END IF; END \$\$" >/dev/null
gw_admin_ci=${admin_ci/dbname=postgres/dbname=$gw_db}
gw_runtime_ci="$gw_admin_ci user=$rt_role"
ag_ci=${admin_ci/dbname=postgres/dbname=$ag_db}
sock_dir=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$admin_ci")
[ -n "$sock_dir" ] || die "CUSTODIAN_TEST_PG has no host= (a socket folder or host name): $admin_ci"

say "loading the demo agency database (ops/demo/hospital.sql)..."
psql "$ag_ci" -q -v ON_ERROR_STOP=1 -f "$root/ops/demo/hospital.sql" >/dev/null

# A copy of the binary: a relink of the build tree during the run does not disturb it.
bin=$tmp/custodian
cp "$binary" "$bin"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
url=http://127.0.0.1:$port
console_json=""
if [ -n "${CUSTODIAN_CONSOLE_DIR:-}" ]; then
  console_json=", \"console\": { \"directory\": \"$(cd "$CUSTODIAN_CONSOLE_DIR" && pwd)\" }"
fi
config=$tmp/custodian.json
# Tree heads every second (the proofs and the register need a head covering the release), and the
# gateway's own integrity check effectively off, so that the browser, not the gateway, is the one
# that notices the entry altered in the database below.
cat >"$config" <<JSON
{
  "listen": { "address": "127.0.0.1", "port": $port },
  "threads": 2,
  "database": { "conninfo": "$gw_runtime_ci", "owner_conninfo": "$gw_admin_ci", "pool_size": 4 },
  "keys": { "signing_key_file": "$tmp/gateway.key", "master_key_file": "$tmp/master.key" },
  "sources": { "allowed_hosts": ["$sock_dir"] },
  "audit": { "tree_head_interval_ms": 1000, "integrity_check_interval_ms": 86400000, "integrity_recheck_blocks": 0 },
  "shutdown": { "deadline_ms": 5000 }$console_json
}
JSON

"$bin" migrate --config "$config" >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; die "custodian migrate failed"; }
"$bin" keygen --out "$tmp/partner" >/dev/null
add() { "$bin" principal add --config "$config" "$@" 2>>"$tmp/principals.log"; }
publisher=$(add --role publisher --name health-publisher --agency health) || die "principal add (publisher) failed"
partner=$(add --role partner --name alice.researcher --agency "Institute of Epidemiology" --public-key "$tmp/partner.pub") \
  || die "principal add (partner) failed"
auditor=$(add --role auditor --name demo-auditor) || die "principal add (auditor) failed"

"$bin" serve --config "$config" >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 1 150); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited at start"
  sleep 0.1
done
curl -fs "$url/readyz" >/dev/null || die "the gateway did not become ready"

api() { # METHOD PATH TOKEN [BODY-FILE]
  local code
  code=$(curl -s -o "$tmp/last.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
         -H 'Content-Type: application/json' ${4:+--data-binary @"$4"} "$url$2")
  case "$code" in 2??) ;; *) die "$1 $2 -> $code: $(cat "$tmp/last.json")" ;; esac
}

# The demo catalog, as ops/run registers it, with two twists: the dataset's description carries
# markup and script (the console and the register must show it as text), and the policy gets a
# second version that makes it public in the register (so there is a diff between versions).
python3 - "$ag_ci" "$root/ops/demo" "$tmp" <<'PY'
import json, sys
conninfo, demo, out = sys.argv[1:4]
json.dump({"agency": "health", "conninfo": conninfo}, open(f"{out}/source.json", "w"))
ds = json.load(open(f"{demo}/dataset.json"))
ds["description"] = ('Hospital visits <script>alert(1)</script><b>bold</b> & "quotes" '
                     '<img src=x onerror=alert(2)> — synthetic demo data')
json.dump(ds, open(f"{out}/dataset.json", "w"))
policy = json.load(open(f"{demo}/policy-research.json"))
policy.pop("transparency", None)  # version 1: the default, "summary"
json.dump(policy, open(f"{out}/policy-v1.json", "w"))
policy["transparency"] = "public"
policy["privacy"]["k"] = 10
json.dump(policy, open(f"{out}/policy-v2.json", "w"))
# a policy no release can meet: k above the number of rows, no suppression
policy["transparency"] = "private"
policy["privacy"] = {"k": 1000000, "suppression_limit": 0}
json.dump(policy, open(f"{out}/policy-strict.json", "w"))
PY
api PUT /v1/sources/health_agency_db "$publisher" "$tmp/source.json"
api PUT /v1/datasets/hospital_visits "$publisher" "$tmp/dataset.json"
api PUT /v1/datasets/hospital_visits/policies/research "$publisher" "$tmp/policy-v1.json"
api PUT /v1/datasets/hospital_visits/policies/research "$publisher" "$tmp/policy-v2.json"
api PUT /v1/datasets/hospital_visits/policies/strict "$publisher" "$tmp/policy-strict.json"

# Log entries with non-ASCII and escaped text, so that the browser's canonical re-encoding is
# checked on them: a refused extract whose purpose holds quotes, a backslash, a tab, a control
# character and characters beyond ASCII (the purpose is recorded in the entry).
python3 - "$tmp/odd-purpose.json" <<'PY'
import json, sys
json.dump({"dataset": "hospital_visits", "policy": "research", "format": "csv",
           "purpose": "étude \"grippe\" \\ path/to\tx\u0001 € 😀 <b>&amp;"}, open(sys.argv[1], "w"), ensure_ascii=False)
PY
curl -s -o /dev/null -X POST -H "Authorization: Bearer $partner" -H 'Content-Type: application/json' \
  --data-binary @"$tmp/odd-purpose.json" "$url/v1/extracts"
curl -s -o /dev/null -H "Authorization: Bearer $auditor" "$url/v1/nowhere/%C3%A9t%C3%A9?q=%22%5C%F0%9F%98%80"

say "one extract as the partner (custodian extract)..."
"$bin" extract --url "$url" --token "$partner" --dataset hospital_visits --policy research \
  --purpose public-health-research --key "$tmp/partner.key" --out "$tmp/visits.csv" >"$tmp/extract.log" 2>&1 \
  || { cat "$tmp/extract.log" >&2; die "custodian extract failed"; }
rows=$(($(wc -l <"$tmp/visits.csv") - 1))
say "extract: $rows rows released; $(($(date +%s) - started)) s so far"

# ---- the browser ---------------------------------------------------------------------------------------------
export CUSTODIAN_URL=$url
export CUSTODIAN_PUBLISHER_TOKEN=$publisher
export CUSTODIAN_AUDITOR_TOKEN=$auditor
export CUSTODIAN_PARTNER_TOKEN=$partner
export CUSTODIAN_GATEWAY_DB=$gw_admin_ci
export CUSTODIAN_ROWS_RELEASED=$rows
export CUSTODIAN_CHROMIUM=$chromium
export CUSTODIAN_BROWSER_TMP=$tmp
if [ -n "${CUSTODIAN_BROWSER_HOLD:-}" ]; then
  # Development: keep the gateway for a while to look at it by hand (the tokens are test-only).
  say "holding for $CUSTODIAN_BROWSER_HOLD s: $url/console/  publisher $publisher  auditor $auditor  partner $partner"
  printf 'URL=%s\nPUBLISHER=%s\nAUDITOR=%s\nPARTNER=%s\nDB=%q\n' "$url" "$publisher" "$auditor" "$partner" "$gw_admin_ci" >"${CUSTODIAN_BROWSER_HOLD_ENV:-/dev/null}"
  sleep "$CUSTODIAN_BROWSER_HOLD"
fi
node "$here/console.test.mjs" "$modules" || die "the browser checks failed (above)"
say "passed in $(($(date +%s) - started)) s"
