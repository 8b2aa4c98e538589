-- wrk script: market orders from the retail demo accounts (B-book), alternating buy and sell
-- so that margin and net exposure stay flat however long the run.
-- Usage: wrk -t2 -c50 -d10s --latency -s scripts/load/post_orders.lua http://127.0.0.1:7999
local counter = 0
local symbols = { "EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD" }

request = function()
  counter = counter + 1
  local account = "demo-" .. (4 + counter % 7)
  local side = (counter % 2 == 0) and "buy" or "sell"
  local symbol = symbols[1 + (math.floor(counter / 2) % #symbols)]
  local body = string.format(
    '{"account_id":"%s","symbol":"%s","side":"%s","order_type":"market","volume":0.01}',
    account, symbol, side)
  return wrk.format("POST", "/api/orders", { ["Content-Type"] = "application/json" }, body)
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 and not string.find(body, '"status":"filled"', 1, true) then
    statuses["201-not-filled"] = (statuses["201-not-filled"] or 0) + 1
  end
end

done = function(summary, latency, requests)
  -- wrk runs response() in per-thread copies, so statuses here are this thread's only; the
  -- summary counts every request and its non-2xx responses.
  io.write(string.format("requests %d, non-2xx or socket errors %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
