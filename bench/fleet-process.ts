/**
 * A simulated fleet (src/sim/fleet.ts) in its own process for live benches that also need the
 * engines' busy time, which `kvroute sim` does not export: the fleet's own event loop stays apart
 * from the bench client's and the gateways'.
 *
 *   child:  node dist/bench/fleet-process.js '<FleetOptions as JSON>'
 *           prints one JSON line {"urls": [...]}, then answers each stdin line "busy" with
 *           {"busyMs": [...]} (per replica, time scale included); stdin closed or SIGTERM: exits.
 *   parent: {@link startFleetProcess}.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startFleet } from '../src/sim/fleet.js';

type FleetOptions = Parameters<typeof startFleet>[0];

/** A fleet running in a child process. */
export interface FleetProcess {
  readonly urls: string[];
  /** Per-replica engine busy time so far, ms. */
  busyMs(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Starts a fleet with `o` in a child process. */
export async function startFleetProcess(o: FleetOptions): Promise<FleetProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const waiting: { resolve(line: string): void; reject(err: Error): void }[] = [];
  let exitCode: number | null | undefined;
  lines.on('line', (l) => waiting.shift()?.resolve(l));
  const exited = new Promise<void>((r) => child.once('exit', (code) => {
    exitCode = code;
    for (const w of waiting.splice(0)) w.reject(new Error(`fleet process exited (${code})`));
    r();
  }));
  const next = () => new Promise<string>((resolve, reject) => {
    if (exitCode !== undefined) reject(new Error(`fleet process exited (${exitCode})`));
    else waiting.push({ resolve, reject });
  });
  const { urls } = JSON.parse(await next()) as { urls: string[] };
  return {
    urls,
    async busyMs() {
      const reply = next();
      child.stdin!.write('busy\n');
      return (JSON.parse(await reply) as { busyMs: number[] }).busyMs;
    },
    async stop() {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// Child side: run when this file is the entry point.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fleet = await startFleet(JSON.parse(process.argv[2]) as FleetOptions);
  process.stdout.write(`${JSON.stringify({ urls: fleet.replicas.map((r) => r.url) })}\n`);
  const stop = async () => {
    await fleet.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (l) => {
    if (l.trim() === 'busy') process.stdout.write(`${JSON.stringify({ busyMs: fleet.replicas.map((r) => r.engine.busyMs) })}\n`);
  });
  rl.on('close', () => void stop());
}
