/**
 * The two legs of a disaggregated request, as llm-d's routing sidecar builds them
 * (`pkg/sidecar/proxy`, NixlConnector v2):
 *
 * prefill leg: the client body with `stream: false`, no `stream_options`, every token limit
 *   (`max_tokens`, `max_completion_tokens`, `max_output_tokens`; `sampling_params.*` on
 *   /inference/v1/generate) set to 1, and `kv_transfer_params = {do_remote_decode: true,
 *   do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null,
 *   remote_port: null}`; a new `x-request-id`.
 * decode leg: the client body unchanged except `kv_transfer_params` = what the prefill returned.
 *
 * The EPP names the prefill endpoint in `x-prefiller-host-port: host:port`.
 */
import type { SchedulingResult } from '../scheduling/types.js';

/** The header the EPP sets on the request to the decode pod. */
export const PREFILLER_HEADER = 'x-prefiller-host-port';

/** Inference paths the sidecar splits into two legs. */
export const PD_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/messages', '/inference/v1/generate']);

const LIMITS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

/** The value of `x-prefiller-host-port` for a scheduling result (undefined = no prefill leg). */
export function prefillerHeader(result: Pick<SchedulingResult, 'prefill'>): string | undefined {
  return result.prefill?.endpoint.address;
}

/** kv_transfer_params of the prefill leg. */
export function prefillKvTransferParams(): Record<string, unknown> {
  return { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null };
}

/** The prefill leg's body (see the file comment); `body` is not modified. */
export function buildPrefillBody(body: Record<string, unknown>, path: string): Record<string, unknown> {
  const b: Record<string, unknown> = { ...body, stream: false, kv_transfer_params: prefillKvTransferParams() };
  delete b.stream_options;
  b.max_tokens = 1;
  for (const k of LIMITS) if (k in body) b[k] = 1;
  if (path === '/v1/responses' || path === '/v1/messages') delete b.max_tokens;
  if (path === '/v1/responses') b.max_output_tokens = 1;
  if (path === '/v1/messages') b.max_tokens = 1;
  const sp = body.sampling_params;
  if (path === '/inference/v1/generate' && sp !== null && typeof sp === 'object' && !Array.isArray(sp)) {
    const s: Record<string, unknown> = { ...(sp as Record<string, unknown>), max_tokens: 1 };
    for (const k of LIMITS) if (k in s) s[k] = 1;
    delete b.max_tokens;
    b.sampling_params = s;
  }
  return b;
}

/** The decode leg's body: the client's with the prefill's `kv_transfer_params`. */
export function buildDecodeBody(body: Record<string, unknown>, kvTransferParams: Record<string, unknown>): Record<string, unknown> {
  return { ...body, kv_transfer_params: kvTransferParams };
}

/** Splits `host:port` (IPv6 in brackets allowed); undefined when malformed. */
export function parseHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^\s*(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})\s*$/.exec(v);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}
