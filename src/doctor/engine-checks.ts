/**
 * Doctor's engine-aware checks: which engine each endpoint runs and what kvroute cannot measure
 * on it (`engine`), and whether the router can use its endpoints at all (`endpoint-health`:
 * wrong --engine, 0/N healthy, stale load data), with the router's own reasons.
 */
import { adapterFor } from '../engines/registry.js';
import type { CheckInput } from './check-common.js';
import type { EndpointSample, Finding } from './doctor-types.js';

/** One `engine` finding per reachable endpoint: its engine and what cannot be measured on it. */
export function engineFindings(samples: readonly EndpointSample[]): Finding[] {
  return samples.map((s) => {
    if (s.engine === undefined) {
      return { check: 'engine', level: 'warn', endpoint: s.address, message: `${s.address}/metrics carries no vllm:, sglang: or llamacpp: metrics: unknown engine, routed as a generic OpenAI server (no load data)`, fix: 'start the engine with its metrics on (vLLM: default; SGLang: --enable-metrics; llama-server: --metrics)' } satisfies Finding;
    }
    const a = adapterFor(s.engine);
    const cannot = a.kind === 'vllm' ? '' : `; cannot measure here: ${a.limitations.join('; ')}`;
    return { check: 'engine', level: 'ok', endpoint: s.address, message: `${s.address} runs ${a.label} (detected from its metric names)${cannot}`, fix: '' } satisfies Finding;
  });
}

/** The router's view of its endpoints: unhealthy ones with the reason, wrong engine overrides. */
export function endpointHealthFindings(input: CheckInput): Finding[] {
  const r = input.router;
  if (!r) return [];
  const out: Finding[] = [];
  const byAddr = new Map(input.after.map((s) => [s.address, s]));
  let healthy = 0;
  for (const ep of r.endpoints) {
    const sample = byAddr.get(ep.address);
    if (ep.healthy) healthy++;
    if (sample?.engine !== undefined && ep.engine !== undefined && sample.engine !== ep.engine) {
      out.push({ check: 'endpoint-health', level: 'fail', endpoint: ep.id, message: `the router treats ${ep.id} as ${ep.engine}${ep.engineSource === 'override' ? ' (--engine / ;engine=)' : ''} but it serves ${sample.engine} metrics`, fix: `drop --engine / ;engine= so the router detects the engine, or set it to ${sample.engine}` });
    } else if (!ep.healthy) {
      out.push({ check: 'endpoint-health', level: 'fail', endpoint: ep.id, message: `the router does not route to ${ep.id}: ${ep.reason || 'unhealthy'}`, fix: /wrong --engine/.test(ep.reason ?? '') ? 'drop --engine / ;engine= so the router detects the engine, or set the right one' : 'check that the model server runs, answers /health and /metrics, and is reachable from the router' });
    } else if (ep.reason) {
      out.push({ check: 'endpoint-health', level: 'warn', endpoint: ep.id, message: `${ep.id} is routed to, but ${ep.reason}`, fix: 'llama.cpp answers /metrics only between prefills; elsewhere check the server\'s load and the network' });
    }
  }
  if (r.endpoints.length > 0 && healthy === 0) {
    out.unshift({ check: 'endpoint-health', level: 'fail', message: `0/${r.endpoints.length} endpoints healthy in the router: every request gets 503`, fix: 'see the endpoint-health findings below for each endpoint\'s reason' });
  } else if (!out.some((f) => f.level === 'fail')) {
    out.push({ check: 'endpoint-health', level: 'ok', message: `${healthy}/${r.endpoints.length} endpoints healthy in the router (${r.endpoints.map((e) => `${e.id} ${e.engine ?? '?'}${e.engineSource === 'detected' ? ' detected' : ''}`).join(', ')})`, fix: '' });
  }
  return out;
}
