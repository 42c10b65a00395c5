-- Mixed media load for wrk (bench/soak.sh): per request,
--   40 %  a GET of one of the HOT first objects (cache hits once warm),
--   40 %  a GET of any object (mostly cold misses in a cache smaller than the set),
--   20 %  a Range of 64 KiB to 512 KiB at a random offset of any object.
--
--   wrk -s bench/mixed.lua http://127.0.0.1:PORT -- LIST [PREFIX] [HOT]
--
-- LIST has one "name size" line per object; PREFIX (default /s3/soak/) is put
-- before each name; HOT (default 16) is the size of the hot set. At the end it
-- prints one line, "SOAK key=value ...", that bench/soak.sh parses.

local objects = {}
local prefix = "/s3/soak/"
local hot = 16
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

function init(args)
   prefix = args[2] or prefix
   hot = tonumber(args[3] or hot)
   for line in io.lines(args[1]) do
      local name, size = line:match("^(%S+)%s+(%d+)$")
      if name then
         objects[#objects + 1] = { name = name, size = tonumber(size) }
      end
   end
   if hot > #objects then
      hot = #objects
   end
   math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
   local r = math.random()
   local o
   local headers = nil
   if r < 0.4 then
      o = objects[math.random(1, hot)]
   elseif r < 0.8 then
      o = objects[math.random(1, #objects)]
   else
      o = objects[math.random(1, #objects)]
      local len = math.random(64 * 1024, 512 * 1024)
      if len > o.size then
         len = o.size
      end
      local start = math.random(0, o.size - len)
      headers = { Range = "bytes=" .. start .. "-" .. (start + len - 1) }
   end
   return wrk.format("GET", prefix .. o.name, headers)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "SOAK requests=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
      summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
