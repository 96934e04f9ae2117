/**
 * Restart signals: how ingestion learns that an endpoint's engine is a new process without an
 * AllBlocksCleared event (vLLM sends none: a restarted process just numbers its batches from 0
 * again). The datalayer, which scrapes every endpoint's `/metrics`, reports the standard
 * `process_start_time_seconds` gauge here; a changed value confirms a restart (and wipes the
 * endpoint's index entries even before the new process publishes anything).
 *
 * ```
 *   datalayer scrape ── report(id, start) ──▶ ProcessStartSignal ── onRestart(id) ──▶ EventIngestor
 *   EndpointStream, on a lower seq ── processStartTime(id) ──▶ changed? then the reset is confirmed
 * ```
 */

/** What ingestion reads to confirm a restart (see the module comment). */
export interface RestartSignal {
  /** The endpoint's process start time (seconds since the epoch) as last seen; undefined when unknown. */
  processStartTime(endpointId: string): number | undefined;
  /** Calls `listener` when an endpoint's process start time changes; returns the unsubscribe. */
  onRestart(listener: (endpointId: string, startTime: number) => void): () => void;
}

/** A {@link RestartSignal} fed by whoever scrapes the endpoints' metrics (`report`). */
export class ProcessStartSignal implements RestartSignal {
  readonly #start = new Map<string, number>();
  readonly #listeners = new Set<(endpointId: string, startTime: number) => void>();

  /** Records the endpoint's `process_start_time_seconds`; a change from a known value fires the listeners. Non-finite values are ignored. */
  report(endpointId: string, startTime: number): void {
    if (!Number.isFinite(startTime) || startTime <= 0) return;
    const had = this.#start.get(endpointId);
    this.#start.set(endpointId, startTime);
    if (had === undefined || had === startTime) return;
    for (const l of [...this.#listeners]) {
      try {
        l(endpointId, startTime);
      } catch {
        // One listener's failure must not stop the others.
      }
    }
  }

  /** The endpoint left: forget it. */
  forget(endpointId: string): void {
    this.#start.delete(endpointId);
  }

  processStartTime(endpointId: string): number | undefined {
    return this.#start.get(endpointId);
  }

  onRestart(listener: (endpointId: string, startTime: number) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}

/** `process_start_time_seconds` from a Prometheus text exposition; undefined when absent. */
export function parseProcessStartTime(text: string): number | undefined {
  const m = /^process_start_time_seconds(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$/m.exec(text);
  if (!m) return undefined;
  const v = Number(m[1]);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}
