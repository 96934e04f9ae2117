/**
 * Cached, bound children of prom-client metrics for the per-request path.
 *
 * prom-client validates and hashes the label object on every `inc`/`observe` (its `labels()`
 * children do too), and a routed request makes about 30 observations. A {@link FastChildren}
 * keeps one bound child per label-value tuple (a small trie of Maps, no key strings built) whose
 * calls update prom-client's stored value for that tuple directly: the exposition is exactly the
 * one the public API would produce (pinned by fast-children.test.ts against prom-client itself).
 *
 * The stored value is found through prom-client's `hashMap` (stable across 13.x-15.x). Should a
 * future prom-client change that shape, {@link FastChildren} notices at the first child and uses
 * the public API from then on (correct, just slower). A child whose stored value was dropped
 * (`reset()`, `remove()`) re-creates it on its next call.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import { KvrError } from '../core/errors.js';

/** Most labels of a metric served here (positional label values, see {@link FastChildren}). */
const MAX_LABELS = 4;

type Labels = Record<string, string>;
interface HistValue { sum: number; count: number; bucketValues: Record<string, number>; labels?: Labels }
interface ScalarValue { value: number; labels?: Labels }
interface Internals<V> { hashMap: Record<string, V | undefined>; upperBounds?: number[] }

/** A histogram child bound to one label set. */
export interface FastHistogramChild { observe(v: number): void }
/** A counter child bound to one label set. */
export interface FastCounterChild { inc(v?: number): void }
/** A gauge child bound to one label set. */
export interface FastGaugeChild { inc(v?: number): void; dec(v?: number): void }

/** True when `l` holds exactly the label values of `labels`. */
function sameLabels(l: Labels | undefined, labels: Labels, names: readonly string[]): boolean {
  if (l === undefined || Object.keys(l).length !== names.length) return false;
  for (const n of names) if (l[n] !== labels[n]) return false;
  return true;
}

/**
 * The key prom-client 13-15 gives `labels` (`util.hashObject` over the sorted label names:
 * `name:value,` per defined value). Only a guess: {@link keyOf} checks it.
 */
export function promKey(labels: Labels, names: readonly string[]): string {
  const sorted = names.length > 1 ? [...names].sort() : names;
  let key = '';
  for (const n of sorted) if (labels[n] !== undefined) key += `${n}:${labels[n]},`;
  return key;
}

/**
 * Finds the key under which prom-client stores the value of `labels` (after it was created):
 * prom-client's own key when it names that value (one lookup), else a scan of the whole map (a
 * prom-client whose key format changed: correct, O(children)). At 1,000 endpoints with ~10
 * children each, the scan made creating every child O(children^2).
 */
function keyOf(hashMap: Record<string, { labels?: Labels } | undefined>, labels: Labels): string | undefined {
  const names = Object.keys(labels);
  const guess = promKey(labels, names);
  if (sameLabels(hashMap[guess]?.labels, labels, names)) return guess;
  for (const k in hashMap) {
    if (sameLabels(hashMap[k]?.labels, labels, names)) return k;
  }
  return undefined;
}

class HistChild implements FastHistogramChild {
  readonly #m: Histogram<string>;
  readonly #labels: Labels;
  readonly #int: Internals<HistValue>;
  readonly #bounds: number[];
  /** `bucketValues` keys of the bounds, as strings: a float used as a key is converted on every access. */
  readonly #bucketKeys: string[];
  #key: string | undefined;
  constructor(m: Histogram<string>, labels: Labels) {
    this.#m = m;
    this.#labels = labels;
    this.#int = m as unknown as Internals<HistValue>;
    this.#bounds = this.#int.upperBounds ?? [];
    this.#bucketKeys = this.#bounds.map(String);
    m.zero(labels);
    this.#key = keyOf(this.#int.hashMap, labels);
  }
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    // prom-client's reset() replaces hashMap, remove() deletes the entry: read it each time.
    const e = this.#key === undefined ? undefined : this.#int.hashMap[this.#key];
    if (e === undefined || typeof e.sum !== 'number') {
      this.#m.observe(this.#labels, v);
      this.#key = keyOf(this.#int.hashMap, this.#labels);
      return;
    }
    e.sum += v;
    e.count += 1;
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        e.bucketValues[this.#bucketKeys[i]] += 1;
        return;
      }
    }
  }
}

