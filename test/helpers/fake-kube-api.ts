/**
 * An in-process fake Kubernetes API server speaking the real list/watch protocol over HTTP,
 * for discovery tests (there is no cluster here). It serves Pods (`/api/v1/namespaces/{ns}/pods`)
 * and InferencePools (`/apis/inference.networking.k8s.io/v1/namespaces/{ns}/inferencepools`):
 *
 * - list: `{kind: PodList, metadata: {resourceVersion}, items}`, `labelSelector=k=v,...` honoured;
 * - watch (`?watch=true&resourceVersion=N`): a chunked stream of line-delimited
 *   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object":...}`, replaying history after N, then live.
 *   As the real server does for selector watches, an object that stops matching is sent DELETED
 *   and one that starts matching ADDED;
 * - history older than {@link FakeKubeApi.compact}'s mark answers a watch with an
 *   `ERROR` event carrying `{"kind":"Status","code":410,"reason":"Expired"}` and closes it
 *   (or, with `expiredAs: 'http'`, an HTTP 410 with that Status body), forcing a relist;
 * - {@link FakeKubeApi.closeWatches} drops every open watch (a disconnect);
 *   {@link FakeKubeApi.setDown} refuses requests with 503 until cleared; a request without the
 *   bearer token gets 401.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Obj = { apiVersion?: string; kind?: string; metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; uid?: string }; [k: string]: unknown };
type Kind = 'pods' | 'inferencepools';
interface Ev { rv: number; kind: Kind; type: 'ADDED' | 'MODIFIED' | 'DELETED'; obj: Obj; prev: Obj | undefined }
interface WatchConn { kind: Kind; ns: string; selector: Record<string, string> | undefined; res: ServerResponse }

/** Options of a pod made by {@link makePod}. */
export interface PodOptions {
  name: string;
  namespace?: string;
  ip: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ready?: boolean;
}

