/**
 * The router-side checks of `kvroute doctor` (KV events, pod ids, locality, concentration,
 * traffic), read from the router admin's stats; engine-side checks are in checks.ts.
 */
import type { EndpointSample, Finding, ProbeResult, RouterStatsSample } from './doctor-types.js';
import { DOCTOR_THRESHOLDS, FIX_EVENTS, pct, type CheckInput, type Window } from './check-common.js';

/** `kv@<address>@<model>` -> address. */
function topicAddress(topic: string): string | undefined {
  if (!topic.startsWith('kv@')) return undefined;
  const at = topic.indexOf('@', 3);
  return at < 0 ? undefined : topic.slice(3, at) || undefined;
}

function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return i < 0 ? address : address.slice(0, i);
}

export function routerChecks(input: CheckInput, samples: readonly EndpointSample[], w: ReadonlyMap<string, Window>): Finding[] {
  const out: Finding[] = [];
  const r = input.router;
  if (!r) {
    const why = input.routerError ?? 'no --router-admin given';
    out.push({ check: 'router-reachable', level: input.routerError ? 'fail' : 'skip', message: `router not inspected: ${why}`, fix: input.routerError ? "pass the router's admin URL (default port 9090), e.g. --router-admin http://127.0.0.1:9090" : 'pass --router-admin http://<router>:9090 to check KV events, pod ids, routing and traffic' });
    return out;
  }
  out.push({ check: 'router-reachable', level: 'ok', message: `router admin answers (profile ${r.router?.profile ?? '?'}: ${(r.router?.scorers ?? []).map((s) => `${s.type} x${s.weight}`).join(', ') || 'no scorers'})`, fix: '' });
  out.push(...kvEvents(r, samples, w));
  out.push(...podIds(r));
  out.push(...locality(r, input.probes));
  out.push(...concentration(input, r));
  out.push(...traffic(input, r, samples, w));
  return out;
}

function kvEvents(r: RouterStatsSample, samples: readonly EndpointSample[], w: ReadonlyMap<string, Window>): Finding[] {
  if (!r.router?.kvEventsExpected) {
    const precise = (r.router?.scorers ?? []).some((x) => x.type === 'precise-prefix-cache-scorer');
    const noEvents = r.endpoints.filter((e) => e.engine === 'llamacpp' || e.engine === 'openai').map((e) => e.id);
    const why = precise
      ? `the profile has precise-prefix-cache-scorer but no KV events are configured: it routes with its approximate fallback${noEvents.length > 0 ? ` (${noEvents.join(', ')} publish no KV events at all)` : ''}`
      : 'the router does not use KV events (no precise-prefix-cache-scorer in the profile): routing is approximate';
    return [{ check: 'kv-events', level: 'skip', message: why, fix: '' }];
  }
  if (!r.events) {
    return [{ check: 'kv-events', level: 'fail', message: 'the router is configured for precise prefix routing but has no KV-event ingestion: the precise scorer falls back to approximate routing', fix: 'give the router the pods\' event addresses (KV-event subscription) so it can build its block index' }];
  }
  const out: Finding[] = [];
  const byAddr = new Map(samples.map((s) => [s.address, s]));
  for (const ep of r.endpoints) {
    if (ep.engine === 'llamacpp' || ep.engine === 'openai') {
      out.push({ check: 'kv-events', level: 'warn', endpoint: ep.id, message: `${ep.id} runs ${ep.engine === 'llamacpp' ? 'llama.cpp' : 'a generic OpenAI server'}, which publishes no KV events: the precise scorer routes it approximately (fallback engine-no-events)`, fix: 'use the default (approximate) profile for such endpoints; precise routing needs vLLM or SGLang with KV events' });
      continue;
    }
    const st = r.events.endpoints[ep.id];
    const s = byAddr.get(ep.address);
    const busy = (s && (w.get(s.address)?.requests ?? 0) > 0) || ep.routed > 0;
    if (!st || st.batches === 0) {
      if (!busy) {
        out.push({ check: 'kv-events', level: 'skip', endpoint: ep.id, message: `no KV events from ${ep.id} yet, and it has served no requests`, fix: 'send some traffic and run doctor again' });
      } else {
        out.push({ check: 'kv-events', level: 'fail', endpoint: ep.id, message: `no KV events received from ${ep.id} although it served requests${st ? ` (subscriber ${st.connected ? 'connected' : 'NOT connected'})` : ' (no subscriber for it)'}: its precise prefix scores stay 0`, fix: FIX_EVENTS });
      }
      continue;
    }
    const problems: string[] = [];
    if (st.malformedMessages + st.malformedEvents > 0) problems.push(`${st.malformedMessages} malformed messages, ${st.malformedEvents} malformed events`);
    if (st.gaps > st.replays) problems.push(`${st.gaps} sequence gaps, ${st.replays} recovered by replay (${st.replayFailures} replay failures)`);
    if (!st.connected) problems.push('subscriber not connected');
    if (problems.length > 0) {
      out.push({ check: 'kv-events', level: 'warn', endpoint: ep.id, message: `KV events from ${ep.id}: ${st.batches} batches, but ${problems.join('; ')}`, fix: 'check the vLLM version (event format), network drops between pod and router, and that replay_endpoint is set so gaps can be filled' });
    } else {
      out.push({ check: 'kv-events', level: 'ok', endpoint: ep.id, message: `KV events arrive from ${ep.id} (${st.batches} batches, ${st.events} events)`, fix: '' });
    }
  }
  const p = r.preciseScorer;
  if (p) {
    const fb = Object.values(p.fallbacks).reduce((a, b) => a + b, 0);
    if (fb > 0 && fb >= p.precise) {
      out.push({ check: 'kv-events', level: 'warn', message: `the precise scorer fell back to approximate routing for ${fb} of ${fb + p.precise} requests (${Object.entries(p.fallbacks).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')})`, fix: 'no-index: the block index is not attached; tokenize-failed: the tokenizer does not load; lookup-failed: the index backend (Redis) is unreachable' });
    }
  }
  return out;
}

