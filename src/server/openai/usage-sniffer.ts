/**
 * Finds the `usage` object in an upstream response without buffering it: for SSE streams it
 * keeps only the tail of the stream (the usage chunk is the last one before `[DONE]`), for
 * JSON bodies it keeps the body up to a cap. Parsing happens once, at the end.
 */

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  cachedTokens?: number;
}

const TAIL_BYTES = 16 * 1024;
const JSON_CAP = 4 * 1024 * 1024;

export class UsageSniffer {
  readonly #sse: boolean;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflow = false;

  constructor(contentType: string | undefined) {
    this.#sse = (contentType ?? '').includes('text/event-stream');
  }

  /** Feeds one chunk of the response body. */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#sse) {
      while (this.#chunks.length > 1 && this.#size - this.#chunks[0].length >= TAIL_BYTES) {
        this.#size -= this.#chunks.shift()!.length;
      }
    } else if (this.#size > JSON_CAP) {
      this.#overflow = true;
      this.#chunks = [];
    }
  }

  /** The usage reported by the engine, or undefined when there was none. */
  usage(): Usage | undefined {
    if (this.#overflow || this.#chunks.length === 0) return undefined;
    const text = Buffer.concat(this.#chunks).toString('utf8');
    let obj: unknown;
    if (this.#sse) {
      const at = text.lastIndexOf('"usage"');
      if (at < 0) return undefined;
      const lineStart = text.lastIndexOf('data:', at);
      const lineEnd = text.indexOf('\n', at);
      if (lineStart < 0) return undefined;
      obj = safeParse(text.slice(lineStart + 5, lineEnd < 0 ? undefined : lineEnd).trim());
    } else {
      obj = safeParse(text);
    }
    const u = (obj as { usage?: Record<string, unknown> } | undefined)?.usage;
    if (!u || typeof u !== 'object') return undefined;
    const details = u.prompt_tokens_details as Record<string, unknown> | undefined | null;
    return {
      promptTokens: num(u.prompt_tokens),
      completionTokens: num(u.completion_tokens),
      cachedTokens: num(details?.cached_tokens),
    };
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
