-- wrk script for tests/bench/identity: POST /v1/sessions round-robin over a pool of
-- pre-created users, always with the right password (only failed sign-ins are throttled).
-- Environment (set by tests/bench/identity):
--   SIGNIN_PREFIX    username prefix; users are PREFIX001 .. PREFIXnnn
--   SIGNIN_USERS     how many users
--   SIGNIN_PASSWORD  their password ([A-Za-z0-9] only: no JSON escaping needed)
-- Prints one line at the end: "statuses: 201=N 401=N 429=N other=N".

local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

local prefix, users, password
local next_user = 0
local headers = { ["Content-Type"] = "application/json" }
s201, s401, s429, sother = 0, 0, 0, 0

function init(args)
    prefix = os.getenv("SIGNIN_PREFIX")
    users = tonumber(os.getenv("SIGNIN_USERS"))
    password = os.getenv("SIGNIN_PASSWORD")
    if prefix == nil or users == nil or users < 1 or password == nil then
        error("signin.lua: SIGNIN_PREFIX, SIGNIN_USERS and SIGNIN_PASSWORD must be set")
    end
    -- threads start at different places in the pool
    next_user = (tid * 17) % users
end

function request()
    local name = string.format("%s%03d", prefix, next_user + 1)
    next_user = (next_user + 1) % users
    local body = string.format('{"username":"%s","password":"%s"}', name, password)
    return wrk.format("POST", "/v1/sessions", headers, body)
end

function response(status, hdrs, body)
    if status == 201 then
        s201 = s201 + 1
    elseif status == 401 then
        s401 = s401 + 1
    elseif status == 429 then
        s429 = s429 + 1
    else
        sother = sother + 1
    end
end

function done(summary, latency, requests)
    local a, b, c, d = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("s201")
        b = b + t:get("s401")
        c = c + t:get("s429")
        d = d + t:get("sother")
    end
    io.write(string.format("statuses: 201=%d 401=%d 429=%d other=%d\n", a, b, c, d))
end
