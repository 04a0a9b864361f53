-- GCRA for one (account, RPC) budget, decided inside Redis so that every
-- replica takes from the same budget in one round trip.
--
-- KEYS[1]  the budget's key; its value is the theoretical arrival time
--          (TAT), microseconds since the epoch on Redis's own clock.
-- ARGV[1]  emission interval: microseconds between two requests at the
--          limit (1 s / rate).
-- ARGV[2]  tolerance: how far the TAT may run ahead of now, interval times
--          (burst - 1), so `burst` requests pass at once.
--
-- Returns {1, 0} when the request passes, {0, wait} when it does not,
-- wait being the microseconds until the next one will.

-- Redis before 5 replicated a script by re-running it, which refuses
-- TIME before a write; replicating the write itself works everywhere.
if redis.replicate_commands then
  redis.replicate_commands()
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])

-- No key: the budget is full, as it is once the TAT is in the past.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local earliest = tat - tolerance
if now < earliest then
  return {0, earliest - now}
end

local next_tat = math.max(tat, now) + interval
-- Once now reaches the TAT the budget is full again and the key says
-- nothing a missing key does not: let it expire then.
local ttl_ms = math.ceil((next_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', string.format('%.0f', ttl_ms))
return {1, 0}
