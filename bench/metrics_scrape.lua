-- metrics_scrape.lua — wrk script: GET /metrics (or $SCRAPE_PATH), one machine-readable line:
--   RESULT requests=N rps=R avg_us=.. p50_us=.. p99_us=.. bytes_per_scrape=B non2xx=N
wrk.method = "GET"
wrk.path = os.getenv("SCRAPE_PATH") or "/metrics"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
end

function response(status, headers, body)
   if status ~= 200 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, t in ipairs(threads) do
      bad = bad + t:get("non2xx")
   end
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d rps=%.1f avg_us=%.1f p50_us=%.1f p99_us=%.1f bytes_per_scrape=%d non2xx=%d\n",
      summary.requests, summary.requests / secs, latency.mean, latency:percentile(50),
      latency:percentile(99), summary.requests > 0 and math.floor(summary.bytes / summary.requests) or 0,
      bad))
end
