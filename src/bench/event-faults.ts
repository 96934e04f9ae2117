/**
 * KV-event delay and loss for the virtual engine (`kvroute bench --event-delay-ms / --event-loss`).
 * In a real fleet events cross ZeroMQ and a subscriber loop: they arrive late and, under load or on
 * a reconnect, some are lost. This decorator of a {@link PreciseSetupFactory} makes the precise
 * index see that:
 *
 * - delay: each batch the engines emit at simulated time t is applied at the first scheduling
 *   decision at or after t + delayMs (a lookup releases every batch that is due, in order);
 * - loss: each batch is dropped with probability `loss` (seeded draw); its sequence number is
 *   still consumed, so the index sees the gap exactly as it would a lost ZeroMQ message.
 */
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { seededRng } from '../core/rng.js';
import type { KvEventBatch, KvEventSink } from '../events/types.js';
import type { PreciseSetupFactory } from './precise-setup.js';

/** Event delay (ms of simulated time) and loss (fraction of batches). */
export interface EventFaults {
  delayMs: number;
  loss: number;
  seed?: number;
}

/** Wraps `factory` so its sink applies batches late and drops some (see the file comment). */
export function withEventFaults(factory: PreciseSetupFactory, f: EventFaults): PreciseSetupFactory {
  if (!(f.delayMs >= 0) || !Number.isFinite(f.delayMs)) throw new KvrError('KVR_ERR_USAGE', `--event-delay-ms must be >= 0; got ${f.delayMs}`);
  if (!(f.loss >= 0 && f.loss < 1)) throw new KvrError('KVR_ERR_USAGE', `--event-loss must be a fraction in [0, 1); got ${f.loss}`);
  if (f.delayMs === 0 && f.loss === 0) return factory;
  return async (ctx) => {
    const setup = await factory(ctx);
    if (setup === undefined || setup.sink === undefined) return setup;
    const inner = setup.sink;
    const clock: Clock = ctx.clock;
    const rng = seededRng(f.seed ?? 1);
    const queue: { due: number; endpointId: string; model: string; seq: bigint; batch: KvEventBatch }[] = [];
    const release = async (): Promise<void> => {
      const now = clock.now();
      while (queue.length > 0 && queue[0].due <= now) {
        const b = queue.shift()!;
        await inner.applyBatch(b.endpointId, b.model, b.seq, b.batch);
      }
    };
    const sink: KvEventSink = {
      async applyBatch(endpointId, model, seq, batch) {
        if (rng.next() < f.loss) return;
        queue.push({ due: batch.ts * 1000 + f.delayMs, endpointId, model, seq, batch });
        await release();
      },
      resetEndpoint: (id) => inner.resetEndpoint(id),
    };
    const services = setup.services;
    return {
      ...setup,
      sink,
      services: {
        blockSize: services.blockSize,
        tokenize: (req) => services.tokenize(req),
        requestKeys: (model, tokens) => services.requestKeys(model, tokens),
        lookup: async (keys, endpointIds) => {
          await release();
          return services.lookup(keys, endpointIds);
        },
        ...(services.onEndpointReset ? { onEndpointReset: (l: (id: string) => void) => services.onEndpointReset!(l) } : {}),
      },
      description: `${setup.description}; events delayed ${f.delayMs} ms, ${(f.loss * 100).toFixed(1)} % of batches lost`,
    };
  };
}
