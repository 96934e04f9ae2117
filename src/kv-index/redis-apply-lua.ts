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
 * Algorithm (per section): the endpoint's holdings values are read once per op that needs them
 * (one HMGET of the keys not read yet) into a Lua table and written once at the end (one HSET,
 * one HDEL); engine-hash map writes are held until the next removal op resolves hashes or the
 * section ends. A section's stores share one recency generation (redis-log-lua.ts): its keys in
 * store order, each store leaf first, so the eviction order is the one a per-block sorted set
 * gave (the older op first, a chain's tail before its root, a key stored again moves to the end).
 * So a section costs a fixed handful of Redis commands (fence read, holdings read and write, map
 * write, one log entry, fence write, holdings count) whatever its number of ops: a vLLM step with
 * several requests' events is as cheap as one event. Per block: one field read, two field writes
 * and a few Lua table operations. TTLs are refreshed per endpoint, not per block.
 */
export const APPLY_LUA = LOG_LUA + `
local RUN, tol, ttl, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
-- Section state (one section at a time). Holdings values hv (false = not held) are read once and
-- written once at the end of the section: stores append (key, value) pairs to hs (a later pair of
-- the same key wins in HSET), removals list the keys they change in hlist. Engine-hash map writes wait in ms (pairs) / md (deletions, all older than ms) until
-- the next removal op resolves hashes or the section ends. The section's generation g (opened by
-- its first store) keeps its keys in eviction order in pend (false = moved later in the list, or
-- dropped; ppos = a key's index, built when first needed); dec = keys that left older generations.
local hk, ek, mk, nk, fk
local added, removed, stored, refresh, q
local hv, hs, hlist, nh, ms, md, pend, ppos, np, holes, dec, g, sfx
local function reset()
  hv, hs, hlist, nh, ms, md, pend, ppos, np, holes, dec = {}, {}, {}, 0, {}, {}, {}, nil, 0, false, {}
end
local function setv(k, v)
  hv[k] = v
  nh = nh + 1
  hlist[nh] = k
end
-- k leaves the generation its value names (og): a pending entry of this section's, or a decrement.
local function leave(k, og)
  if og == g then
    if not ppos then
      ppos = {}
      for x = 1, np do
        if pend[x] then ppos[pend[x]] = x end
      end
    end
    pend[ppos[k]] = false
    holes = true
  elseif og then
    dec[og] = (dec[og] or 0) + 1
  end
end
local function load(ks, n)
  local miss, m = {}, 0
  for j = 1, n do
    local k = ks[j]
    if k and hv[k] == nil then
      m = m + 1
      miss[m] = k
    end
  end
  if m > 0 then
    local cur = hmget(hk, miss)
    for x = 1, m do hv[miss[x]] = cur[x] or false end
  end
end
local function flushMap()
  bulk('HDEL', mk, md)
  bulk('HSET', mk, ms)
  ms, md = {}, {}
end
local function flushHM()
  if nh == 0 then
    bulk('HSET', hk, hs)
  else
    -- Removals too: each changed key once, with its final value (or deleted).
    local set, del, seen, a, b = {}, {}, {}, 0, 0
    local function put(k)
      if seen[k] then return end
      seen[k] = true
      local v = hv[k]
      if v then
        set[a + 1] = k
        set[a + 2] = v
        a = a + 2
      else
        b = b + 1
        del[b] = k
      end
    end
    for x = 1, #hs, 2 do put(hs[x]) end
    for x = 1, nh do put(hlist[x]) end
    bulk('HDEL', hk, del)
    bulk('HSET', hk, set)
  end
  hs, hlist, nh = {}, {}, 0
  flushMap()
end
local function clear()
  flushHM()
  local vals = redis.call('HVALS', hk)
  for i = 1, #vals do
    local tiers = splitv(vals[i])
    for _ in string.gmatch(tiers, '[^,]+') do removed = removed + 1 end
  end
  redis.call('DEL', hk, ek, mk, nk)
  reset()
  refresh = true
end
-- Store n keys in tier (hashes at stride 2 when given), leaf first, at the end of the section's
-- generation (a key already there moves to the end).
local function store(tier, i, n, withHashes)
  local stride = withHashes and 2 or 1
  local ks = {}
  for j = 0, n - 1 do ks[j + 1] = ARGV[i + stride * j + stride - 1] end
  load(ks, n)
  if not g then
    q = q + 1
    g = tostring(q)
    sfx = '@' .. g
  end
  local plain = tier .. sfx
  local tt = ',' .. tier .. ','
  local nm, ns = #ms, #hs
  for j = n - 1, 0, -1 do
    local k = ks[j + 1]
    local v = hv[k]
    if not v then
      v = plain
      added = added + 1
    else
      local c, og = splitv(v)
      leave(k, og)
      if not string.find(',' .. c .. ',', tt, 1, true) then
        v = c .. ',' .. tier .. sfx
        added = added + 1
      else
        v = c .. sfx
        if withHashes then redis.call('HINCRBY', nk, k .. '|' .. tier, 1) end
      end
    end
    hv[k] = v
    hs[ns + 1] = k
    hs[ns + 2] = v
    ns = ns + 2
    np = np + 1
    pend[np] = k
    if ppos then ppos[k] = np end
    if withHashes then
      ms[nm + 1] = ARGV[i + 2 * j]
      ms[nm + 2] = k
      nm = nm + 2
    end
  end
  stored = true
end
-- Remove tier from keys ks (false entries skipped), in order; with engine hashes hs: one copy per
-- hash, and the mapping dropped when the key is left in no tier; without: all copies.
local function drop(tier, ks, hs, n)
  load(ks, n)
  local hasCopies = redis.call('EXISTS', nk) == 1
  local cp, cpSet, cpList = {}, {}, {}
  if hasCopies then
    local fs = {}
    for j = 1, n do
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
  for j = 1, n do
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
        if hs and gone then md[#md + 1] = hs[j] end
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
-- Keys of engine hashes (false when unknown): the map's waiting writes first, then one read.
local function resolve(hs)
  flushMap()
  return hmget(mk, hs)
end
local function section(K, a)
  hk, ek, mk, nk, fk = KEYS[K], KEYS[K + 1], KEYS[K + 2], KEYS[K + 3], KEYS[K + 4]
  local verified, seq, ts, mode = ARGV[a], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local part, nextp = tonumber(ARGV[a + 5]), ARGV[a + 6]
  local last = a + 7 + tonumber(ARGV[a + 7])
  local evicted, code = 0, 1
  added, removed, stored, refresh, g, sfx = 0, 0, false, ARGV[a + 1] == '1', nil, nil
  reset()
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
  q = q0
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
  -- One read of the holdings of every key the ops name (removals by engine hash read theirs later).
  local i, pre, m = a + 8, {}, 0
  while i <= last do
    local op = ARGV[i]
    if op == 'C' then
      i = i + 1
    else
      local n = tonumber(ARGV[i + 2])
      local stride = op == 'S' and 2 or 1
      if op ~= 'R' then
        for j = i + 2 + stride, i + 2 + stride * n, stride do
          m = m + 1
          pre[m] = ARGV[j]
        end
      end
      i = i + 3 + stride * n
    end
  end
  load(pre, m)
  i = a + 8
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
        if n > 0 then drop(tier, resolve(hs), hs, n) end
        i = i + n
      elseif op == 'D' then
        local ks = {}
        for j = 0, n - 1 do ks[j + 1] = ARGV[i + j] end
        drop(tier, ks, nil, n)
        i = i + n
      else
        return redis.error_reply('kvroute index: unknown op ' .. tostring(op))
      end
    end
  end
  flushHM()
  if g then
    local live, m = pend, 0
    if holes then
      live = {}
      for x = 1, np do
        if pend[x] then
          m = m + 1
          live[m] = pend[x]
        end
      end
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
