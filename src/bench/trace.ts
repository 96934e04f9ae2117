/**
 * Trace replay: loaders for Mooncake and Alibaba Bailian traces (JSON lines, optionally gzip).
 *
 * - Mooncake (`timestamp` ms, `input_length`, `output_length`, `hash_ids`): hash id i stands for
 *   a 512-token block (32 blocks of 16 tokens); equal ids at the same position mean equal
 *   prefixes. Each id expands into 512 deterministic tokens derived from the id; the request's
 *   last block is cut to `input_length`.
 * - Alibaba Bailian (`chat_id`, `parent_chat_id` (-1 = root), `timestamp` s, `input_length`,
 *   `output_length`, `type`, `turn`, `hash_ids` of 16-token blocks): each id expands into 16
 *   tokens; the session is the root chat of the conversation.
 *
 * Prompts are completions text of one simulator token per word (words.ts), so the text has
 * exactly `input_length` simulator tokens. `rateScale` multiplies the arrival rate (timestamps
 * are divided by it); `requests` keeps the first N lines. A line that cannot be read is skipped
 * and counted (reported in the workload parameters), never fatal; a file with no usable line is.
 */
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { KvrError } from '../core/errors.js';
import type { BenchRequest, Workload } from './types.js';
import { mix32, streamId, words } from './words.js';

/** Options of trace replay. */
export interface TraceOptions {
  /** Trace file (.jsonl or .jsonl.gz); default: the bundled Mooncake synthetic trace. */
  file?: string;
  /** Format; default: detected from the first line. */
  format?: 'mooncake' | 'bailian';
  /** Arrival-rate multiplier (2 = twice as fast). Default 1. */
  rateScale?: number;
  /** Client IPs requests are spread over when the trace has no sessions (Mooncake). Default 16. */
  clientIps?: number;
}

/** The bundled Mooncake trace (bench/traces/ of the package). */
export function bundledTraceFile(): string {
  // <out>/src/bench/trace.js -> package root
  return fileURLToPath(new URL('../../../bench/traces/mooncake_synthetic_trace.jsonl.gz', import.meta.url));
}

interface Row {
  atMs: number;
  input: number;
  output: number;
  hashIds: number[];
  session: string;
}

const MOONCAKE_BLOCK = 512;
const BAILIAN_BLOCK = 16;

function readLines(file: string): string[] {
  if (!existsSync(file)) throw new KvrError('KVR_ERR_USAGE', `trace file ${file} does not exist; pass --trace <file.jsonl[.gz]>`);
  let buf = readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  return buf.toString('utf8').split('\n').filter((l) => l.trim().length > 0);
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);
}

/** Loads a trace as a workload; see the file comment. */
export function loadTrace(o: TraceOptions, ctx: { model: string; requests?: number; seed: number }): Workload {
  const file = o.file ?? bundledTraceFile();
  const scale = o.rateScale ?? 1;
  if (!(scale > 0)) throw new KvrError('KVR_ERR_USAGE', `trace rate scale must be > 0; got ${scale}`);
  const ips = o.clientIps ?? 16;
  const lines = readLines(file);
  let format = o.format;
  let skipped = 0;
  const parsed: Record<string, unknown>[] = [];
  for (const l of lines) {
    try {
      const v = JSON.parse(l) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) parsed.push(v as Record<string, unknown>);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  if (format === undefined) format = parsed.length > 0 && 'chat_id' in parsed[0] ? 'bailian' : 'mooncake';
  const block = format === 'mooncake' ? MOONCAKE_BLOCK : BAILIAN_BLOCK;
  const rows: Row[] = [];
  const rootOf = new Map<number, number>();
  for (const v of parsed) {
    const input = v.input_length;
    const output = v.output_length;
    const ts = v.timestamp;
    const ids = v.hash_ids;
    if (!Number.isInteger(input) || (input as number) < 1 || !Number.isInteger(output) || typeof ts !== 'number' || !Number.isFinite(ts) || !isIntArray(ids)) {
      skipped++;
      continue;
    }
    if (ids.length !== Math.ceil((input as number) / block)) {
      skipped++;
      continue;
    }
    let session: string;
    let atMs: number;
    if (format === 'bailian') {
      const chat = Number(v.chat_id);
      const parent = Number(v.parent_chat_id ?? -1);
      const root = parent >= 0 ? (rootOf.get(parent) ?? parent) : chat;
      if (Number.isFinite(chat)) rootOf.set(chat, root);
      session = `chat-${root}`;
      atMs = ts * 1000;
    } else {
      session = `req-${rows.length}`;
      atMs = ts;
    }
    rows.push({ atMs, input: input as number, output: Math.max(1, output as number), hashIds: ids, session });
  }
  if (rows.length === 0) throw new KvrError('KVR_ERR_USAGE', `trace file ${file} has no usable ${format} line (${skipped} skipped)`);
  rows.sort((a, b) => a.atMs - b.atMs);
  const n = ctx.requests === undefined ? rows.length : Math.min(rows.length, ctx.requests);
  const t0 = rows[0].atMs;
  const salt = streamId(`trace/${format}`);
  const reqs: BenchRequest[] = [];
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    reqs.push({
      index: i,
      atMs: (r.atMs - t0) / scale,
      maxTokens: r.output,
      session: r.session,
      clientIp: format === 'bailian' ? `10.3.${(mix32(streamId(r.session)) >>> 8) & 255}.${mix32(streamId(r.session)) & 255}` : `10.3.0.${i % ips}`,
      phase: 'measured',
      prompt: () => {
        let text = '';
        const tokens: number[] = [];
        for (let b = 0; b < r.hashIds.length; b++) {
          const len = Math.min(block, r.input - b * block);
          const piece = words(mix32((salt ^ Math.imul(r.hashIds[b] + 1, 0x85ebca6b)) >>> 0), len);
          text += piece.text;
          for (let k = 0; k < piece.tokens.length; k++) tokens.push(piece.tokens[k]);
        }
        return { api: 'completions', text, tokens };
      },
    });
  }
  let inputSum = 0;
  for (let i = 0; i < n; i++) inputSum += rows[i].input;
  const span = n > 1 ? reqs[n - 1].atMs / 1000 : 0;
  return {
    name: 'trace',
    description: `${format} trace replay: ${n} requests, mean input ${Math.round(inputSum / n)} tokens, ${span > 0 ? (n / span).toFixed(2) : '-'} req/s (rate x${scale})`,
    model: ctx.model,
    requests: reqs,
    params: { format, file: file === bundledTraceFile() ? 'bundled:mooncake_synthetic_trace.jsonl.gz' : file, rateScale: scale, requests: n, skippedLines: skipped, blockTokens: block },
  };
}
