-- bench/service/balance.lua: wrk script for bench/service-run. Each request
-- reads the balance of one of ACCOUNTS accounts (acct-0 .. acct-(ACCOUNTS-1),
-- opened beforehand), chosen at random: a query in the account's actor.
local accounts = tonumber(os.getenv("ACCOUNTS") or "1000")

function init(args)
	math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
	return wrk.format("GET", "/accounts/acct-" .. math.random(0, accounts - 1))
end
