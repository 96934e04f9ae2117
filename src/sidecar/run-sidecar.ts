/**
 * `kvroute sidecar` as a library call: validates the CLI's options (llm-d's flag names) and
 * starts a {@link Sidecar}.
 */
import type { Logger } from 'pino';
import { KvrError } from '../core/errors.js';
import { parseHostPort } from '../pd/prefill-request.js';
import { Sidecar } from './sidecar-server.js';

/** Options as the CLI parses them. */
export interface RunSidecarOptions {
  host: string;
  port: number;
  modelServerHost: string;
  modelServerPort: number;
  prefillMaxRetries: number;
  prefillRetryBackoffMs: number;
  enableSsrfProtection: boolean;
  /** Comma-separated host:port list of the known prefill endpoints. */
  prefillAllow?: string;
  enablePrefillerSampling: boolean;
  logger: Logger;
}

/** Starts the sidecar; throws KvrError (KVR_ERR_USAGE) on bad options. */
export async function runSidecar(o: RunSidecarOptions): Promise<Sidecar> {
  const allow = (o.prefillAllow ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const a of allow) if (parseHostPort(a) === undefined) throw new KvrError('KVR_ERR_USAGE', `--prefill-allow: "${a}" is not host:port`);
  if (o.enableSsrfProtection && allow.length === 0) throw new KvrError('KVR_ERR_USAGE', '--enable-ssrf-protection needs --prefill-allow host:port,... (the prefill endpoints the EPP may name)');
  if (!o.enableSsrfProtection && allow.length > 0) throw new KvrError('KVR_ERR_USAGE', '--prefill-allow is only used with --enable-ssrf-protection; add it or drop the list');
  if (o.port === o.modelServerPort && (o.host === o.modelServerHost || o.host === '0.0.0.0')) throw new KvrError('KVR_ERR_USAGE', `--port ${o.port} is the model server's port; the sidecar listens in front of it (llm-d: 8000 -> 8200)`);
  const s = new Sidecar({
    host: o.host,
    port: o.port,
    modelServer: `${o.modelServerHost}:${o.modelServerPort}`,
    prefillMaxRetries: o.prefillMaxRetries,
    prefillRetryBackoffMs: o.prefillRetryBackoffMs,
    ssrfProtection: o.enableSsrfProtection,
    ...(allow.length > 0 ? { allowedPrefillers: allow } : {}),
    prefillerSampling: o.enablePrefillerSampling,
    logger: o.logger,
  });
  try {
    await s.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new KvrError('KVR_ERR_USAGE', `port ${o.port} is in use; choose another with --port`);
    throw err;
  }
  return s;
}
