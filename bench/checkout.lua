-- Sandbox checkouts for bench/commerce.sh, driven by wrk:
--
--     wrk -t1 -cCONCURRENCY -dSECONDS -s checkout.lua http://ADDR -- TOKENS_FILE SKIP RUN
--
-- Each request is POST /api/v1/checkout of nimbus/nimbus-cache enterprise with a test card
-- by a fresh customer (the tokens of TOKENS_FILE after the first SKIP, one a request: a
-- customer holds one live subscription per tier) and its own Idempotency-Key. Past the last
-- token the requests are refused (401) and count as errors. wrk keeps CONCURRENCY requests in
-- flight, one per connection, and times each from its send to its whole answer; done prints
-- the figures as the JSON object bench/commerce.sh records.

local body = '{"product":"nimbus/nimbus-cache","tier":"enterprise","accept_license":1,"payment_method":"pm_card_visa"}'
local threads = {}
local tokens, next_token, run = {}, 1, ""
-- The first few answers that were not 201, as "STATUS: BODY" (per thread; done gathers them).
bad = ""
bad_count = 0

function setup(thread)
    threads[#threads + 1] = thread
end

function init(args)
    local skip = tonumber(args[2])
    local n = 0
    for line in io.lines(args[1]) do
        n = n + 1
        if n > skip and line ~= "" then
            tokens[#tokens + 1] = line
        end
    end
    run = args[3]
end

function request()
    local token = tokens[next_token] or "slw_exhausted"
    local key = run .. "-" .. next_token
    next_token = next_token + 1
    return wrk.format("POST", "/api/v1/checkout", {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
        ["Idempotency-Key"] = key,
    }, body)
end

function response(status, headers, answer)
    if status ~= 201 then
        bad_count = bad_count + 1
        if bad_count <= 3 then
            bad = bad .. status .. ": " .. answer:sub(1, 160):gsub('[%c"\\]', " ") .. "\n"
        end
    end
end

function done(summary, latency, requests)
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
    local first = {}
    for _, thread in ipairs(threads) do
        errors = errors + thread:get("bad_count")
        for line in thread:get("bad"):gmatch("[^\n]+") do
            first[#first + 1] = '"' .. line .. '"'
        end
    end
    local seconds = summary.duration / 1e6
    io.write(string.format(
        '{"count": %d, "errors": %d, "first_errors": [%s], "p50_ms": %.2f, "p90_ms": %.2f, '
            .. '"p99_ms": %.2f, "max_ms": %.2f, "seconds": %.2f, "per_second": %.1f}\n',
        summary.requests, errors, table.concat(first, ", "),
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000, seconds, summary.requests / seconds))
end
