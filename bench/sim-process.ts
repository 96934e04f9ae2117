/**
 * Runs `kvroute sim` in a child process (so its CPU and event loop stay out of the router's
 * measurements) and returns its endpoint list; `stop()` ends it by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface SimProcess {
  /** Comma-separated host:port list, as `kvroute serve --endpoints` takes it. */
  endpoints: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `kvroute sim` with `args` (e.g. ['--replicas', '3', '--time-scale', '0.05']). */
export async function startSimProcess(args: string[]): Promise<SimProcess> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'sim', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const endpoints = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl).trim());
    });
    child.once('exit', (code) => reject(new Error(`kvroute sim exited (${code}): ${err}`)));
  });
  return {
    endpoints,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
