/**
 * Pods to endpoints, as llm-d's datastore does: a pod counts only when it has an IP, its
 * `Ready` condition is `True` and it carries no `deletionTimestamp`; each target port i is its
 * own endpoint `<namespace>/<pod>-rank-<i>` at `podIP:port` (metrics scraped from the same
 * address); the pod annotation `llm-d.ai/active-ports` (legacy
 * `inference.networking.k8s.io/active-ports`, comma-separated port numbers) limits which ports
 * are live; the pod label `llm-d.ai/role` gives the P/D role.
 */
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';
import { kvEventsFor, roleFromLabels, type KvEventsDiscovery } from './types.js';

/** The fields of a Kubernetes Pod that discovery reads. */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  status?: { podIP?: string; conditions?: Array<{ type?: string; status?: string }> };
}

export const ACTIVE_PORTS_ANNOTATION = 'llm-d.ai/active-ports';
export const LEGACY_ACTIVE_PORTS_ANNOTATION = 'inference.networking.k8s.io/active-ports';

/** True when the pod may receive traffic: an IP, Ready=True, not being deleted. */
export function podIsServing(pod: PodLike): boolean {
  if (pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null) return false;
  if (!pod.status?.podIP) return false;
  return (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The endpoints of one pod for `targetPorts` (empty when the pod is not serving). */
export function podEndpoints(pod: PodLike, targetPorts: readonly number[], kv?: KvEventsDiscovery): EndpointSpec[] {
  if (!podIsServing(pod)) return [];
  const md = pod.metadata ?? {};
  const ip = pod.status!.podIP!;
  const labels = { ...(md.labels ?? {}) };
  const ann = md.annotations?.[ACTIVE_PORTS_ANNOTATION] ?? md.annotations?.[LEGACY_ACTIVE_PORTS_ANNOTATION];
  const active = ann === undefined ? undefined : new Set(ann.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n)));
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const out: EndpointSpec[] = [];
  targetPorts.forEach((port, rank) => {
    if (active !== undefined && !active.has(port)) return;
    const kvEvents = kvEventsFor(ip, rank, kv);
    out.push({
      id: `${md.namespace ?? 'default'}/${md.name ?? ip}-rank-${rank}`,
      url: `http://${host}:${port}`,
      role: roleFromLabels(labels),
      labels,
      ...(kvEvents !== undefined ? { kvEvents } : {}),
    });
  });
  return out;
}

/** Parses `--endpoint-selector` (`k=v,k2=v2`) into matchLabels; throws a message on bad input. */
export function parseSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._/-]*)\s*==?\s*([A-Za-z0-9._-]*)$/.exec(part);
    if (m === null) throw new Error(`selector term "${part}" is not key=value`);
    out[m[1]] = m[2];
  }
  if (Object.keys(out).length === 0) throw new Error('selector is empty');
  return out;
}

/** Parses `--endpoint-target-ports` (`8000,8001`, 1 to 8 unique ports). */
export function parseTargetPorts(text: string): number[] {
  const ports = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (ports.length < 1 || ports.length > 8) throw new Error('give 1 to 8 target ports, e.g. 8000 or 8000,8001');
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`target port "${p}" is not a port number`);
  if (new Set(ports).size !== ports.length) throw new Error('target ports must be unique');
  return ports;
}
