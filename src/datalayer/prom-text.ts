/**
 * A small parser for the Prometheus text exposition format (what vLLM, SGLang and llama.cpp
 * serve on `/metrics`). It reads sample lines only (`name{labels} value [timestamp]`), skips
 * comments, and never throws on a malformed line: bad lines are counted and skipped.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  samples: PromSample[];
  /** Lines that could not be parsed. */
  malformed: number;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** Parses exposition text. `keep`, when given, limits the samples kept to those names. */
export function parsePromText(text: string, keep?: ReadonlySet<string>): ParsedMetrics {
  const samples: PromSample[] = [];
  let malformed = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '' || line.charCodeAt(0) === 35 /* # */) continue;
    const m = NAME_RE.exec(line);
    if (!m) {
      malformed++;
      continue;
    }
    const name = m[0];
    if (keep && !keep.has(name)) continue;
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      const close = parseLabels(line, i + 1, labels);
      if (close < 0) {
        malformed++;
        continue;
      }
      i = close + 1;
    }
    const rest = line.slice(i).trim().split(/\s+/)[0];
    const value = parseValue(rest);
    if (value === undefined) {
      malformed++;
      continue;
    }
    samples.push({ name, labels, value });
  }
  return { samples, malformed };
}

function parseValue(s: string | undefined): number | undefined {
  if (s === undefined || s === '') return undefined;
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const v = Number(s);
  return Number.isNaN(v) ? undefined : v;
}

/** Parses `k="v",k2="v2"}` from `pos`; returns the index of `}` or -1. */
function parseLabels(line: string, pos: number, out: Record<string, string>): number {
  let i = pos;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return i;
    const eq = line.indexOf('=', i);
    if (eq < 0) return -1;
    const key = line.slice(i, eq).trim();
    if (line[eq + 1] !== '"') return -1;
    let j = eq + 2;
    let val = '';
    for (; j < line.length; j++) {
      const c = line[j];
      if (c === '\\') {
        const n = line[j + 1];
        val += n === 'n' ? '\n' : n;
        j++;
      } else if (c === '"') break;
      else val += c;
    }
    if (j >= line.length) return -1;
    out[key] = val;
    i = j + 1;
  }
}
