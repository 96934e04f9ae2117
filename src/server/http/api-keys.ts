/**
 * Optional API keys of the public port. Keys come from `--api-key` (repeatable; tenant
 * `default`, or `tenant:key`) and/or a keys file of `tenant:key` lines (`#` comments and blank
 * lines ignored), like SMG's `--tenant-api-key`. A request presents its key as
 * `Authorization: Bearer <key>` (what OpenAI SDKs send) or `x-api-key: <key>`.
 *
 * Only SHA-256 digests of the keys are kept. A presented key is hashed and compared with EVERY
 * stored digest using `crypto.timingSafeEqual` (equal-length digests, no early exit), so neither
 * the comparison nor the number of keys checked leaks how much of a key matched. Keys are never
 * logged or echoed; error messages name the tenant only after a successful match.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { KvrError } from '../../core/errors.js';

/** Tenant names: what metrics and logs carry (bounded label values). */
const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Shortest key accepted: a short key is guessable. */
export const MIN_API_KEY_LENGTH = 8;

interface Entry {
  tenant: string;
  digest: Buffer;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Where a key came from, for error messages that never show the key. */
function checkEntry(tenant: string, key: string, where: string): void {
  if (!TENANT_RE.test(tenant)) {
    throw new KvrError('KVR_ERR_USAGE', `${where}: tenant name "${tenant.slice(0, 40)}" must be 1-64 characters of letters, digits, '_', '.', '-'`);
  }
  if (key.length < MIN_API_KEY_LENGTH || /\s/.test(key)) {
    throw new KvrError('KVR_ERR_USAGE', `${where}: the key of tenant "${tenant}" must be at least ${MIN_API_KEY_LENGTH} characters with no whitespace`);
  }
}

/** The accepted API keys by tenant; see the file comment. */
export class ApiKeyStore {
  readonly #entries: Entry[] = [];

  /** Number of keys held. */
  get size(): number {
    return this.#entries.length;
  }

  /** Tenant names, sorted, without duplicates. */
  tenants(): string[] {
    return [...new Set(this.#entries.map((e) => e.tenant))].sort();
  }

  /** Adds a key for `tenant`; throws KVR_ERR_USAGE on a bad tenant name or a weak key. */
  add(tenant: string, key: string, where = '--api-key'): void {
    checkEntry(tenant, key, where);
    this.#entries.push({ tenant, digest: sha256(key) });
  }

  /**
   * The tenant owning `presented`, or undefined. Constant time in the key's content: every
   * stored digest is compared.
   */
  verify(presented: string): string | undefined {
    const d = sha256(presented);
    let found: string | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(d, e.digest) && found === undefined) found = e.tenant;
    }
    return found;
  }

  /** Builds a store from `--api-key` values and an optional keys file; undefined when no key is given. */
  static from(keys: readonly string[] = [], file?: string): ApiKeyStore | undefined {
    if (keys.length === 0 && file === undefined) return undefined;
    const store = new ApiKeyStore();
    keys.forEach((k, i) => {
      const { tenant, key } = splitTenant(k, `--api-key #${i + 1}`);
      store.add(tenant, key, `--api-key #${i + 1}`);
    });
    if (file !== undefined) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new KvrError('KVR_ERR_USAGE', `cannot read the API keys file ${file}: ${(err as Error).message}`);
      }
      text.split(/\r?\n/).forEach((line, i) => {
        const t = line.trim();
        if (t === '' || t.startsWith('#')) return;
        const where = `${file}:${i + 1}`;
        const colon = t.indexOf(':');
        if (colon <= 0) throw new KvrError('KVR_ERR_USAGE', `${where}: expected "tenant:key"`);
        store.add(t.slice(0, colon).trim(), t.slice(colon + 1).trim(), where);
      });
    }
    if (store.size === 0) throw new KvrError('KVR_ERR_USAGE', `the API keys file ${file} has no "tenant:key" line; add one or drop --api-keys-file`);
    return store;
  }
}

/** `tenant:key` -> both; a value without a valid tenant prefix is a key of tenant `default`. */
function splitTenant(v: string, where: string): { tenant: string; key: string } {
  const colon = v.indexOf(':');
  if (colon > 0 && TENANT_RE.test(v.slice(0, colon))) return { tenant: v.slice(0, colon), key: v.slice(colon + 1) };
  if (v === '') throw new KvrError('KVR_ERR_USAGE', `${where}: empty key`);
  return { tenant: 'default', key: v };
}

/** The key a request presents: `Authorization: Bearer <key>` or `x-api-key`; undefined when none. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m !== null) return m[1];
  }
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x !== '') return x.trim();
  return undefined;
}
