/** Builds a replica's dialect (undefined for vLLM, the replica's own surface). */
import { createLlamacppDialect } from './llamacpp.js';
import { createSglangDialect } from './sglang.js';
import type { DialectContext, SimDialect, SimDialectOptions } from './types.js';

export type { SimDialect, SimDialectName, SimDialectOptions, DialectContext } from './types.js';

/** The dialect of `opts.engine`; undefined for vLLM. */
export function createDialect(opts: SimDialectOptions | undefined, ctx: DialectContext): SimDialect | undefined {
  switch (opts?.engine ?? 'vllm') {
    case 'sglang':
      return createSglangDialect(ctx);
    case 'llamacpp':
      return createLlamacppDialect(ctx, opts!);
    default:
      return undefined;
  }
}
