/**
 * Lua scripts of the Redis block index (see docs/kv-index.md for the key layout). One script
 * applies one part of a write (a fenced engine batch is cut into parts of at most a few thousand
 * blocks, so no call runs near the command timeout) atomically.
 *
 * ARGV: 1 prefix, 2 run id (the `epoch` key's expected value), 3 endpoint id, 4 seq ('' = no
 * fence), 5 ts, 6 mode (next | fresh | force), 7 clock tolerance (s), 8 TTL (s), 9 max keys per
 * endpoint, 10 part id (0 = the batch's first part), 11 the next part's id (0 = this is the last
 * part), then the ops from 12 on:
 *
 *   S tier n  h1 k1 .. hn kn     store: engine hash hi -> key ki held in tier (one more copy when held)
 *   A tier n  k1 .. kn           add keys in tier (no engine hashes, no copies)
 *   R tier n  h1 .. hn           remove one copy of engine hashes from tier (mapping dropped when no tier is left)
 *   D tier n  k1 .. kn           remove keys from tier (all copies)
 *   C                            clear the endpoint
 *
 * Fence: part 0 follows the rule of `fenceDecision` and records {s, t, p} with p = the next part
 * expected (0 = complete); a part k > 0 applies only when the fence holds the same seq and p = k
 * (else it is stale: already applied, by this router before a timeout or by another one), so a
 * retried batch resumes where it stopped and nothing is applied twice. A part 0 that finds the
 * previous batch incomplete (p > 0) clears the endpoint first (code 3).
 *
 * Returns {code, added, removed, evicted}; code -1 = index lost (run id missing or changed),
 * 0 = stale (fence), 1 = applied, 2 = publisher restarted (cleared, applied), 3 = fresh stream
 * found batches missing (cleared, applied).
 *
 * Each endpoint's keys live in a sorted set scored by recency (a per-endpoint counter); a store
 * scores a chain leaf first and a lookup's touch ({@link TOUCH_LUA}) re-scores hits root last, so
 * past the per-endpoint cap ZPOPMIN drops chain tails nobody reads, never the hot roots.
 *
 * The script names keys that are not declared in KEYS, so it needs a single Redis (or Valkey)
 * node, not Redis Cluster.
 */
export const APPLY_LUA = `
local P, ep = ARGV[1], ARGV[3]
if redis.call('GET', P .. 'epoch') ~= ARGV[2] then return {-1, 0, 0, 0} end
local ek, mk, fk, nk = P .. 'e:' .. ep, P .. 'm:' .. ep, P .. 'f:' .. ep, P .. 'n:' .. ep
local ttl, cap = tonumber(ARGV[8]), tonumber(ARGV[9])
local part, nextp = tonumber(ARGV[10]), tonumber(ARGV[11])
local added, removed, evicted = 0, 0, 0
local function ntiers(list)
  local c = 1
  for _ in string.gmatch(list, ',') do c = c + 1 end
  return c
end
local function dropCopies(k, cur)
  for t in string.gmatch(cur, '[^,]+') do redis.call('HDEL', nk, k .. '|' .. t) end
end
local function clear()
  local ks = redis.call('ZRANGE', ek, 0, -1)
  for i = 1, #ks do
    local bk = P .. 'b:' .. ks[i]
    local cur = redis.call('HGET', bk, ep)
    if cur then
      removed = removed + ntiers(cur)
      redis.call('HDEL', bk, ep)
    end
  end
  redis.call('DEL', ek, mk, nk)
end
local code = 1
if ARGV[4] ~= '' then
  local f = redis.call('HMGET', fk, 's', 't', 'p')
  local s, t = tonumber(ARGV[4]), tonumber(ARGV[5])
  if part > 0 then
    if not f[1] or tonumber(f[1]) ~= s or tonumber(f[3] or '0') ~= part then return {0, 0, 0, 0} end
  else
    if f[1] and ARGV[6] ~= 'force' then
      local S, T = tonumber(f[1]), tonumber(f[2])
      if s <= S then
        if t > T then code = 2 else return {0, 0, 0, 0} end
      elseif t < T - tonumber(ARGV[7]) then
        return {0, 0, 0, 0}
      elseif ARGV[6] == 'fresh' and s > S + 1 then
        code = 3
      elseif tonumber(f[3] or '0') > 0 then
        code = 3
      end
    end
    if code ~= 1 then clear() end
  end
  redis.call('HSET', fk, 's', ARGV[4], 't', ARGV[5], 'p', nextp)
  redis.call('EXPIRE', fk, ttl)
end
local function tick()
  return redis.call('HINCRBY', fk, 'q', 1)
end
local function addTier(k, tier)
  local bk = P .. 'b:' .. k
  local cur = redis.call('HGET', bk, ep)
  local fresh = true
  if not cur then
    redis.call('HSET', bk, ep, tier)
    added = added + 1
  elseif not string.find(',' .. cur .. ',', ',' .. tier .. ',', 1, true) then
    redis.call('HSET', bk, ep, cur .. ',' .. tier)
    added = added + 1
  else
    fresh = false
  end
  redis.call('ZADD', ek, tick(), k)
  redis.call('EXPIRE', bk, ttl)
  return fresh
end
local function dropTier(k, tier)
  local bk = P .. 'b:' .. k
  local cur = redis.call('HGET', bk, ep)
  if not cur then return true end
  local out, hit = {}, false
  for t in string.gmatch(cur, '[^,]+') do
    if t == tier then hit = true else out[#out + 1] = t end
  end
  if hit then
    removed = removed + 1
    redis.call('HDEL', nk, k .. '|' .. tier)
  end
  if #out == 0 then
    redis.call('HDEL', bk, ep)
    redis.call('ZREM', ek, k)
    return true
  end
  if hit then redis.call('HSET', bk, ep, table.concat(out, ',')) end
  return false
end
local i, stored = 12, false
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'C' then
    clear()
    i = i + 1
  else
    local tier, n = ARGV[i + 1], tonumber(ARGV[i + 2])
    i = i + 3
    if op == 'S' then
      for j = n - 1, 0, -1 do
        local h, k = ARGV[i + 2 * j], ARGV[i + 2 * j + 1]
        if not addTier(k, tier) then redis.call('HINCRBY', nk, k .. '|' .. tier, 1) end
        redis.call('HSET', mk, h, k)
      end
      i, stored = i + 2 * n, true
    elseif op == 'A' then
      for j = n - 1, 0, -1 do addTier(ARGV[i + j], tier) end
      i, stored = i + n, true
    elseif op == 'R' then
      for j = 0, n - 1 do
        local h = ARGV[i + j]
        local k = redis.call('HGET', mk, h)
        if k then
          local ck = k .. '|' .. tier
          if tonumber(redis.call('HGET', nk, ck) or '0') > 0 then
            if redis.call('HINCRBY', nk, ck, -1) <= 0 then redis.call('HDEL', nk, ck) end
          elseif dropTier(k, tier) then
            redis.call('HDEL', mk, h)
          end
        end
      end
      i = i + n
    elseif op == 'D' then
      for j = 0, n - 1 do dropTier(ARGV[i + j], tier) end
      i = i + n
    else
      return redis.error_reply('kvroute index: unknown op ' .. tostring(op))
    end
  end
end
if stored then
  redis.call('EXPIRE', ek, ttl)
  redis.call('EXPIRE', mk, ttl)
  redis.call('EXPIRE', fk, ttl)
  if redis.call('EXISTS', nk) == 1 then redis.call('EXPIRE', nk, ttl) end
  local over = redis.call('ZCARD', ek) - cap
  if over > 0 then
    local ks = redis.call('ZPOPMIN', ek, over)
    for j = 1, #ks, 2 do
      local bk = P .. 'b:' .. ks[j]
      local cur = redis.call('HGET', bk, ep)
      if cur then
        evicted = evicted + ntiers(cur)
        dropCopies(ks[j], cur)
        redis.call('HDEL', bk, ep)
      end
    end
  end
end
return {code, added, removed, evicted}
`;

