-- wrk script of bench/load_mixed.sh: a mixed workload on one gateway, every request authenticated
-- as the role a real client would use. Out of every 20 requests:
--   7  GET  /v1/catalog                 partner
--   6  GET  /v1/audit/tree-head         auditor (audited: one durable entry each)
--   4  GET  /healthz                    public
--   2  GET  /metrics                    public
--   1  POST /v1/extracts                partner (a small sealed extract, streamed)
-- With LOAD_ONLY=catalog every request is the catalog read.
-- Tokens and the extract request come from the environment: LOAD_PARTNER, LOAD_AUDITOR,
-- LOAD_EXTRACT_BODY. done() prints requests/s, p50/p99 and the responses by status, separating
-- the deliberate refusals (429 rate_limited, 503 overloaded) from everything else.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function get(path, token)
  local headers = {}
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", path, headers)
end

function init(args)
  local partner = os.getenv("LOAD_PARTNER")
  local auditor = os.getenv("LOAD_AUDITOR")
  local body = os.getenv("LOAD_EXTRACT_BODY")
  local catalog = get("/v1/catalog", partner)
  local treeHead = get("/v1/audit/tree-head", auditor)
  local healthz = get("/healthz")
  local metrics = get("/metrics")
  local extract = wrk.format("POST", "/v1/extracts",
    { ["Authorization"] = "Bearer " .. partner, ["Content-Type"] = "application/json" }, body)
  cycle = { catalog, treeHead, healthz, catalog, treeHead, metrics, catalog, healthz, treeHead, catalog,
            extract, treeHead, catalog, healthz, catalog, treeHead, metrics, catalog, healthz, treeHead }
  -- LOAD_ONLY=catalog: only the partner's catalog read (an audited cheap read: one durable entry
  -- per request), for the audited-read throughput figure in docs/audit.md.
  if os.getenv("LOAD_ONLY") == "catalog" then cycle = { catalog } end
  position = math.random(#cycle)
  statuses = {}      -- status -> count
  deliberate = 0     -- 429 rate_limited and 503 overloaded
  undeliberate = 0   -- any other status >= 400
end

function request()
  position = position % #cycle + 1
  return cycle[position]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 400 then
    if (status == 429 and body:find('"rate_limited"', 1, true)) or
       (status == 503 and body:find('"overloaded"', 1, true)) then
      deliberate = deliberate + 1
    else
      undeliberate = undeliberate + 1
      if undeliberate <= 3 then io.stderr:write("unexpected " .. status .. ": " .. body:sub(1, 300) .. "\n") end
    end
  end
end

function done(summary, latency, requests)
  local all, deliberateTotal, undeliberateTotal = {}, 0, 0
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do all[status] = (all[status] or 0) + n end
    deliberateTotal = deliberateTotal + t:get("deliberate")
    undeliberateTotal = undeliberateTotal + t:get("undeliberate")
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests: %d in %.1f s = %.0f requests/s\n", summary.requests, seconds,
                         summary.requests / seconds))
  io.write(string.format("latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                         latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                         latency:percentile(99) / 1000, latency.max / 1000))
  local codes = {}
  for status in pairs(all) do table.insert(codes, status) end
  table.sort(codes)
  local parts = {}
  for _, status in ipairs(codes) do table.insert(parts, status .. ": " .. all[status]) end
  io.write("responses by status: " .. table.concat(parts, ", ") .. "\n")
  io.write(string.format("deliberate refusals (429 rate_limited, 503 overloaded): %d\n", deliberateTotal))
  io.write(string.format("other errors: %d responses >= 400, socket errors connect %d read %d write %d timeout %d\n",
                         undeliberateTotal, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("LOAD_RESULT undeliberate=%d socket=%d\n", undeliberateTotal,
                         e.connect + e.read + e.write + e.timeout))
end
