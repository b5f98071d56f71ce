"""The Lua side of the circuit breakers: every read-decide-write happens inside Redis.

One hash per target holds its breaker; a missing hash is a closed breaker with no failures.

    state         "open" while open or half-open; absent when closed
    failures      consecutive counted failures (kept while open, for the operator)
    opened_at     when the current open period began          (Redis TIME, s, 6 decimals)
    open_until    when it ends; from then on the breaker is half-open
    cooldown      the current step of the back-off: doubled by each failed probe
    last_failure  the reason given with the latest failure (or force_open)
    forced        "1" when force_open opened it
    probe_until   the half-open probe slot is taken until then (the probe's lease)

Every script reads the clock with ``TIME`` so that all processes judge "open until" by the same
clock, whatever their own clocks say. Redis ≥ 5 replicates scripts by effect, which is what
lets a script write after reading ``TIME``.
"""

from __future__ import annotations

# Shared by every script: the server's clock, and floats written as text (a Lua number
# returned to the client would be truncated to an integer).
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function fmt(x) return string.format('%.6f', x) end
"""

# KEYS: the targets' hashes. ARGV[1]: probe lease (s); ARGV[2]: "1" to take half-open probe
# slots, "0" to only look. Returns {allowed, index of the refusing target or 0, probe, dirty,
# one "1"/"0" per target: closed with no failures, one "1"/"0" per target: this call took the
# first probe of the target's open period (it went half-open)}. Nothing is written unless
# every target allows, so a refusal by the model never holds the provider's probe slot.
CHECK = (
    _PRELUDE
    + """
local probing = {}
local dirty = 0
local clean = {}
local first = {}
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'state', 'failures', 'open_until', 'probe_until')
  first[i] = '0'
  if f[1] == 'open' then
    if now < tonumber(f[3]) or (f[4] and now < tonumber(f[4])) then
      return {0, i, 0, 0, '', ''}
    end
    probing[#probing + 1] = key
    dirty = 1
    clean[i] = '0'
    if not f[4] then first[i] = '1' end
  elseif f[2] and tonumber(f[2]) > 0 then
    dirty = 1
    clean[i] = '0'
  else
    clean[i] = '1'
  end
end
if ARGV[2] == '1' then
  for _, key in ipairs(probing) do
    redis.call('HSET', key, 'probe_until', fmt(now + tonumber(ARGV[1])))
  end
else
  for i = 1, #KEYS do first[i] = '0' end
end
local probe = 0
if #probing > 0 then probe = 1 end
return {1, 0, probe, dirty, table.concat(clean), table.concat(first)}
"""
)

_OPEN = """
local function open(key, cooldown)
  redis.call('HSET', key, 'state', 'open', 'opened_at', fmt(now),
    'open_until', fmt(now + cooldown), 'cooldown', fmt(cooldown), 'forced', '0')
  redis.call('HDEL', key, 'probe_until')
end
"""

# KEYS: the targets' hashes, then the registry set. ARGV: threshold, cooldown, max cooldown,
# reason, then the target names (for the registry). Returns one character per target: "o" it
# opened, "r" it was half-open and opened again, "-" no change of state.
FAILURE = (
    _PRELUDE
    + _OPEN
    + """
local threshold, base, ceiling = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local registry = KEYS[#KEYS]
local moved = {}
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local f = redis.call('HMGET', key, 'state', 'failures', 'open_until', 'cooldown')
  local failures = tonumber(f[2] or '0') + 1
  redis.call('HSET', key, 'failures', failures, 'last_failure', ARGV[4])
  redis.call('SADD', registry, ARGV[4 + i])
  moved[i] = '-'
  if f[1] == 'open' then
    -- Past open_until it is half-open: the target still fails after its cool-down, so back
    -- off harder. Before that, the call began before the breaker opened: counted, no more.
    if now >= tonumber(f[3]) then
      open(key, math.min(tonumber(f[4] or base) * 2, ceiling))
      moved[i] = 'r'
    end
  elseif failures >= threshold then
    open(key, base)
    moved[i] = 'o'
  end
end
return table.concat(moved)
"""
)

# KEYS: the targets' hashes, then the registry set. ARGV: the target names.
# A closed or half-open breaker closes (and, being the default, is deleted). An open one
# ignores the success: that call began before the breaker opened and proves nothing now.
# Returns one character per target: "c" it was half-open and closed, "-" no change of state.
SUCCESS = (
    _PRELUDE
    + """
local registry = KEYS[#KEYS]
local moved = {}
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local f = redis.call('HMGET', key, 'state', 'open_until')
  moved[i] = '-'
  if f[1] ~= 'open' or now >= tonumber(f[2]) then
    if redis.call('DEL', key) == 1 then redis.call('SREM', registry, ARGV[i]) end
    if f[1] == 'open' then moved[i] = 'c' end
  end
end
return table.concat(moved)
"""
)

# KEYS: the target's hash, the registry set. ARGV: seconds, reason, target, base cooldown.
# An open period already running keeps its start and is never shortened (reset() ends one).
# Returns the state it was in: "c" closed, "h" half-open, "o" open (no change of state).
FORCE_OPEN = (
    _PRELUDE
    + """
local key = KEYS[1]
local f = redis.call('HMGET', key, 'state', 'opened_at', 'open_until', 'cooldown')
local opened_at, open_until = fmt(now), now + tonumber(ARGV[1])
local was = 'c'
if f[1] == 'open' then was = 'h' end
if f[1] == 'open' and now < tonumber(f[3]) then
  opened_at = f[2]
  open_until = math.max(open_until, tonumber(f[3]))
  was = 'o'
end
redis.call('HSET', key, 'state', 'open', 'opened_at', opened_at, 'open_until', fmt(open_until),
  'cooldown', f[4] or ARGV[4], 'forced', '1', 'last_failure', ARGV[2])
redis.call('HDEL', key, 'probe_until')
redis.call('SADD', KEYS[2], ARGV[3])
return was
"""
)

# KEYS: the target's hash, the registry set. ARGV: the target. Forgets everything about it
# (closed and clean); returns the state it was in: "c" closed, "h" half-open, "o" open.
RESET = (
    _PRELUDE
    + """
local f = redis.call('HMGET', KEYS[1], 'state', 'open_until')
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if f[1] ~= 'open' then return 'c' end
if now < tonumber(f[2]) then return 'o' end
return 'h'
"""
)

# The fields PEEK returns for each target, in this order.
PEEK_FIELDS = ("state", "failures", "opened_at", "open_until", "last_failure", "forced")

# KEYS: the targets' hashes. Returns {now, {fields of target 1}, {fields of target 2}, ...}.
PEEK = (
    _PRELUDE
    + """
local out = {fmt(now)}
for i, key in ipairs(KEYS) do
  out[i + 1] = redis.call('HMGET', key, 'state', 'failures', 'opened_at', 'open_until',
    'last_failure', 'forced')
end
return out
"""
)
