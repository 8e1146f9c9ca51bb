-- wrk script of bench/search.sh: GETs the paths of a list file, one a line.
--
--   wrk ... -s bench/search.lua URL -- LIST_FILE THREADS
--
-- Thread t (0-based) of THREADS takes entries t, t + THREADS, t + 2 * THREADS, ... so
-- the threads never ask for the same entry at the same round. Warm lists (a few hundred
-- paths) are walked round and round; cold lists are longer than a run gets through,
-- and "wrapped" in the result line counts the requests that came back to the start
-- of a list (for a cold list it should be 0: then no path was requested twice).
--
-- Prints wrk's summary as one machine-readable line (latencies in microseconds;
-- "status" counts non-2xx/3xx responses), like bench/wrk-report.lua plus p90 and p99.9.

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    local file, nthreads = args[1], tonumber(args[2] or "1")
    paths = {}
    for line in io.lines(file) do
        if line ~= "" then
            paths[#paths + 1] = line
        end
    end
    if #paths == 0 then
        error("no paths in " .. tostring(file))
    end
    step = nthreads
    i = id -- 0-based position in the list
    wrapped = 0
    entries = #paths
end

function request()
    local n = #paths
    if i >= n then
        wrapped = wrapped + 1
    end
    local path = paths[(i % n) + 1]
    i = i + step
    return wrk.format("GET", path)
end

done = function(summary, latency, requests)
    local e = summary.errors
    local wrapped_all, entries_all = 0, 0
    for _, t in ipairs(threads) do
        wrapped_all = wrapped_all + (t:get("wrapped") or 0)
        entries_all = t:get("entries") or entries_all
    end
    io.write(string.format(
        "WRKRESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d entries=%d wrapped=%d\n",
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
        latency.max, entries_all, wrapped_all))
end
