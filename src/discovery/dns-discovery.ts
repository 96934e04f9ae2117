/**
 * DNS discovery: a headless Service name re-resolved every `intervalMs` (default 5 s).
 *
 * - `dns:<name>:<port>`: A records of `<name>`, each `ip:port` an endpoint (id `ip:port`).
 * - `dns:<name>` (no port): SRV records of `<name>` (e.g. `_http._tcp.vllm.llm.svc.cluster.local`),
 *   each target's A records at the record's port.
 *
 * A name that no longer exists (NXDOMAIN / no data) means an empty fleet; any other resolver
 * error keeps the last good set (logged), so a DNS hiccup does not empty the pool.
 */
import { promises as dnsPromises } from 'node:dns';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';
import { kvEventsFor, type DiscoveryListener, type DiscoverySource, type KvEventsDiscovery } from './types.js';

/** What DNS discovery asks of a resolver (node:dns/promises fits; tests inject their own). */
export interface DnsResolver {
  resolve4(name: string): Promise<string[]>;
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
}

/** Options of {@link DnsDiscovery}. */
export interface DnsDiscoveryOptions {
  name: string;
  /** Port of every A record; absent = SRV lookup. */
  port?: number;
  intervalMs?: number;
  resolver?: DnsResolver;
  kvEvents?: KvEventsDiscovery;
  clock?: Clock;
  logger?: Logger;
}

const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/** Endpoints from a periodically re-resolved DNS name; see the file comment. */
export class DnsDiscovery implements DiscoverySource {
  readonly description: string;
  readonly #o: DnsDiscoveryOptions;
  readonly #resolver: DnsResolver;
  readonly #clock: Clock;
  readonly #log: Logger;
  #timer: TimerHandle | undefined;
  #listener: DiscoveryListener | undefined;
  #last: string | undefined;
  #stopped = false;
  #round: Promise<void> = Promise.resolve();

  constructor(o: DnsDiscoveryOptions) {
    if (!/^[A-Za-z0-9_.-]+$/.test(o.name)) throw new KvrError('KVR_ERR_USAGE', `DNS name "${o.name}" is not valid; write e.g. dns:vllm.llm.svc.cluster.local:8000`);
    if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) throw new KvrError('KVR_ERR_USAGE', `DNS discovery port ${o.port} is not valid`);
    this.#o = o;
    this.#resolver = o.resolver ?? dnsPromises;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.logger ?? silentLogger;
    this.description = o.port !== undefined ? `dns:${o.name}:${o.port}` : `dns-srv:${o.name}`;
  }

  async start(listener: DiscoveryListener): Promise<void> {
    this.#listener = listener;
    let specs: EndpointSpec[];
    try {
      specs = await this.#resolve();
    } catch (err) {
      throw new KvrError('KVR_ERR_CONFIG', `DNS discovery: cannot resolve ${this.#o.name}: ${(err as Error).message}; check the Service name`);
    }
    this.#last = JSON.stringify(specs);
    await listener(specs);
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#round;
  }

  /** Resolves now and delivers a changed set (the periodic timer calls this too). */
  refresh(): Promise<void> {
    this.#round = this.#round.then(async () => {
      if (this.#stopped) return;
      let specs: EndpointSpec[];
      try {
        specs = await this.#resolve();
      } catch (err) {
        this.#log.warn({ name: this.#o.name, err: (err as Error).message }, 'DNS discovery: resolve failed; keeping the last endpoint set');
        return;
      }
      const key = JSON.stringify(specs);
      if (key === this.#last || this.#stopped) return;
      this.#last = key;
      this.#log.info({ name: this.#o.name, endpoints: specs.map((s) => s.id) }, 'DNS discovery: endpoint set changed');
      await this.#listener?.(specs);
    }).catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'DNS discovery: change not applied'));
    return this.#round;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.#o.intervalMs ?? 5000);
  }

  async #a(name: string): Promise<string[]> {
    try {
      return await this.#resolver.resolve4(name);
    } catch (err) {
      if (EMPTY_CODES.has((err as NodeJS.ErrnoException).code ?? '')) return [];
      throw err;
    }
  }

  async #resolve(): Promise<EndpointSpec[]> {
    const targets: Array<{ ip: string; port: number }> = [];
    if (this.#o.port !== undefined) {
      for (const ip of await this.#a(this.#o.name)) targets.push({ ip, port: this.#o.port });
    } else {
      let srv: Awaited<ReturnType<DnsResolver['resolveSrv']>> = [];
      try {
        srv = await this.#resolver.resolveSrv(this.#o.name);
      } catch (err) {
        if (!EMPTY_CODES.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
      for (const r of srv) for (const ip of await this.#a(r.name)) targets.push({ ip, port: r.port });
    }
    const seen = new Set<string>();
    const out: EndpointSpec[] = [];
    for (const t of targets.sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1))) {
      const id = `${t.ip}:${t.port}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const kvEvents = kvEventsFor(t.ip, 0, this.#o.kvEvents);
      out.push({ id, url: `http://${t.ip}:${t.port}`, ...(kvEvents !== undefined ? { kvEvents } : {}) });
    }
    return out;
  }
}
