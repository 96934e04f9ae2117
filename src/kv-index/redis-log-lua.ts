/**
 * Lua helpers shared by the Redis index's write and touch scripts (redis-scripts.ts): bulk
 * commands, and the per-endpoint recency log that replaced the per-block recency zset.
 *
 * Algorithm (recency log): every store op and every touch of an endpoint opens a generation
 * g = the endpoint's counter `q` (fence hash) + 1. Each holdings value names the generation that
 * last stored or read its key: `<tiers>@<g>` (`gpu@41`, `gpu,cpu@7`). The log hash `e` holds,
 * per generation, `k<g>` = the keys that moved into g, space-separated, in eviction order (a
 * chain's leaf first, its root last), `c<g>` = how many of them still name g (live) and `n<g>` =
 * the list's length, plus `lo` = the oldest generation that may still hold a live key. So a store
 * writes one log field set per op instead of one `ZADD` member per block.
 *
 *   - A key moved to a newer generation (stored again, read by a lookup) or dropped (removed,
 *     evicted, by the engine or by the index) decrements its old generation's `c`; at 0 the
 *     generation is deleted; when fewer than a quarter of a list is live the list is rewritten
 *     with its live keys (each rewrite at least quarters the list, so the work is amortized O(1)
 *     per entry and the log stays within 4x the live keys plus one list per generation).
 *   - Eviction (past the per-endpoint cap) walks generations from `lo` upward and drops the keys
 *     whose value still names that generation, in list order, until the endpoint is back at the
 *     cap: least recently stored or read first, chain tails before roots, as the zset did.
 *
 * Every function touches only the keys passed in (the caller's declared KEYS).
 */
export const LOG_LUA = `
local STEP = 4000
local function bulk(cmd, key, list)
  local n = #list
  for i = 1, n, STEP do redis.call(cmd, key, unpack(list, i, math.min(i + STEP - 1, n))) end
end
local function hmget(key, fields)
  local out, n = {}, #fields
  if n <= STEP then return n > 0 and redis.call('HMGET', key, unpack(fields)) or out end
  for i = 1, n, STEP do
    local r = redis.call('HMGET', key, unpack(fields, i, math.min(i + STEP - 1, n)))
    for j = 1, #r do out[i + j - 1] = r[j] end
  end
  return out
end
-- A holdings value: tiers, generation (nil when it names none).
local function splitv(v)
  local at = string.find(v, '@', 1, true)
  if not at then return v, nil end
  return string.sub(v, 1, at - 1), string.sub(v, at + 1)
end
local function words(s)
  local out = {}
  for w in string.gmatch(s, '%S+') do out[#out + 1] = w end
  return out
end
-- Opens generation g with the keys (eviction order) that moved into it.
local function logGen(ek, g, order)
  if #order > 0 then redis.call('HSET', ek, 'k' .. g, table.concat(order, ' '), 'c' .. g, #order, 'n' .. g, #order) end
end
-- Rewrites generation g's list with the keys whose holdings still name g.
local function compact(hk, ek, g)
  local list = redis.call('HGET', ek, 'k' .. g)
  local keep = {}
  if list then
    local ks = words(list)
    local vals = hmget(hk, ks)
    local sfx = '@' .. g
    for j = 1, #ks do
      local v = vals[j]
      if v and string.sub(v, -#sfx) == sfx then keep[#keep + 1] = ks[j] end
    end
  end
  if #keep == 0 then
    redis.call('HDEL', ek, 'k' .. g, 'c' .. g, 'n' .. g)
  else
    redis.call('HSET', ek, 'k' .. g, table.concat(keep, ' '), 'c' .. g, #keep, 'n' .. g, #keep)
  end
end
-- Applies dec (generation -> keys that left it): deletes emptied generations, compacts sparse ones.
local function settle(hk, ek, dec)
  local gs, f = {}, {}
  for g in pairs(dec) do
    gs[#gs + 1] = g
    f[#f + 1] = 'c' .. g
    f[#f + 1] = 'n' .. g
  end
  if #gs == 0 then return end
  local cur = hmget(ek, f)
  local set, del = {}, {}
  for i = 1, #gs do
    local g = gs[i]
    local c = tonumber(cur[2 * i - 1] or '0') - dec[g]
    if c <= 0 then
      del[#del + 1] = 'k' .. g
      del[#del + 1] = 'c' .. g
      del[#del + 1] = 'n' .. g
    elseif c * 4 < tonumber(cur[2 * i] or '0') then
      compact(hk, ek, g)
    else
      set[#set + 1] = 'c' .. g
      set[#set + 1] = c
    end
  end
  bulk('HDEL', ek, del)
  bulk('HSET', ek, set)
end
-- Evicts over keys, oldest generation first, each in list order; top = the newest generation.
-- Returns the entries (key, tier) evicted.
local function evictOldest(hk, ek, nk, over, top)
  local lo = tonumber(redis.call('HGET', ek, 'lo') or '0')
  if lo == 0 then
    lo = top + 1
    local fs = redis.call('HKEYS', ek)
    for i = 1, #fs do
      if string.byte(fs[i], 1) == 107 then
        local g = tonumber(string.sub(fs[i], 2))
        if g and g < lo then lo = g end
      end
    end
  end
  local evicted, gone, copies = 0, {}, {}
  local hasCopies = redis.call('EXISTS', nk) == 1
  while over > 0 and lo <= top do
    local names = {}
    for g = lo, math.min(top, lo + 63) do names[#names + 1] = 'c' .. g end
    local cs = redis.call('HMGET', ek, unpack(names))
    for x = 1, #cs do
      if over == 0 then break end
      if cs[x] then
        local ks = words(redis.call('HGET', ek, 'k' .. lo) or '')
        local vals = hmget(hk, ks)
        local sfx = '@' .. lo
        local j = 0
        while j < #ks and over > 0 do
          j = j + 1
          local v = vals[j]
          if v and string.sub(v, -#sfx) == sfx then
            gone[#gone + 1] = ks[j]
            for t in string.gmatch(string.sub(v, 1, #v - #sfx), '[^,]+') do
              evicted = evicted + 1
              if hasCopies then copies[#copies + 1] = ks[j] .. '|' .. t end
            end
            over = over - 1
          end
        end
        -- What is left of the generation: its live keys (the stale ones are dropped on the way).
        local rest = {}
        for y = j + 1, #ks do
          local v = vals[y]
          if v and string.sub(v, -#sfx) == sfx then rest[#rest + 1] = ks[y] end
        end
        if #rest == 0 then
          redis.call('HDEL', ek, 'k' .. lo, 'c' .. lo, 'n' .. lo)
          lo = lo + 1
        else
          redis.call('HSET', ek, 'k' .. lo, table.concat(rest, ' '), 'c' .. lo, #rest, 'n' .. lo, #rest)
        end
      else
        lo = lo + 1
      end
    end
  end
  redis.call('HSET', ek, 'lo', lo)
  bulk('HDEL', hk, gone)
  bulk('HDEL', nk, copies)
  if over > 0 then
    -- Keys no generation names (never written so): drop any, so the cap still holds.
    local extra = redis.call('HRANDFIELD', hk, over)
    bulk('HDEL', hk, extra)
    evicted = evicted + #extra
  end
  return evicted
end
`;
