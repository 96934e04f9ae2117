/**
 * The simulated KV connector of one replica (vLLM NixlConnector semantics, `--role`):
 *
 * Prefill side (role prefill|both, request `kv_transfer_params.do_remote_decode: true`):
 *   the engine keeps the request's blocks when it finishes; if it finished by the length cap
 *   they are PINNED (pin-store.ts) and the response carries top-level `kv_transfer_params`
 *   {do_remote_prefill: true, do_remote_decode: false, remote_block_ids (the real block ids),
 *   remote_engine_id, remote_request_id, remote_host, remote_port, tp_size: 1}; otherwise they
 *   are freed and `kv_transfer_params` is null.
 *
 * Decode side (role decode|both, request `do_remote_prefill: true`), before the engine sees it:
 *   1. local hit = the prompt's cached prefix here; blocks to pull = the rest of the full blocks;
 *   2. invalid params (vLLM: "Got invalid KVTransferParams"): counted, prefill locally;
 *   3. nothing to pull (full local hit): tell the prefill replica to free (POST /sim/pd/free);
 *   4. else allocate the blocks, POST /sim/pd/pull {remote_request_id, transfer_ms} to
 *      remote_host:remote_port: the prefill replica holds the answer for the transfer time
 *      (kv-bytes x tokens / bandwidth, transfer-model.ts) with its pins held, then unpins;
 *      on 200 the blocks are cached here (BlockStored events) and released to the prefix cache,
 *      so the engine finds them as a prefix hit and only recomputes the last partial block;
 *      any failure (dead prefill pod, expired pin) frees them and falls back to local prefill,
 *      counted;
 *   5. a client that goes away cancels the pull and tells the prefill replica to free.
 *
 * The side channel is the replica's own HTTP server (`remote_port` = its HTTP port).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../core/clock.js';
import { KvrError } from '../../core/errors.js';
import type { SimEngine, SimEngineResult } from '../engine.js';
import { sendJson } from '../http-io.js';
import { canPull, readKvTransferParams, type KvTransferParams } from './kv-transfer-params.js';
import { reserveKv } from './kv-receiver.js';
import { PinStore } from './pin-store.js';
import { transferMs, type KvLink } from './transfer-model.js';

/** What a replica does in P/D (`kvroute sim --role`). */
export type SimPdRole = 'prefill' | 'decode' | 'both';

/** Counters of the connector (exported as sim metrics). */
export interface PdConnectorStats {
  pinnedBlocks: number;
  pins: number;
  pinsTotal: number;
  pinsExpired: number;
  pinsReleased: number;
  /** Decode-side pulls by result. */
  pulls: Record<'ok' | 'failed' | 'invalid_params' | 'local_hit', number>;
  transferredTokens: number;
}

/** Options of a {@link PdConnector}. */
export interface PdConnectorOptions {
  role: SimPdRole;
  engine: SimEngine;
  clock: Clock;
  /** Engine id reported as remote_engine_id. */
  engineId: string;
  /** Host and port decode replicas pull from (this replica's HTTP address). */
  address: () => { host: string; port: number };
  link: KvLink;
  /** Multiplies transfer times like the engine's step times (default 1). */
  timeScale?: number;
  /** Pin expiry (ms); vLLM's VLLM_NIXL_ABORT_REQUEST_TIMEOUT default is 480 s. */
  pinTimeoutMs: number;
  /** Logs warnings (invalid params, failed pulls). */
  warn?: (msg: string) => void;
}

/** One request's P/D handling, from {@link PdConnector.begin}. */
export interface PdRequest {
  /** Keep the engine's blocks at finish (prefill side). */
  readonly holdBlocks: boolean;
  /** Resolves when the engine may start (decode side: after the pull or the fallback). */
  readonly ready?: Promise<void>;
  /** The response's top-level `kv_transfer_params` for this result (prefill side). */
  finish(r: SimEngineResult): KvTransferParams | null;
  /** The client went away before the end. */
  abort(): void;
}

const NOOP: PdRequest = { holdBlocks: false, finish: () => null, abort: () => undefined };

/** See the file comment. */
export class PdConnector {
  readonly role: SimPdRole;
  readonly pins: PinStore;
  readonly #o: PdConnectorOptions;
  readonly #pulls = { ok: 0, failed: 0, invalid_params: 0, local_hit: 0 };
  #transferred = 0;

  constructor(o: PdConnectorOptions) {
    this.#o = o;
    this.role = o.role;
    const bm = o.engine.blockManager;
    this.pins = new PinStore(o.clock, o.pinTimeoutMs, (b) => bm.free(b));
  }

