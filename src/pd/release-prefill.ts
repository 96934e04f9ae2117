/**
 * Tells a prefill endpoint to free KV blocks it pinned for a decode that will never pull them
 * (the client went away between the legs; llm-d #1138). It posts `{remote_request_id}` to the
 * KV side channel named in the prefill's `kv_transfer_params` (`remote_host:remote_port`) at
 * `/sim/pd/free`, which kvroute's simulator serves. Real vLLM has no HTTP free call: there the
 * blocks stay pinned until VLLM_NIXL_ABORT_REQUEST_TIMEOUT, and the result is 'unsupported'
 * (404/405/connection refused), which callers count.
 */
import { request, type Dispatcher } from 'undici';

/** Outcome of a release. */
export type ReleaseResult = 'ok' | 'not_pinned' | 'unsupported' | 'invalid_params';

/** See the file comment. Never throws. */
export async function releasePrefill(params: Record<string, unknown>, dispatcher?: Dispatcher, timeoutMs = 5000): Promise<ReleaseResult> {
  const host = params.remote_host;
  const port = params.remote_port;
  const id = params.remote_request_id;
  if (typeof host !== 'string' || !Number.isInteger(port) || typeof id !== 'string') return 'invalid_params';
  const hp = host.includes(':') ? `[${host}]:${String(port)}` : `${host}:${String(port)}`;
  try {
    const res = await request(`http://${hp}/sim/pd/free`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ remote_request_id: id }),
      dispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return 'unsupported';
    return (JSON.parse(text) as { freed?: boolean }).freed === true ? 'ok' : 'not_pinned';
  } catch {
    return 'unsupported';
  }
}
