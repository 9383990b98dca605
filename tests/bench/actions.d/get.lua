-- wrk script for tests/bench/actions: GET one path with a bearer token on every request.
-- Environment (set by tests/bench/actions):
--   ACTIONS_TOKEN  bearer token (the measured agency's practitioner; one for all connections)
--   ACTIONS_PATH   the path and query, e.g. /v1/actions or /v1/actions?sort=due
-- Prints one line at the end: "statuses: 200=N other=N" and, if any, "[thread T: CODE=N ...]".

local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

local headers, path
s200, sother, others = 0, 0, ""
local codes = {}

function init(args)
    local token = os.getenv("ACTIONS_TOKEN")
    path = os.getenv("ACTIONS_PATH")
    if token == nil or path == nil then
        error("get.lua: ACTIONS_TOKEN and ACTIONS_PATH must be set")
    end
    headers = { ["Authorization"] = "Bearer " .. token }
end

function request()
    return wrk.format("GET", path, headers)
end

function response(status, hdrs, body)
    if status == 200 then
        s200 = s200 + 1
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
        a = a + t:get("s200")
        b = b + t:get("sother")
        local o = t:get("others")
        if o ~= nil and o ~= "" then
            table.insert(detail, "[thread " .. t:get("tid") .. ": " .. o .. "]")
        end
    end
    io.write(string.format("statuses: 200=%d other=%d%s\n", a, b,
        #detail > 0 and (" " .. table.concat(detail, " ")) or ""))
end
