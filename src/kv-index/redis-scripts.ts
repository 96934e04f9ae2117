/**
 * Lua scripts of the Redis block index (key layout: redis-keys.ts and docs/kv-index.md). Every
 * script touches only the keys it declares in KEYS, and each endpoint's keys share one hash tag,
 * so on Redis Cluster (or a Valkey cluster) a call names one endpoint (one slot); on a single node
 * one call may carry several endpoints (fewer, larger calls).
 *
 * Per endpoint, five keys (KEYS order): h (key -> tiers), e (recency zset), m (engine hash -> key),
 * n (extra copies), f (fence, run id, recency counter).
 *
 * {@link APPLY_LUA}: applies one write section per endpoint, each atomically.
 *   KEYS: 5 per section.  ARGV: 1 run id, 2 clock tolerance (s), 3 TTL (s), 4 max keys per
 *   endpoint, 5 sections; then per section: verified (1 = the caller checked the run id, so a
 *   missing or foreign fence may be taken over), refresh TTLs (1/0), seq ('' = no fence), ts,
 *   mode (next | fresh | force), part id (0 = the batch's first part), next part id (0 = last),
 *   op argument count, then the ops:
 *
 *   S tier n  h1 k1 .. hn kn     store: engine hash hi -> key ki held in tier (one more copy when held)
 *   A tier n  k1 .. kn           add keys in tier (no engine hashes, no copies)
 *   R tier n  h1 .. hn           remove one copy of engine hashes from tier (mapping dropped when no tier is left)
 *   D tier n  k1 .. kn           remove keys from tier (all copies)
 *   C                            clear the endpoint
 *
 * Returns, per section, {code, added, removed, evicted}; code -2 = the endpoint has no fence (new
 * endpoint, or the data is gone: the caller checks the run id and retries verified), -1 = the
 * fence belongs to another run (likewise), 0 = stale, 1 = applied, 2 = publisher restarted
 * (cleared, applied), 3 = batches missing or a dead run's data (cleared, applied).
 *
 * Fence: part 0 follows `fenceDecision` and records {s, t, p} with p = the next part expected
 * (0 = complete); part k > 0 applies only when the fence holds the same seq and p = k, so a
 * retried batch resumes where it stopped and nothing is applied twice.
 *
 * Work per block is a few Lua table operations; Redis commands are issued per section in bulk
 * (one HMGET, one HSET of holdings, one ZADD of all recency scores, one HSET of the engine-hash
 * map; TTLs refreshed per endpoint, not per block). Recency: a store scores a chain's leaf lowest
 * and its root highest, so past the cap ZPOPMIN drops chain tails nobody reads.
 */
