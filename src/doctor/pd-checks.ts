/**
 * `kvroute doctor` checks for prefill/decode disaggregation: the classic faults that make llm-d's
 * P/D silently fall back to decode-only.
 *
 * - `pd-roles`: P/D expected (PD_ENABLED, or `--prefill-endpoints` given) but no prefill
 *   endpoint, or no decode endpoint.
 * - `pd-prefill-port`: each prefill endpoint must answer the OpenAI API (`GET /v1/models`);
 *   refused connections or a non-OpenAI answer mean a wrong prefill port (e.g. the sidecar's
 *   8000 or a metrics port instead of vLLM's).
 * - `pd-connector`: a prefill probe (max_tokens 1, `kv_transfer_params.do_remote_decode: true`)
 *   must come back with top-level `kv_transfer_params` (vLLM started with
 *   `--kv-transfer-config` NixlConnector). The probe's pinned blocks are freed again where the
 *   endpoint offers it (kvroute's simulator); on vLLM they expire after
 *   VLLM_NIXL_ABORT_REQUEST_TIMEOUT.
 */
import { request, type Dispatcher } from 'undici';
import { normaliseEndpointUrl } from '../datalayer/endpoint-pool.js';
import { buildPrefillBody } from '../pd/prefill-request.js';
import { releasePrefill } from '../pd/release-prefill.js';
import type { Finding } from './doctor-types.js';

/** Inputs of {@link runPdChecks}. */
export interface PdCheckOptions {
  /** True when the deployment says P/D is on (PD_ENABLED=true, or --pd). */
  pdExpected: boolean;
  prefillEndpoints: readonly string[];
  decodeEndpoints: readonly string[];
  model?: string;
  timeoutMs: number;
  dispatcher: Dispatcher;
}

async function get(url: string, o: PdCheckOptions): Promise<{ status: number; body: string } | string> {
  try {
    const r = await request(url, { method: 'GET', dispatcher: o.dispatcher, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
    return { status: r.statusCode, body: await r.body.text() };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `${e.code ?? ''} ${e.message ?? String(err)}`.trim();
  }
}

/** Runs the P/D checks (nothing when P/D is neither expected nor configured). */
export async function runPdChecks(o: PdCheckOptions): Promise<Finding[]> {
  const out: Finding[] = [];
  if (!o.pdExpected && o.prefillEndpoints.length === 0) return out;
  if (o.prefillEndpoints.length === 0) {
    out.push({ check: 'pd-roles', level: 'fail', message: 'PD_ENABLED is set but no prefill endpoint is known: every request is served decode-only', fix: 'label the prefill pods llm-d.ai/role=prefill (or give kvroute endpoints ;role=prefill) and pass them with --prefill-endpoints; or unset PD_ENABLED' });
    return out;
  }
  if (o.pdExpected && o.decodeEndpoints.length === 0) {
    out.push({ check: 'pd-roles', level: 'warn', message: `${o.prefillEndpoints.length} prefill endpoint(s) but no decode endpoint given`, fix: 'label the decode pods llm-d.ai/role=decode (;role=decode) and pass them with --endpoints; prefill-only pods must not receive whole requests' });
  } else {
    out.push({ check: 'pd-roles', level: 'ok', message: `${o.prefillEndpoints.length} prefill, ${o.decodeEndpoints.length} decode endpoint(s)`, fix: '' });
  }
  for (const p of o.prefillEndpoints) {
    const { url } = normaliseEndpointUrl(p);
    const address = new URL(url).host;
    const models = await get(`${url}/v1/models`, o);
    if (typeof models === 'string' || models.status !== 200 || !models.body.includes('"data"')) {
      const seen = typeof models === 'string' ? `no answer (${models})` : `HTTP ${models.status} on /v1/models`;
      out.push({ check: 'pd-prefill-port', level: 'fail', endpoint: address, message: `prefill endpoint ${address}: ${seen}; the sidecar would fall back to decode-only for every request`, fix: "point the prefill target at vLLM's own port (the pod's --port, e.g. 8000 on prefill pods; not the decode sidecar's or a metrics port)" });
      continue;
    }
    let model = o.model;
    if (model === undefined) {
      try {
        model = (JSON.parse(models.body) as { data?: { id?: string }[] }).data?.[0]?.id;
      } catch {
        model = undefined;
      }
    }
    out.push({ check: 'pd-prefill-port', level: 'ok', endpoint: address, message: `prefill endpoint ${address} answers the OpenAI API`, fix: '' });
    let res: { status: number; body: string } | string;
    try {
      const r = await request(`${url}/v1/completions`, {
        method: 'POST', dispatcher: o.dispatcher, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(buildPrefillBody({ model, prompt: 'kvroute doctor prefill probe: is the KV connector configured on this pod?', max_tokens: 8 }, '/v1/completions')),
      });
      res = { status: r.statusCode, body: await r.body.text() };
    } catch (err) {
      res = (err as Error).message;
    }
    if (typeof res === 'string' || res.status !== 200) {
      out.push({ check: 'pd-connector', level: 'fail', endpoint: address, message: `prefill probe failed: ${typeof res === 'string' ? res : `HTTP ${res.status} ${res.body.slice(0, 200)}`}`, fix: 'check the prefill pod logs; the probe is a 1-token completion with kv_transfer_params' });
      continue;
    }
    let params: unknown;
    try {
      params = (JSON.parse(res.body) as { kv_transfer_params?: unknown }).kv_transfer_params;
    } catch {
      params = undefined;
    }
    if (params === null || params === undefined || typeof params !== 'object') {
      out.push({ check: 'pd-connector', level: 'fail', endpoint: address, message: `prefill endpoint ${address} answered a do_remote_decode request without kv_transfer_params: no KV connector, so decode pods cannot pull its KV`, fix: 'start vLLM with --kv-transfer-config \'{"kv_connector":"NixlConnector","kv_role":"kv_both"}\' (kvroute sim: --role prefill)' });
      continue;
    }
    const freed = await releasePrefill(params as Record<string, unknown>, o.dispatcher, o.timeoutMs);
    out.push({ check: 'pd-connector', level: 'ok', endpoint: address, message: `prefill endpoint ${address} returns kv_transfer_params (engine ${String((params as Record<string, unknown>).remote_engine_id)})${freed === 'ok' ? '; probe blocks freed' : ''}`, fix: '' });
  }
  return out;
}
