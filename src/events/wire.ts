/**
 * Framing details of vLLM's KV-event transport shared by the publisher (simulator) and the
 * ingestor (router):
 *
 * ```
 *   PUB message      [topic, seq (8 B big-endian unsigned), payload (msgpack EventBatch)]
 *   replay request   DEALER -> ROUTER   ["", start_seq (8 B)]      (ROUTER sees [identity, "", start_seq])
 *   replay replies   ROUTER -> DEALER   ["", seq (8 B), payload]   one per buffered batch >= start_seq,
 *                                       ["", -1 (8 B signed), ""]  then the end marker
 * ```
 *
 * Topic convention (llm-d): `kv@<pod ip[:port]>@<model>`.
 */

/** The replay end marker: -1 as an 8-byte signed big-endian integer. */
export const END_SEQ: Buffer = Buffer.alloc(8, 0xff);

/** 8-byte big-endian encoding of a sequence number. */
export function encodeSeq(seq: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, seq));
  return b;
}

/** Reads an 8-byte big-endian unsigned sequence number; undefined when the frame is not 8 bytes. */
export function decodeSeq(frame: Uint8Array): bigint | undefined {
  if (frame.length !== 8) return undefined;
  return Buffer.from(frame.buffer, frame.byteOffset, 8).readBigUInt64BE(0);
}

/** Whether a frame is the replay end marker (seq -1). */
export function isEndSeq(frame: Uint8Array): boolean {
  return frame.length === 8 && Buffer.compare(Buffer.from(frame.buffer, frame.byteOffset, 8), END_SEQ) === 0;
}

/** `kv@<address>@<model>`. */
export function formatTopic(address: string, model: string): string {
  return `kv@${address}@${model}`;
}

/** Splits `kv@<address>@<model>`; undefined for any other topic (vLLM's default topic is ''). */
export function parseTopic(topic: string): { address: string; model: string } | undefined {
  if (!topic.startsWith('kv@')) return undefined;
  const at = topic.indexOf('@', 3);
  if (at < 0) return undefined;
  const address = topic.slice(3, at);
  if (address === '') return undefined;
  return { address, model: topic.slice(at + 1) };
}

/**
 * vLLM's rule for its PUB endpoint: bind when the address holds `*` or `::` or uses `ipc://` /
 * `inproc://`, else connect.
 */
export function vllmBinds(endpoint: string): boolean {
  return endpoint.includes('*') || endpoint.includes('::') || endpoint.startsWith('ipc://') || endpoint.startsWith('inproc://');
}
