/**
 * The checks of `kvroute doctor`, as pure functions from what was collected to findings. Each
 * finding says what was seen (with numbers) and the fix. docs/doctor.md lists them all.
 *
 * Counters are compared over the sampling window when traffic flowed in it (two samples), else
 * cumulatively since each process started (one sample, or an idle window).
 */
import type { EndpointSample, Finding, ProbeResult } from './doctor-types.js';
import { delta, DOCTOR_THRESHOLDS, pct, type CheckInput, type Window } from './check-common.js';
import { endpointHealthFindings, engineFindings } from './engine-checks.js';
import { routerChecks } from './router-checks.js';

export { DOCTOR_THRESHOLDS, type CheckInput } from './check-common.js';

const FIX_PREFIX_OFF =
  "start vLLM with prefix caching on: it is the default in vLLM v1; remove --no-enable-prefix-caching (older vLLM: add --enable-prefix-caching), and settings that replace the local cache (e.g. a --kv-transfer-config that conflicts with it)";

/** Runs every check. */
export function runChecks(input: CheckInput): Finding[] {
  const out: Finding[] = [];
  const reachable = input.after.filter((s) => s.reachable);
  for (const s of input.after) {
    if (!s.reachable && s.live) {
      out.push({ check: 'endpoint-reachable', level: 'warn', endpoint: s.address, message: `${s.url} answers /health but not /metrics (${s.error ?? 'unknown error'}): busy (llama.cpp answers /metrics only between prefills) or metrics disabled`, fix: 'run doctor again when the server is idle; llama-server needs --metrics, SGLang --enable-metrics' });
    } else if (!s.reachable) {
      out.push({ check: 'endpoint-reachable', level: 'fail', endpoint: s.address, message: `cannot read ${s.url}/metrics: ${s.error ?? 'unknown error'}`, fix: 'check that the model server runs and listens on that address, and that it serves Prometheus metrics on /metrics' });
    } else {
      out.push({ check: 'endpoint-reachable', level: 'ok', endpoint: s.address, message: `${s.url}/metrics answers`, fix: '' });
    }
  }
  out.push(...engineFindings(reachable));
  out.push(...endpointHealthFindings(input));
  const windowed = windowStats(input);
  for (const s of reachable) out.push(prefixCaching(s), ...prefixCounters(s, windowed.get(s.address)!));
  out.push(...hitRate(reachable, windowed));
  out.push(...probeHits(input.probes));
  out.push(blockSize(reachable, input));
  out.push(...routerChecks(input, reachable, windowed));
  return out;
}

function windowStats(input: CheckInput): Map<string, Window> {
  const m = new Map<string, Window>();
  const before = new Map((input.before ?? []).map((s) => [s.address, s]));
  let traffic = false;
  for (const s of input.after) {
    const b = before.get(s.address);
    if (b && s.requests !== undefined && b.requests !== undefined && s.requests > b.requests) traffic = true;
  }
  for (const s of input.after) {
    const b = traffic ? before.get(s.address) : undefined;
    m.set(s.address, {
      requests: delta(s.requests, b?.requests),
      queries: delta(s.queries, b?.queries),
      hits: delta(s.hits, b?.hits),
      windowed: b !== undefined,
    });
  }
  return m;
}

function prefixCaching(s: EndpointSample): Finding {
  if (s.engine === 'llamacpp') {
    return { check: 'prefix-caching', level: 'skip', endpoint: s.address, message: `${s.address} is llama.cpp: one cached prompt per slot, no prefix-cache counters or flag to read; --probe measures reuse from the response timings`, fix: '' };
  }
  if (s.engine === 'sglang' && s.queries !== undefined) {
    return { check: 'prefix-caching', level: 'ok', endpoint: s.address, message: 'SGLang radix cache: sglang:cached_tokens_total present', fix: '' };
  }
  const flag = s.cacheConfig?.enable_prefix_caching;
  if (flag !== undefined && flag.toLowerCase() === 'false') {
    return { check: 'prefix-caching', level: 'fail', endpoint: s.address, message: `prefix caching is OFF on ${s.address} (vllm:cache_config_info enable_prefix_caching="${flag}"): every request recomputes its whole prompt and cache-aware routing cannot help`, fix: FIX_PREFIX_OFF };
  }
  if (flag !== undefined) return { check: 'prefix-caching', level: 'ok', endpoint: s.address, message: `prefix caching on (enable_prefix_caching="${flag}")`, fix: '' };
  if (s.queries === undefined) {
    return { check: 'prefix-caching', level: 'warn', endpoint: s.address, message: `${s.address} exports neither vllm:cache_config_info nor prefix-cache counters: cannot tell whether prefix caching is on (not vLLM, or a very old vLLM?)`, fix: 'run a vLLM that exports vllm:cache_config_info and vllm:prefix_cache_{queries,hits}_total, or use --probe to test caching directly' };
  }
  return { check: 'prefix-caching', level: 'ok', endpoint: s.address, message: 'no vllm:cache_config_info; prefix-cache counters present', fix: '' };
}

