/**
 * Client side of vLLM's replay socket: a DEALER (a REQ socket would accept only the first of the
 * many replies) asks the publisher's ROUTER for every buffered batch from `fromSeq` on and reads
 * replies until the end marker.
 */
import { Dealer } from 'zeromq';
import { systemClock, type Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { decodeSeq, encodeSeq, isEndSeq } from './wire.js';

/** One batch as the replay socket returned it (payload still encoded). */
export interface ReplayedBatch {
  seq: bigint;
  payload: Uint8Array;
}

/** Options of {@link fetchReplay}. */
export interface ReplayOptions {
  /** Give up (KVR_ERR_UPSTREAM_TIMEOUT) when the end marker has not come after this long (default 2,000 ms). */
  timeoutMs?: number;
  clock?: Clock;
  /** Largest number of batches accepted before giving up (default 100,000; vLLM keeps 10,000). */
  maxBatches?: number;
  /** Aborts the request (the socket is closed; the promise rejects). */
  signal?: AbortSignal;
}

/**
 * Requests a replay from `fromSeq` at `endpoint` (e.g. `tcp://10.0.0.5:5558`) and returns the
 * batches in the order sent. Rejects with a {@link KvrError} on timeout or a malformed reply.
 */
export async function fetchReplay(endpoint: string, fromSeq: bigint, opts: ReplayOptions = {}): Promise<ReplayedBatch[]> {
  const clock = opts.clock ?? systemClock;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxBatches = opts.maxBatches ?? 100_000;
  const sock = new Dealer({ linger: 0 });
  let timedOut = false;
  const timer = clock.setTimeout(() => {
    timedOut = true;
    sock.close();
  }, timeoutMs);
  const onAbort = (): void => {
    if (!sock.closed) sock.close();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted) throw new KvrError('KVR_ERR_UPSTREAM', `replay from ${endpoint} aborted`);
    sock.connect(endpoint);
    await sock.send(['', encodeSeq(fromSeq)]);
    const out: ReplayedBatch[] = [];
    for (;;) {
      const frames = await sock.receive();
      if (frames.length !== 3 || frames[0].length !== 0) {
        throw new KvrError('KVR_ERR_UPSTREAM', `replay reply from ${endpoint} has ${frames.length} frames; expected ["", seq, payload]`);
      }
      if (isEndSeq(frames[1])) return out;
      const seq = decodeSeq(frames[1]);
      if (seq === undefined) throw new KvrError('KVR_ERR_UPSTREAM', `replay reply from ${endpoint} has a ${frames[1].length}-byte seq; expected 8`);
      out.push({ seq, payload: frames[2] });
      if (out.length > maxBatches) throw new KvrError('KVR_ERR_UPSTREAM', `replay from ${endpoint} sent more than ${maxBatches} batches`);
    }
  } catch (e) {
    if (timedOut) {
      throw new KvrError('KVR_ERR_UPSTREAM_TIMEOUT', `replay from ${endpoint} did not finish within ${timeoutMs} ms; check replay_endpoint in vLLM's --kv-events-config`, { cause: e });
    }
    if (e instanceof KvrError) throw e;
    throw new KvrError('KVR_ERR_UPSTREAM', `replay from ${endpoint} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    timer.cancel();
    opts.signal?.removeEventListener('abort', onAbort);
    if (!sock.closed) sock.close();
  }
}
