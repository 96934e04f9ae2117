/**
 * A kvroute gateway in its own process (`kvroute serve --port 0 --admin-port 0 ...args`), as
 * deployed: its own event loop and CPU, killable with any signal. Its stderr goes to a file, not
 * a pipe (a pipe the busy parent drains late would stall the gateway's synchronous logger); the
 * start resolves once the gateway printed its addresses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild, trackChild } from './child-processes.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** A running child gateway. */
export interface ChildGateway {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly adminUrl: string;
  readonly proc: ChildProcess;
  /** What it wrote to stderr so far. */
  log(): string;
  /** Sends `signal` (default SIGTERM: a clean stop, drains and says bye) and waits for the exit; SIGKILL after 10 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `kvroute serve --endpoints <endpoints> --port 0 --admin-port 0 ...args`. */
export async function startChildGateway(endpoints: string, args: readonly string[], startTimeoutMs = 30_000): Promise<ChildGateway> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kvroute-gw-'));
  const file = path.join(dir, 'stderr.log');
  const fd = openSync(file, 'w');
  const proc = spawn(process.execPath, [MAIN, 'serve', '--endpoints', endpoints, '--port', '0', '--admin-port', '0', ...args], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  trackChild(proc);
  const log = () => readFileSync(file, 'utf8');
  let exited = false;
  proc.once('exit', () => (exited = true));
  const end = Date.now() + startTimeoutMs;
  let m: RegExpExecArray | null = null;
  while (m === null) {
    await new Promise((r) => setTimeout(r, 20));
    if (exited) throw new Error(`kvroute serve exited before it listened: ${log()}`);
    if (Date.now() > end) {
      await stopChild(proc, 'SIGKILL');
      throw new Error(`kvroute serve did not listen within ${startTimeoutMs} ms: ${log()}`);
    }
    m = /kvroute gateway on (\S+), admin on (\S+)/.exec(log());
  }
  return {
    url: m[1],
    adminUrl: m[2],
    proc,
    log,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await stopChild(proc, signal, 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
