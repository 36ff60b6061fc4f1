-- Shared done() of bench/oauth/*.lua: wrk's summary, latency percentiles
-- and every thread's status tally as one JSON object in BENCH_WRK_OUT.
function done(summary, latency, requests)
	local all, wrap, tally = {}, 0, true
	for _, t in ipairs(threads) do
		for status, n in pairs(t:get("statuses")) do
			all[status] = (all[status] or 0) + n
		end
		wrap = wrap + t:get("wrapped")
		tally = tally and t:get("tallied")
	end
	local parts = {}
	for status, n in pairs(all) do
		table.insert(parts, string.format('"%d": %d', status, n))
	end
	local e = summary.errors
	local out = assert(io.open(os.getenv("BENCH_WRK_OUT"), "w"))
	out:write(string.format(
		'{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
		'"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
		'"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, ' ..
		'"statuses": {%s}, "wrapped": %d, "tallied": %s}\n',
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency.mean, latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, table.concat(parts, ", "), wrap,
		tostring(tally)))
	out:close()
end
