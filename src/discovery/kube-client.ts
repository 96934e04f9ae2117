/**
 * A minimal Kubernetes list/watch client over undici (Node 20). `@kubernetes/client-node` 2.x
 * cannot be loaded on Node 20 (it bundles undici 8, which needs Node >= 22.19), so discovery
 * speaks the API's list/watch protocol itself; it needs only GET with a bearer token or client
 * certificate.
 *
 * Algorithm ({@link ListWatcher}): list (`?labelSelector=`) to get the objects and a
 * resourceVersion, then watch from it (`?watch=true&resourceVersion=N&allowWatchBookmarks=true
 * &timeoutSeconds=T`), applying line-delimited ADDED/MODIFIED/DELETED events and BOOKMARKs to the
 * cache. A stream that ends is resumed from the last resourceVersion; a 410 Gone (an `ERROR`
 * event with a Status of code 410, or an HTTP 410) forces a fresh list; any other failure
 * retries after an exponential backoff (`retryMs` doubling to 30 s, reset by the next good
 * event). Each change to the cache calls `onChange`.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';

/** How to reach an API server. */
export interface KubeConnection {
  server: string;
  token?: string;
  /** PEM CA bundle; absent = system CAs. */
  ca?: string;
  cert?: string;
  key?: string;
  insecureSkipTlsVerify?: boolean;
}

/** Any Kubernetes object (the fields the cache reads). */
export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The in-cluster connection (service account token and CA); throws when not in a pod. */
export function inClusterConnection(env: NodeJS.ProcessEnv = process.env): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new KvrError('KVR_ERR_CONFIG', 'not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST unset); set KUBECONFIG to use a kubeconfig');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    token: readFileSync(join(SA, 'token'), 'utf8').trim(),
    ca: readFileSync(join(SA, 'ca.crt'), 'utf8'),
  };
}

