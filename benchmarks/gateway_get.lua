-- wrk -s benchmarks/gateway_get.lua URL: GET with the token in $BENCH_TOKEN (if set).
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
require("gateway_common")

local token = os.getenv("BENCH_TOKEN")
if token then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function init(args)
  statuses = {}
end
