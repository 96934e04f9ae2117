/**
 * Kubernetes discovery: Pods selected by an `InferencePool` (`inference.networking.k8s.io/v1`,
 * `spec.selector.matchLabels`, `spec.targetPorts[].number`) or by a plain label selector plus
 * target ports (llm-d's `--endpoint-selector` / `--endpoint-target-ports`), watched with the
 * list/watch cache of kube-client.ts.
 *
 * Algorithm: pool mode watches the namespace's InferencePools and keeps the named one's
 * selector and ports; whenever they change the Pod watch restarts with the new label selector.
 * Every Pod event recomputes the whole snapshot (see pod-endpoints.ts for which pods count),
 * coalesced to one delivery per event burst. The watch survives disconnects: a closed stream
 * resumes from the last resourceVersion, 410 Gone relists, and any other error retries after an
 * exponential backoff (`reconnectMs` doubling to 30 s, reset by the next event).
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';
import { defaultKubeConnection, ListWatcher, type KubeConnection, type KubeObject } from './kube-client.js';
import { podEndpoints, type PodLike } from './pod-endpoints.js';
import type { DiscoveryListener, DiscoverySource, KvEventsDiscovery } from './types.js';

/** Options of {@link K8sDiscovery}: exactly one of `poolName` or `selector`+`targetPorts`. */
export interface K8sDiscoveryOptions {
  namespace: string;
  poolName?: string;
  selector?: Record<string, string>;
  targetPorts?: number[];
  /** Default: in-cluster service account, else the kubeconfig ($KUBECONFIG or ~/.kube/config). */
  connection?: KubeConnection;
  kvEvents?: KvEventsDiscovery;
  /** First retry delay after a watch failure (default 1000 ms; doubles up to 30 s). */
  reconnectMs?: number;
  clock?: Clock;
  logger?: Logger;
}

interface PoolSpec {
  selector: Record<string, string>;
  ports: number[];
}

type PoolObject = KubeObject & { spec?: { selector?: { matchLabels?: Record<string, string> }; targetPorts?: Array<{ number?: number }> } };

/** Reads a pool object's selector and ports; undefined when the spec is unusable. */
export function poolSpecOf(pool: PoolObject | undefined): PoolSpec | undefined {
  const selector = pool?.spec?.selector?.matchLabels;
  const ports = (pool?.spec?.targetPorts ?? []).map((p) => p.number).filter((n): n is number => Number.isInteger(n));
  if (selector === undefined || Object.keys(selector).length === 0 || ports.length === 0) return undefined;
  return { selector, ports: ports.slice(0, 8) };
}

/** Endpoints from Kubernetes; see the file comment. */
export class K8sDiscovery implements DiscoverySource {
  readonly description: string;
  readonly #o: K8sDiscoveryOptions;
  readonly #log: Logger;
  #conn: KubeConnection | undefined;
  #listener: DiscoveryListener | undefined;
  #pools: ListWatcher | undefined;
  #pods: ListWatcher | undefined;
  #spec: PoolSpec | undefined;
  #stopped = false;
  #emitQueued = false;
  #last = '';
  #chain: Promise<void> = Promise.resolve();

  constructor(o: K8sDiscoveryOptions) {
    if ((o.poolName === undefined) === (o.selector === undefined)) {
      throw new KvrError('KVR_ERR_USAGE', 'Kubernetes discovery needs either --pool-name or --endpoint-selector (with --endpoint-target-ports), not both');
    }
    if (o.selector !== undefined && (o.targetPorts === undefined || o.targetPorts.length === 0)) {
      throw new KvrError('KVR_ERR_USAGE', '--endpoint-selector needs --endpoint-target-ports, e.g. 8000');
    }
    this.#o = o;
    this.#conn = o.connection;
    this.#log = o.logger ?? silentLogger;
    this.description = o.poolName !== undefined ? `k8s:inferencepool/${o.namespace}/${o.poolName}` : `k8s:pods/${o.namespace}?${selectorString(o.selector!)}`;
    if (o.selector !== undefined) this.#spec = { selector: o.selector, ports: o.targetPorts! };
  }