/** The current context of a kubeconfig file (token or client certificate auth). */
export function kubeconfigConnection(path = process.env.KUBECONFIG?.split(':')[0] || join(homedir(), '.kube', 'config')): KubeConnection {
  let doc: Record<string, unknown>;
  try {
    doc = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new KvrError('KVR_ERR_CONFIG', `cannot read kubeconfig ${path}: ${(err as Error).message}`);
  }
  type Named<T> = Array<{ name: string } & T>;
  const ctxName = doc['current-context'] as string | undefined;
  const ctx = (doc.contexts as Named<{ context: { cluster: string; user: string } }> | undefined)?.find((c) => c.name === ctxName)?.context;
  if (ctx === undefined) throw new KvrError('KVR_ERR_CONFIG', `kubeconfig ${path} has no current-context`);
  const cluster = (doc.clusters as Named<{ cluster: Record<string, unknown> }> | undefined)?.find((c) => c.name === ctx.cluster)?.cluster ?? {};
  const user = (doc.users as Named<{ user: Record<string, unknown> }> | undefined)?.find((u) => u.name === ctx.user)?.user ?? {};
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    throw new KvrError('KVR_ERR_CONFIG', `kubeconfig user "${ctx.user}" uses an exec/auth-provider plugin, which kvroute does not run; use a token or run in-cluster`);
  }
  const b64 = (v: unknown): string | undefined => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined);
  const file = (v: unknown): string | undefined => (typeof v === 'string' ? readFileSync(v, 'utf8') : undefined);
  const conn: KubeConnection = { server: String(cluster.server ?? '') };
  if (!/^https?:\/\//.test(conn.server)) throw new KvrError('KVR_ERR_CONFIG', `kubeconfig cluster "${ctx.cluster}" has no server URL`);
  const ca = b64(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority']);
  const token = typeof user.token === 'string' ? user.token : typeof user.tokenFile === 'string' ? readFileSync(user.tokenFile, 'utf8').trim() : undefined;
  const cert = b64(user['client-certificate-data']) ?? file(user['client-certificate']);
  const key = b64(user['client-key-data']) ?? file(user['client-key']);
  if (ca !== undefined) conn.ca = ca;
  if (token !== undefined) conn.token = token;
  if (cert !== undefined) conn.cert = cert;
  if (key !== undefined) conn.key = key;
  if (cluster['insecure-skip-tls-verify'] === true) conn.insecureSkipTlsVerify = true;
  return conn;
}

/** In-cluster when a service account is mounted, else the kubeconfig. */
export function defaultKubeConnection(): KubeConnection {
  return process.env.KUBERNETES_SERVICE_HOST ? inClusterConnection() : kubeconfigConnection();
}

class HttpStatusError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

/** Options of a {@link ListWatcher}. */
export interface ListWatcherOptions {
  connection: KubeConnection;
  /** Collection path, e.g. `/api/v1/namespaces/llm/pods`. */
  path: string;
  labelSelector?: string;
  onChange: () => void;
  /** First retry delay after a failure (default 1000 ms; doubles up to 30 s). */
  retryMs?: number;
  /** Server-side watch timeout (default 290 s). */
  timeoutSeconds?: number;
  clock?: Clock;
  logger?: Logger;
}

/** A list/watch cache of one collection; see the file comment. */
export class ListWatcher {
  readonly #o: ListWatcherOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #dispatcher: Dispatcher;
  readonly #objects = new Map<string, KubeObject>();
  #rv = '';
  #stopped = false;
  #abort: AbortController | undefined;
  #delay = 0;
  #timer: TimerHandle | undefined;
  #loop: Promise<void> | undefined;
  /** Lists done (first list and relists), for diagnostics. */
  lists = 0;

  constructor(o: ListWatcherOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.logger ?? silentLogger;
    const c = o.connection;
    this.#dispatcher = new Agent({
      connect: { ...(c.ca !== undefined ? { ca: c.ca } : {}), ...(c.cert !== undefined ? { cert: c.cert } : {}), ...(c.key !== undefined ? { key: c.key } : {}), rejectUnauthorized: c.insecureSkipTlsVerify !== true },
      bodyTimeout: 0,
    });
  }

  /** Objects in the cache. */
  list(): KubeObject[] {
    return [...this.#objects.values()];
  }

  /** Lists once (rejects with KVR_ERR_CONFIG when that fails), then watches in the background. */
  async start(): Promise<void> {
    try {
      await this.#relist();
    } catch (err) {
      throw new KvrError('KVR_ERR_CONFIG', `cannot list ${this.#o.path}: ${(err as Error).message}; check the API server address and RBAC (get/list/watch)`);
    }
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#abort?.abort();
    await this.#loop;
    await this.#dispatcher.close().catch(() => undefined);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (this.#rv === '') await this.#relist();
        const t0 = this.#clock.now();
        await this.#watch();
        // A stream the server ends at once (no timeout reached): pause before resuming.
        if (this.#clock.now() - t0 < 1000 && !this.#stopped) await new Promise<void>((r) => (this.#timer = this.#clock.setTimeout(r, this.#o.retryMs ?? 1000)));
      } catch (err) {
        if (this.#stopped) return;
        if ((err as HttpStatusError).statusCode === 410) {
          this.#rv = '';
          continue;
        }
        this.#delay = Math.min(this.#delay > 0 ? this.#delay * 2 : this.#o.retryMs ?? 1000, 30_000);
        this.#log.warn({ path: this.#o.path, err: (err as Error).message, retryMs: this.#delay }, 'Kubernetes watch failed; retrying');
        await new Promise<void>((r) => (this.#timer = this.#clock.setTimeout(r, this.#delay)));
      }
    }
  }

  async #get(query: Record<string, string>, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const u = new URL(this.#o.connection.server.replace(/\/$/, '') + this.#o.path);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    if (this.#o.labelSelector !== undefined) u.searchParams.set('labelSelector', this.#o.labelSelector);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#o.connection.token !== undefined) headers.authorization = `Bearer ${this.#o.connection.token}`;
    const res = await request(u, { method: 'GET', headers, dispatcher: this.#dispatcher, ...(signal !== undefined ? { signal } : {}), headersTimeout: 30_000 });
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      let msg = text.slice(0, 300);
      try {
        msg = (JSON.parse(text) as { message?: string }).message ?? msg;
      } catch { /* not JSON */ }
      throw new HttpStatusError(res.statusCode, `${u.pathname} answered ${res.statusCode}: ${msg}`);
    }
    return res;
  }

  async #relist(): Promise<void> {
    const res = await this.#get({});
    const body = (await res.body.json()) as { metadata?: { resourceVersion?: string }; items?: KubeObject[] };
    this.#objects.clear();
    for (const o of body.items ?? []) this.#objects.set(keyOf(o), o);
    this.#rv = body.metadata?.resourceVersion ?? '';
    this.lists++;
    this.#o.onChange();
  }

  async #watch(): Promise<void> {
    this.#abort = new AbortController();
    const res = await this.#get({ watch: 'true', resourceVersion: this.#rv, allowWatchBookmarks: 'true', timeoutSeconds: String(this.#o.timeoutSeconds ?? 290) }, this.#abort.signal);
    let buf = '';
    for await (const chunk of res.body) {
      buf += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line !== '') this.#event(line);
      }
    }
  }

  #event(line: string): void {
    let ev: { type?: string; object?: KubeObject & { code?: number } };
    try {
      ev = JSON.parse(line) as typeof ev;
    } catch {
      this.#log.warn({ path: this.#o.path }, 'Kubernetes watch sent a line that is not JSON; ignored');
      return;
    }
    const obj = ev.object;
    if (obj === undefined) return;
    if (ev.type === 'ERROR') {
      if (obj.code === 410) throw new HttpStatusError(410, 'watch expired (410 Gone)');
      throw new Error(`watch error: ${JSON.stringify(obj).slice(0, 200)}`);
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv !== undefined) this.#rv = rv;
    this.#delay = 0;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.#objects.set(keyOf(obj), obj);
    else if (ev.type === 'DELETED') this.#objects.delete(keyOf(obj));
    else return;
    this.#o.onChange();
  }
}

function keyOf(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}
