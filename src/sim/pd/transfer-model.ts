/**
 * Time to move a prompt's KV cache from a prefill replica to a decode replica:
 *
 *   transferMs = latencyMs + kvBytesPerToken x tokens / bandwidth
 *
 * Defaults are for Llama-3.1-8B in bf16: 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x
 * 2 bytes = 131,072 bytes (128 KiB) per token, over
 * - `rdma`:   one 400 Gb/s RDMA NIC (ConnectX-7) at ~50 GB/s, 0.5 ms setup per transfer;
 * - `nvlink`: NVLink 4 at ~450 GB/s per direction (H100), 0.05 ms setup.
 * So 4,000 uncached tokens (512 MiB) take ~11 ms over RDMA and ~1.2 ms over NVLink, against
 * ~250 ms to prefill them on an H100.
 */

/** A link between replicas. */
export interface KvLink {
  /** Bytes of KV cache per token (all layers, K and V). */
  readonly kvBytesPerToken: number;
  /** Bytes per second. */
  readonly bandwidthBytesPerSec: number;
  /** Fixed cost of one transfer (ms): handshake, descriptor exchange. */
  readonly latencyMs: number;
}

/** KV bytes per token of Llama-3.1-8B (bf16). */
export const LLAMA_8B_KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2;

/** Named links (see the file comment for the numbers). */
export const KV_LINKS = {
  rdma: { kvBytesPerToken: LLAMA_8B_KV_BYTES_PER_TOKEN, bandwidthBytesPerSec: 50e9, latencyMs: 0.5 },
  nvlink: { kvBytesPerToken: LLAMA_8B_KV_BYTES_PER_TOKEN, bandwidthBytesPerSec: 450e9, latencyMs: 0.05 },
} as const satisfies Record<string, KvLink>;

/** Link preset names. */
export type KvLinkName = keyof typeof KV_LINKS;

/** Milliseconds to transfer `tokens` tokens of KV over `link` (0 tokens: 0). */
export function transferMs(link: KvLink, tokens: number): number {
  if (tokens <= 0) return 0;
  return link.latencyMs + (link.kvBytesPerToken * tokens * 1000) / link.bandwidthBytesPerSec;
}