export const APPLY_LUA = `
local RUN, tol, ttl, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local STEP = 4000
local function bulk(cmd, key, list)
  local n = #list
  for i = 1, n, STEP do redis.call(cmd, key, unpack(list, i, math.min(i + STEP - 1, n))) end
end
local function hmget(key, fields)
  local out, n = {}, #fields
  for i = 1, n, STEP do
    local r = redis.call('HMGET', key, unpack(fields, i, math.min(i + STEP - 1, n)))
    for j = 1, #r do out[i + j - 1] = r[j] end
  end
  return out
end
local function ntiers(list)
  local c = 1
  for _ in string.gmatch(list, ',') do c = c + 1 end
  return c
end
local function section(K, a)
  local hk, ek, mk, nk, fk = KEYS[K], KEYS[K + 1], KEYS[K + 2], KEYS[K + 3], KEYS[K + 4]
  local verified, refresh, seq, ts, mode = ARGV[a], ARGV[a + 1] == '1', ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local part, nextp = tonumber(ARGV[a + 5]), ARGV[a + 6]
  local last = a + 7 + tonumber(ARGV[a + 7])
  local added, removed, evicted, code, stored = 0, 0, 0, 1, false
  local function clear()
    local vals = redis.call('HVALS', hk)
    for i = 1, #vals do removed = removed + ntiers(vals[i]) end
    redis.call('DEL', hk, ek, mk, nk)
    refresh = true
  end
  local f = redis.call('HMGET', fk, 'r', 's', 't', 'p')
  if f[1] ~= RUN then
    if verified ~= '1' then return {f[1] and -1 or -2, 0, 0, 0} end
    if f[1] then
      clear()
      redis.call('DEL', fk)
      f, code = {}, 3
    end
    redis.call('HSET', fk, 'r', RUN)
    refresh = true
  end
  if seq ~= '' then
    local s, t = tonumber(seq), tonumber(ts)
    if part > 0 then
      if not f[2] or tonumber(f[2]) ~= s or tonumber(f[4] or '0') ~= part then return {0, 0, 0, 0} end
    else
      if f[2] and mode ~= 'force' then
        local S, T = tonumber(f[2]), tonumber(f[3])
        if s <= S then
          if t > T then code = 2 else return {0, 0, 0, 0} end
        elseif t < T - tol then
          return {0, 0, 0, 0}
        elseif mode == 'fresh' and s > S + 1 then
          code = 3
        elseif tonumber(f[4] or '0') > 0 then
          code = 3
        end
      end
      if code == 2 or (code == 3 and f[2]) then clear() end
    end
    redis.call('HSET', fk, 's', seq, 't', ts, 'p', nextp)
  end
  local function dropTier(k, tier)
    local cur = redis.call('HGET', hk, k)
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
      redis.call('HDEL', hk, k)
      redis.call('ZREM', ek, k)
      return true
    end
    if hit then redis.call('HSET', hk, k, table.concat(out, ',')) end
    return false
  end
  -- Store n keys in tier; hashes (or nil) at stride 2 when given. Leaf scored first (lowest).
  local function store(tier, i, n, withHashes)
    local stride = withHashes and 2 or 1
    local ks = {}
    for j = 0, n - 1 do ks[j + 1] = ARGV[i + stride * j + stride - 1] end
    local cur = hmget(hk, ks)
    local state, hset, zadd, mset = {}, {}, {}, {}
    local q = redis.call('HINCRBY', fk, 'q', n)
    local tt = ',' .. tier .. ','
    for j = n - 1, 0, -1 do
      local k = ks[j + 1]
      local c = state[k]
      if c == nil then c = cur[j + 1] end
      if not c then
        state[k] = tier
        added = added + 1
      elseif not string.find(',' .. c .. ',', tt, 1, true) then
        state[k] = c .. ',' .. tier
        added = added + 1
      else
        state[k] = c
        if withHashes then redis.call('HINCRBY', nk, k .. '|' .. tier, 1) end
      end
      zadd[#zadd + 1] = q - j
      zadd[#zadd + 1] = k
      if withHashes then
        mset[#mset + 1] = ARGV[i + 2 * j]
        mset[#mset + 1] = k
      end
    end
    for k, c in pairs(state) do
      hset[#hset + 1] = k
      hset[#hset + 1] = c
    end
    bulk('HSET', hk, hset)
    bulk('ZADD', ek, zadd)
    if withHashes then bulk('HSET', mk, mset) end
    stored = true
  end
  local i = a + 8
  while i <= last do
    local op = ARGV[i]
    if op == 'C' then
      clear()
      i = i + 1
    else
      local tier, n = ARGV[i + 1], tonumber(ARGV[i + 2])
      i = i + 3
      if op == 'S' then
        if n > 0 then store(tier, i, n, true) end
        i = i + 2 * n
      elseif op == 'A' then
        if n > 0 then store(tier, i, n, false) end
        i = i + n
      elseif op == 'R' then
        local hs = {}
        for j = 0, n - 1 do hs[j + 1] = ARGV[i + j] end
        local ks = n > 0 and hmget(mk, hs) or {}
        for j = 1, n do
          local k = ks[j]
          if k then
            local ck = k .. '|' .. tier
            if tonumber(redis.call('HGET', nk, ck) or '0') > 0 then
              if redis.call('HINCRBY', nk, ck, -1) <= 0 then redis.call('HDEL', nk, ck) end
            elseif dropTier(k, tier) then
              redis.call('HDEL', mk, hs[j])
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
    local over = redis.call('ZCARD', ek) - cap
    if over > 0 then
      local ks, list = redis.call('ZPOPMIN', ek, over), {}
      for j = 1, #ks, 2 do list[#list + 1] = ks[j] end
      local cur, gone, copies = hmget(hk, list), {}, {}
      for j = 1, #list do
        if cur[j] then
          evicted = evicted + ntiers(cur[j])
          gone[#gone + 1] = list[j]
          for t in string.gmatch(cur[j], '[^,]+') do copies[#copies + 1] = list[j] .. '|' .. t end
        end
      end
      bulk('HDEL', hk, gone)
      bulk('HDEL', nk, copies)
    end
  end
  if refresh then
    for x = K, K + 4 do redis.call('EXPIRE', KEYS[x], ttl) end
  end
  return {code, added, removed, evicted}
end
local out, a = {}, 6
for s = 0, tonumber(ARGV[5]) - 1 do
  local r = section(1 + 5 * s, a)
  for j = 1, 4 do out[4 * s + j] = r[j] end
  a = a + 8 + tonumber(ARGV[a + 7])
end
return out
`;

/**
 * A lookup's side effect, sent after it (not on the lookup's critical path) and at most once per
 * key per interval: re-scores the hits in each holder's recency set, root last (the cap then
 * evicts chain tails nobody reads), and refreshes the holder's TTLs.
 *
 * KEYS: per endpoint h, e, m, n, f.  ARGV: 1 TTL (s), 2 number of keys, the keys in request (chain)
 * order, then per endpoint how many of those keys it holds (a leading run).
 */
export const TOUCH_LUA = `
local ttl, nk = tonumber(ARGV[1]), tonumber(ARGV[2])
for c = 0, #KEYS / 5 - 1 do
  local r = tonumber(ARGV[3 + nk + c])
  if r > 0 then
    local ek, fk = KEYS[5 * c + 2], KEYS[5 * c + 5]
    local q = redis.call('HINCRBY', fk, 'q', r)
    local z = {'XX'}
    for j = 1, r do
      z[#z + 1] = q - j + 1
      z[#z + 1] = ARGV[2 + j]
    end
    redis.call('ZADD', ek, unpack(z))
    for x = 1, 5 do redis.call('EXPIRE', KEYS[5 * c + x], ttl) end
  end
end
return 1
`;

/**
 * Lookup of one chunk of keys for the candidates whose holdings hashes are KEYS, each stopping
 * at its first key missing. A candidate's first 4 keys are read with one HMGET (one that holds
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
  best = 0
  for t in string.gmatch(v, '[^,]+') do
    local x = w[t] or other
    if x > best then best = x end
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
