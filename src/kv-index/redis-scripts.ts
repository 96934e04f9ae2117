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
  -- Section buffers: holdings values (false = not held) and engine-hash map entries read once and
  -- written once at the end; the section's generation g (opened by its first store) with its keys
  -- in eviction order (false = moved later in the list, or dropped); decrements of older ones.
  local hv, hch, hlist, mv, mch, mlist, pend, ppos, dec = {}, {}, {}, {}, {}, {}, {}, {}, {}
  local g, sfx
  local function setv(k, v)
    hv[k] = v
    if not hch[k] then
      hch[k] = true
      hlist[#hlist + 1] = k
    end
  end
  local function setm(h, k)
    mv[h] = k
    if not mch[h] then
      mch[h] = true
      mlist[#mlist + 1] = h
    end
  end
  -- k leaves the generation its value names (og): a pending entry of this section's, or a decrement.
  local function leave(k, og)
    if og == g then
      pend[ppos[k]] = false
    elseif og then
      dec[og] = (dec[og] or 0) + 1
    end
  end
  local function load(ks)
    local miss = {}
    for j = 1, #ks do
      local k = ks[j]
      if k and hv[k] == nil then
        hv[k] = false
        miss[#miss + 1] = k
      end
    end
    if #miss > 0 then
      local cur = hmget(hk, miss)
      for x = 1, #miss do hv[miss[x]] = cur[x] or false end
    end
  end
  local function flushHM()
    local hs, hd = {}, {}
    for x = 1, #hlist do
      local k = hlist[x]
      local v = hv[k]
      if v then
        hs[#hs + 1] = k
        hs[#hs + 1] = v
      else
        hd[#hd + 1] = k
      end
    end
    bulk('HDEL', hk, hd)
    bulk('HSET', hk, hs)
    local ms, md = {}, {}
    for x = 1, #mlist do
      local h = mlist[x]
      local k = mv[h]
      if k then
        ms[#ms + 1] = h
        ms[#ms + 1] = k
      else
        md[#md + 1] = h
      end
    end
    bulk('HDEL', mk, md)
    bulk('HSET', mk, ms)
    hch, hlist, mch, mlist = {}, {}, {}, {}
  end
  local function clear()
    flushHM()
    local vals = redis.call('HVALS', hk)
    for i = 1, #vals do
      local tiers = splitv(vals[i])
      for _ in string.gmatch(tiers, '[^,]+') do removed = removed + 1 end
    end
    redis.call('DEL', hk, ek, mk, nk)
    hv, mv, pend, ppos, dec = {}, {}, {}, {}, {}
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
  -- Store n keys in tier (hashes at stride 2 when given), leaf first, at the end of the section's
  -- generation (a key already there moves to the end).
  local function store(tier, i, n, withHashes)
    local stride = withHashes and 2 or 1
    local ks = {}
    for j = 0, n - 1 do ks[j + 1] = ARGV[i + stride * j + stride - 1] end
    load(ks)
    if not g then
      q = q + 1
      g = tostring(q)
      sfx = '@' .. g
    end
    local plain = tier .. sfx
    local tt = ',' .. tier .. ','
    for j = n - 1, 0, -1 do
      local k = ks[j + 1]
      local v = hv[k]
      if not v then
        setv(k, plain)
        added = added + 1
      else
        local c, og = splitv(v)
        leave(k, og)
        if not string.find(',' .. c .. ',', tt, 1, true) then
          setv(k, c .. ',' .. tier .. sfx)
          added = added + 1
        else
          setv(k, c .. sfx)
          if withHashes then redis.call('HINCRBY', nk, k .. '|' .. tier, 1) end
        end
      end
      pend[#pend + 1] = k
      ppos[k] = #pend
      if withHashes then setm(ARGV[i + 2 * j], k) end
    end
    stored = true
  end
  -- Remove tier from keys ks (false entries skipped), in order; with engine hashes hs: one copy per
  -- hash, and the mapping dropped when the key is left in no tier; without: all copies.
  local function drop(tier, ks, hs)
    load(ks)
    local hasCopies = redis.call('EXISTS', nk) == 1
    local cp, cpSet, cpList = {}, {}, {}
    if hasCopies then
      local fs = {}
      for j = 1, #ks do
        local k = ks[j]
        if k and cp[k] == nil then
          cp[k] = 0
          cpList[#cpList + 1] = k
          fs[#fs + 1] = k .. '|' .. tier
        end
      end
      local cc = hmget(nk, fs)
      for x = 1, #cpList do cp[cpList[x]] = tonumber(cc[x] or '0') end
    end
    for j = 1, #ks do
      local k = ks[j]
      if k then
        if hs and hasCopies and cp[k] > 0 then
          cp[k] = cp[k] - 1
          cpSet[k] = true
        else
          local v, gone = hv[k], true
          if v then
            local tiers, og = splitv(v)
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
              setv(k, false)
              leave(k, og)
            else
              gone = false
              if hit then setv(k, table.concat(out, ',') .. (og and ('@' .. og) or '')) end
            end
          end
          if hs and gone then setm(hs[j], false) end
        end
      end
    end
    local cdel, cset = {}, {}
    for x = 1, #cpList do
      local k = cpList[x]
      if cpSet[k] then
        if cp[k] > 0 then
          cset[#cset + 1] = k .. '|' .. tier
          cset[#cset + 1] = cp[k]
        else
          cdel[#cdel + 1] = k .. '|' .. tier
        end
      end
    end
    bulk('HDEL', nk, cdel)
    bulk('HSET', nk, cset)
  end
  -- Keys of engine hashes (false when unknown), through the section's map buffer.
  local function resolve(hs)
    local miss = {}
    for j = 1, #hs do
      local h = hs[j]
      if mv[h] == nil then
        mv[h] = false
        miss[#miss + 1] = h
      end
    end
    if #miss > 0 then
      local cur = hmget(mk, miss)
      for x = 1, #miss do mv[miss[x]] = cur[x] or false end
    end
    local ks = {}
    for j = 1, #hs do ks[j] = mv[hs[j]] end
    return ks
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
        if n > 0 then drop(tier, resolve(hs), hs) end
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
  flushHM()
  if g then
    local live = {}
    for x = 1, #pend do
      if pend[x] then live[#live + 1] = pend[x] end
    end
    logGen(ek, g, live)
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
