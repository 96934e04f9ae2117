/**
 * The Redis index's other two Lua scripts: the touch after a lookup and the lookup itself. The
 * write script is {@link APPLY_LUA} (redis-apply-lua.ts), its shared helpers and the recency log
 * redis-log-lua.ts.
 */
import { LOG_LUA } from './redis-log-lua.js';

export { APPLY_LUA } from './redis-apply-lua.js';

/**
 * A lookup's side effect, sent after it (not on the lookup's critical path) and at most once per
 * key per interval: moves the hits of each holder into a new generation of its recency log, root
 * last (the cap then evicts chain tails nobody reads), and refreshes the holder's TTLs.
 *
 * KEYS: per endpoint h, e, m, n, f.  ARGV: 1 TTL (s), 2 number of keys, the keys in request (chain)
 * order, then per endpoint how many of those keys it holds (a leading run).
 */
export const TOUCH_LUA = LOG_LUA + `
local ttl, nk = tonumber(ARGV[1]), tonumber(ARGV[2])
for c = 0, #KEYS / 5 - 1 do
  local r = tonumber(ARGV[3 + nk + c])
  if r > 0 then
    local hk, ek, fk = KEYS[5 * c + 1], KEYS[5 * c + 2], KEYS[5 * c + 5]
    local ks = {}
    for j = 1, r do ks[j] = ARGV[2 + j] end
    local cur = hmget(hk, ks)
    local g = tostring(redis.call('HINCRBY', fk, 'q', 1))
    local sfx = '@' .. g
    local dec, seen, order, hset = {}, {}, {}, {}
    for j = r, 1, -1 do
      local k, v = ks[j], cur[j]
      if v and not seen[k] then
        seen[k] = true
        local tiers, og = splitv(v)
        if og then dec[og] = (dec[og] or 0) + 1 end
        order[#order + 1] = k
        hset[#hset + 1] = k
        hset[#hset + 1] = tiers .. sfx
      end
    end
    bulk('HSET', hk, hset)
    logGen(ek, g, order)
    settle(hk, ek, dec)
    for x = 1, 5 do redis.call('EXPIRE', KEYS[5 * c + x], ttl) end
  end
end
return 1
`;

/**
 * Lookup of one chunk of keys for the candidates whose holdings hashes are KEYS, each stopping
 * at its first key missing. A holdings value is `<tiers>@<generation>`; its weight is cached per
 * value (the keys of one store share a value) and per tier list. A candidate's first 4 keys are read with one HMGET (one that holds
 * nothing costs one small read); one that holds them all is read on: a small hash (<= 1,024
 * fields) whole, with one HGETALL into a Lua table (a small hash is a listpack, where each HMGET
 * field is a linear scan: 500 fields of a 500-entry hash cost 8x an HGETALL), a large one in
 * growing HMGET slices (16, 64, 256, ... fields).
 *
 * ARGV: 1 n tiers, then (tier, weight) pairs, the weight of other tiers, then the keys. Returns,
 * per candidate, {blocks held from the chunk's first key on, weighted sum as a string}.
 */
export const LOOKUP_LUA = `
local i, w = 2, {}
for _ = 1, tonumber(ARGV[1]) do
  w[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
local other = tonumber(ARGV[i])
local first, last = i + 1, #ARGV
local function weigh(v)
  local best = w[v]
  if best then return best end
  local at = string.find(v, '@', 1, true)
  local tiers = at and string.sub(v, 1, at - 1) or v
  best = w[tiers]
  if not best then
    best = 0
    for t in string.gmatch(tiers, '[^,]+') do
      local x = w[t] or other
      if x > best then best = x end
    end
    w[tiers] = best
  end
  w[v] = best
  return best
end
local out = {}
for c = 1, #KEYS do
  local pos, sum, step, open, map = first, 0, 4, true, nil
  while open and pos <= last do
    if map then
      local v = map[ARGV[pos]]
      if v then
        sum = sum + weigh(v)
        pos = pos + 1
      else
        open = false
      end
    else
      local to = math.min(last, pos + step - 1)
      local got = redis.call('HMGET', KEYS[c], unpack(ARGV, pos, to))
      for j = 1, #got do
        local v = got[j]
        if not v then
          open = false
          break
        end
        sum = sum + weigh(v)
        pos = pos + 1
      end
      if step == 4 and open and pos <= last and redis.call('HLEN', KEYS[c]) <= 1024 then
        map = {}
        local all = redis.call('HGETALL', KEYS[c])
        for j = 1, #all, 2 do map[all[j]] = all[j + 1] end
      end
      step = step * 4
    end
  end
  out[2 * c - 1] = pos - first
  out[2 * c] = tostring(sum)
end
return out
`;
