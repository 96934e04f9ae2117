/**
 * Copies the prefill leg's `cached_tokens` into the decode leg's usage (llm-d's
 * `cached_tokens_usage_rewriter.go`): the client sees how much of its prompt was a cache hit on
 * the prefill endpoint, where the prompt was actually computed.
 *
 * - JSON bodies: `usage.prompt_tokens_details.cached_tokens` is set (the body is re-serialized).
 * - SSE streams: each `data: {...}` event carrying a non-null `usage` gets the same edit; the
 *   stream is cut into events at blank lines, so chunk boundaries anywhere are fine.
 */

/** Sets `usage.prompt_tokens_details.cached_tokens` on a parsed response object; true if it had usage. */
export function setCachedTokens(o: Record<string, unknown>, cached: number): boolean {
  const u = o.usage;
  if (u === null || typeof u !== 'object') return false;
  const usage = u as Record<string, unknown>;
  const d = usage.prompt_tokens_details;
  usage.prompt_tokens_details = { ...(d !== null && typeof d === 'object' ? (d as Record<string, unknown>) : {}), cached_tokens: cached };
  return true;
}

/** Rewrites a whole JSON body; returns it unchanged when not a JSON object with usage. */
export function rewriteJsonBody(buf: Buffer, cached: number): Buffer {
  let o: unknown;
  try {
    o = JSON.parse(buf.toString('utf8'));
  } catch {
    return buf;
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return buf;
  return setCachedTokens(o as Record<string, unknown>, cached) ? Buffer.from(JSON.stringify(o)) : buf;
}

/** A streaming SSE rewriter: feed chunks with {@link push}, then {@link end}. */
export class SseUsageRewriter {
  #pending = '';
  constructor(private readonly cached: number) {}

  /** Rewritten text of every complete event in `chunk` (plus what was pending). */
  push(chunk: Buffer | string): string {
    this.#pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let out = '';
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.#pending);
      if (m === null) break;
      const ev = this.#pending.slice(0, m.index);
      this.#pending = this.#pending.slice(m.index + m[0].length);
      out += this.#event(ev) + m[0];
    }
    return out;
  }

  /** Whatever is left (an incomplete last event, passed through). */
  end(): string {
    const rest = this.#pending;
    this.#pending = '';
    return rest === '' ? '' : this.#event(rest);
  }

  #event(ev: string): string {
    if (!ev.includes('"usage"')) return ev;
    return ev
      .split(/\r?\n/)
      .map((line) => {
        if (!line.startsWith('data:')) return line;
        const data = line.slice(5).trim();
        if (!data.startsWith('{')) return line;
        try {
          const o = JSON.parse(data) as Record<string, unknown>;
          return setCachedTokens(o, this.cached) ? `data: ${JSON.stringify(o)}` : line;
        } catch {
          return line;
        }
      })
      .join('\n');
  }
}
