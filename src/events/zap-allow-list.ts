/**
 * Publisher address allow-list for the bound KV-event SUB, enforced by ZeroMQ itself through
 * ZAP (ZeroMQ RFC 27): libzmq asks the context's ZAP handler about every incoming connection
 * during its handshake, before a single message of that peer is read, and closes it on a
 * refusal. The handler is a REP socket bound to `inproc://zeromq.zap.01` in the SUB's own
 * context (one handler per context, so the ingestor gives its bound SUB a context of its own);
 * the SUB sets a ZAP domain (with the NULL mechanism libzmq only asks when a domain is set).
 *
 * ```
 *   request  [ "1.0", request id, domain, peer address, routing id, mechanism, credentials... ]
 *   answer   [ "1.0", request id, "200" | "400", status text, user id, metadata "" ]
 *   allowed  peer address (IPv4-mapped IPv6 read as IPv4) in one of the allowed addresses / CIDRs
 *            (node:net BlockList); anything else, an unknown version or mechanism: 400
 * ```
 *
 * Refused connections are counted per peer address (at most 256 distinct, then `(other)`) and
 * logged once per address. A refused publisher reconnects (ZeroMQ's reconnect interval), and each
 * attempt is refused and counted again; none of its messages ever reaches the router.
 */
import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import { Context, Reply } from 'zeromq';
import { KvrError } from '../core/errors.js';

/** ZAP endpoint libzmq asks (RFC 27). */
export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
/** ZAP domain the bound KV-event SUB sets. */
export const ZAP_DOMAIN = 'kvroute-kv-events';
const MAX_ADDRESSES = 256;

/**
 * Parses an allow-list: IPv4 / IPv6 addresses and CIDRs (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
 * Throws KVR_ERR_USAGE naming the bad entry.
 */
export function parseAllowList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  if (entries.length === 0) throw new KvrError('KVR_ERR_USAGE', 'the KV-event publisher allow-list is empty: give addresses or CIDRs, e.g. 10.0.0.0/8,127.0.0.1');
  for (const raw of entries) {
    const e = raw.trim();
    const slash = e.indexOf('/');
    const addr = slash < 0 ? e : e.slice(0, slash);
    const family = isIP(addr);
    if (family === 0) throw new KvrError('KVR_ERR_USAGE', `KV-event publisher allow-list: "${raw}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.168.1.7, fd00::/8)`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) {
      list.addAddress(addr, type);
      continue;
    }
    const bits = e.slice(slash + 1);
    const prefix = Number(bits);
    if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) {
      throw new KvrError('KVR_ERR_USAGE', `KV-event publisher allow-list: "${raw}" has a bad prefix length (0-${family === 4 ? 32 : 128})`);
    }
    list.addSubnet(addr, prefix, type);
  }
  return list;
}

/** Whether `address` (as ZAP reports it) is allowed by `list`. */
export function addressAllowed(list: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const a = mapped ? mapped[1] : address;
  const family = isIP(a);
  if (family === 0) return false;
  return list.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

/** Options of a {@link ZapAllowList}. */
export interface ZapAllowListOptions {
  /** Allowed publisher addresses and CIDRs. */
  allow: readonly string[];
  /** The context of the socket to protect (the handler binds in it). */
  context: Context;
  logger: Logger;
}

/** A ZAP handler that accepts connections from allowed addresses only (see the module comment). */
export class ZapAllowList {
  readonly #list: BlockList;
  readonly #o: ZapAllowListOptions;
  #sock: Reply | undefined;
  #loop: Promise<void> | undefined;
  readonly #rejected = new Map<string, number>();
  #accepted = 0;

  constructor(o: ZapAllowListOptions) {
    this.#o = o;
    this.#list = parseAllowList(o.allow);
  }

  /** Binds the handler in the context; call before the protected socket binds. */
  async start(): Promise<void> {
    if (this.#sock) return;
    const sock = new Reply({ context: this.#o.context, linger: 0 });
    await sock.bind(ZAP_ENDPOINT);
    this.#sock = sock;
    this.#loop = this.#serve(sock);
  }

  /** Refused connection attempts by peer address. */
  rejected(): Record<string, number> {
    return Object.fromEntries(this.#rejected);
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#accepted;
  }

  async close(): Promise<void> {
    this.#sock?.close();
    await this.#loop;
  }

  async #serve(sock: Reply): Promise<void> {
    while (!sock.closed) {
      let req: Buffer[];
      try {
        req = await sock.receive();
      } catch {
        break; // closed
      }
      const [version, requestId, , address, , mechanism] = req;
      const addr = address?.toString('utf8') ?? '';
      const ok = version?.toString() === '1.0' && mechanism?.toString() === 'NULL' && addressAllowed(this.#list, addr);
      if (ok) this.#accepted++;
      else this.#reject(addr);
      try {
        await sock.send(['1.0', requestId ?? '', ok ? '200' : '400', ok ? 'OK' : 'publisher address not allowed', '', '']);
      } catch {
        break; // closed
      }
    }
  }

  #reject(address: string): void {
    const key = this.#rejected.has(address) || this.#rejected.size < MAX_ADDRESSES ? address : '(other)';
    const n = (this.#rejected.get(key) ?? 0) + 1;
    this.#rejected.set(key, n);
    if (n === 1) this.#o.logger.warn({ address }, 'KV-event publisher refused: its address is not in --kv-events-allow-from (logged once per address; counted in kvroute_kv_event_rejected_connections_total)');
  }
}