/** A Pod object as the API server returns it. */
export function makePod(o: PodOptions): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, namespace: o.namespace ?? 'default', labels: { ...(o.labels ?? {}) }, annotations: { ...(o.annotations ?? {}) }, uid: `uid-${o.name}` },
    spec: { containers: [{ name: 'vllm', image: 'vllm/vllm-openai' }] },
    status: { phase: 'Running', podIP: o.ip, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

/** An InferencePool object (inference.networking.k8s.io/v1). */
export function makeInferencePool(name: string, namespace: string, matchLabels: Record<string, string>, ports: number[]): Obj {
  return {
    apiVersion: 'inference.networking.k8s.io/v1',
    kind: 'InferencePool',
    metadata: { name, namespace },
    spec: { selector: { matchLabels }, targetPorts: ports.map((number) => ({ number })), endpointPickerRef: { name: `${name}-epp`, port: { number: 9002 } } },
  };
}

/** The fake; see the file comment. */
export class FakeKubeApi {
  readonly #server: Server;
  readonly #objects = new Map<string, Obj>();
  readonly #history: Ev[] = [];
  readonly #watches = new Set<WatchConn>();
  #rv = 100;
  #compactedRv = 0;
  #down = false;
  /** Requests seen, by verb (`list-pods`, `watch-pods`, `list-inferencepools`, ...). */
  readonly calls = new Map<string, number>();
  expiredAs: 'event' | 'http' = 'event';
  /** When set, requests without `Authorization: Bearer <token>` get 401 (as a real server). */
  token: string | undefined = 'fake-token';
  url = '';

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const w of this.#watches) w.res.destroy();
    this.#watches.clear();
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }

  /** Number of watch streams open now. */
  get openWatches(): number {
    return this.#watches.size;
  }

  count(verb: string): number {
    return this.calls.get(verb) ?? 0;
  }

  /** Creates or replaces an object (ADDED or MODIFIED). */
  apply(kind: Kind, obj: Obj): void {
    const key = `${kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
    const prev = this.#objects.get(key);
    const next = structuredClone(obj);
    next.metadata.resourceVersion = String(++this.#rv);
    this.#objects.set(key, next);
    this.#emit({ rv: this.#rv, kind, type: prev === undefined ? 'ADDED' : 'MODIFIED', obj: next, prev });
  }

  /** Changes a stored object in place (MODIFIED). */
  modify(kind: Kind, namespace: string, name: string, f: (o: Obj) => void): void {
    const o = this.get(kind, namespace, name);
    if (o === undefined) throw new Error(`no ${kind} ${namespace}/${name}`);
    f(o);
    this.apply(kind, o);
  }

  /** Deletes an object (DELETED). */
  delete(kind: Kind, namespace: string, name: string): void {
    const key = `${kind}/${namespace}/${name}`;
    const prev = this.#objects.get(key);
    if (prev === undefined) return;
    this.#objects.delete(key);
    const last = structuredClone(prev);
    last.metadata.resourceVersion = String(++this.#rv);
    this.#emit({ rv: this.#rv, kind, type: 'DELETED', obj: last, prev });
  }

  get(kind: Kind, namespace: string, name: string): Obj | undefined {
    const o = this.#objects.get(`${kind}/${namespace}/${name}`);
    return o === undefined ? undefined : structuredClone(o);
  }

  /** Forgets history up to now: a watch resuming from an older resourceVersion gets 410 Expired. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history.length = 0;
  }

  /** Drops every open watch connection (the client must reconnect). */
  closeWatches(): void {
    for (const w of this.#watches) w.res.destroy();
    this.#watches.clear();
  }

  /** While down, every request answers 503 and open watches are dropped. */
  setDown(down: boolean): void {
    this.#down = down;
    if (down) this.closeWatches();
  }

  #emit(ev: Ev): void {
    this.#history.push(ev);
    for (const w of this.#watches) this.#send(w, ev);
  }

  #send(w: WatchConn, ev: Ev): void {
    if (w.kind !== ev.kind || ev.obj.metadata.namespace !== w.ns) return;
    const now = ev.type !== 'DELETED' && matches(ev.obj, w.selector);
    const before = ev.prev !== undefined && matches(ev.prev, w.selector);
    let type: string;
    if (ev.type === 'DELETED') {
      if (!before) return;
      type = 'DELETED';
    } else if (now && before) type = 'MODIFIED';
    else if (now) type = 'ADDED';
    else if (before) type = 'DELETED';
    else return;
    w.res.write(JSON.stringify({ type, object: ev.obj }) + '\n');
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://x');
    const m = /^\/(?:api\/v1|apis\/inference\.networking\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(pods|inferencepools)$/.exec(u.pathname);
    const status = (code: number, reason: string, message: string): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
    };
    if (req.method !== 'GET' || m === null) return status(404, 'NotFound', `${req.method} ${u.pathname} is not served by the fake`);
    const kind = m[2] as Kind;
    if (kind === 'pods' && !u.pathname.startsWith('/api/v1/')) return status(404, 'NotFound', 'pods live under /api/v1');
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) return status(401, 'Unauthorized', 'Unauthorized');
    if (this.#down) return status(503, 'ServiceUnavailable', 'fake API server is down');
    const ns = decodeURIComponent(m[1]);
    const selector = parseSelector(u.searchParams.get('labelSelector'));
    const watching = u.searchParams.get('watch') === 'true';
    const verb = `${watching ? 'watch' : 'list'}-${kind}`;
    this.calls.set(verb, (this.calls.get(verb) ?? 0) + 1);
    if (!watching) {
      const items = [...this.#objects.entries()].filter(([k, o]) => k.startsWith(`${kind}/${ns}/`) && matches(o, selector)).map(([, o]) => o);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: kind === 'pods' ? 'v1' : 'inference.networking.k8s.io/v1', kind: kind === 'pods' ? 'PodList' : 'InferencePoolList', metadata: { resourceVersion: String(this.#rv) }, items }));
      return;
    }
    const from = Number(u.searchParams.get('resourceVersion') ?? '0');
    if (from !== 0 && from < this.#compactedRv) {
      const body = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${this.#compactedRv})`, reason: 'Expired', code: 410 };
      if (this.expiredAs === 'http') {
        res.writeHead(410, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'ERROR', object: body }) + '\n');
      }
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: WatchConn = { kind, ns, selector, res };
    for (const ev of this.#history) if (ev.rv > from) this.#send(w, ev);
    this.#watches.add(w);
    res.on('close', () => this.#watches.delete(w));
  }
}

function parseSelector(s: string | null): Record<string, string> | undefined {
  if (s === null || s === '') return undefined;
  const out: Record<string, string> = {};
  for (const t of s.split(',')) {
    const [k, v] = t.split('=');
    out[k.trim()] = (v ?? '').trim();
  }
  return out;
}

function matches(o: Obj, sel: Record<string, string> | undefined): boolean {
  if (sel === undefined) return true;
  const labels = o.metadata.labels ?? {};
  return Object.entries(sel).every(([k, v]) => labels[k] === v);
}
