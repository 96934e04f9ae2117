/**
 * vLLM's `kv_transfer_params` (NixlConnector) as the simulator reads and writes them.
 *
 * Request to a prefill replica:  {do_remote_decode: true, do_remote_prefill: false, remote_*: null}
 * Its response (length-capped):  {do_remote_prefill: true, do_remote_decode: false,
 *                                 remote_block_ids, remote_engine_id, remote_request_id,
 *                                 remote_host, remote_port, tp_size}
 * Request to a decode replica:   the response's object, unchanged.
 */
import { KvrError } from '../../core/errors.js';

/** The fields vLLM reads (others are carried along untouched). */
export interface KvTransferParams {
  do_remote_decode?: boolean;
  do_remote_prefill?: boolean;
  remote_block_ids?: number[] | null;
  remote_engine_id?: string | null;
  remote_request_id?: string | null;
  remote_host?: string | null;
  remote_port?: number | null;
  tp_size?: number;
  [k: string]: unknown;
}

/** Reads `body.kv_transfer_params`: undefined when absent or null; 400 when not an object. */
export function readKvTransferParams(body: Record<string, unknown>): KvTransferParams | undefined {
  const v = body.kv_transfer_params;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new KvrError('KVR_ERR_BAD_REQUEST', "'kv_transfer_params' must be an object", { param: 'kv_transfer_params' });
  }
  return v as KvTransferParams;
}

/** True when a decode replica can pull with these params (vLLM checks the same five fields). */
export function canPull(p: KvTransferParams): boolean {
  return (
    Array.isArray(p.remote_block_ids) &&
    typeof p.remote_engine_id === 'string' &&
    typeof p.remote_request_id === 'string' &&
    typeof p.remote_host === 'string' &&
    Number.isInteger(p.remote_port)
  );
}
