/**
 * Rebuilds a non-streaming OpenAI response from the chunks of a stream, in vLLM's exact shape,
 * so the router can send non-streaming requests upstream as streams (and so see the first token,
 * i.e. when prefill ended, and get usage) while the client gets the body it asked for.
 *
 * vLLM's non-streaming bodies (pydantic `model_dump`, every field present, nulls included):
 *
 *   completions: { id, object: "text_completion", created, model,
 *                  choices: [{ index, text, logprobs: null, finish_reason, stop_reason,
 *                              token_ids: null, prompt_logprobs: null, prompt_token_ids: null }],
 *                  service_tier: null, system_fingerprint: null, usage, kv_transfer_params: null }
 *   chat:        { id, object: "chat.completion", created, model,
 *                  choices: [{ index, message: { role, content, refusal: null, annotations: null,
 *                              audio: null, function_call: null, tool_calls: [], reasoning: null,
 *                              reasoning_content: null }, logprobs: null, finish_reason,
 *                              stop_reason, token_ids: null }],
 *                  service_tier: null, system_fingerprint: null, usage, prompt_logprobs: null,
 *                  prompt_token_ids: null, kv_transfer_params: null }
 *
 * `id`, `created` and `model` come from the chunks (vLLM uses the request's id for every chunk),
 * `usage` is the stream's final usage object verbatim. Requests whose answer cannot be rebuilt
 * exactly from a stream (logprobs, tool calls, echo, beam search, P/D `kv_transfer_params`) are
 * not converted: see {@link canAssemble}.
 */
import type { ApiKind } from '../../core/request.js';

interface ChoiceAcc {
  index: number;
  role: string;
  text: string;
  reasoning: string | null;
  finishReason: unknown;
  stopReason: unknown;
}

/** Body fields whose non-streaming answer a stream cannot reproduce exactly. */
const NOT_ASSEMBLABLE = ['logprobs', 'top_logprobs', 'prompt_logprobs', 'echo', 'tools', 'functions', 'tool_choice', 'function_call', 'use_beam_search', 'kv_transfer_params', 'return_tokens_as_token_ids', 'return_token_ids', 'stream_options'];

/** True when a non-streaming request's answer can be rebuilt exactly from its stream. */
export function canAssemble(body: Record<string, unknown>): boolean {
  for (const k of NOT_ASSEMBLABLE) {
    const v = body[k];
    if (v !== undefined && v !== null && v !== false) return false;
  }
  const bestOf = body.best_of;
  return !(typeof bestOf === 'number' && bestOf > 1);
}

/** Accumulates stream chunks; {@link body} returns the vLLM non-streaming body. */
export class ResponseAssembler {
  readonly #chat: boolean;
  #id: unknown;
  #created: unknown;
  #model: unknown;
  #usage: unknown = null;
  readonly #choices = new Map<number, ChoiceAcc>();

  constructor(api: ApiKind) {
    this.#chat = api === 'chat';
  }

  /** True for a chat stream (choices carry `delta.content`), false for completions (`text`). */
  get chat(): boolean {
    return this.#chat;
  }
  /** True once `id`, `created` and `model` were taken from a chunk (later chunks cannot change them). */
  get headKnown(): boolean {
    return this.#id !== undefined && this.#created !== undefined && this.#model !== undefined;
  }

  /** Same as {@link add} for a chunk of one choice `index` carrying only `text` (see plain-delta.ts). */
  addText(index: number, text: string): void {
    let acc = this.#choices.get(index);
    if (acc === undefined) {
      acc = { index, role: 'assistant', text: '', reasoning: null, finishReason: null, stopReason: null };
      this.#choices.set(index, acc);
    }
    acc.text += text;
  }

