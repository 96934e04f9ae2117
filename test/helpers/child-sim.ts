/**
 * A simulated replica in its own process (`kvroute sim --replicas 1 --port 0`), so a test can
 * freeze it with SIGSTOP or kill it. Resolves once it printed its endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** A running child simulator. */
export interface ChildSim {
  readonly url: string;
  readonly address: string;
  readonly proc: ChildProcess;
  /** SIGSTOP / SIGCONT. */
  freeze(): void;
  thaw(): void;
  /** Kills it (SIGCONT first so a frozen one can exit) and waits for the exit. */
  close(): Promise<void>;
}

/** Starts `kvroute sim --replicas 1 --port 0 ...args`. */
export async function startChildSim(args: readonly string[]): Promise<ChildSim> {
  const proc = spawn(process.execPath, [MAIN, 'sim', '--replicas', '1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child sim did not start in 20 s: ${err}`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => /^[\d.]+:\d+/.test(l.trim()));
      if (line) {
        clearTimeout(timer);
        resolve(line.trim().split(';')[0]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child sim exited (${code}): ${err}`));
    });
  });
  let closing = false;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // A simulator that dies on its own is a test failure worth its stderr.
  proc.once('exit', (code, signal) => {
    if (!closing) process.stderr.write(`child sim ${address} exited unexpectedly (${code ?? signal}): ${err}\n`);
  });
  return {
    url: `http://${address}`,
    address,
    proc,
    freeze: () => void proc.kill('SIGSTOP'),
    thaw: () => void proc.kill('SIGCONT'),
    async close() {
      closing = true;
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