function podIds(r: RouterStatsSample): Finding[] {
  const out: Finding[] = [];
  if (r.events) {
    for (const [topic, n] of Object.entries(r.events.unknownTopics ?? {})) {
      if (n <= 0) continue;
      out.push({ check: 'pod-id', level: 'fail', message: `${n} KV-event messages arrived on topic "${topic}", which names no endpoint the router knows (${r.endpoints.map((e) => e.address).join(', ')}): those events are dropped`, fix: "make the topic's pod id the address the router uses for that endpoint: vLLM --kv-events-config topic kv@<pod-ip:port>@<model> with the same IP (or ip:port) as in --endpoints" });
    }
    for (const ep of r.endpoints) {
      const st = r.events.endpoints[ep.id];
      const addr = st?.topic ? topicAddress(st.topic) : undefined;
      if (addr === undefined) continue;
      if (addr !== ep.address && addr !== ep.id && addr !== hostOf(ep.address)) {
        out.push({ check: 'pod-id', level: 'fail', endpoint: ep.id, message: `the events of endpoint ${ep.id} (${ep.address}) are published on topic "${st!.topic}", which names ${addr}: the pod identifies itself differently from how the router knows it`, fix: `set the pod's topic to kv@${ep.address}@<model> (or register the endpoint under the id the pod uses with ;id=)` });
      }
    }
  }
  if (r.index) {
    const known = new Set(r.endpoints.map((e) => e.id));
    for (const [id, n] of Object.entries(r.index.endpoints)) {
      if (!known.has(id) && n > 0) {
        out.push({ check: 'pod-id', level: 'fail', endpoint: id, message: `the block index holds ${n} entries for "${id}", which is not an endpoint the router routes to: scores for the real endpoint stay 0`, fix: 'make the event source id match the endpoint id (same address in --endpoints and in the KV-event topic)' });
      }
    }
  }
  if (out.length === 0 && (r.events || r.index)) out.push({ check: 'pod-id', level: 'ok', message: 'KV-event topics and index entries name known endpoints', fix: '' });
  return out;
}

function locality(r: RouterStatsSample, probes: readonly ProbeResult[]): Finding[] {
  const out: Finding[] = [];
  const types = new Set((r.router?.scorers ?? []).map((s) => s.type));
  if (r.router && !types.has('prefix-cache-scorer') && !types.has('precise-prefix-cache-scorer')) {
    out.push({ check: 'routing-locality', level: 'warn', message: `the router's profile has no prefix scorer (${[...types].join(', ') || 'none'}): requests sharing a prefix are not sent where it is cached`, fix: 'add prefix-cache-scorer (or precise-prefix-cache-scorer with KV events) to the scheduling profile, e.g. --preset default' });
  }
  const p = probes.find((x) => x.target === 'router' && x.ok);
  if (p?.servedBy) {
    const [a, b] = p.servedBy;
    if (a !== undefined && b !== undefined && a !== b) {
      out.push({ check: 'routing-locality', level: 'fail', message: `the same prompt sent twice through the router went to ${a}, then to ${b}: routing ignores where the prefix is cached (no concentration)`, fix: 'check that a prefix scorer is in the profile with a weight that can beat the load scorers, and, for precise routing, that KV events arrive (kv-events, pod-id)' });
    } else if (a !== undefined && a === b) {
      out.push({ check: 'routing-locality', level: 'ok', message: `the same prompt sent twice through the router went to the same endpoint (${a})`, fix: '' });
    }
  }
  return out;
}

