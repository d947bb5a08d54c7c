-- wrk -s benchmarks/gateway_create.lua URL: POST /v1/videos, each request as the next of many
-- users, whose tokens are the lines of the file named by $BENCH_TOKENS.
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
require("gateway_common")

local body = '{"prompt": "a red fox running through snow", "width": 384, "height": 384, ' ..
  '"num_frames": 7}'

function init(args)
  statuses = {}
  tokens = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    table.insert(tokens, line)
  end
  -- Threads start at different users so they do not create for the same one at once.
  index = (id or 0) * math.floor(#tokens / 2)
end

function request()
  index = index % #tokens + 1
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. tokens[index],
    ["Content-Type"] = "application/json",
  }, body)
end
