-- wrk script for tests/bench/stream: POST /v1/intelligence with a valid body (a police
-- liaison officer's graded item about the bench young person) on every request.
-- Environment (set by tests/bench/stream):
--   STREAM_TOKEN    bearer token of the police liaison officer
--   STREAM_SUBJECT  the young person's id
-- Prints one line at the end: "statuses: 201=N other=N" and, if any, "[thread T: CODE=N ...]".

local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

local headers, body
s201, sother, others = 0, 0, ""
local codes = {}

function init(args)
    local token = os.getenv("STREAM_TOKEN")
    local subject = os.getenv("STREAM_SUBJECT")
    if token == nil or subject == nil then
        error("post.lua: STREAM_TOKEN and STREAM_SUBJECT must be set")
    end
    headers = {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
    }
    body = string.format('{"subject_id":"%s","category":"risky_associate",' ..
        '"summary":"tests/bench/stream: wrk post from thread %d",' ..
        '"occurred_at":"2026-01-01T10:00:00Z","risk_level":"high",' ..
        '"grading":{"source":1,"assessment":"A","handling":"P"}}', subject, tid)
end

function request()
    return wrk.format("POST", "/v1/intelligence", headers, body)
end

function response(status, hdrs, resp)
    if status == 201 then
        s201 = s201 + 1
    else
        sother = sother + 1
        codes[status] = (codes[status] or 0) + 1
        -- a string, so that done() can read it from every thread
        local parts = {}
        for code, n in pairs(codes) do
            table.insert(parts, string.format("%d=%d", code, n))
        end
        table.sort(parts)
        others = table.concat(parts, " ")
    end
end

function done(summary, latency, requests)
    local a, b, detail = 0, 0, {}
    for _, t in ipairs(threads) do
        a = a + t:get("s201")
        b = b + t:get("sother")
        local o = t:get("others")
        if o ~= nil and o ~= "" then
            table.insert(detail, "[thread " .. t:get("tid") .. ": " .. o .. "]")
        end
    end
    io.write(string.format("statuses: 201=%d other=%d%s\n", a, b,
        #detail > 0 and (" " .. table.concat(detail, " ")) or ""))
end
