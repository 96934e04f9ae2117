/**
 * A simulated P/D fleet on free loopback ports: prefill replicas (`--role prefill`), decode
 * replicas (`--role decode`), a `kvroute sidecar` in front of each decode replica, and
 * optionally a kvroute gateway whose scheduler is llm-d's sample P/D config (loaded unchanged).
 */
import { fileURLToPath } from 'node:url';
import { startFleet, type SimFleet, type SimReplica } from '../../src/sim/index.js';
import { Sidecar, type SidecarOptions } from '../../src/sidecar/sidecar-server.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createScheduler, type KvrouteScheduler } from '../../src/scheduling/scheduler.js';

export const PD_MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
/** llm-d-router deploy/config/pd-epp-config.yaml, verbatim (test/fixtures/llm-d/README.md). */
export const LLMD_PD_CONFIG = fileURLToPath(new URL('../../../test/fixtures/llm-d/pd-epp-config.yaml', import.meta.url));

export interface PdFleet {
  fleet: SimFleet;
  prefill: SimReplica[];
  decode: SimReplica[];
  /** One per decode replica (empty without `sidecars`). */
  sidecars: Sidecar[];
  router?: RunningRouter;
  /** The gateway's scheduler (with `gateway`). */
  scheduler?: KvrouteScheduler;
  close(): Promise<void>;
}

export interface PdFleetOptions {
  prefill?: number;
  decode?: number;
  /** Put a sidecar in front of each decode replica (default true). */
  sidecars?: boolean;
  sidecar?: Partial<SidecarOptions>;
  /** Start a gateway: 'header' routes to the sidecars, 'orchestrate' to the decode replicas. */
  gateway?: 'header' | 'orchestrate';
  pinTimeoutMs?: number;
  timeScale?: number;
}

const addr = (r: { host: string; port: number }): string => `${r.host}:${r.port}`;

export async function startPdFleet(o: PdFleetOptions = {}): Promise<PdFleet> {
  const np = o.prefill ?? 1;
  const nd = o.decode ?? 1;
  const fleet = await startFleet({
    replicas: np + nd, basePort: 0, model: PD_MODEL, profile: 'llama-3.1-8b', timeScale: o.timeScale ?? 0.02, maxModelLen: 16384,
    enablePromptTokensDetails: true, // like vLLM run with --enable-prompt-tokens-details: usage shows cached tokens
    pd: (i) => ({ role: i < np ? 'prefill' : 'decode', pinTimeoutMs: o.pinTimeoutMs ?? 480_000 }),
  });
  const prefill = fleet.replicas.slice(0, np);
  const decode = fleet.replicas.slice(np);
  const sidecars: Sidecar[] = [];
  let router: RunningRouter | undefined;
  let scheduler: KvrouteScheduler | undefined;
  const close = async (): Promise<void> => {
    await router?.close();
    await Promise.all(sidecars.map((s) => s.close()));
    await fleet.close();
  };
  try {
    if (o.sidecars ?? true) {
      for (const d of decode) {
        const s = new Sidecar({ port: 0, modelServer: addr(d), ssrfProtection: true, allowedPrefillers: prefill.map(addr), prefillRetryBackoffMs: 10, ...o.sidecar });
        await s.start();
        sidecars.push(s);
      }
    }
    if (o.gateway !== undefined) {
      const decodeUrls = o.gateway === 'header' ? sidecars.map((s) => s.url) : decode.map((d) => d.url);
      router = await startRouter({
        endpoints: [...prefill.map((p) => ({ url: p.url, role: 'prefill' as const })), ...decodeUrls.map((url) => ({ url, role: 'decode' as const }))],
        scheduler: (scheduler = createScheduler(loadConfig({ file: LLMD_PD_CONFIG }))),
        port: 0,
        adminPort: 0,
        processMetrics: false,
        scrapeIntervalMs: 60_000,
        pdMode: o.gateway,
      });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { fleet, prefill, decode, sidecars, router, scheduler, close };
}

/** Polls `cond` every 10 ms until true or `ms` elapse (then throws with `what`). */
export async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A long prompt (distinct per seed) of about `words` words. */
export function longPrompt(seed: number, words = 600): string {
  const out: string[] = [];
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < words; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out.push(`w${(x % 5000).toString(36)}`);
  }
  return out.join(' ');
}
