/**
 * The router's tokenizer worker queue seen from the outside: real worker threads with the real
 * Llama 3 tokenizer, the router's Prometheus registry, and the precise scorer's fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKvCache } from '../../src/app/kv-cache.js';
import { ManualClock } from '../../src/core/clock.js';
import { KvrError } from '../../src/core/errors.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import type { InferenceRequest } from '../../src/core/request.js';
import { seededRng } from '../../src/core/rng.js';
import { loadConfig } from '../../src/config/load-config.js';
import { RouterMetrics } from '../../src/metrics/router-metrics.js';
import { createScheduler } from '../../src/scheduling/scheduler.js';
import type { PrecisePrefixScorer } from '../../src/scheduling/scorers/precise-prefix-scorer.js';
import { createRequestTokenizer } from '../../src/tokenize/request-tokenizer.js';
import { llama3TokenizerDir } from '../../src/tokenize/testing.js';

const MODEL = 'm';

function endpoint(i: number): Endpoint {
  return {
    id: `ns/pod-${i}`, address: `10.0.0.${i}:8000`, url: `http://10.0.0.${i}:8000`, role: 'both', engine: 'vllm', index: i, labels: {}, models: [], healthy: true,
    metrics: { waiting: 0, running: 0, kvUsage: 0, numGpuBlocks: 1000, updatedAt: 1 },
  };
}

function chat(content: string, signal?: AbortSignal): InferenceRequest {
  return {
    id: content.slice(0, 8), api: 'chat', model: MODEL, body: { model: MODEL, messages: [{ role: 'user', content }] }, promptText: content, maxTokens: 8, stream: false,
    clientIp: '127.0.0.1', headers: {}, arrivedAt: 0, memo: new Map(), ...(signal ? { signal } : {}),
  };
}

test('queue overflow falls back to approximate routing and is counted; aborted queued jobs never run; gauges return to 0', async () => {
  const tok = createRequestTokenizer({ source: { type: 'dir', dir: llama3TokenizerDir() }, prefixCache: false, workers: { size: 1, minChars: 1, maxQueued: 1 } });
  const metrics = new RouterMetrics();
  metrics.attachTokenizerStats(() => tok.stats());
  const clock = new ManualClock(0);
  const sched = createScheduler(loadConfig(), {
    clock,
    rng: seededRng(1),
    kvCache: {
      blockSize: 16,
      tokenize: (r) => tok.tokenize(r),
      requestKeys: (_m, tokens) => Array.from({ length: Math.floor(tokens.length / 16) }, (_, i) => i + 1),
      lookup: async (keys, ids) => ids.map(() => ({ blocks: 0, weighted: 0 })),
    },
  });
  const precise = sched.plugins.get('precise-prefix-cache-scorer') as PrecisePrefixScorer;
  const eps = [endpoint(1), endpoint(2)];
  try {
    const ac = new AbortController();
    // Same tick: the first takes the worker, the second waits (the queue's one place), the third
    // is refused; then the waiting one's client goes away.
    const r1 = sched.schedule(chat('first question about the cache '.repeat(40)), eps);
    const r2 = sched.schedule(chat('second, whose client leaves '.repeat(40), ac.signal), eps);
    const r3 = sched.schedule(chat('third, beyond the queue '.repeat(40)), eps);
    ac.abort();
    const results = await Promise.allSettled([r1, r2, r3]);
    assert.ok(results.every((r) => r.status === 'fulfilled'), 'every request is still scheduled');
    const s = tok.stats();
    assert.equal(s.queueFull, 1);
    assert.equal(s.aborted, 1);
    assert.equal(s.workers!.started, 1, 'only the first job ran in the worker');
    assert.equal(precise.stats().fallbacks['tokenize-failed'], 1, 'the refused request routed approximately');
    const text = await metrics.registry.metrics();
    assert.match(text, /kvroute_tokenizer_rejected_total\{reason="queue_full"\} 1/);
    assert.match(text, /kvroute_tokenizer_rejected_total\{reason="aborted"\} 1/);
    assert.match(text, /kvroute_tokenizer_worker_cancelled_total\{stage="queued"\} 1/);
    assert.match(text, /kvroute_tokenizer_worker_jobs\{state="queued"\} 0/);
    assert.match(text, /kvroute_tokenizer_worker_jobs\{state="running"\} 0/);
    assert.match(text, /kvroute_tokenizer_fast_path_pieces_total\{result="miss"\} [1-9]/);
  } finally {
    await tok.close();
  }
});

test('the queue limit reaches the tokenizer through createKvCache (what --tokenizer-max-queued sets); refused for remote sources', async () => {
  const kv = await createKvCache({ tokenizer: { type: 'dir', dir: llama3TokenizerDir() }, tokenizerOptions: { workers: { maxQueued: 3 } }, events: 'off' });
  try {
    assert.equal(kv.tokenizer.stats().workers!.maxQueued, 3);
  } finally {
    await kv.close();
  }
  const dflt = await createKvCache({ tokenizer: { type: 'builtin' }, events: 'off' });
  try {
    assert.equal(dflt.tokenizer.stats().workers!.maxQueued, 32, 'default');
  } finally {
    await dflt.close();
  }
  await assert.rejects(
    createKvCache({ tokenizer: { type: 'endpoints' }, tokenizerOptions: { workers: { maxQueued: 3 } }, events: 'off' }),
    (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_USAGE' && /local tokenizer/.test(e.message),
  );
});
