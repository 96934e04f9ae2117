/**
 * The endpoint picker's gRPC side: `envoy.service.ext_proc.v3.ExternalProcessor/Process`
 * (bidirectional stream, default port 9002) and gRPC Health v1 (default port 9003) answering
 * `liveness`, `readiness`, `""` and the ext_proc service name.
 *
 * Drain (SIGTERM): `readiness`, `""` and the ext_proc service go NOT_SERVING (so Envoy's health
 * check and Kubernetes stop sending new streams) while `liveness` stays SERVING and ext_proc keeps
 * serving; the servers shut down once no stream is active and none started for `drainQuietMs`,
 * or when `drainTimeoutMs` passes (streams still open then are cancelled, their requests
 * aborted through the lifecycle).
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { KvrError } from '../../core/errors.js';
import type { EndpointPickerBackend } from './picker-backend.js';
import type { ProcessingRequest, ProcessingResponse } from './ext-proc-messages.js';
import { ExtProcSession } from './ext-proc-session.js';
import { EXT_PROC_SERVICE, loadExtProcPackage } from './proto-loader.js';

export interface ExtProcServerOptions {
  backend: EndpointPickerBackend;
  clock: Clock;
  logger: Logger;
  host: string;
  /** ext_proc port (default 9002; 0 = ephemeral). */
  port?: number;
  /** gRPC health port (default 9003; 0 = ephemeral; the same as `port` = one server for both). */
  healthPort?: number;
  /** Largest request body buffered (default 16 MiB). */
  maxBodyBytes?: number;
  /** Largest non-streamed response buffered before echoing (default 64 MiB). */
  maxResponseBufferBytes?: number;
  /** Longest drain after SIGTERM (default 30 s, llm-d's `--drain-timeout`). */
  drainTimeoutMs?: number;
  /** Drain ends early once no stream is active and none started for this long (default 1 s). */
  drainQuietMs?: number;
}

export interface RunningExtProc {
  /** `host:port` of the ext_proc service. */
  readonly address: string;
  readonly port: number;
  readonly healthPort: number;
  /** Streams (requests) in progress. */
  activeStreams(): number;
  /** Whether a drain began. */
  readonly draining: boolean;
  /** Readiness NOT_SERVING, keep serving until drained (or the timeout), then shut down. */
  drain(): Promise<void>;
  /** Shuts down now (open streams are cancelled). */
  close(): Promise<void>;
}

const READY_SERVICES = ['readiness', '', EXT_PROC_SERVICE];

function bind(server: grpc.Server, host: string, port: number): Promise<number> {
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new KvrError('KVR_ERR_USAGE', `cannot listen on ${target} (${err.message}); choose another port with --ext-proc-port / --grpc-health-port`, { cause: err }));
      else resolve(bound);
    });
  });
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

/** Starts the ext_proc and health servers. */
export async function startExtProcServer(opts: ExtProcServerOptions): Promise<RunningExtProc> {
  const { clock, logger } = opts;
  const pkg = grpc.loadPackageDefinition(loadExtProcPackage()) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: { service: grpc.ServiceDefinition } } } } };
  };
  const service = pkg.envoy.service.ext_proc.v3.ExternalProcessor.service;
  const status: Record<string, ServingStatus> = { liveness: 'SERVING' };
  for (const s of READY_SERVICES) status[s] = 'SERVING';
  const health = new HealthImplementation(status);
  const sessions = new Set<ExtProcSession>();
  let lastActivity = clock.now();
  let onIdle: (() => void) | undefined;

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  server.addService(service, {
    Process(call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) {
      lastActivity = clock.now();
      let closed = false;
      const session = new ExtProcSession({
        backend: opts.backend,
        maxBodyBytes: opts.maxBodyBytes ?? 16 * 1024 * 1024,
        maxResponseBufferBytes: opts.maxResponseBufferBytes ?? 64 * 1024 * 1024,
        logger,
        send(msg) {
          if (!closed) call.write(msg);
        },
        close(err) {
          if (closed) return;
          closed = true;
          if (err === undefined) call.end();
          // grpc-js turns an 'error' event on a server stream into its final status.
          else call.emit('error', Object.assign(new Error(err.message), { code: grpc.status.INVALID_ARGUMENT, details: err.message }));
        },
      });
      sessions.add(session);
      const gone = (reason: string) => {
        if (!sessions.delete(session)) return;
        session.streamClosed(reason);
        lastActivity = clock.now();
        onIdle?.();
      };
      call.on('data', (msg: ProcessingRequest) => session.push(msg));
      call.on('end', () => {
        // Envoy half-closed: the request/response is over from its side.
        gone('envoy closed the stream before the response finished');
        if (!closed) {
          closed = true;
          call.end();
        }
      });
      call.on('cancelled', () => {
        closed = true;
        gone('stream cancelled by envoy (client gone or upstream failed)');
      });
      call.on('error', (err) => {
        closed = true;
        gone(`stream error: ${err.message}`);
      });
      call.on('close', () => gone('stream closed'));
    },
  });
  const port = await bind(server, opts.host, opts.port ?? 9002);
  let healthServer: grpc.Server | undefined;
  let healthPort = port;
  if (opts.healthPort !== undefined && opts.healthPort === opts.port && opts.port !== 0) {
    health.addToServer(server);
  } else {
    healthServer = new grpc.Server();
    health.addToServer(healthServer);
    try {
      healthPort = await bind(healthServer, opts.host, opts.healthPort ?? 9003);
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
  }
  let draining = false;
  let closedAll = false;

  async function closeAll(): Promise<void> {
    if (closedAll) return;
    closedAll = true;
    onIdle = undefined;
    server.forceShutdown();
    if (healthServer !== undefined) healthServer.forceShutdown();
    await Promise.all([shutdown(server), healthServer !== undefined ? shutdown(healthServer) : Promise.resolve()]);
  }

  logger.info({ port, healthPort }, 'kvroute ext_proc endpoint picker listening');
  return {
    address: `${opts.host}:${port}`,
    port,
    healthPort,
    activeStreams: () => sessions.size,
    get draining() {
      return draining;
    },
    async drain() {
      if (!draining) {
        draining = true;
        for (const s of READY_SERVICES) health.setStatus(s, 'NOT_SERVING');
        logger.info({ active: sessions.size }, 'draining: readiness NOT_SERVING, ext_proc keeps serving');
      }
      const timeoutMs = opts.drainTimeoutMs ?? 30_000;
      const quietMs = Math.min(opts.drainQuietMs ?? 1000, timeoutMs);
      const started = clock.now();
      await new Promise<void>((resolve) => {
        let quiet: TimerHandle | undefined;
        const deadline = clock.setTimeout(() => finish(), timeoutMs);
        const finish = () => {
          quiet?.cancel();
          deadline.cancel();
          onIdle = undefined;
          resolve();
        };
        const check = () => {
          quiet?.cancel();
          if (sessions.size > 0) return;
          const wait = Math.max(0, lastActivity + quietMs - clock.now());
          quiet = clock.setTimeout(() => (sessions.size === 0 && clock.now() - lastActivity >= quietMs ? finish() : check()), wait);
        };
        onIdle = check;
        check();
      });
      logger.info({ active: sessions.size, drainedMs: Math.round(clock.now() - started) }, 'drain finished');
      await closeAll();
    },
    close: closeAll,
  };
}