function prefixCounters(s: EndpointSample, w: Window): Finding[] {
  if (s.cacheConfig?.enable_prefix_caching?.toLowerCase() === 'false') return [];
  if (s.queries === undefined) return [];
  const span = w.windowed ? 'during the sampling window' : 'since the engine started';
  if (w.requests === undefined || w.requests === 0) {
    return [{ check: 'prefix-counters', level: 'skip', endpoint: s.address, message: `no finished requests ${span}: cannot tell whether the prefix-cache counters move`, fix: 'send some traffic (or run doctor with --probe) and run it again' }];
  }
  if ((w.queries ?? 0) === 0) {
    return [{ check: 'prefix-counters', level: 'fail', endpoint: s.address, message: `${s.address} finished ${w.requests} requests ${span} but vllm:prefix_cache_queries_total did not move: prefix caching is not active (or stats logging is disabled)`, fix: `${FIX_PREFIX_OFF}; do not start vLLM with --disable-log-stats` }];
  }
  return [{ check: 'prefix-counters', level: 'ok', endpoint: s.address, message: `prefix-cache counters move (${w.queries} tokens queried over ${w.requests} requests ${span})`, fix: '' }];
}

function hitRate(samples: readonly EndpointSample[], w: ReadonlyMap<string, Window>): Finding[] {
  const out: Finding[] = [];
  let q = 0;
  let h = 0;
  for (const s of samples) {
    const x = w.get(s.address)!;
    if (x.queries === undefined || x.hits === undefined) continue;
    q += x.queries;
    h += x.hits;
    if (x.queries >= DOCTOR_THRESHOLDS.minQueriesForHitRate && x.hits / x.queries < DOCTOR_THRESHOLDS.lowHitRate) {
      out.push({
        check: 'hit-rate',
        level: 'warn',
        endpoint: s.address,
        message: `${s.address} prefix-cache hit rate ${pct(x.hits / x.queries)} (${x.hits} of ${x.queries} tokens): requests almost never reuse its cache`,
        fix: 'if requests share prefixes (system prompts, conversations), they are not reaching the replica that holds them: check routing (kv-events, routing-locality, router-traffic); otherwise check for evictions (KV cache too small), per-request cache_salt, or prompts that differ at the start (timestamps, ids before the shared part)',
      });
    }
  }
  if (q > 0) out.push({ check: 'hit-rate', level: 'ok', message: `fleet prefix-cache hit rate ${pct(h / q)} (${h} of ${q} tokens${[...w.values()].some((x) => x.windowed) ? ', sampling window' : ', since start'})`, fix: '' });
  else out.push({ check: 'hit-rate', level: 'skip', message: 'no prefix-cache queries yet: no hit rate to report', fix: 'send some traffic (or use --probe)' });
  return out;
}

function probeHits(probes: readonly ProbeResult[]): Finding[] {
  const out: Finding[] = [];
  for (const p of probes) {
    const where = p.target === 'router' ? 'through the router' : `straight to ${p.target}`;
    const endpoint = p.target === 'router' ? undefined : p.target;
    if (!p.ok) {
      out.push({ check: 'probe-hit', level: 'fail', endpoint, message: `probe ${where} failed: ${p.error}`, fix: 'check that the target answers POST /v1/completions for the served model' });
      continue;
    }
    if (p.secondCached === undefined) {
      out.push({ check: 'probe-hit', level: 'skip', endpoint, message: `probe ${where}: the server reports no cached tokens (no usage.prompt_tokens_details, no llama.cpp timings) and no hit counter`, fix: 'vLLM: start it with --enable-prompt-tokens-details; SGLang: --enable-cache-report' });
    } else if (p.secondCached > 0) {
      out.push({ check: 'probe-hit', level: 'ok', endpoint, message: `probe ${where}: the repeated prompt hit the cache (${p.secondCached}${p.promptTokens ? ` of ${p.promptTokens}` : ''} tokens cached${p.cachedFrom ? `, from ${p.cachedFrom}` : ''})`, fix: '' });
    } else if (p.target === 'router' && p.servedBy && p.servedBy[0] !== p.servedBy[1]) {
      // Reported by routing-locality.
    } else {
      out.push({ check: 'probe-hit', level: 'fail', endpoint, message: `probe ${where}: the same prompt sent twice got 0 cached tokens the second time`, fix: FIX_PREFIX_OFF });
    }
  }
  return out;
}

function blockSize(samples: readonly EndpointSample[], input: CheckInput): Finding {
  const sizes = new Map<number, string[]>();
  for (const s of samples) if (s.blockSize !== undefined) sizes.set(s.blockSize, [...(sizes.get(s.blockSize) ?? []), s.address]);
  if (sizes.size > 1) {
    const desc = [...sizes].map(([bs, eps]) => `${bs} tokens on ${eps.join(', ')}`).join('; ');
    return { check: 'block-size', level: 'fail', message: `the engines disagree on the KV block size: ${desc}`, fix: 'start every replica with the same --block-size (vLLM default 16); the router keys blocks with one size' };
  }
  const engine = [...sizes.keys()][0];
  const routerBs = input.router?.router?.blockSize ?? input.blockSize;
  const source = input.router?.router?.blockSize != null ? 'the router' : '--block-size';
  if (engine === undefined) return { check: 'block-size', level: 'skip', message: 'no engine reports block_size (vllm:cache_config_info)', fix: '' };
  if (routerBs === undefined || routerBs === null) {
    return { check: 'block-size', level: 'ok', message: `engines use ${engine}-token blocks; the router does not key token blocks (approximate routing), nothing to compare`, fix: '' };
  }
  if (routerBs !== engine) {
    return { check: 'block-size', level: 'fail', message: `${source} keys blocks of ${routerBs} tokens but the engines use ${engine}: no request key will ever match an engine block, precise prefix scores stay 0`, fix: `set the router's block size to ${engine} (precise-prefix-cache-scorer parameters.tokenProcessorConfig.blockSize), or start the engines with --block-size ${routerBs}` };
  }
  return { check: 'block-size', level: 'ok', message: `router and engines agree on ${engine}-token blocks`, fix: '' };
}
