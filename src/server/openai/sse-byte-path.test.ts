import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseShaper } from './usage-sniffer.js';

const ev = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
const chunk = (content: string, extra: Record<string, unknown> = {}): string =>
  ev({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }], usage: null, ...extra });
/** Marks a stream compared in one chunk only (see its comment). */
const ONE_CHUNK_ONLY = '';
const USAGE = ev({ id: 'c', choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 4 } } });

/** Streams that exercise every reason to look at an event (role first, usage null/object, errors, timings, [DONE], UTF-8). */
const STREAMS: string[][] = [
  [ev({ id: 'c', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }), chunk('Hé'), chunk(' 🙂 "x"'), chunk('!'), USAGE, 'data: [DONE]\n\n'],
  [chunk('a'), chunk('b', { usage: { prompt_tokens: 2, completion_tokens: 1 } }), 'data: [DONE]\n\n'],
  // (an error event counts before the first token, where it can still be retried; after it, without re-assembly, it passes)
  [ev({ id: 'c', choices: [{ index: 0, delta: { role: 'assistant' } }] }), ev({ error: { message: 'boom', code: 503 } }), 'data: [DONE]\n\n'],
  [chunk('a'), ev({ choices: [{ index: 0, delta: { content: 'b' } }], timings: { cache_n: 5, prompt_n: 2 } }), USAGE, 'data: [DONE]\n\n'],
  // `data:` without its space: fed one event per chunk, the older pass-through fast path (after the
  // first token) does not see this [DONE] (it looks for `data: [DONE]`); in one chunk the byte path does
  [chunk('a'), chunk('b'), 'data:[DONE]\n\n', ONE_CHUNK_ONLY],
  [': comment\n\n', 'event: ping\ndata: {}\n\n', chunk('a'), chunk('b'), USAGE],
  [ev({ id: 'c', choices: [{ index: 0, delta: { role: 'assistant' } }] }), USAGE, chunk('late')],
];

interface Seen { out: string; usage: unknown; firstToken: boolean; done: boolean; error: unknown }

function feed(parts: Buffer[], strip: boolean): Seen {
  const s = new SseShaper({ stripUsage: strip });
  const out: Buffer[] = []; // bytes: a pass-through of single bytes is not text until joined
  for (const p of parts) {
    const o = s.push(p);
    if (o !== undefined) out.push(Buffer.from(o));
  }
  out.push(Buffer.from(s.end() ?? ''));
  return { out: Buffer.concat(out).toString('utf8'), usage: s.usage, firstToken: s.firstToken, done: s.done, error: s.error };
}

test('the byte path (whole-event chunks) reads a stream exactly as the text path (chunks cut anywhere)', () => {
  for (const events of STREAMS) {
    const whole = Buffer.from(events.join(''));
    for (const strip of [false, true]) {
      const text = feed([...whole].map((b) => Buffer.from([b])), strip); // one byte at a time: never at a boundary with whole events
      const oneChunk = feed([whole], strip);
      const label = `${strip ? 'strip' : 'pass'} ${events.join('').slice(0, 60)}`;
      if (!events.includes(ONE_CHUNK_ONLY)) assert.deepEqual(feed(events.map((e) => Buffer.from(e)), strip), text, `per event, ${label}`);
      assert.deepEqual(oneChunk, text, `one chunk, ${label}`);
    }
  }
});

test('byte path: the chunk itself goes on when nothing is dropped; the usage chunk is cut out when stripping', () => {
  const stream = Buffer.from([chunk('a'), chunk('b'), USAGE, 'data: [DONE]\n\n'].join(''));
  const keep = new SseShaper({ stripUsage: false });
  assert.equal(keep.push(stream), stream, 'no copy');
  assert.deepEqual(keep.usage, { promptTokens: 9, completionTokens: 3, cachedTokens: 4 });
  assert.equal(keep.done, true);
  const strip = new SseShaper({ stripUsage: true });
  assert.equal(String(strip.push(stream)), [chunk('a'), chunk('b'), 'data: [DONE]\n\n'].join(''));
  assert.deepEqual(strip.usage, { promptTokens: 9, completionTokens: 3, cachedTokens: 4 });
  assert.equal(strip.push(Buffer.from(USAGE)), undefined, 'a chunk of only the usage event leaves nothing to send');
});