  /** Current counters. */
  stats(): PdConnectorStats {
    const p = this.pins;
    return { pinnedBlocks: p.pinnedBlocks, pins: p.size, pinsTotal: p.pinned, pinsExpired: p.expired, pinsReleased: p.released, pulls: { ...this.#pulls }, transferredTokens: this.#transferred };
  }

  /** The engine restarted: pinned blocks are gone with it. */
  reset(): void {
    this.pins.clear();
  }

  /** P/D handling of a generate request with `body` and prompt `tokens`; a no-op without params. */
  begin(body: Record<string, unknown>, tokens: readonly number[], requestId: string): PdRequest {
    const p = readKvTransferParams(body);
    if (p === undefined) return NOOP;
    if (p.do_remote_decode === true && this.role !== 'decode') return this.#prefillSide(requestId);
    if (p.do_remote_prefill === true && this.role !== 'prefill') return this.#decodeSide(p, tokens);
    return NOOP;
  }

  #prefillSide(requestId: string): PdRequest {
    const bm = this.#o.engine.blockManager;
    return {
      holdBlocks: true,
      finish: (r) => {
        const held = r.heldBlocks ?? [];
        if (r.finishReason !== 'length' || held.length === 0) {
          if (held.length > 0) bm.free(held);
          return null;
        }
        this.pins.pin(requestId, held);
        const { host, port } = this.#o.address();
        return {
          do_remote_prefill: true,
          do_remote_decode: false,
          remote_block_ids: held.slice(),
          remote_engine_id: this.#o.engineId,
          remote_request_id: requestId,
          remote_host: host,
          remote_port: port,
          tp_size: 1,
        };
      },
      abort: () => undefined,
    };
  }

  #decodeSide(p: KvTransferParams, tokens: readonly number[]): PdRequest {
    const ac = new AbortController();
    let settled = false;
    const ready = this.#pull(p, tokens, ac.signal).finally(() => (settled = true));
    return {
      holdBlocks: false,
      ready,
      finish: () => null,
      abort: () => {
        if (settled) return;
        ac.abort();
        if (canPull(p)) void this.#tellFree(p);
      },
    };
  }

  async #pull(p: KvTransferParams, tokens: readonly number[], signal: AbortSignal): Promise<void> {
    if (!canPull(p)) {
      this.#pulls.invalid_params++;
      this.#o.warn?.(`Got invalid KVTransferParams (need remote_block_ids, remote_engine_id, remote_request_id, remote_host, remote_port); prefilling locally`);
      return;
    }
    const r = reserveKv(this.#o.engine.blockManager, tokens);
    if (r === 'local_hit') {
      this.#pulls.local_hit++;
      await this.#tellFree(p);
      return;
    }
    if (r === 'no_space') {
      this.#pulls.failed++;
      this.#o.warn?.('no free KV blocks to receive the transfer; prefilling locally');
      await this.#tellFree(p);
      return;
    }
    const tokensToPull = r.tokensToPull;
    let ok = false;
    try {
      const url = `http://${hostPort(p.remote_host as string, p.remote_port as number)}/sim/pd/pull`;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ remote_request_id: p.remote_request_id, remote_engine_id: p.remote_engine_id, transfer_ms: transferMs(this.#o.link, tokensToPull) * (this.#o.timeScale ?? 1) }),
        signal,
      });
      await res.arrayBuffer();
      ok = res.status === 200;
      if (!ok) this.#o.warn?.(`KV pull from ${p.remote_host}:${p.remote_port} answered ${res.status}; prefilling locally`);
    } catch (err) {
      if (!signal.aborted) this.#o.warn?.(`KV pull from ${p.remote_host}:${p.remote_port} failed (${(err as Error).message}); prefilling locally`);
    }
    if (ok) {
      r.commit();
      this.#pulls.ok++;
      this.#transferred += tokensToPull;
    } else {
      r.cancel();
      if (!signal.aborted) this.#pulls.failed++;
    }
  }

  /** Tells the prefill replica to free the request's pinned blocks (best effort). */
  async #tellFree(p: KvTransferParams): Promise<void> {
    if (typeof p.remote_host !== 'string' || !Number.isInteger(p.remote_port) || typeof p.remote_request_id !== 'string') return;
    try {
      const res = await fetch(`http://${hostPort(p.remote_host, p.remote_port as number)}/sim/pd/free`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ remote_request_id: p.remote_request_id }),
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer();
    } catch (err) {
      this.#o.warn?.(`could not tell ${p.remote_host}:${p.remote_port} to free ${p.remote_request_id}: ${(err as Error).message}`);
    }
  }

  /**
   * The side channel: POST /sim/pd/pull {remote_request_id, transfer_ms} (answers after the
   * transfer time, then unpins; 404 when not pinned; a dropped connection unpins too) and
   * POST /sim/pd/free {remote_request_id}.
   */
  handle(path: string, body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse): void {
    const id = body.remote_request_id;
    if (typeof id !== 'string') throw new KvrError('KVR_ERR_BAD_REQUEST', "'remote_request_id' must be a string", { param: 'remote_request_id' });
    if (path === '/sim/pd/free') {
      return sendJson(res, 200, { freed: this.pins.release(id) });
    }
    if (path !== '/sim/pd/pull') throw new KvrError('KVR_ERR_NOT_FOUND', `no route POST ${path}`);
    const blocks = this.pins.blocksOf(id);
    if (blocks === undefined) throw new KvrError('KVR_ERR_NOT_FOUND', `request ${id} has no pinned KV blocks here (never pinned, already pulled, or expired after ${this.pins.timeoutMs} ms)`);
    const ms = typeof body.transfer_ms === 'number' && body.transfer_ms >= 0 ? Math.min(body.transfer_ms, 600_000) : 0;
    let done = false;
    const t = this.#o.clock.setTimeout(() => {
      done = true;
      this.pins.release(id);
      sendJson(res, 200, { remote_request_id: id, blocks: blocks.length });
    }, ms);
    res.once('close', () => {
      if (done) return;
      t.cancel();
      this.pins.release(id);
    });
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
