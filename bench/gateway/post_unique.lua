-- wrk script: post.lua (same arguments, and a fifth: `no-store`), with the user message of every
-- request numbered ("... please. #17"), so that no two requests are alike. With temperature 0
-- each one is cacheable and misses the response cache: policies.sh uses it to measure a cache
-- lookup and a store per request, or with `no-store` (the request's `cache: {"no-store": true}`)
-- a lookup alone. A separate script because wrk builds every request anew (a Lua call) only
-- when the script defines request().
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "post.lua")

local counter = 0
local threads = 0

local base_init = init
function init(args)
  base_init(args)
  if args[5] == "no-store" then
    body_tail = body_tail:sub(1, -2) .. ', "cache": {"no-store": true}}'
  elseif args[5] and args[5] ~= "-" then
    error("post_unique.lua: the fifth argument is no-store or -, got " .. tostring(args[5]))
  end
end

function setup(thread)
  -- Runs (a second or more apart) and threads count from different starting points, 10^7 and
  -- 10^6 apart; the numbers stay below 10^12, which Lua prints in full.
  threads = threads + 1
  thread:set("start", (os.time() % 10000) * 10000000 + threads * 1000000)
end

function request()
  if counter == 0 then counter = tonumber(start or 0) end
  counter = counter + 1
  return wrk.format(nil, nil, nil, body_head .. " #" .. counter .. body_tail)
end
