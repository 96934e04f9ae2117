/**
 * Structured logs (pino, JSON lines to stderr). Quiet by default: level `warn` unless asked
 * (`--log-level` or `KVROUTE_LOG_LEVEL`).
 */
import { pino, type Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel = (process.env.KVROUTE_LOG_LEVEL as LogLevel | undefined) ?? 'warn'): Logger {
  return pino({ level, base: { svc: 'kvroute' } }, pino.destination(2));
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = pino({ level: 'silent' });
