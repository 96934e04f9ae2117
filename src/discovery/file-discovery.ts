/**
 * File discovery in llm-d's `file-discovery` format (YAML or JSON, at most 1 MiB):
 *
 *   endpoints:
 *     - name: vllm-0            # required; the endpoint id is `namespace/name` (or `name`)
 *       namespace: llm          # optional
 *       address: 10.0.0.5       # required, an IP address or host name
 *       port: "8000"            # required, string or number
 *       labels: {llm-d.ai/role: decode}   # optional; llm-d.ai/role sets the P/D role
 *
 * Reload: the file's directory is watched (so editors' and Kubernetes ConfigMaps' atomic
 * renames are seen, not only in-place writes); changes are debounced, and a file that does not
 * parse keeps the last good set (logged), so a half-written file never empties the pool.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';
import { kvEventsFor, roleFromLabels, type DiscoveryListener, type DiscoverySource, type KvEventsDiscovery } from './types.js';

/** The largest discovery file accepted (llm-d's limit). */
export const MAX_DISCOVERY_FILE_BYTES = 1024 * 1024;

/** Options of {@link FileDiscovery}. */
export interface FileDiscoveryOptions {
  path: string;
  kvEvents?: KvEventsDiscovery;
  /** Debounce of change notifications (default 50 ms). */
  debounceMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Parses the file's text; throws KVR_ERR_CONFIG naming the entry at fault. */
export function parseDiscoveryFile(text: string, source: string, kv?: KvEventsDiscovery): EndpointSpec[] {
  if (Buffer.byteLength(text) > MAX_DISCOVERY_FILE_BYTES) {
    throw new KvrError('KVR_ERR_CONFIG', `${source} is larger than 1 MiB; split the fleet or use Kubernetes discovery`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KvrError('KVR_ERR_CONFIG', `${source} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  const list = (doc as { endpoints?: unknown } | null)?.endpoints;
  if (!Array.isArray(list)) throw new KvrError('KVR_ERR_CONFIG', `${source} needs a top-level "endpoints:" list of {name, address, port}`);
  const out: EndpointSpec[] = [];
  list.forEach((raw: unknown, i) => {
    const e = (raw ?? {}) as Record<string, unknown>;
    const where = `${source}: endpoints[${i}]`;
    if (typeof e.name !== 'string' || e.name === '') throw new KvrError('KVR_ERR_CONFIG', `${where} needs a name`);
    if (typeof e.address !== 'string' || e.address === '') throw new KvrError('KVR_ERR_CONFIG', `${where} (${e.name}) needs an address (an IP address)`);
    const port = typeof e.port === 'number' ? e.port : typeof e.port === 'string' && /^\d+$/.test(e.port) ? Number(e.port) : NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new KvrError('KVR_ERR_CONFIG', `${where} (${e.name}) needs a port between 1 and 65535, e.g. port: "8000"`);
    if (e.namespace !== undefined && typeof e.namespace !== 'string') throw new KvrError('KVR_ERR_CONFIG', `${where} (${e.name}): namespace must be a string`);
    const labels: Record<string, string> = {};
    if (e.labels !== undefined) {
      if (typeof e.labels !== 'object' || e.labels === null || Array.isArray(e.labels)) throw new KvrError('KVR_ERR_CONFIG', `${where} (${e.name}): labels must be a map of strings`);
      for (const [k, v] of Object.entries(e.labels)) labels[k] = String(v);
    }
    const host = e.address.includes(':') ? `[${e.address}]` : e.address;
    const kvEvents = kvEventsFor(e.address, 0, kv);
    out.push({
      id: e.namespace ? `${e.namespace}/${e.name}` : e.name,
      url: `http://${host}:${port}`,
      role: roleFromLabels(labels),
      labels,
      ...(kvEvents !== undefined ? { kvEvents } : {}),
    });
  });
  return out;
}

/** Endpoints from a watched file; see the file comment. */
export class FileDiscovery implements DiscoverySource {
  readonly description: string;
  readonly #o: FileDiscoveryOptions;
  readonly #path: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  #watcher: FSWatcher | undefined;
  #timer: TimerHandle | undefined;
  #listener: DiscoveryListener | undefined;
  #last = '';
  #stopped = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(o: FileDiscoveryOptions) {
    this.#o = o;
    this.#path = resolve(o.path);
    this.#clock = o.clock ?? systemClock;
    this.#log = o.logger ?? silentLogger;
    this.description = `file:${o.path}`;
  }

  async start(listener: DiscoveryListener): Promise<void> {
    this.#listener = listener;
    const specs = await this.#read();
    this.#last = JSON.stringify(specs);
    await listener(specs);
    const name = basename(this.#path);
    try {
      this.#watcher = watch(dirname(this.#path), { persistent: false }, (_ev, file) => {
        if (file === null || file === name) this.#kick();
      });
    } catch (err) {
      throw new KvrError('KVR_ERR_CONFIG', `cannot watch ${dirname(this.#path)}: ${(err as Error).message}`);
    }
    this.#watcher.on('error', (err) => this.#log.warn({ err: err.message, path: this.#path }, 'discovery file watch failed'));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#watcher?.close();
    await this.#chain;
  }

  #kick(): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#clock.setTimeout(() => {
      this.#chain = this.#chain.then(() => this.#reload()).catch((err: unknown) => {
        this.#log.warn({ path: this.#path, err: (err as Error).message }, 'discovery file change not applied');
      });
    }, this.#o.debounceMs ?? 50);
  }

  async #reload(): Promise<void> {
    if (this.#stopped) return;
    let specs: EndpointSpec[];
    try {
      specs = await this.#read();
    } catch (err) {
      this.#log.warn({ path: this.#path, err: (err as Error).message }, 'discovery file not reloaded; keeping the last good endpoint set');
      return;
    }
    const key = JSON.stringify(specs);
    if (key === this.#last || this.#stopped) return;
    this.#last = key;
    this.#log.info({ path: this.#path, endpoints: specs.map((s) => s.id) }, 'discovery file reloaded');
    await this.#listener?.(specs);
  }

  async #read(): Promise<EndpointSpec[]> {
    let size: number;
    try {
      size = (await stat(this.#path)).size;
    } catch (err) {
      throw new KvrError('KVR_ERR_CONFIG', `discovery file ${this.#path} cannot be read (${(err as NodeJS.ErrnoException).code}); write it in llm-d's file-discovery format`);
    }
    if (size > MAX_DISCOVERY_FILE_BYTES) throw new KvrError('KVR_ERR_CONFIG', `${this.#path} is larger than 1 MiB`);
    return parseDiscoveryFile(await readFile(this.#path, 'utf8'), this.#path, this.#o.kvEvents);
  }
}
