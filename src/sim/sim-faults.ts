/**
 * Injected faults of a simulated replica (`/sim/faults`, {@link SimReplica.setFaults}): the
 * request-side ones live here (error rate, added latency, stalled probes); `down` closes the
 * listener and so stays with the replica's server.
 */
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';

/** Injected faults of a replica. */
export interface SimFaults {
  /** Share of inference requests answered 500 before any work (0..1). */
  errorRate: number;
  /** Delay before an inference response starts (ms, injected clock). */
  addedLatencyMs: number;
  /** Not listening: connections are refused. */
  down: boolean;
  /** With down: come back up after this many ms. */
  downForMs?: number;
  /**
   * /health and /metrics (and the dialect's probe paths) never answer while inference still
   * works: an engine or network too loaded to answer probes in time, as a router sees it.
   */
  stallProbes?: boolean;
}

/** Paths a router probes for liveness and load (vLLM's, SGLang's and llama.cpp's). */
const PROBE_PATHS = new Set(['/health', '/metrics', '/v1/models', '/props', '/server_info', '/get_server_info', '/slots']);

const FIELDS = [['errorRate', 'number'], ['addedLatencyMs', 'number'], ['down', 'boolean'], ['downForMs', 'number'], ['stallProbes', 'boolean']] as const;

/** A `POST /sim/faults` body, type-checked field by field (unknown fields ignored). */
export function parseFaults(b: Record<string, unknown>): Partial<SimFaults> {
  const f: Partial<SimFaults> = {};
  for (const [k, t] of FIELDS) {
    if (b[k] === undefined) continue;
    if (typeof b[k] !== t) throw new KvrError('KVR_ERR_BAD_REQUEST', `'${k}' must be a ${t}`, { param: k });
    (f as Record<string, unknown>)[k] = b[k];
  }
  return f;
}

/** The current faults and what they do to requests. */
export class FaultState {
  readonly faults: SimFaults = { errorRate: 0, addedLatencyMs: 0, down: false };
  /** Probe requests held by the `stallProbes` fault. */
  readonly #stalled: Array<() => void> = [];

  /** Sets the request-side faults of `f` (validated); `down` is the server's. */
  set(f: Partial<SimFaults>): void {
    if (f.errorRate !== undefined) {
      if (!(f.errorRate >= 0 && f.errorRate <= 1)) throw new KvrError('KVR_ERR_BAD_REQUEST', 'errorRate must be in [0, 1]', { param: 'errorRate' });
      this.faults.errorRate = f.errorRate;
    }
    if (f.addedLatencyMs !== undefined) {
      if (!(f.addedLatencyMs >= 0)) throw new KvrError('KVR_ERR_BAD_REQUEST', 'addedLatencyMs must be >= 0', { param: 'addedLatencyMs' });
      this.faults.addedLatencyMs = f.addedLatencyMs;
    }
    if (f.stallProbes !== undefined) {
      this.faults.stallProbes = f.stallProbes;
      if (!f.stallProbes) for (const release of this.#stalled.splice(0)) release();
    }
  }

  /**
   * With `stallProbes`, holds a probe until the fault is lifted (then it is answered) or the
   * client gives up; resolves true when the request should still be answered.
   */
  async holdProbe(path: string, req: IncomingMessage): Promise<boolean> {
    if (this.faults.stallProbes !== true || !PROBE_PATHS.has(path)) return true;
    await new Promise<void>((resolve) => {
      this.#stalled.push(resolve);
      req.socket.once('close', resolve);
    });
    return !req.socket.destroyed;
  }

  /** Before an inference request: the injected failure (error rate) and delay. */
  async beforeInference(rng: Rng, clock: Clock, replicaId: string): Promise<void> {
    const f = this.faults;
    if (f.errorRate > 0 && rng.next() < f.errorRate) {
      throw new KvrError('KVR_ERR_SIM_INJECTED', `injected failure on simulated replica ${replicaId}`);
    }
    if (f.addedLatencyMs > 0) {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, f.addedLatencyMs));
    }
  }
}
