/**
 * Builds the block index the router runs with: memory (one router) or Redis (shared by router
 * replicas), always wrapped in the {@link InstrumentedBlockIndex} so its counters can be
 * published.
 */
import type { Logger } from 'pino';
import { silentLogger } from '../core/logger.js';
import { InstrumentedBlockIndex } from './instrumented-index.js';
import { MemoryBlockIndex, type MemoryBlockIndexOptions } from './memory-index.js';
import { RedisBlockIndex, type RedisBlockIndexOptions } from './redis-index.js';

/** Which backend, with its options. */
export type BlockIndexConfig =
  | { backend: 'memory'; options?: MemoryBlockIndexOptions }
  | { backend: 'redis'; options?: RedisBlockIndexOptions };

/**
 * Creates the index. A Redis index that cannot be reached at start is still returned (calls fail
 * fast and precise routing falls back to approximate until Redis answers); the failure is logged.
 */
export async function createBlockIndex(config: BlockIndexConfig, logger: Logger = silentLogger): Promise<InstrumentedBlockIndex> {
  if (config.backend === 'memory') return new InstrumentedBlockIndex(new MemoryBlockIndex(config.options));
  const redis = new RedisBlockIndex(config.options);
  try {
    await redis.connect();
  } catch (err) {
    logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'block index: Redis not reachable at start; retrying in the background');
  }
  return new InstrumentedBlockIndex(redis, config.options?.clock !== undefined ? { clock: config.options.clock } : {});
}
