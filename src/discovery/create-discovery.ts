/**
 * `--discovery` and the pool flags (named as llm-d's EPP names them) to a
 * {@link DiscoverySource}: `static` (the `--endpoints` list), `file:<path>`,
 * `dns:<name>:<port>` (A records) or `dns:<name>` (SRV), `k8s` (with `--pool-name` or
 * `--endpoint-selector` + `--endpoint-target-ports`). Flags that do not apply to the chosen
 * source are rejected, not ignored.
 */
import type { Logger } from 'pino';
import type { KubeConnection } from './kube-client.js';
import { KvrError } from '../core/errors.js';
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';
import { DnsDiscovery, type DnsResolver } from './dns-discovery.js';
import { FileDiscovery } from './file-discovery.js';
import { K8sDiscovery } from './k8s-discovery.js';
import { parseSelector, parseTargetPorts } from './pod-endpoints.js';
import { StaticDiscovery } from './static-discovery.js';
import type { DiscoverySource, KvEventsDiscovery } from './types.js';

/** The command-line view of discovery. */
export interface DiscoveryFlags {
  /** `static` (default), `file:<path>`, `dns:<name>[:<port>]`, `k8s`. */
  discovery?: string;
  poolName?: string;
  poolNamespace?: string;
  endpointSelector?: string;
  endpointTargetPorts?: string;
  dnsIntervalMs?: number;
  /** KV events follow discovery: pod rank i publishes on tcp://<ip>:<port+i>. */
  kvEvents?: KvEventsDiscovery;
  /** Tests: a connection to a fake API server; a DNS resolver. */
  connection?: KubeConnection;
  resolver?: DnsResolver;
  logger?: Logger;
}

/** True when `--discovery` names a dynamic source. */
export function isDynamicDiscovery(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== 'static';
}

/** Builds the source; `staticSpecs` serve `static`. Throws KVR_ERR_USAGE with a hint. */
export function createDiscovery(f: DiscoveryFlags, staticSpecs: readonly EndpointSpec[]): DiscoverySource {
  const v = (f.discovery ?? 'static').trim();
  const k8sFlags = { '--pool-name': f.poolName, '--pool-namespace': f.poolNamespace, '--endpoint-selector': f.endpointSelector, '--endpoint-target-ports': f.endpointTargetPorts };
  const notFor = (names: string[], what: string): void => {
    for (const n of names) {
      if ((k8sFlags as Record<string, unknown>)[n] !== undefined) throw new KvrError('KVR_ERR_USAGE', `${n} applies to --discovery k8s only, not ${what}`);
    }
  };
  const common = { ...(f.kvEvents !== undefined ? { kvEvents: f.kvEvents } : {}), ...(f.logger !== undefined ? { logger: f.logger } : {}) };
  if (f.dnsIntervalMs !== undefined && !v.startsWith('dns:')) throw new KvrError('KVR_ERR_USAGE', '--dns-interval-ms applies to --discovery dns:<name>:<port> only');
  if (v === 'static') {
    notFor(Object.keys(k8sFlags), 'static');
    if (f.kvEvents !== undefined) throw new KvrError('KVR_ERR_USAGE', 'with static endpoints give KV-event addresses per endpoint (;events=tcp://host:5557), not --kv-events-pod-port');
    return new StaticDiscovery(staticSpecs);
  }
  if (staticSpecs.length > 0) throw new KvrError('KVR_ERR_USAGE', `--endpoints cannot be combined with --discovery ${v}; the discovery source lists the endpoints`);
  if (v.startsWith('file:')) {
    notFor(Object.keys(k8sFlags), 'file discovery');
    const path = v.slice(5);
    if (path === '') throw new KvrError('KVR_ERR_USAGE', 'write --discovery file:<path to endpoints.yaml>');
    return new FileDiscovery({ path, ...common });
  }
  if (v.startsWith('dns:')) {
    notFor(Object.keys(k8sFlags), 'DNS discovery');
    const m = /^dns:([A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(v);
    if (m === null) throw new KvrError('KVR_ERR_USAGE', `--discovery ${v}: write dns:<headless service name>:<port> (A records) or dns:<SRV name>`);
    return new DnsDiscovery({
      name: m[1],
      ...(m[2] !== undefined ? { port: Number(m[2]) } : {}),
      ...(f.dnsIntervalMs !== undefined ? { intervalMs: f.dnsIntervalMs } : {}),
      ...(f.resolver !== undefined ? { resolver: f.resolver } : {}),
      ...common,
    });
  }
  if (v === 'k8s') {
    const namespace = f.poolNamespace ?? process.env.POD_NAMESPACE ?? 'default';
    if (f.poolName !== undefined && f.endpointSelector !== undefined) throw new KvrError('KVR_ERR_USAGE', 'give --pool-name or --endpoint-selector, not both');
    if (f.poolName !== undefined) {
      if (f.endpointTargetPorts !== undefined) throw new KvrError('KVR_ERR_USAGE', '--endpoint-target-ports goes with --endpoint-selector; an InferencePool names its own targetPorts');
      return new K8sDiscovery({ namespace, poolName: f.poolName, ...(f.connection !== undefined ? { connection: f.connection } : {}), ...common });
    }
    if (f.endpointSelector === undefined) throw new KvrError('KVR_ERR_USAGE', '--discovery k8s needs --pool-name <InferencePool> or --endpoint-selector app=vllm --endpoint-target-ports 8000');
    let selector: Record<string, string>;
    let targetPorts: number[];
    try {
      selector = parseSelector(f.endpointSelector);
      targetPorts = parseTargetPorts(f.endpointTargetPorts ?? '');
    } catch (err) {
      throw new KvrError('KVR_ERR_USAGE', `--endpoint-selector / --endpoint-target-ports: ${(err as Error).message}`);
    }
    return new K8sDiscovery({ namespace, selector, targetPorts, ...(f.connection !== undefined ? { connection: f.connection } : {}), ...common });
  }
  throw new KvrError('KVR_ERR_USAGE', `--discovery ${v} is not known; use static, file:<path>, dns:<name>:<port> or k8s`);
}
