/**
 * The ext_proc messages kvroute exchanges with Envoy, as proto-loader decodes/encodes them
 * (snake_case, Buffers for bytes, enum names), and builders for every reply the endpoint picker
 * sends. Wire rules kept here (GIE endpoint-picker protocol, llm-d `pkg/common/envoy`):
 * - a body reply is always `body_mutation.streamed_response` (FULL_DUPLEX_STREAMED), never an
 *   empty CommonResponse;
 * - a body goes back in chunks of at most {@link MAX_CHUNK_BYTES} bytes, end_of_stream on the last;
 * - header values go in `raw_value` and overwrite what is there.
 */
import type { ProtoStruct } from './struct-value.js';
import { toProtoStruct } from './struct-value.js';

/** Largest body chunk sent back to Envoy (llm-d's 62,000 B; Envoy recommends <= 64 KiB). */
export const MAX_CHUNK_BYTES = 62_000;

/** Header carrying the chosen endpoints (`ip:port[,ip:port...]`, primary first). */
export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';
/** Dynamic-metadata namespace Envoy's load balancing reads. */
export const LB_NAMESPACE = 'envoy.lb';
/** Metadata namespace of the gateway's subset hint. */
export const SUBSET_NAMESPACE = 'envoy.lb.subset_hint';
/** Key of the subset inside {@link SUBSET_NAMESPACE}. */
export const SUBSET_KEY = 'x-gateway-destination-endpoint-subset';
/** Key (in `envoy.lb`) of the endpoint that really served, set by the gateway. */
export const SERVED_KEY = 'x-gateway-destination-endpoint-served';
/** Why a request was dropped (llm-d's reasons). */
export const DROPPED_REASON_HEADER = 'x-llm-d-request-dropped-reason';

export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface HttpHeaders {
  headers?: { headers?: HeaderValue[] };
  end_of_stream?: boolean;
}

export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

export interface HttpTrailers {
  trailers?: { headers?: HeaderValue[] };
}

/** A decoded `ProcessingRequest` (Envoy -> EPP). */
export interface ProcessingRequest {
  request?: 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  metadata_context?: { filter_metadata?: Record<string, ProtoStruct> };
  observability_mode?: boolean;
  protocol_config?: { request_body_mode?: string; response_body_mode?: string; send_body_without_waiting_for_header_response?: boolean };
}

export interface HeaderMutation {
  set_headers?: Array<{ header: HeaderValue; append_action?: string }>;
  remove_headers?: string[];
}

export interface CommonResponse {
  status?: string;
  header_mutation?: HeaderMutation;
  body_mutation?: { streamed_response?: { body: Buffer; end_of_stream: boolean } };
  clear_route_cache?: boolean;
}

/** An encoded `ProcessingResponse` (EPP -> Envoy). */
export interface ProcessingResponse {
  request_headers?: { response: CommonResponse };
  response_headers?: { response: CommonResponse };
  request_body?: { response: CommonResponse };
  response_body?: { response: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: { status: { code: number }; headers?: HeaderMutation; body?: Buffer; details?: string };
  dynamic_metadata?: ProtoStruct;
}

/** Reads a header map: keys lower-cased, value from `raw_value`, else `value`; repeats joined by ", ". */
export function readHeaderMap(map: { headers?: HeaderValue[] } | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of map?.headers ?? []) {
    const key = (h.key ?? '').toLowerCase();
    if (key.length === 0) continue;
    const value = h.raw_value !== undefined && h.raw_value.length > 0 ? h.raw_value.toString('latin1') : (h.value ?? '');
    const prev = out.get(key);
    out.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return out;
}

/** A header mutation that overwrites each header (value in raw_value) and removes `remove`. */
export function headerMutation(set: Record<string, string>, remove: readonly string[] = []): HeaderMutation {
  const m: HeaderMutation = {
    set_headers: Object.entries(set).map(([key, v]) => ({ header: { key, raw_value: Buffer.from(v, 'latin1') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
  };
  if (remove.length > 0) m.remove_headers = [...remove];
  return m;
}

/** `dynamic_metadata` carrying the destination under `envoy.lb`. */
export function destinationMetadata(destination: string): ProtoStruct {
  return toProtoStruct({ [LB_NAMESPACE]: { [DESTINATION_HEADER]: destination } });
}

/** Splits `body` into `streamed_response` body replies of at most {@link MAX_CHUNK_BYTES}; EOS (when `eos`) on the last. */
export function streamedBodyReplies(phase: 'request_body' | 'response_body', body: Buffer, eos: boolean): ProcessingResponse[] {
  const out: ProcessingResponse[] = [];
  if (body.length === 0) {
    // Only an end of stream justifies an empty chunk (an empty non-final reply is spurious).
    if (eos) out.push({ [phase]: { response: { body_mutation: { streamed_response: { body, end_of_stream: true } } } } });
    return out;
  }
  for (let at = 0; at < body.length; at += MAX_CHUNK_BYTES) {
    const end = Math.min(body.length, at + MAX_CHUNK_BYTES);
    out.push({ [phase]: { response: { body_mutation: { streamed_response: { body: body.subarray(at, end), end_of_stream: eos && end === body.length } } } } });
  }
  return out;
}

/** An ImmediateResponse with a JSON body (OpenAI error shape) and optional extra headers. */
export function immediateResponse(status: number, body: unknown, headers: Record<string, string> = {}, details?: string): ProcessingResponse {
  const text = JSON.stringify(body);
  return {
    immediate_response: {
      status: { code: status },
      headers: headerMutation({ 'content-type': 'application/json', ...headers }),
      body: Buffer.from(text),
      ...(details !== undefined ? { details } : {}),
    },
  };
}
