-- wrk script for bench/oauth/run: GET BENCH_PATH with the one valid
-- token of BENCH_TOKEN (Authorization: Bearer), the validated-token cache
-- path of the protected resource. Every answer is tallied by status;
-- done() writes a JSON summary to BENCH_WRK_OUT.

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
statuses = {}
wrapped = 0

-- BENCH_TALLY=0: no response() (wrk then skips handing each answer to
-- Lua, which costs it CPU); only wrk's own count of non-2xx/3xx answers
tallied = os.getenv("BENCH_TALLY") ~= "0"
if tallied then
	function response(status, headers, body)
		statuses[status] = (statuses[status] or 0) + 1
	end
end

threads = {}

function setup(thread)
	table.insert(threads, thread)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/done.lua")
