/**
 * Reads the generated text of a plain streaming chunk without `JSON.parse`, for re-assembling a
 * non-streaming answer (response-assembler.ts), where every chunk of the answer is read.
 *
 * Algorithm: one anchored regular expression per API matches the whole `data:` payload of the
 * chunk shape vLLM (and the simulator) send for a token in the middle of a stream: fixed keys
 * in vLLM's order, a single choice, text only, `finish_reason` null, and only known null fields
 * (`logprobs`, `stop_reason`, `token_ids`, `usage`, ...). Anything else (a role, a tool call,
 * reasoning, a finish reason, usage, an error, other keys or key orders, whitespace) does not
 * match and the caller parses the chunk as JSON, so a match is exactly what `JSON.parse` would
 * have given for the fields the assembler reads: the choice's index and its text. The text's JSON
 * string is decoded only when it holds an escape; a string holding a raw control character is
 * invalid JSON and does not match.
 */

const STR = '"(?:[^"\\\\\\x00-\\x1f]|\\\\.)*"';
const TEXT = '"((?:[^"\\\\\\x00-\\x1f]|\\\\.)*)"';
const HEAD = `^\\{"id":${STR},"object":"OBJECT","created":\\d+,"model":${STR},"choices":\\[\\{"index":(\\d{1,6}),`;

const CHAT = new RegExp(
  `${HEAD.replace('OBJECT', 'chat\\.completion\\.chunk')}"delta":\\{"content":${TEXT}\\}(?:,"logprobs":null)?,"finish_reason":null(?:,"stop_reason":null)?(?:,"token_ids":null)?\\}\\](?:,"usage":null)?\\}$`,
);
const COMPLETION = new RegExp(
  `${HEAD.replace('OBJECT', 'text_completion')}"text":${TEXT}(?:,"logprobs":null)?,"finish_reason":null(?:,"stop_reason":null)?(?:,"prompt_logprobs":null)?(?:,"prompt_token_ids":null)?(?:,"token_ids":null)?\\}\\](?:,"usage":null)?\\}$`,
);

/** One plain chunk's choice index and text. */
export interface PlainDelta {
  index: number;
  text: string;
}

/**
 * The choice index and text of `data` (one SSE event's data) when it is a plain text chunk of a
 * chat (`chat`) or completions stream; undefined when it must be parsed as JSON (see the file
 * comment).
 */
export function plainDelta(data: string, chat: boolean): PlainDelta | undefined {
  const m = (chat ? CHAT : COMPLETION).exec(data);
  if (m === null) return undefined;
  const raw = m[2];
  if (!raw.includes('\\')) return { index: Number(m[1]), text: raw };
  try {
    return { index: Number(m[1]), text: JSON.parse(`"${raw}"`) as string };
  } catch {
    return undefined; // an invalid escape: JSON.parse of the chunk fails the same way
  }
}
