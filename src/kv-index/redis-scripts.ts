import { LOG_LUA } from './redis-log-lua.js';

/**
 * Lua scripts of the Redis block index (key layout: redis-keys.ts and docs/kv-index.md). Every
 * script touches only the keys it declares in KEYS, and each endpoint's keys share one hash tag,
 * so on Redis Cluster (or a Valkey cluster) a call names one endpoint (one slot); on a single node
 * one call may carry several endpoints (fewer, larger calls).
 *
 * Per endpoint, five keys (KEYS order): h (key -> "tiers@generation"), e (recency log, see
 * redis-log-lua.ts), m (engine hash -> key), n (extra copies), f (fence, run id, generation
 * counter q).
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
 * Work per block is a few Lua table operations and, for a store, one field read (HMGET) and two
 * field writes (holdings, engine-hash map); recency costs one log entry per store op, not a
 * sorted-set member per block. Redis commands are issued per op in bulk; removals read and write
 * their holdings, map and copies in bulk too (one HMGET each, then HSET / HDEL), and the fence
 * and generation counter are written once per section. TTLs are refreshed per endpoint, not per
 * block.
 */
export const APPLY_LUA = LOG_LUA + `
local RUN, tol, ttl, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function section(K, a)
  local hk, ek, mk, nk, fk = KEYS[K], KEYS[K + 1], KEYS[K + 2], KEYS[K + 3], KEYS[K + 4]
  local verified, refresh, seq, ts, mode = ARGV[a], ARGV[a + 1] == '1', ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local part, nextp = tonumber(ARGV[a + 5]), ARGV[a + 6]
  local last = a + 7 + tonumber(ARGV[a + 7])
  local added, removed, evicted, code, stored = 0, 0, 0, 1, false
  local dec = {}
  local function clear()
    local vals = redis.call('HVALS', hk)
    for i = 1, #vals do
      local tiers = splitv(vals[i])
      for _ in string.gmatch(tiers, '[^,]+') do removed = removed + 1 end
    end
    redis.call('DEL', hk, ek, mk, nk)
    dec = {}
    refresh = true
  end
  local f = redis.call('HMGET', fk, 'r', 's', 't', 'p', 'q')
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
  local q0 = tonumber(f[5] or '0')
  local q = q0
  local fset = {}
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
    fset = {'s', seq, 't', ts, 'p', nextp}
  end
  -- Store n keys in tier (hashes at stride 2 when given) as a new generation, leaf first. One
  -- pass: a key seen twice (or held already) updates its holdings entry in place.
  local function store(tier, i, n, withHashes)
    local stride = withHashes and 2 or 1
    local ks = {}
    for j = 0, n - 1 do ks[j + 1] = ARGV[i + stride * j + stride - 1] end
    local cur = hmget(hk, ks)
    q = q + 1
    local g = tostring(q)
    local sfx = '@' .. g
    local plain = tier .. sfx
    local at, order, hset, mset = {}, {}, {}, {}
    local tt = ',' .. tier .. ','
    for j = n - 1, 0, -1 do
      local k = ks[j + 1]
      local x = at[k]
      local c
      if x == nil then
        local v = cur[j + 1]
        if v then
          local og
          c, og = splitv(v)
          if og then dec[og] = (dec[og] or 0) + 1 end
        else
          c = false
        end
        order[#order + 1] = k
        x = #hset + 2
        at[k] = x
        hset[x - 1] = k
      else
        c = string.sub(hset[x], 1, -#sfx - 1)
      end
      if not c then
        hset[x] = plain
        added = added + 1
      elseif not string.find(',' .. c .. ',', tt, 1, true) then
        hset[x] = c .. ',' .. tier .. sfx
        added = added + 1
      else
        hset[x] = c .. sfx
        if withHashes then redis.call('HINCRBY', nk, k .. '|' .. tier, 1) end
      end
      if withHashes then
        mset[#mset + 1] = ARGV[i + 2 * j]
        mset[#mset + 1] = k
      end
    end
    bulk('HSET', hk, hset)
    logGen(ek, g, order)
    if withHashes then bulk('HSET', mk, mset) end
    stored = true
  end
  -- Remove tier from keys ks (nil entries skipped), in order; byHash: one copy per engine hash hs[j],
  -- and the mapping dropped when the key is left in no tier; else all copies.
  local function drop(tier, ks, hs)
    local uniq, val = {}, {}
    for j = 1, #ks do
      local k = ks[j]
      if k and val[k] == nil then
        val[k] = false
        uniq[#uniq + 1] = k
      end
    end
    if #uniq == 0 then return end
    local cur = hmget(hk, uniq)
    for x = 1, #uniq do val[uniq[x]] = cur[x] or false end
    local hasCopies = redis.call('EXISTS', nk) == 1
    local cp, cpSet = {}, {}
    if hasCopies then
      local fs = {}
      for x = 1, #uniq do fs[x] = uniq[x] .. '|' .. tier end
      local cc = hmget(nk, fs)
      for x = 1, #uniq do cp[uniq[x]] = tonumber(cc[x] or '0') end
    end
    local changed, mdel = {}, {}
    for j = 1, #ks do
      local k = ks[j]
      if k then
        if hs and hasCopies and cp[k] > 0 then
          cp[k] = cp[k] - 1
          cpSet[k] = true
        else
          local v, gone = val[k], true
          if v then
            local tiers, g = splitv(v)
            local out, hit = {}, false
            for t in string.gmatch(tiers, '[^,]+') do
              if t == tier then hit = true else out[#out + 1] = t end
            end
            if hit then
              removed = removed + 1
              if hasCopies then
                cp[k] = 0
                cpSet[k] = true
              end
            end
            if #out == 0 then
              val[k] = false
              changed[k] = true
              if g then dec[g] = (dec[g] or 0) + 1 end
            else
              gone = false
              if hit then
                val[k] = table.concat(out, ',') .. (g and ('@' .. g) or '')
                changed[k] = true
              end
            end
          end
          if hs and gone then mdel[#mdel + 1] = hs[j] end
        end
      end
    end
    local hdel, hset, cdel, cset = {}, {}, {}, {}
    for x = 1, #uniq do
      local k = uniq[x]
      if changed[k] then
        if val[k] then
          hset[#hset + 1] = k
          hset[#hset + 1] = val[k]
        else
          hdel[#hdel + 1] = k
        end
      end
      if cpSet[k] then
        if cp[k] > 0 then
          cset[#cset + 1] = k .. '|' .. tier
          cset[#cset + 1] = cp[k]
        else
          cdel[#cdel + 1] = k .. '|' .. tier
        end
      end
    end
    bulk('HDEL', hk, hdel)
    bulk('HSET', hk, hset)
    bulk('HDEL', mk, mdel)
    bulk('HDEL', nk, cdel)
    bulk('HSET', nk, cset)
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
        if n > 0 then drop(tier, hmget(mk, hs), hs) end
        i = i + n
      elseif op == 'D' then
        local ks = {}
        for j = 0, n - 1 do ks[j + 1] = ARGV[i + j] end
        drop(tier, ks, nil)
        i = i + n
      else
        return redis.error_reply('kvroute index: unknown op ' .. tostring(op))
      end
    end
  end
  settle(hk, ek, dec)
  if q ~= q0 then
    fset[#fset + 1] = 'q'
    fset[#fset + 1] = q
  end
  if #fset > 0 then redis.call('HSET', fk, unpack(fset)) end
  if stored then
    local over = redis.call('HLEN', hk) - cap
    if over > 0 then evicted = evictOldest(hk, ek, nk, over, q) end
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