  /** One parsed chunk (`data:` JSON) of the stream. */
  add(chunk: Record<string, unknown>): void {
    if (this.#id === undefined && chunk.id !== undefined) this.#id = chunk.id;
    if (this.#created === undefined && chunk.created !== undefined) this.#created = chunk.created;
    if (this.#model === undefined && chunk.model !== undefined) this.#model = chunk.model;
    if (chunk.usage !== undefined && chunk.usage !== null) this.#usage = chunk.usage;
    if (!Array.isArray(chunk.choices)) return;
    for (const c of chunk.choices as Array<Record<string, unknown>>) {
      const index = typeof c.index === 'number' ? c.index : 0;
      let acc = this.#choices.get(index);
      if (acc === undefined) {
        acc = { index, role: 'assistant', text: '', reasoning: null, finishReason: null, stopReason: null };
        this.#choices.set(index, acc);
      }
      if (this.#chat) {
        const d = (c.delta ?? {}) as Record<string, unknown>;
        if (typeof d.role === 'string') acc.role = d.role;
        if (typeof d.content === 'string') acc.text += d.content;
        const r = typeof d.reasoning === 'string' ? d.reasoning : typeof d.reasoning_content === 'string' ? d.reasoning_content : undefined;
        if (r !== undefined) acc.reasoning = (acc.reasoning ?? '') + r;
      } else if (typeof c.text === 'string') acc.text += c.text;
      if (c.finish_reason !== undefined && c.finish_reason !== null) acc.finishReason = c.finish_reason;
      if (c.stop_reason !== undefined && c.stop_reason !== null) acc.stopReason = c.stop_reason;
    }
  }

  /**
   * `JSON.stringify(this.body())`, byte for byte, built from a template: the body's shape is
   * fixed, so only the values are serialized (JSON.stringify of the whole object serializes its
   * ~30 keys too, about as much work as the rest of re-assembly). Pinned against
   * `JSON.stringify(body())` by response-assembler.test.ts.
   */
  bodyJson(): string {
    const choices = [...this.#choices.values()].sort((a, b) => a.index - b.index);
    const j = JSON.stringify;
    let cs = '';
    for (const c of choices) {
      if (cs !== '') cs += ',';
      const tail = `${opt('finish_reason', c.finishReason)}${opt('stop_reason', c.stopReason)},"token_ids":null`;
      if (this.#chat) {
        const r = j(c.reasoning);
        cs += `{"index":${j(c.index)},"message":{"role":${j(c.role)},"content":${j(c.text)},"refusal":null,"annotations":null,"audio":null,"function_call":null,"tool_calls":[],"reasoning":${r},"reasoning_content":${r}},"logprobs":null${tail}}`;
      } else {
        cs += `{"index":${j(c.index)},"text":${j(c.text)},"logprobs":null${tail},"prompt_logprobs":null,"prompt_token_ids":null}`;
      }
    }
    const head = `{${this.#id === undefined ? '' : `"id":${j(this.#id)},`}"object":"${this.#chat ? 'chat.completion' : 'text_completion'}"${opt('created', this.#created)}${opt('model', this.#model)},"choices":[${cs}],"service_tier":null,"system_fingerprint":null${opt('usage', this.#usage)}`;
    return this.#chat ? `${head},"prompt_logprobs":null,"prompt_token_ids":null,"kv_transfer_params":null}` : `${head},"kv_transfer_params":null}`;
  }

  /** The non-streaming body (see the file comment). */
  body(): Record<string, unknown> {
    const choices = [...this.#choices.values()].sort((a, b) => a.index - b.index);
    if (this.#chat) {
      return {
        id: this.#id,
        object: 'chat.completion',
        created: this.#created,
        model: this.#model,
        choices: choices.map((c) => ({
          index: c.index,
          message: { role: c.role, content: c.text, refusal: null, annotations: null, audio: null, function_call: null, tool_calls: [], reasoning: c.reasoning, reasoning_content: c.reasoning },
          logprobs: null,
          finish_reason: c.finishReason,
          stop_reason: c.stopReason,
          token_ids: null,
        })),
        service_tier: null,
        system_fingerprint: null,
        usage: this.#usage,
        prompt_logprobs: null,
        prompt_token_ids: null,
        kv_transfer_params: null,
      };
    }
    return {
      id: this.#id,
      object: 'text_completion',
      created: this.#created,
      model: this.#model,
      choices: choices.map((c) => ({
        index: c.index,
        text: c.text,
        logprobs: null,
        finish_reason: c.finishReason,
        stop_reason: c.stopReason,
        token_ids: null,
        prompt_logprobs: null,
        prompt_token_ids: null,
      })),
      service_tier: null,
      system_fingerprint: null,
      usage: this.#usage,
      kv_transfer_params: null,
    };
  }
}

/** `,"key":<value as JSON>`, or nothing for `undefined` (JSON.stringify leaves such keys out). */
function opt(key: string, v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? '' : `,"${key}":${s}`;
}