/**
 * A lookup's side effect, sent after it (not on the lookup's critical path) and at most once per
 * key per interval: refreshes the TTL of the keys a lookup hit (hot prefixes do not expire while
 * read) and of their holders' sets, and re-scores the hits in each holder's recency set, root
 * last, so the cap evicts chain tails nobody reads.
 *
 * ARGV: 1 prefix, 2 TTL (s), then the keys in request (chain) order.
 */
export const TOUCH_LUA = `
local P, ttl = ARGV[1], tonumber(ARGV[2])
local seen = {}
for i = #ARGV, 3, -1 do
  local k = ARGV[i]
  local bk = P .. 'b:' .. k
  local holders = redis.call('HKEYS', bk)
  if #holders > 0 then
    redis.call('EXPIRE', bk, ttl)
    for j = 1, #holders do
      local ep = holders[j]
      local fk = P .. 'f:' .. ep
      local q = redis.call('HINCRBY', fk, 'q', 1)
      redis.call('ZADD', P .. 'e:' .. ep, 'XX', q, k)
      if not seen[ep] then
        seen[ep] = true
        redis.call('EXPIRE', P .. 'e:' .. ep, ttl)
        redis.call('EXPIRE', P .. 'm:' .. ep, ttl)
        redis.call('EXPIRE', fk, ttl)
      end
    end
  end
end
return 1
`;

/**
 * Lookup of one chunk of keys, server-side, stopping at the first key no candidate continues.
 * Each key's holders are read once (HGETALL: small hashes are listpacks, so reading them whole
 * beats looking candidates up one by one); only candidates whose run reached the key extend it.
 *
 * ARGV: 1 prefix, 2 n tiers, then (tier, weight) pairs, the weight of other tiers, the number
 * of candidates, the candidate ids, then the keys. Returns, per candidate, {blocks held from the
 * chunk's first key on, weighted sum as a string}.
 */
export const LOOKUP_LUA = `
local P = ARGV[1]
local i, w = 3, {}
for _ = 1, tonumber(ARGV[2]) do
  w[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
local other = tonumber(ARGV[i])
local nc = tonumber(ARGV[i + 1])
i = i + 2
local cidx, runs, sums = {}, {}, {}
for j = 1, nc do
  if not cidx[ARGV[i]] then cidx[ARGV[i]] = j end
  runs[j], sums[j] = 0, 0
  i = i + 1
end
local pos = 0
while i <= #ARGV do
  local all = redis.call('HGETALL', P .. 'b:' .. ARGV[i])
  local cont = 0
  for j = 1, #all, 2 do
    local c = cidx[all[j]]
    if c and runs[c] == pos then
      local v = all[j + 1]
      local best = w[v]
      if not best then
        best = 0
        for t in string.gmatch(v, '[^,]+') do
          local x = w[t] or other
          if x > best then best = x end
        end
      end
      runs[c] = pos + 1
      sums[c] = sums[c] + best
      cont = cont + 1
    end
  end
  if cont == 0 then break end
  pos = pos + 1
  i = i + 1
end
local out = {}
for j = 1, nc do
  out[2 * j - 1] = runs[j]
  out[2 * j] = tostring(sums[j])
end
return out
`;
