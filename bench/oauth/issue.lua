-- wrk script for bench/oauth/run: POST /oauth/token, client_credentials
-- with private_key_jwt. Each request takes the next line of the file named
-- by BENCH_ASSERTIONS (a form body with a client assertion of its own jti,
-- minted by bench/oauth/run). Running out of lines starts the file again:
-- those replays are refused by rtcauthd (401) and counted in "wrapped".
-- Every answer is tallied by status; done() writes a JSON summary to
-- BENCH_WRK_OUT.

local path = os.getenv("BENCH_ASSERTIONS")
local f = nil
local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded" }
statuses = {}
wrapped = 0
tallied = true

function init(args)
	f = assert(io.open(path, "r"))
end

function request()
	local line = f:read("*l")
	if not line then
		wrapped = wrapped + 1
		f:seek("set", 0)
		line = f:read("*l")
	end
	return wrk.format("POST", "/oauth/token", hdrs, line)
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
end

threads = {}

function setup(thread)
	table.insert(threads, thread)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/done.lua")
