-- bench/service/deposit.lua: a wrk script for examples/bank_service.
-- Each wrk thread first opens the 1000 accounts bench-0 .. bench-999 (with
-- an Idempotency-Key per account, so an account another thread or an earlier
-- run opened answers 200 as a duplicate), then sends deposits of 1 to a
-- random one of them. The n-th deposit goes to one of the first n accounts,
-- so that it never overtakes the open of its account, still in flight on
-- another connection.
--
--   wrk -t2 -c64 -d10s -s bench/service/deposit.lua http://127.0.0.1:PORT
local accounts = 1000
local opened = 0
local deposits = 0

function request()
   if opened < accounts then
      local id = "bench-" .. opened
      opened = opened + 1
      return wrk.format("POST", "/accounts/" .. id .. "/open",
                        {["Content-Type"] = "application/json",
                         ["Idempotency-Key"] = "open-" .. id},
                        '{"amount": 1}')
   end
   local id = "bench-" .. math.random(0, math.min(deposits, accounts - 1))
   deposits = deposits + 1
   return wrk.format("POST", "/accounts/" .. id .. "/deposit",
                     {["Content-Type"] = "application/json"},
                     '{"amount": 1}')
end
