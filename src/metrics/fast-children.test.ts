import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FastChildren, promKey } from './fast-children.js';

function metricsOf(reg: Registry) {
  return {
    h: new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['a', 'b'] as const, buckets: [0.1, 0.5, 1], registers: [reg] }),
    u: new Histogram({ name: 'u_seconds', help: 'u', buckets: [0.1, 1], registers: [reg] }),
    c: new Counter({ name: 'c_total', help: 'c', labelNames: ['a'] as const, registers: [reg] }),
    g: new Gauge({ name: 'g', help: 'g', labelNames: ['a'] as const, registers: [reg] }),
  };
}

test('fast children produce exactly the exposition of the public API, through reset and remove', async () => {
  const ra = new Registry();
  const rb = new Registry();
  const a = metricsOf(ra);
  const b = metricsOf(rb);
  const fast = new FastChildren();
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const labels = ['x', 'y', 'z'];
  for (let i = 0; i < 2000; i++) {
    const l1 = labels[Math.floor(rnd() * 3)];
    const l2 = labels[Math.floor(rnd() * 3)];
    const v = rnd() * 1.5;
    a.h.observe({ a: l1, b: l2 }, v);
    fast.histogram(b.h, l1, l2).observe(v);
    a.u.observe(v);
    fast.histogram(b.u).observe(v);
    a.c.inc({ a: l1 }, 3);
    fast.counter(b.c, l1).inc(3);
    a.g.inc({ a: l2 });
    fast.gauge(b.g, l2).inc();
    if (i % 3 === 0) {
      a.g.dec({ a: l1 });
      fast.gauge(b.g, l1).dec();
    }
    if (i === 700) {
      // stored values dropped under the children: they must come back, not write into the void
      for (const m of [a.h, b.h, a.c, b.c]) m.reset();
      a.g.remove({ a: 'x' });
      b.g.remove({ a: 'x' });
    }
  }
  assert.equal(await rb.metrics(), await ra.metrics());
  assert.match(await rb.metrics(), /h_seconds_bucket\{le="0.5",a="x",b="y"\} \d+/);
});

test('a non-finite observation is ignored and a negative counter increment throws like prom-client', async () => {
  const r = new Registry();
  const m = metricsOf(r);
  const fast = new FastChildren();
  fast.histogram(m.h, 'x', 'y').observe(0.2);
  fast.histogram(m.h, 'x', 'y').observe(Number.NaN);
  const count = (await m.h.get()).values.find((x) => x.metricName === 'h_seconds_count' && x.labels.a === 'x');
  assert.equal(count?.value, 1);
  fast.counter(m.c, 'x').inc(1);
  assert.throws(() => fast.counter(m.c, 'x').inc(-1), /not possible to decrease a counter/);
});

test("a child's stored value is found under prom-client's own key (no scan of the map)", () => {
  const r = new Registry();
  const m = metricsOf(r);
  // Label names given out of order: prom-client keys them sorted.
  const h = new Histogram({ name: 'z_seconds', help: 'z', labelNames: ['b', 'a', 'c'] as const, buckets: [1], registers: [r] });
  h.zero({ b: '2', a: '1', c: 'x,y:z' });
  m.c.inc({ a: 'p' });
  m.u.observe(0.5);
  const keys = (metric: object) => Object.keys((metric as unknown as { hashMap: Record<string, unknown> }).hashMap);
  assert.ok(keys(h).includes(promKey({ b: '2', a: '1', c: 'x,y:z' }, ['b', 'a', 'c'])), `prom-client keys ${JSON.stringify(keys(h))}`);
  assert.ok(keys(m.c).includes(promKey({ a: 'p' }, ['a'])));
  assert.ok(keys(m.u).includes(promKey({}, [])));
  // A guess that names another label set is not taken: the value is still the one asked for.
  const fast = new FastChildren();
  fast.counter(m.c, 'q').inc(2);
  fast.counter(m.c, 'p').inc(3);
  assert.deepEqual((m.c as unknown as { hashMap: Record<string, { value: number }> }).hashMap[promKey({ a: 'p' }, ['a'])].value, 4);
});
