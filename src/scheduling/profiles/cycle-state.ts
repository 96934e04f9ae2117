/**
 * Per-profile cycle state. Plugins keep what they derive for a request in `request.memo`; when
 * the scheduler runs a second profile (P/D: prefill after decode) that profile gets a view of
 * the request whose memo is its own layer:
 *
 *   reads:  own layer first; then, only for pure functions of the request (tokens, block keys),
 *           the request-wide memo, so tokenizing and hashing are not redone
 *   writes: own layer only
 *
 * so the prefill profile's prefix prediction, session binding, load entry and tickets never
 * overwrite the decode profile's (which live in the request-wide memo, as with one profile).
 */
import type { InferenceRequest } from '../../core/request.js';

/** Memo keys (or key prefixes ending in '/') derived from the request alone, shared by all profiles. */
export const REQUEST_DERIVED_KEYS: readonly string[] = [
  'request-tokenizer/tokens',
  'precise-prefix-cache-scorer/prepared',
  'bench/prompt-tokens',
  'prefix-keys/',
];

function shared(key: string): boolean {
  for (const k of REQUEST_DERIVED_KEYS) if (k.endsWith('/') ? key.startsWith(k) : key === k) return true;
  return false;
}

/** A memo layer over the request-wide memo; see the file comment. */
export class CycleState extends Map<string, unknown> {
  constructor(readonly parent: ReadonlyMap<string, unknown>) {
    super();
  }
  override get(key: string): unknown {
    if (super.has(key)) return super.get(key);
    return shared(key) ? this.parent.get(key) : undefined;
  }
  override has(key: string): boolean {
    return super.has(key) || (shared(key) && this.parent.has(key));
  }
}

/** The request as one profile's plugins see it: same fields, memo = a new {@link CycleState}. */
export function profileView(request: InferenceRequest): InferenceRequest {
  return Object.create(request, { memo: { value: new CycleState(request.memo), enumerable: true } }) as InferenceRequest;
}
