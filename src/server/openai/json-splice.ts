/**
 * Byte-level edits of a JSON object the router already parsed, so a body is never re-serialized
 * (an 8 KB prompt re-stringified costs more than the rest of the request path).
 *
 * Algorithm: walk the object's top level only. Outside strings, bytes are structural and few;
 * a string is skipped with `Buffer.indexOf('"')` (native memchr) plus a backslash-run check, so
 * the cost is the number of strings, not the number of prompt bytes. Nested objects/arrays are
 * skipped by depth counting. Input must be valid JSON (it was parsed first); on anything
 * unexpected the functions return undefined and the caller falls back to re-serializing.
 */

const QUOTE = 0x22;
/** `"key"` bytes per key asked for (a handful of fixed keys). */
const QUOTED = new Map<string, Buffer>();
const BACKSLASH = 0x5c;

function isWs(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Index just past the closing quote of the string opening at `i` (raw[i] === '"'), or -1. */
function skipString(raw: Buffer, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = raw.indexOf(QUOTE, j);
    if (q < 0) return -1;
    let bs = 0;
    for (let k = q - 1; k > i && raw[k] === BACKSLASH; k--) bs++;
    if ((bs & 1) === 0) return q + 1;
    j = q + 1;
  }
}

/** Index just past the value starting at `i` (no leading whitespace), or -1. */
function skipValue(raw: Buffer, i: number): number {
  const c = raw[i];
  if (c === QUOTE) return skipString(raw, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    let j = i;
    while (j < raw.length) {
      const b = raw[j];
      if (b === QUOTE) {
        j = skipString(raw, j);
        if (j < 0) return -1;
        continue;
      }
      if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    return -1;
  }
  let j = i;
  while (j < raw.length && raw[j] !== 0x2c && raw[j] !== 0x7d && raw[j] !== 0x5d && !isWs(raw[j])) j++;
  return j > i ? j : -1;
}

/**
 * Byte span `[start, end)` of the value of top-level key `key` in the JSON object `raw`, or
 * undefined (absent, or not an object). `key` must need no JSON escaping.
 */
export function topLevelValueSpan(raw: Buffer, key: string): [number, number] | undefined {
  let want = QUOTED.get(key);
  if (want === undefined) QUOTED.set(key, (want = Buffer.from(`"${key}"`)));
  let i = 0;
  while (i < raw.length && isWs(raw[i])) i++;
  if (raw[i] !== 0x7b) return undefined;
  i++;
  for (;;) {
    while (i < raw.length && isWs(raw[i])) i++;
    if (raw[i] !== QUOTE) return undefined; // '}' (end) or malformed
    const keyEnd = skipString(raw, i);
    if (keyEnd < 0) return undefined;
    const match = keyEnd - i === want.length && raw.compare(want, 0, want.length, i, keyEnd) === 0;
    i = keyEnd;
    while (i < raw.length && isWs(raw[i])) i++;
    if (raw[i] !== 0x3a) return undefined;
    i++;
    while (i < raw.length && isWs(raw[i])) i++;
    const end = skipValue(raw, i);
    if (end < 0) return undefined;
    if (match) return [i, end];
    i = end;
    while (i < raw.length && isWs(raw[i])) i++;
    if (raw[i] !== 0x2c) return undefined;
    i++;
  }
}

/** `raw` with the bytes `[span[0], span[1])` replaced by `value`. */
export function replaceSpan(raw: Buffer, span: [number, number], value: Buffer): Buffer {
  return Buffer.concat([raw.subarray(0, span[0]), value, raw.subarray(span[1])]);
}
