import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../core/rng.js';
import { BlockTable } from './block-table.js';

function exercise(seed: number, los: number): number {
  const rng = seededRng(seed);
  const t = new BlockTable(16);
  const model = new Map<string, number[]>(); // "hi:lo" -> blocks, head first
  const holder = new Map<number, [number, number]>(); // block -> its hash
  // Few distinct hi values and lo values that differ only in high bits: many keys share a home
  // slot region, so probes run long and wrap around the end of the table.
  const key = (): [number, number] => [Math.floor(rng.next() * 3) * 0x10000000, (Math.floor(rng.next() * los) << 20) >>> 0];
  let nextBlock = 0;
  for (let step = 0; step < 20000; step++) {
    if (rng.next() < 0.55 || holder.size === 0) {
      const [hi, lo] = rng.next() < 0.3 && holder.size > 0 ? [...holder.values()][Math.floor(rng.next() * holder.size)] : key();
      const b = nextBlock++;
      t.add(hi, lo, b);
      holder.set(b, [hi, lo]);
      const k = `${hi}:${lo}`;
      model.set(k, [...(model.get(k) ?? []), b]);
    } else {
      const blocks = [...holder.keys()];
      const b = blocks[Math.floor(rng.next() * blocks.length)];
      const [hi, lo] = holder.get(b)!;
      t.remove(hi, lo, b);
      holder.delete(b);
      const k = `${hi}:${lo}`;
      const rest = model.get(k)!.filter((x) => x !== b);
      if (rest.length === 0) model.delete(k);
      else model.set(k, rest);
    }
    if (step % 500 === 0 || step === 19999) {
      assert.equal(t.size, model.size, `distinct hashes at step ${step}`);
      for (const [k, blocks] of model) {
        const [hi, lo] = k.split(':').map(Number);
        assert.equal(t.get(hi, lo), blocks[0], `head of ${k} at step ${step}`);
      }
      for (let i = 0; i < 50; i++) {
        const [hi, lo] = key();
        assert.equal(t.get(hi, lo), model.get(`${hi}:${lo}`)?.[0] ?? -1);
      }
    }
  }
  const distinct = model.size;
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.get(0, 0), -1);
  return distinct;
}

test('BlockTable matches a Map of insertion-ordered block lists through growth, wrap-around deletes and duplicates', () => {
  assert.ok(exercise(11, 400) > 100, 'the table grew well past its 16 initial slots');
  // A handful of hashes in a small table: clusters often wrap past the last slot.
  for (let seed = 1; seed <= 20; seed++) exercise(seed, 4);
});