class ScalarChild implements FastCounterChild, FastGaugeChild {
  readonly #m: Counter<string> | Gauge<string>;
  readonly #labels: Labels;
  readonly #int: Internals<ScalarValue>;
  readonly #gauge: boolean;
  #key: string | undefined;
  constructor(m: Counter<string> | Gauge<string>, labels: Labels, gauge: boolean) {
    this.#m = m;
    this.#labels = labels;
    this.#gauge = gauge;
    this.#int = m as unknown as Internals<ScalarValue>;
    this.#key = keyOf(this.#int.hashMap, labels);
  }
  inc(v = 1): void {
    this.#add(v);
  }
  dec(v = 1): void {
    this.#add(-v);
  }
  #add(v: number): void {
    const e = this.#key === undefined ? undefined : this.#int.hashMap[this.#key];
    if (e === undefined || typeof e.value !== 'number' || !Number.isFinite(v) || (!this.#gauge && v < 0)) {
      if (this.#gauge) (this.#m as Gauge<string>).inc(this.#labels, v);
      else (this.#m as Counter<string>).inc(this.#labels, v);
      this.#key = keyOf(this.#int.hashMap, this.#labels);
      return;
    }
    e.value += v;
  }
}

/** Public-API children (used when prom-client's internals are not as expected). */
const slowHist = (m: Histogram<string>, l: Labels): FastHistogramChild => ({ observe: (v) => { if (Number.isFinite(v)) m.observe(l, v); } });
const slowScalar = (m: Counter<string> | Gauge<string>, l: Labels, gauge: boolean): FastCounterChild & FastGaugeChild => ({
  inc: (v = 1) => (gauge ? (m as Gauge<string>).inc(l, v) : (m as Counter<string>).inc(l, v)),
  dec: (v = 1) => (m as Gauge<string>).dec(l, v),
});

function hasInternals(m: unknown): boolean {
  const h = (m as { hashMap?: unknown }).hashMap;
  return typeof h === 'object' && h !== null;
}

/** One metric's children, by label values in the metric's label-name order. */
class ChildTrie<C> {
  readonly #root = new Map<string | undefined, unknown>();
  constructor(
    readonly names: readonly string[],
    readonly make: (labels: Labels) => C,
  ) {
    if (names.length > MAX_LABELS) throw new KvrError('KVR_ERR_INTERNAL', `FastChildren takes metrics of at most ${MAX_LABELS} labels; ${names.join(', ')} are ${names.length}: use the metric's own API`);
  }
  /** The child of up to four label values (no array per call: the request path makes ~15 of these calls). */
  get(a: string | undefined, b: string | undefined, c: string | undefined, d: string | undefined): C {
    const n = this.names.length;
    let node = this.#root;
    if (n > 1) node = this.#step(node, a);
    if (n > 2) node = this.#step(node, b);
    if (n > 3) node = this.#step(node, c);
    const last = n === 0 ? undefined : n === 1 ? a : n === 2 ? b : n === 3 ? c : d;
    let child = node.get(last) as C | undefined;
    if (child === undefined) node.set(last, (child = this.make(this.#labels([a, b, c, d]))));
    return child;
  }
  #step(node: Map<string | undefined, unknown>, v: string | undefined): Map<string | undefined, unknown> {
    let next = node.get(v) as Map<string | undefined, unknown> | undefined;
    if (next === undefined) node.set(v, (next = new Map()));
    return next;
  }
  #labels(values: ReadonlyArray<string | undefined>): Labels {
    const labels: Labels = {};
    for (let i = 0; i < this.names.length; i++) labels[this.names[i]] = values[i] as string;
    return labels;
  }
}

/**
 * Bound children of labelled metrics, cached per label-value tuple (values given in the order of
 * the metric's `labelNames`). Label cardinality is the caller's to bound, as with prom-client.
 */
export class FastChildren {
  readonly #tries = new Map<object, ChildTrie<unknown>>();

  #trie<C>(m: object, make: (labels: Labels) => C): ChildTrie<C> {
    let t = this.#tries.get(m) as ChildTrie<C> | undefined;
    if (t === undefined) {
      const names = (m as { labelNames?: readonly string[] }).labelNames ?? [];
      this.#tries.set(m, (t = new ChildTrie(names, make)));
    }
    return t;
  }

  // Label values are positional parameters (up to four): a rest parameter would allocate an array
  // on every call. Values are given in the order of the metric's `labelNames`.

  /** The child of histogram `m` for the label values (in `labelNames` order). */
  histogram<T extends string>(metric: Histogram<T>, a?: string, b?: string, c?: string, d?: string): FastHistogramChild {
    const m = metric as unknown as Histogram<string>;
    return this.#trie<FastHistogramChild>(m, (l) => (hasInternals(m) ? new HistChild(m, l) : slowHist(m, l))).get(a, b, c, d);
  }

  /** The child of counter `m` for the label values (in `labelNames` order). */
  counter<T extends string>(metric: Counter<T>, a?: string, b?: string, c?: string, d?: string): FastCounterChild {
    const m = metric as unknown as Counter<string>;
    return this.#trie<FastCounterChild>(m, (l) => (hasInternals(m) ? new ScalarChild(m, l, false) : slowScalar(m, l, false))).get(a, b, c, d);
  }

  /** The child of gauge `m` for the label values (in `labelNames` order). */
  gauge<T extends string>(metric: Gauge<T>, a?: string, b?: string, c?: string, d?: string): FastGaugeChild {
    const m = metric as unknown as Gauge<string>;
    return this.#trie<FastGaugeChild>(m, (l) => (hasInternals(m) ? new ScalarChild(m, l, true) : slowScalar(m, l, true))).get(a, b, c, d);
  }
}
