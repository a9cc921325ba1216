-- bench/service/deposit.lua: wrk script for bench/service-run. Each request
-- deposits 1 into one of ACCOUNTS accounts (acct-0 .. acct-(ACCOUNTS-1),
-- opened beforehand by the runner), chosen at random. With KEYS=1 every
-- request carries an Idempotency-Key of its own (wrk thread and sequence
-- number), as a client that retries safely sends.
--
--   ACCOUNTS=1000 wrk -t2 -c64 -d10s -s bench/service/deposit.lua http://127.0.0.1:PORT
local accounts = tonumber(os.getenv("ACCOUNTS") or "1000")
local keyed = os.getenv("KEYS") == "1"
local threads = 0
local seq = 0
local body = '{"amount": 1}'

function setup(thread)
	threads = threads + 1
	thread:set("tag", threads .. "-" .. os.time())
end

function init(args)
	math.randomseed(os.time() + 7919 * tonumber(string.match(tag, "^%d+")))
end

function request()
	local headers = {["Content-Type"] = "application/json"}
	seq = seq + 1
	if keyed then
		headers["Idempotency-Key"] = "wrk-" .. tag .. "-" .. seq
	end
	return wrk.format("POST", "/accounts/acct-" .. math.random(0, accounts - 1) .. "/deposit",
	                  headers, body)
end
