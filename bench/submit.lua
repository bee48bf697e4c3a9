-- submit.lua — wrk script: POST one echo task per request to /v1/tasks.
-- Usage: wrk -t2 -c64 -d10s --latency -s bench/submit.lua http://127.0.0.1:PORT
-- Besides wrk's own report it prints one machine-readable line:
--   RESULT requests=N duration_s=S rps=R p50_ms=.. p99_ms=.. non2xx=N codes=202:N,... errors=...

wrk.method = "POST"
wrk.path = "/v1/tasks"
wrk.body = '{"task_type":"echo","params":{"message":"hi"}}'
wrk.headers["Content-Type"] = "application/json"
-- GENPULSE_BENCH_KEY=gp_…: send it as Authorization: Bearer (bench/auth.sh)
local bench_key = os.getenv("GENPULSE_BENCH_KEY")
if bench_key and bench_key ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. bench_key
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
   codes = {}
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
   codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
   local bad, all = 0, {}
   for _, t in ipairs(threads) do
      bad = bad + t:get("non2xx")
      for code, n in pairs(t:get("codes")) do
         all[code] = (all[code] or 0) + n
      end
   end
   local keys = {}
   for code in pairs(all) do table.insert(keys, code) end
   table.sort(keys)
   local parts = {}
   for _, code in ipairs(keys) do table.insert(parts, code .. ":" .. all[code]) end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
         .. "non2xx=%d codes=%s errors=connect:%d,read:%d,write:%d,status:%d,timeout:%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      bad, (#parts > 0 and table.concat(parts, ",") or "-"),
      e.connect, e.read, e.write, e.status, e.timeout))
end
