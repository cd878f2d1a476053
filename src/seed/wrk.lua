-- Replays the URLs `filegate seed` wrote to urls.txt beside this script.
--
--   wrk -t2 -c16 -d30s -s DIR/wrk.lua http://127.0.0.1:8080
--   wrk -t2 -c16 -d30s -s DIR/wrk.lua http://127.0.0.1:8080 -- zipf 1.1
--
-- roundrobin (the default): each thread walks urls.txt in order from its own
-- offset; urls.txt already holds the IM-like mix (hot avatars, a long tail of chat
-- pictures; see the README).
-- zipf [s]: picks among the distinct URLs, ranked by how often urls.txt lists them,
-- with P(rank k) proportional to 1/k^s (s = 1 unless given): a heavier head.
-- FILEGATE_URLS=/path/to/urls.txt reads another list. Requests go to wrk's URL
-- (host and port); the paths and queries come from the list. The URLs carry their
-- credential (sdk_sign): no header is needed.

local function script_dir()
  local source = debug.getinfo(1, "S").source
  return source:match("^@(.*/)") or "./"
end

local file = os.getenv("FILEGATE_URLS") or (script_dir() .. "urls.txt")
local paths = {}
for line in io.lines(file) do
  local path = line:match("^https?://[^/]+(/.*)$")
  if path then
    paths[#paths + 1] = path
  end
end
if #paths == 0 then
  error(file .. " holds no URL: run `filegate seed` first")
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local mode, position, ranked, cumulative

function init(args)
  mode = args[1] or "roundrobin"
  local me = id or 1
  if mode == "zipf" then
    local s = tonumber(args[2]) or 1.0
    local count, first = {}, {}
    for i, p in ipairs(paths) do
      if count[p] then
        count[p] = count[p] + 1
      else
        count[p] = 1
        first[p] = i
      end
    end
    ranked = {}
    for p in pairs(count) do
      ranked[#ranked + 1] = p
    end
    table.sort(ranked, function(a, b)
      if count[a] ~= count[b] then
        return count[a] > count[b]
      end
      return first[a] < first[b]
    end)
    cumulative = {}
    local total = 0
    for k = 1, #ranked do
      total = total + 1 / (k ^ s)
      cumulative[k] = total
    end
    for k = 1, #ranked do
      cumulative[k] = cumulative[k] / total
    end
    math.randomseed(7919 * me)
  elseif mode == "roundrobin" then
    position = ((me - 1) * 7919) % #paths
  else
    error("wrk.lua: unknown mode `" .. mode .. "` (roundrobin or zipf)")
  end
end

local function pick_zipf()
  local u = math.random()
  local lo, hi = 1, #cumulative
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] < u then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return ranked[lo]
end

function request()
  if mode == "zipf" then
    return wrk.format("GET", pick_zipf())
  end
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "filegate-wrk: requests=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
