/**
 * What an endpoint's event stream remembers of the batches it applied, to judge later messages
 * by content and not by sequence number alone: the last applied batch's payload (a replay that
 * shows it byte for byte comes from the publisher process followed; for a message over the byte
 * cap, not kept, its length stands in) and digests of the last
 * {@link RECENT_DIGESTS} batches (a message numbered like an applied batch but carrying other
 * bytes is a new process's, not a duplicate).
 */
import { createHash } from 'node:crypto';
import type { ReplayedBatch } from './replay-client.js';

/** Digests kept (one per applied batch, oldest dropped first). */
export const RECENT_DIGESTS = 1024;

function digestOf(p: Uint8Array): string {
  return createHash('sha1').update(p).digest('base64');
}

/** The applied batches an endpoint stream remembers (see the module comment). */
export class AppliedHistory {
  #lastSeq = -1n;
  #lastPayload: Uint8Array | undefined;
  /** Byte length of the last batch when its payload was not kept (over the cap); -1 otherwise. */
  #lastLength = -1;
  #recent = new Map<bigint, string>();

  /** Records batch `seq` as applied. */
  record(seq: bigint, payload: Uint8Array): void {
    this.#lastSeq = seq;
    this.#lastPayload = payload;
    this.#lastLength = -1;
    this.#recent.set(seq, digestOf(payload));
    if (this.#recent.size > RECENT_DIGESTS) this.#recent.delete(this.#recent.keys().next().value as bigint);
  }

  /** Records batch `seq` as consumed unread (over the byte cap): only its length is known. */
  recordUnread(seq: bigint, byteLength: number): void {
    this.#lastSeq = seq;
    this.#lastPayload = undefined;
    this.#lastLength = byteLength;
    this.#recent.delete(seq);
  }

  /** Forgets everything (the endpoint was reset for a new publisher process). */
  clear(): void {
    this.#lastSeq = -1n;
    this.#lastPayload = undefined;
    this.#lastLength = -1;
    this.#recent.clear();
  }

  /** True once a batch was recorded since the last clear: a replay can then be checked against it. */
  get anchored(): boolean {
    return this.#lastPayload !== undefined || this.#lastLength >= 0;
  }

  /** Whether `payload` is NOT a byte-identical repeat of applied batch `seq` (also true when `seq` is too old to tell). */
  differs(seq: bigint, payload: Uint8Array): boolean {
    return this.#recent.get(seq) !== digestOf(payload);
  }

  /** Whether a replay asked from `last` starts with the batch applied as `last`, byte for byte. */
  replayHoldsLast(got: readonly ReplayedBatch[], last: bigint): boolean {
    if (got.length === 0 || got[0].seq !== last || last !== this.#lastSeq) return false;
    const p = this.#lastPayload;
    if (p === undefined) return this.#lastLength >= 0 && got[0].payload.length === this.#lastLength;
    return Buffer.compare(Buffer.from(got[0].payload), Buffer.from(p.buffer, p.byteOffset, p.byteLength)) === 0;
  }
}
