-- wrk script for the benchmarks: cycle through pre-generated signed POSTs, then print figures on one line.
--
--   wrk -tN -cC -dDs -s bench/wrk_requests.lua URL -- REQUESTS_FILE N [keepalive|close] [check]
--
-- Each line of REQUESTS_FILE is "<form-encoded body><TAB><X-Twilio-Signature>". Thread i of N sends lines
-- i, i+N, i+2N, ... in order and starts over at the end of its share; "repeated" counts those second goes,
-- which an app that answers replayed webhooks from a cache would not really handle. "close" sends each request on
-- a new connection. "check" counts as "bad" the answers that don't greet the caller on their thread: the app
-- answers a failed webhook with an apology, as HTTP 200.

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, count, mode = args[1], tonumber(args[2]), args[3]
   prepared, sent, share, bad = {}, 0, 0, 0
   if args[4] ~= "check" then
      response = nil  -- wrk reads bodies only for scripts that define response()
   end
   local n = 0
   for line in io.lines(path) do
      if n % count == index then
         local body, signature = line:match("^([^\t]*)\t(.*)$")
         local headers = {["Content-Type"] = "application/x-www-form-urlencoded",
                          ["X-Twilio-Signature"] = signature}
         if mode == "close" then
            headers["Connection"] = "close"
         end
         prepared[#prepared + 1] = wrk.format("POST", nil, headers, body)
      end
      n = n + 1
   end
   share = #prepared
   if share == 0 then
      error("no requests for thread " .. index .. " in " .. path)
   end
end

function request()
   sent = sent + 1
   return prepared[(sent - 1) % share + 1]
end

function response(status, headers, body)
   if status == 200 and not string.find(body, "/voice/confirm?thread=", 1, true) then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local total_sent, repeated, total_bad = 0, 0, 0
   for _, thread in ipairs(threads) do
      local thread_sent, thread_share = thread:get("sent"), thread:get("share")
      total_sent = total_sent + thread_sent
      repeated = repeated + math.max(0, thread_sent - thread_share)
      total_bad = total_bad + thread:get("bad")
   end
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d mean_us=%.1f max_us=%d " ..
      "connect=%d read=%d write=%d status=%d timeout=%d sent=%d repeated=%d bad=%d\n",
      summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
      latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout, total_sent, repeated, total_bad))
end
