/**
 * A simulated fleet behind a router for the fault suite (test/faults/): real sockets, the real
 * simulator with its fault injection, and a few helpers to send requests and read metrics.
 */
import { request } from 'undici';
import { startFleet, type SimFleet, type SimFleetOptions } from '../../src/sim/index.js';
import { startRouter, type RouterOptions, type RunningRouter } from '../../src/server/router.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createScheduler, type KvrouteScheduler, type SchedulerDeps } from '../../src/scheduling/scheduler.js';
import { sessionTokenFor } from '../../src/scheduling/scorers/session-affinity-scorer.js';

export const FAULT_MODEL = 'fault-model';

/**
 * A profile that routes on the session token only (ties at random): a request carrying
 * `x-session-token` goes to that replica unless it is filtered out, so tests can aim.
 */
export const PIN_PROFILE = `
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: session-affinity-scorer
  - type: max-score-picker
schedulingProfiles:
  - name: default
    plugins:
      - pluginRef: session-affinity-scorer
        weight: 1
      - pluginRef: max-score-picker
`;

/** Builds a scheduler from YAML text. */
export function schedulerFrom(yaml: string, deps: SchedulerDeps = {}): KvrouteScheduler {
  return createScheduler(loadConfig({ text: yaml }), deps);
}

export interface FaultRig {
  fleet: SimFleet;
  router: RunningRouter;
  scheduler: KvrouteScheduler;
  /** Endpoint id (host:port) of replica i. */
  id(i: number): string;
  /** Headers pinning a request to replica i (with PIN_PROFILE). */
  pin(i: number): Record<string, string>;
  /** POSTs a completion; resolves with status and body text (never throws on HTTP errors). */
  complete(body: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; text: string; headers: Record<string, unknown> }>;
  /** The router's /metrics text. */
  metrics(): Promise<string>;
  /** Sum of a metric's samples whose labels include every `labels` pair. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** Starts `replicas` simulated replicas and a router over them. */
export async function startFaultRig(o: { replicas?: number; fleet?: Partial<SimFleetOptions>; router?: Partial<RouterOptions>; scheduler?: KvrouteScheduler } = {}): Promise<FaultRig> {
  const fleet = await startFleet({ replicas: o.replicas ?? 3, basePort: 0, model: FAULT_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, seed: 1, maxModelLen: 8192, ...o.fleet });
  const scheduler = o.scheduler ?? schedulerFrom(PIN_PROFILE);
  let router: RunningRouter;
  try {
    router = await startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler, port: 0, adminPort: 0, processMetrics: false, ...o.router });
  } catch (err) {
    await fleet.close();
    throw err;
  }
  const id = (i: number): string => fleet.replicas[i].url.replace('http://', '');
  const metrics = async (): Promise<string> => (await request(`${router.adminUrl}/metrics`)).body.text();
  return {
    fleet,
    router,
    scheduler,
    id,
    pin: (i) => ({ 'x-session-token': sessionTokenFor(id(i)) }),
    async complete(body, headers = {}) {
      const res = await request(`${router.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: FAULT_MODEL, prompt: 'hello there', max_tokens: 4, ...body }),
      });
      return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
    },
    metrics,
    async metric(name, labels = {}) {
      const text = await metrics();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return sum;
    },
    async close() {
      await router.close();
      await fleet.close();
    },
  };
}

/** Polls `cond` every 10 ms until true or `ms` passed; returns its last value. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}
