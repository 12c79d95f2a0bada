-- wrk script: POST one OpenAI chat completion per request, non-streaming or streaming.
--
--   wrk -t1 -c64 -d10s -s post.lua URL -- MODE [MAX_TOKENS [TEMPERATURE [API_KEY]]]
--
-- MODE is `nonstream` (a JSON body with Content-Length) or `stream` (`"stream": true`: an SSE
-- response in chunked encoding; wrk counts a request done when the last chunk has arrived, so its
-- latency is the time to the whole stream, `data: [DONE]` included). MAX_TOKENS defaults to 16.
-- TEMPERATURE (`-`: none) adds `"temperature"` to the body; API_KEY replaces the bearer token
-- `bench` (policies.sh: a virtual key).
-- Extra headers (the Portkey routing headers) come from wrk's own `-H` flags. post_unique.lua
-- loads this script and numbers every request's message, so that no two are alike.
--
-- Responses are not inspected here (a `response` callback would slow wrk down several times);
-- run.sh checks every target with curl before measuring, and any non-2xx answer shows up as
-- `errors.status` in the summary below, which run.sh treats as a failed run.
--
-- done() prints one line, `WRK_JSON {...}`, that run.sh parses: counts, the run's duration and
-- latency percentiles in microseconds.

local mode = "nonstream"
body_head, body_tail = nil, nil  -- the body around where post_unique.lua puts its number

function init(args)
  mode = args[1] or "nonstream"
  local max_tokens = tonumber(args[2] or "16")
  if mode ~= "nonstream" and mode ~= "stream" then
    error("post.lua: MODE must be nonstream or stream, got " .. tostring(mode))
  end
  local stream = ""
  if mode == "stream" then stream = ', "stream": true' end
  local temperature = ""
  if args[3] and args[3] ~= "-" then temperature = ', "temperature": ' .. tonumber(args[3]) end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (args[4] or "bench")
  body_head = '{"model": "bench", "messages": [{"role": "user", "content": '
    .. '"Say hello to the benchmark, please.'
  body_tail = '"}], "max_tokens": ' .. max_tokens .. stream .. temperature .. '}'
  wrk.body = body_head .. body_tail
end

function done(summary, latency, requests)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, '
      .. '"p99_9": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, p(50), p(90), p(99), p(99.9), latency.max))
end
