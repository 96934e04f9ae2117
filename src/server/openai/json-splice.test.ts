import test from 'node:test';
import assert from 'node:assert/strict';
import { replaceSpan, topLevelValueSpan } from './json-splice.js';

const span = (s: string, k: string) => {
  const b = Buffer.from(s);
  const r = topLevelValueSpan(b, k);
  return r === undefined ? undefined : b.subarray(r[0], r[1]).toString();
};

test('topLevelValueSpan finds top-level keys only, past strings with quotes, escapes and nested look-alikes', () => {
  const body = JSON.stringify({
    model: 'm',
    messages: [{ role: 'user', content: 'say "stream":true \\" and {"stream": false} ]}' }],
    meta: { stream: 'nested' },
    'a\\"stream': 1,
    stream: false,
    n: 0,
  }).replace('"n":0', '"n":-1.5e3');
  assert.equal(span(body, 'stream'), 'false');
  assert.equal(span(body, 'n'), '-1.5e3');
  assert.equal(span(body, 'meta'), '{"stream":"nested"}');
  assert.equal(span(body, 'messages')?.startsWith('[{"role"'), true);
  assert.equal(span(body, 'absent'), undefined);
  assert.equal(span(' \n{ "stream" :\tnull , "x":1 }\n', 'stream'), 'null');
  assert.equal(span('[1,2]', 'stream'), undefined);
  assert.equal(span('{}', 'stream'), undefined);
});

test('replaceSpan keeps everything else byte for byte', () => {
  const raw = Buffer.from('{"prompt":"p \\"q\\" }","stream":false,"x":[1,{"stream":false}]}');
  const r = replaceSpan(raw, topLevelValueSpan(raw, 'stream')!, Buffer.from('true'));
  assert.deepEqual(JSON.parse(r.toString()), { prompt: 'p "q" }', stream: true, x: [1, { stream: false }] });
});

test('random bodies: the span found parses to the value JSON.parse sees', () => {
  let seed = 11;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  const atoms = ['"s\\\\"', '"q\\"x"', '1', 'true', 'null', '{"stream":true}', '["stream",false]', '"}]"'];
  for (let t = 0; t < 500; t++) {
    const keys = ['a', 'stream', 'b', 'c'].slice(0, 1 + rnd(4));
    const parts = keys.map((k) => `"${k}"${rnd(2) ? ' : ' : ':'}${atoms[rnd(atoms.length)]}`);
    const s = `{${parts.join(rnd(2) ? ', ' : ',')}}`;
    const obj = JSON.parse(s) as Record<string, unknown>;
    for (const k of keys) assert.deepEqual(JSON.parse(span(s, k)!), obj[k], s);
  }
});
