/**
 * The request as every scheduling plugin sees it. Derived data (rendered text, approximate
 * text-block hashes, token estimates) is computed lazily, at most once per request, and cached
 * on the request object via {@link InferenceRequest.memo}.
 */

export type ApiKind = 'completions' | 'chat';

/** A chat message after validation (content flattened to text). */
export interface ChatMessage {
  role: string;
  content: string;
}

export interface InferenceRequest {
  /** Router-assigned request id (`x-request-id` when the client sent one). */
  readonly id: string;
  readonly api: ApiKind;
  readonly model: string;
  /** Parsed JSON body, forwarded upstream unchanged. */
  readonly body: Record<string, unknown>;
  /**
   * The prompt as the router routes on it: for completions the prompt text, for chat the whole
   * rendered conversation (every message, in order), never only the first message.
   */
  readonly promptText: string;
  /** Requested output tokens (max_tokens / max_completion_tokens), or a default. */
  readonly maxTokens: number;
  readonly stream: boolean;
  /** Client address as seen by the gateway (or from X-Forwarded-For when trusted). */
  readonly clientIp: string;
  /** Lower-cased request headers. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** Clock time the request arrived (ms). */
  readonly arrivedAt: number;
  /** Per-request cache of derived values, keyed by the plugin that derived them. */
  readonly memo: Map<string, unknown>;
  /**
   * Aborted when the request's client went away (set by the request lifecycle before
   * scheduling): plugins stop tokenizing, looking up and waiting for it.
   */
  signal?: AbortSignal;
}

/** Rough token count of a text when no tokenizer is configured (4 characters per token). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Returns the memoized value for `key`, computing it once with `make`. */
export function memoize<T>(req: InferenceRequest, key: string, make: () => T): T {
  if (req.memo.has(key)) return req.memo.get(key) as T;
  const v = make();
  req.memo.set(key, v);
  return v;
}