function concentration(input: CheckInput, r: RouterStatsSample): Finding[] {
  const before = new Map((input.routerBefore?.endpoints ?? []).map((e) => [e.id, e.routed]));
  const counts = r.endpoints.map((e) => ({ id: e.id, n: Math.max(0, e.routed - (before.get(e.id) ?? 0)) }));
  let total = counts.reduce((a, c) => a + c.n, 0);
  let use = counts;
  if (total === 0 && input.routerBefore) {
    use = r.endpoints.map((e) => ({ id: e.id, n: e.routed }));
    total = use.reduce((a, c) => a + c.n, 0);
  }
  if (r.endpoints.length < 2 || total < DOCTOR_THRESHOLDS.minRequestsForShare) {
    return [{ check: 'load-concentration', level: 'skip', message: `too little routed traffic to judge the balance (${total} requests, ${r.endpoints.length} endpoints)`, fix: '' }];
  }
  const top = use.reduce((a, c) => (c.n > a.n ? c : a));
  const share = top.n / total;
  const dist = use.map((c) => `${c.id} ${c.n}`).join(', ');
  if (share >= DOCTOR_THRESHOLDS.hotSpotShare) {
    const load = (r.router?.scorers ?? []).filter((s) => ['queue-scorer', 'kv-cache-utilization-scorer', 'load-aware-scorer', 'inflight-load-scorer'].includes(s.type));
    return [{
      check: 'load-concentration',
      level: 'warn',
      endpoint: top.id,
      message: `hot-spotting: ${top.id} received ${pct(share)} of ${total} routed requests (${dist})${load.length === 0 ? '; the profile has no load scorer' : ''}`,
      fix: 'balance locality against load: add or raise a load scorer (inflight-load-scorer, queue-scorer, kv-cache-utilization-scorer), lower the prefix or session weight, and look for one dominating session or client IP',
    }];
  }
  return [{ check: 'load-concentration', level: 'ok', message: `routed requests: ${dist} (busiest ${pct(share)})`, fix: '' }];
}

function traffic(input: CheckInput, r: RouterStatsSample, samples: readonly EndpointSample[], w: ReadonlyMap<string, Window>): Finding[] {
  const out: Finding[] = [];
  const windowed = [...w.values()].some((x) => x.windowed);
  const before = new Map((input.routerBefore?.endpoints ?? []).map((e) => [e.id, e.routed]));
  const byAddr = new Map(r.endpoints.map((e) => [e.address, e]));
  let served = 0;
  let routed = 0;
  const rows: Array<{ address: string; served: number; routed: number }> = [];
  for (const s of samples) {
    const x = w.get(s.address)!;
    if (x.requests === undefined) continue;
    const ep = byAddr.get(s.address);
    const sent = ep ? (windowed ? Math.max(0, ep.routed - (before.get(ep.id) ?? 0)) : ep.routed) : 0;
    const direct = input.directProbes.get(s.address) ?? 0;
    const srv = Math.max(0, x.requests - direct);
    served += srv;
    routed += sent;
    rows.push({ address: s.address, served: srv, routed: sent });
    if (!ep) {
      out.push({ check: 'router-traffic', level: srv > 0 ? 'warn' : 'skip', endpoint: s.address, message: `${s.address} is not one of the router's endpoints${srv > 0 ? `, yet it served ${srv} requests` : ''}`, fix: 'add it to the router\'s --endpoints, or point its clients at the router' });
    }
  }
  const span = windowed ? 'during the sampling window' : 'since start (counts since each process started; a router restarted after the engines also shows a difference)';
  const uncounted = samples.filter((s) => w.get(s.address)!.requests === undefined).map((s) => s.address);
  if (served === 0 && uncounted.length > 0) {
    const sent = r.endpoints.reduce((a, e) => a + e.routed, 0);
    out.push({ check: 'router-traffic', level: 'skip', message: `${uncounted.join(', ')} export no finished-request counter (llama.cpp has none): cannot compare what they served with what the router sent (${sent} requests routed so far)`, fix: '' });
    return out;
  }
  if (served === 0) {
    out.push({ check: 'router-traffic', level: 'skip', message: `the endpoints served no requests ${span.split(' (')[0]}`, fix: 'send some traffic and run doctor again' });
    return out;
  }
  if (routed === 0) {
    out.push({ check: 'router-traffic', level: 'fail', message: `the endpoints served ${served} requests ${span} but none came through the router: the router receives no traffic`, fix: 'point clients (or the Gateway HTTPRoute backendRef / InferencePool) at the router instead of the model servers\' Service' });
    return out;
  }
  for (const row of rows) {
    const extra = row.served - row.routed;
    if (extra > Math.max(DOCTOR_THRESHOLDS.bypassSlack, 0.1 * row.served)) {
      out.push({ check: 'router-traffic', level: 'warn', endpoint: row.address, message: `requests bypass the router: ${row.address} served ${row.served} requests ${span}, the router sent it ${row.routed}`, fix: 'find the clients that call the model server directly (a Service or port-forward to the pod) and send them through the router; bypassing traffic fills caches the router does not know about and breaks its load picture' });
    }
  }
  if (!out.some((f) => f.level === 'warn' || f.level === 'fail')) {
    out.push({ check: 'router-traffic', level: 'ok', message: `the router sent ${routed} of the ${served} requests the endpoints served (${span.split(' (')[0]})`, fix: '' });
  }
  return out;
}
