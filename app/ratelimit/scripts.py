"""The Lua scripts behind ``TokenBuckets``: one atomic script per operation, one round trip.

Every script reads the clock with Redis ``TIME``, so that workers on different machines (and
clocks) share one timeline. A bucket is a hash ``{level, ts}``: its level at Redis time
``ts``. An absent hash is a full bucket. Each need arrives as ``KEYS[i]`` plus three ``ARGV``
values, ``limit_per_min, burst_s, amount``; capacity and rate are derived here with the same
arithmetic as ``app.simulator.limiter.TokenBucket`` (``limit * burst_s / 60``, ``limit / 60``).
``ARGV[1]`` of every script is the send jitter allowance: a bucket refills only up to
``top = capacity - rate * jitter_s`` (see ``TokenBuckets``); "full" means ``top``.

Numbers go back to Python as ``%.17g`` strings: Redis would truncate a Lua number to an
integer reply, and Lua's own ``tostring`` keeps only 14 digits.
"""

from __future__ import annotations

# Shared by every script: the clock, and loading / storing one bucket.
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local JITTER_S = tonumber(ARGV[1])
local TTL_MARGIN_S = 1

local function fmt(x) return string.format('%.17g', x) end

-- A bucket as of now: refilled since its ts, never above top; absent means full (top).
local function load(key, limit, burst)
  local cap, rate = limit * burst / 60, limit / 60
  local top = math.max(0, cap - rate * JITTER_S)
  local state = redis.call('HMGET', key, 'level', 'ts')
  local level = tonumber(state[1])
  local ts = now
  if level == nil then
    level = top
  else
    ts = tonumber(state[2]) or now
    if now > ts then
      level = level + (now - ts) * rate
      ts = now
    end
    -- ts stays ahead of now if Redis' clock stepped back: never count a second twice.
    level = math.min(top, level)
  end
  return {key = key, cap = cap, top = top, rate = rate, level = level, loaded = level, ts = ts}
end

-- Write a bucket back; it expires once it would have refilled to full (absent = full).
local function store(b)
  redis.call('HSET', b.key, 'level', fmt(b.level), 'ts', fmt(b.ts))
  redis.call('PEXPIRE', b.key, math.ceil(((b.top - b.level) / b.rate + TTL_MARGIN_S) * 1000))
end
"""

# KEYS: every need's bucket, candidate after candidate.
# ARGV: jitter_s, reserve, horizon_s, then per candidate its need count followed by
#       (limit_per_min, burst_s, amount) per need.
# Returns {1, candidate index (0-based), delay} | {0, 0, retry_in} | {-1, 0, reason}.
ACQUIRE = (
    _PRELUDE
    + """
local reserve = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local buckets = {}
local arg, k, candidate = 4, 1, 0
local best, best_order, best_totals, soonest, impossible = nil, nil, nil, nil, nil

while arg <= #ARGV do
  candidate = candidate + 1
  local count = tonumber(ARGV[arg])
  arg = arg + 1
  -- A bucket named twice in one candidate must hold the sum of its needs.
  local order, totals = {}, {}
  for _ = 1, count do
    local key = KEYS[k]
    local amount = tonumber(ARGV[arg + 2])
    if buckets[key] == nil then
      buckets[key] = load(key, tonumber(ARGV[arg]), tonumber(ARGV[arg + 1]))
    end
    if totals[key] == nil then
      order[#order + 1] = key
      totals[key] = amount
    else
      totals[key] = totals[key] + amount
    end
    k = k + 1
    arg = arg + 3
  end

  local delay, possible = 0, true
  for _, key in ipairs(order) do
    local b, amount = buckets[key], totals[key]
    if amount > b.cap + 1e-9 then
      possible = false
      impossible = impossible or string.format(
        '%s: a need of %.10g exceeds the capacity %.10g', key, amount, b.cap)
      break
    end
    local floor = reserve * b.cap
    if b.level - amount < floor then
      delay = math.max(delay, (floor + amount - b.level) / b.rate)
    end
  end
  if possible and (soonest == nil or delay < soonest) then
    best, best_order, best_totals, soonest = candidate, order, totals, delay
  end
end

if best == nil then return {-1, 0, impossible} end
if soonest > horizon then return {0, 0, fmt(soonest)} end
for _, key in ipairs(best_order) do
  local b = buckets[key]
  b.level = b.level - best_totals[key]
  store(b)
end
return {1, best - 1, fmt(soonest)}
"""
)

# KEYS: the observed buckets, then the adjusted ones.
# ARGV: jitter_s, number of observations, then (limit_per_min, burst_s, value) per key, where
#       value is the remaining the provider reported (observations) or the amount to add.
SETTLE = (
    _PRELUDE
    + """
local observations = tonumber(ARGV[2])
local buckets, order = {}, {}
for i, key in ipairs(KEYS) do
  local arg = 3 + (i - 1) * 3
  local b = buckets[key]
  if b == nil then
    b = load(key, tonumber(ARGV[arg]), tonumber(ARGV[arg + 1]))
    buckets[key] = b
    order[#order + 1] = b
  end
  local value = tonumber(ARGV[arg + 2])
  if i > observations then
    b.level = math.min(b.top, b.level + value)
  elseif value < b.level then
    b.level = value
  end
end
-- An untouched bucket needs no write: its state already implies this level.
for _, b in ipairs(order) do
  if b.level ~= b.loaded then store(b) end
end
return 0
"""
)

# KEYS: buckets. ARGV: jitter_s, seconds, then (limit_per_min, burst_s) per key.
BLOCK = (
    _PRELUDE
    + """
local seconds = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local arg = 3 + (i - 1) * 2
  local b = load(key, tonumber(ARGV[arg]), tonumber(ARGV[arg + 1]))
  b.level = math.min(b.level, -b.rate * seconds)
  store(b)
end
return 0
"""
)

# KEYS: one bucket. ARGV: jitter_s, limit_per_min, burst_s. Returns its level now.
LEVEL = (
    _PRELUDE
    + """
return fmt(load(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3])).level)
"""
)
