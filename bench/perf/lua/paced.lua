-- Open loop at a fixed rate, with wrk's own engine (Debian ships wrk, not wrk2).
--
-- Run with one connection per thread (-t N -c N). Each connection follows a fixed
-- timetable: request k is due at start + offset + k * interval, where interval is
-- N / rate and the offsets spread the N connections evenly over one interval, so the
-- server is offered `rate` requests per second in all. delay() holds each request until
-- it is due (wrk timers have 1 ms resolution, so a request may leave up to 1 ms early).
--
-- Latency is measured here, not by wrk, from the earlier of the due time and the actual
-- send to the last byte of the answer. When the server falls behind, a request that is
-- due waits for its connection and that wait counts: this is the correction for
-- coordinated omission that wrk2 makes. Clock: CLOCK_MONOTONIC through LuaJIT's FFI.
--
-- Arguments (after --): total rate per second, number of connections, body file.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
]]
local ts = ffi.new("bench_timespec_t")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local interval, offset, req
local due = nil
local cur_due, cur_sent = 0, 0
-- Globals, read back by done() through thread:get().
lat = {}
count = 0
bad = 0
max_late = 0
first_due = 0
last_done = 0

function init(args)
  local rate, conns = tonumber(args[1]), tonumber(args[2])
  interval = 1000000 * conns / rate
  offset = interval * index / conns
  local f = assert(io.open(args[3], "rb"))
  local body = f:read("*a")
  f:close()
  req = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function delay()
  local t = now_us()
  if due == nil then
    due = t + offset
    first_due = due
  end
  local wait = due - t
  if wait <= 0 then
    return 0
  end
  return math.floor(wait / 1000)
end

function request()
  if req == nil then
    -- wrk calls request() once in its main state to check the script, before init().
    return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, "{}")
  end
  cur_sent = now_us()
  if due == nil then
    due = cur_sent
    first_due = due
  end
  cur_due = due
  local late = cur_sent - due
  if late > max_late then
    max_late = late
  end
  due = due + interval
  return req
end

function response(status, headers, body)
  local t = now_us()
  local start = cur_due
  if cur_sent < start then
    start = cur_sent
  end
  count = count + 1
  lat[count] = math.floor(t - start)
  last_done = t
  if status ~= 200 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_LATENCY_FILE"), "w"))
  local e = summary.errors
  local first, last = nil, 0
  for _, thread in ipairs(threads) do
    local l = thread:get("lat")
    local n = thread:get("count")
    for i = 1, n do
      out:write(l[i], "\n")
    end
    local fd, ld = thread:get("first_due"), thread:get("last_done")
    if first == nil or (fd > 0 and fd < first) then first = fd end
    if ld > last then last = ld end
    io.write(string.format('BENCH_THREAD {"count":%d,"bad":%d,"max_late_us":%d}\n',
      n, thread:get("bad"), thread:get("max_late")))
  end
  out:close()
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"window_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, math.floor(last - (first or last)), e.connect, e.read, e.write,
    e.status, e.timeout))
end