  async start(listener: DiscoveryListener): Promise<void> {
    this.#listener = listener;
    this.#conn ??= defaultKubeConnection();
    const ns = this.#o.namespace;
    if (this.#o.poolName !== undefined) {
      this.#pools = this.#watcher(`/apis/inference.networking.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/inferencepools`, undefined, () => this.#poolChanged());
      await this.#pools.start();
      const spec = poolSpecOf(this.#pool());
      if (spec === undefined) {
        await this.stop();
        throw new KvrError('KVR_ERR_CONFIG', `InferencePool ${ns}/${this.#o.poolName} not found or has no spec.selector.matchLabels / spec.targetPorts; check --pool-name and --pool-namespace`);
      }
      this.#spec = spec;
    }
    try {
      await this.#startPods();
    } catch (err) {
      await this.stop();
      throw err;
    }
    await this.#emitNow();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#pools?.stop();
    await this.#pods?.stop();
    await this.#chain;
  }

  #watcher(path: string, labelSelector: string | undefined, onChange: () => void): ListWatcher {
    return new ListWatcher({
      connection: this.#conn!,
      path,
      ...(labelSelector !== undefined ? { labelSelector } : {}),
      onChange,
      ...(this.#o.reconnectMs !== undefined ? { retryMs: this.#o.reconnectMs } : {}),
      ...(this.#o.clock !== undefined ? { clock: this.#o.clock } : {}),
      logger: this.#log,
    });
  }

  #pool(): PoolObject | undefined {
    return this.#pools?.list().find((p) => p.metadata?.name === this.#o.poolName) as PoolObject | undefined;
  }

  async #startPods(): Promise<void> {
    const pods = this.#watcher(`/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/pods`, selectorString(this.#spec!.selector), () => this.#emitSoon());
    const old = this.#pods;
    this.#pods = pods;
    await old?.stop();
    await pods.start();
  }

  #poolChanged(): void {
    if (this.#stopped || this.#pods === undefined) return;
    const spec = poolSpecOf(this.#pool());
    if (spec === undefined) {
      this.#log.warn({ pool: this.#o.poolName }, 'InferencePool deleted or without selector/ports; keeping the last endpoint set');
      return;
    }
    if (JSON.stringify(spec) === JSON.stringify(this.#spec)) return;
    this.#spec = spec;
    this.#log.info({ pool: this.#o.poolName, selector: spec.selector, ports: spec.ports }, 'InferencePool changed; re-watching pods');
    this.#chain = this.#chain.then(async () => {
      if (this.#stopped) return;
      await this.#startPods();
      await this.#emitNow();
    }).catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'pod re-watch failed'));
  }

  #emitSoon(): void {
    if (this.#emitQueued || this.#stopped) return;
    this.#emitQueued = true;
    queueMicrotask(() => {
      this.#emitQueued = false;
      this.#chain = this.#chain.then(() => this.#emitNow()).catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'discovery change not applied'));
    });
  }

  /** The current snapshot from the Pod cache. */
  snapshot(): EndpointSpec[] {
    const spec = this.#spec;
    if (spec === undefined || this.#pods === undefined) return [];
    const out: EndpointSpec[] = [];
    for (const pod of this.#pods.list() as PodLike[]) {
      const labels = pod.metadata?.labels ?? {};
      if (!Object.entries(spec.selector).every(([k, v]) => labels[k] === v)) continue;
      out.push(...podEndpoints(pod, spec.ports, this.#o.kvEvents));
    }
    return out.sort((a, b) => (a.id! < b.id! ? -1 : a.id! > b.id! ? 1 : 0));
  }

  async #emitNow(): Promise<void> {
    if (this.#stopped) return;
    const specs = this.snapshot();
    const key = JSON.stringify(specs);
    if (key === this.#last) return;
    this.#last = key;
    this.#log.info({ endpoints: specs.map((s) => s.id) }, 'Kubernetes discovery: endpoint set changed');
    await this.#listener?.(specs);
  }
}

function selectorString(sel: Record<string, string>): string {
  return Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');
}
