/**
 * A multi-tenant character radix tree, the data structure of SGLang's router (`sgl-router`
 * `tree.rs`): every request text routed to a worker is inserted under that worker (tenant); a
 * lookup walks the text character by character. Each node keeps, per tenant, the last time the
 * tenant used it; each tenant has a character count (sum of the edge lengths of the nodes it
 * holds), which `smallest` ranks and eviction bounds.
 *
 * - insert(text, tenant, now): walk and split edges; every node on the path gets the tenant
 *   (count grows by the edge length when new) with access time `now`.
 * - match(text): longest prefix present in the tree; the tenant returned is the most recently
 *   accessed tenant of the deepest node reached (SGLang returns "a" tenant of that node).
 * - evictTenant(tenant, maxChars): while over, drop the tenant from its least recently used leaf
 *   (a node it holds whose children it does not hold); emptied nodes are removed.
 */

interface Node {
  edge: string;
  parent: Node | undefined;
  children: Map<string, Node>;
  tenants: Map<string, number>;
}

const node = (edge: string, parent: Node | undefined): Node => ({ edge, parent, children: new Map(), tenants: new Map() });

/** SGLang-style approximate radix tree; see the file comment. */
export class CharRadixTree {
  readonly #root: Node = node('', undefined);
  readonly #chars = new Map<string, number>();

  /** Characters held by `tenant` (0 when unknown). */
  size(tenant: string): number {
    return this.#chars.get(tenant) ?? 0;
  }

  /** Registers a tenant with nothing cached (SGLang inserts "" for every worker at start). */
  addTenant(tenant: string): void {
    if (!this.#chars.has(tenant)) this.#chars.set(tenant, 0);
  }

  /** Forgets a tenant everywhere. */
  removeTenant(tenant: string): void {
    const stack = [this.#root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      n.tenants.delete(tenant);
      for (const c of n.children.values()) stack.push(c);
    }
    this.#chars.delete(tenant);
    this.#prune(this.#root);
  }

  insert(text: string, tenant: string, now: number): void {
    this.addTenant(tenant);
    let cur = this.#root;
    let i = 0;
    while (i < text.length) {
      const child = cur.children.get(text[i]);
      if (child === undefined) {
        const leaf = node(text.slice(i), cur);
        cur.children.set(text[i], leaf);
        this.#hold(leaf, tenant, now);
        return;
      }
      const e = child.edge;
      let k = 0;
      while (k < e.length && i + k < text.length && e[k] === text[i + k]) k++;
      if (k < e.length) {
        // Split the edge at k: a new middle node holds the shared part and the child's tenants.
        const mid = node(e.slice(0, k), cur);
        for (const [t, at] of child.tenants) mid.tenants.set(t, at);
        cur.children.set(e[0], mid);
        child.edge = e.slice(k);
        child.parent = mid;
        mid.children.set(child.edge[0], child);
        this.#hold(mid, tenant, now);
        cur = mid;
        i += k;
        continue;
      }
      this.#hold(child, tenant, now);
      cur = child;
      i += k;
    }
  }

  /** Longest prefix of `text` in the tree, and the tenant SGLang would route it to. */
  match(text: string): { chars: number; tenant: string | undefined } {
    let cur = this.#root;
    let i = 0;
    let deepest: Node | undefined;
    while (i < text.length) {
      const child = cur.children.get(text[i]);
      if (child === undefined) break;
      const e = child.edge;
      let k = 0;
      while (k < e.length && i + k < text.length && e[k] === text[i + k]) k++;
      i += k;
      deepest = child;
      if (k < e.length) break;
      cur = child;
    }
    let tenant: string | undefined;
    let best = -Infinity;
    for (const [t, at] of deepest?.tenants ?? []) if (at > best) (best = at), (tenant = t);
    return { chars: deepest === undefined ? 0 : i, tenant };
  }

  /** Drops `tenant` from its least recently used leaves until it holds at most `maxChars`. */
  evictTenant(tenant: string, maxChars: number): void {
    if (this.size(tenant) <= maxChars) return;
    const leaves: Node[] = [];
    const stack = [this.#root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      for (const c of n.children.values()) stack.push(c);
      if (n !== this.#root && n.tenants.has(tenant) && ![...n.children.values()].some((c) => c.tenants.has(tenant))) leaves.push(n);
    }
    const at = (n: Node) => n.tenants.get(tenant)!;
    leaves.sort((a, b) => at(b) - at(a)); // oldest last, popped first
    while (this.size(tenant) > maxChars && leaves.length > 0) {
      const n = leaves.pop()!;
      n.tenants.delete(tenant);
      this.#chars.set(tenant, this.size(tenant) - n.edge.length);
      const p = n.parent;
      if (n.tenants.size === 0 && n.children.size === 0 && p !== undefined) p.children.delete(n.edge[0]);
      if (p !== undefined && p !== this.#root && p.tenants.has(tenant) && ![...p.children.values()].some((c) => c.tenants.has(tenant))) {
        // The parent became a leaf of this tenant: insert it by access time.
        const t = at(p);
        let j = leaves.length;
        while (j > 0 && at(leaves[j - 1]) < t) j--;
        leaves.splice(j, 0, p);
      }
    }
  }

  /** Tenants known to the tree. */
  tenants(): string[] {
    return [...this.#chars.keys()];
  }

  #hold(n: Node, tenant: string, now: number): void {
    if (!n.tenants.has(tenant)) this.#chars.set(tenant, this.size(tenant) + n.edge.length);
    n.tenants.set(tenant, now);
  }

  #prune(n: Node): void {
    for (const [k, c] of n.children) {
      this.#prune(c);
      if (c.tenants.size === 0 && c.children.size === 0) n.children.delete(k);
    }
  }
}
