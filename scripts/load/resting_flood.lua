-- wrk script: a flood of resting limit buys that never fill (price 0.5, far below any market),
-- 50 lots each, from the retail demo accounts demo-4 .. demo-10. The engine holds margin for
-- each and caps them per account (trading.max_resting_orders_per_account), so the flood is
-- answered 201 `rejected` once an account is full, and costs the order path nothing after.
-- Usage: wrk -t2 -c20 -d20s -s scripts/load/resting_flood.lua http://127.0.0.1:7999
-- With RTX_RESTING_LOTS=0.01 (and a high cap) it parks thousands of orders instead.
local counter = 0
local lots = os.getenv("RTX_RESTING_LOTS") or "50"
local symbols = { "EURUSD", "GBPUSD", "AUDUSD", "NZDUSD" }

request = function()
  counter = counter + 1
  local account = "demo-" .. (4 + counter % 7)
  local symbol = symbols[1 + (math.floor(counter / 7) % #symbols)]
  local body = string.format(
    '{"account_id":"%s","symbol":"%s","side":"buy","order_type":"limit","volume":%s,"price":0.5}',
    account, symbol, lots)
  return wrk.format("POST", "/api/orders", { ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx or socket errors %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
