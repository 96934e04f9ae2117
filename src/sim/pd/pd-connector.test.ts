import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { SimEngine } from '../engine.js';
import { PdConnector } from './pd-connector.js';
import { KV_LINKS } from './transfer-model.js';

function setup(stopProbability: number) {
  const clock = new ManualClock(0);
  const engine = new SimEngine({ clock, numGpuBlocks: 64, stopProbability });
  const c = new PdConnector({ role: 'prefill', engine, clock, engineId: 'e', address: () => ({ host: '127.0.0.1', port: 1 }), link: KV_LINKS.rdma, pinTimeoutMs: 1000 });
  return { clock, engine, c };
}

const prompt = Array.from({ length: 100 }, (_, i) => 2000 + i);

for (const [name, stopP, expectParams] of [['length-capped: pinned, params returned', 0, true], ['stopped by EOS: blocks freed, no params', 1, false]] as const) {
  test(`prefill side, ${name}`, () => {
    const { clock, engine, c } = setup(stopP);
    const pd = c.begin({ kv_transfer_params: { do_remote_decode: true } }, prompt, 'r1');
    assert.equal(pd.holdBlocks, true);
    let params: unknown;
    engine.submit({ id: 'r1', promptTokens: prompt, maxTokens: 1, holdBlocks: true }, { onFinish: (r) => void (params = pd.finish(r)) });
    clock.advance(500);
    const bm = engine.blockManager;
    if (expectParams) {
      assert.equal((params as { remote_block_ids: number[] }).remote_block_ids.length, 7);
      assert.equal(c.stats().pinnedBlocks, 7);
      assert.equal(bm.numFreeBlocks, 64 - 7);
      clock.advance(1000);
      assert.equal(c.stats().pinsExpired, 1);
    } else {
      assert.equal(params, null);
      assert.equal(c.stats().pinnedBlocks, 0);
    }
    assert.equal(bm.numFreeBlocks, 64, 'every block back in the free queue');
  });
}

test('a replica restart drops pins without double-freeing', () => {
  const { clock, engine, c } = setup(0);
  const pd = c.begin({ kv_transfer_params: { do_remote_decode: true } }, prompt, 'r1');
  engine.submit({ id: 'r1', promptTokens: prompt, maxTokens: 1, holdBlocks: true }, { onFinish: (r) => void pd.finish(r) });
  clock.advance(500);
  assert.ok(c.stats().pinnedBlocks > 0);
  c.reset();
  engine.reset();
  assert.equal(c.stats().pinnedBlocks, 0);
  clock.advance(5000);
  assert.equal(c.stats().pinsExpired, 0);
  assert.equal(engine.blockManager.numFreeBlocks, 64);
});
