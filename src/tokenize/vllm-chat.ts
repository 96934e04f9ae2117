/**
 * Chat rendering exactly as vLLM's OpenAI server does it, shared by the router's tokenizer and
 * the simulator so both produce the same prompt text:
 *
 *   request.messages ──normalize──► conversation ──chat template (jinja)──► prompt text
 *
 * Normalization follows vLLM's `chat_utils.py`: `content` may be a string, null (= no parts) or
 * a list of parts; text parts (`text`, `input_text`, `output_text`: `.text`; `refusal`:
 * `.refusal`) are kept, parts with null content are skipped. For templates that take content as a
 * string (vLLM's "string" content format, e.g. Llama 3) the non-empty texts are joined with
 * "\n"; for templates that loop over the parts ("openai" format) the parts are passed as
 * `{type: 'text', text}` dicts. `name`, assistant `tool_calls` (arguments JSON-decoded, as vLLM
 * does) and `tool_call_id` are passed through. Media parts (images, audio...) cannot be rendered
 * without the engine's processor: they are rejected (KvrError), and callers fall back.
 *
 * Rendering follows Hugging Face's `apply_chat_template`: jinja with trim_blocks/lstrip_blocks
 * (@huggingface/jinja does both), the tokenizer's special tokens (`bos_token`, ...) as variables,
 * `add_generation_prompt` (vLLM default true), `continue_final_message` (default false; the
 * rendered text is cut right after the final message's content), `tools`, `documents` and the
 * request's `chat_template_kwargs`. Setting both flags is an error, as in vLLM.
 */
import { Template } from '@huggingface/jinja';
import { KvrError } from '../core/errors.js';

/** The chat template of Llama 3 (Meta-Llama-3-8B-Instruct's tokenizer_config.json). */
export const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

/** How the template wants message content: one string, or the list of parts. */
export type ContentFormat = 'string' | 'openai';

/** Per-request rendering options (vLLM's chat request fields). */
export interface ChatRenderOptions {
  /** `add_generation_prompt` (default true). */
  addGenerationPrompt?: boolean;
  /** `continue_final_message` (default false). */
  continueFinalMessage?: boolean;
  /** `tools` of the request, passed to the template. */
  tools?: unknown[];
  /** `documents` of the request, passed to the template. */
  documents?: unknown[];
  /** `chat_template_kwargs`: extra template variables. */
  chatTemplateKwargs?: Record<string, unknown>;
  /** `chat_template`: a template given with the request instead of the tokenizer's. */
  chatTemplate?: string;
}

/** A message as the chat template sees it. */
export type TemplateMessage = Record<string, unknown> & { role: string; content: unknown };

const TEXT_PART_TYPES = new Set(['text', 'input_text', 'output_text', 'refusal', 'thinking']);

function bad(message: string, param = 'messages'): KvrError {
  return new KvrError('KVR_ERR_BAD_REQUEST', message, { param });
}

function optBool(body: Record<string, unknown>, name: string, dflt: boolean): boolean {
  const v = body[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw bad(`'${name}' must be a boolean`, name);
  return v;
}

/**
 * The chat rendering options and `add_special_tokens` of a chat request body (vLLM defaults:
 * add_generation_prompt true, continue_final_message false, add_special_tokens false). Throws
 * KVR_ERR_BAD_REQUEST for wrongly typed fields or both flags set.
 */
export function chatOptionsFromBody(body: Record<string, unknown>): ChatRenderOptions & { addSpecialTokens: boolean } {
  const addGenerationPrompt = optBool(body, 'add_generation_prompt', true);
  const continueFinalMessage = optBool(body, 'continue_final_message', false);
  if (addGenerationPrompt && continueFinalMessage) {
    throw bad("Cannot set both 'continue_final_message' and 'add_generation_prompt' to true (set add_generation_prompt: false)", 'continue_final_message');
  }
  const opts: ChatRenderOptions & { addSpecialTokens: boolean } = {
    addGenerationPrompt,
    continueFinalMessage,
    addSpecialTokens: optBool(body, 'add_special_tokens', false),
  };
  const arr = (name: string): unknown[] | undefined => {
    const v = body[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw bad(`'${name}' must be an array`, name);
    return v;
  };
  opts.tools = arr('tools');
  opts.documents = arr('documents');
  const kw = body.chat_template_kwargs;
  if (kw !== undefined && kw !== null) {
    if (typeof kw !== 'object' || Array.isArray(kw)) throw bad("'chat_template_kwargs' must be an object", 'chat_template_kwargs');
    opts.chatTemplateKwargs = kw as Record<string, unknown>;
  }
  const ct = body.chat_template;
  if (ct !== undefined && ct !== null) {
    if (typeof ct !== 'string') throw bad("'chat_template' must be a string", 'chat_template');
    opts.chatTemplate = ct;
  }
  return opts;
}

/**
 * vLLM's content-format detection, simplified: a template that loops over a message's content
 * (`for x in message['content']` / `message.content`) takes the parts list ("openai"), any other
 * template takes one string.
 */
export function detectContentFormat(template: string): ContentFormat {
  return /\{%-?\s*for\s+\w+\s+in\s+\w+\s*(\[\s*['"]content['"]\s*\]|\.content)/.test(template) ? 'openai' : 'string';
}

function partText(part: unknown, i: number, mi: number): string | null {
  if (typeof part === 'string') return part;
  if (part === null || typeof part !== 'object' || Array.isArray(part)) throw bad(`messages[${mi}].content[${i}] must be an object or a string`);
  const p = part as Record<string, unknown>;
  const type = p.type;
  if (typeof type !== 'string' || !TEXT_PART_TYPES.has(type)) {
    throw bad(`messages[${mi}].content[${i}] has type ${JSON.stringify(type ?? null)}: only text parts can be tokenized by the router (media parts need the engine's processor)`);
  }
  const v = type === 'refusal' ? p.refusal : type === 'thinking' ? (p.thinking ?? p.text) : p.text;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw bad(`messages[${mi}].content[${i}] text must be a string`);
  return v;
}

/**
 * Normalizes OpenAI request messages into the conversation vLLM hands to the chat template.
 * Throws KVR_ERR_BAD_REQUEST for malformed messages or media parts.
 */
export function normalizeMessages(raw: unknown, format: ContentFormat): TemplateMessage[] {
  if (!Array.isArray(raw)) throw bad("'messages' must be an array");
  const out: TemplateMessage[] = [];
  raw.forEach((m, mi) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw bad(`messages[${mi}] must be an object`);
    const msg = m as Record<string, unknown>;
    const role = msg.role;
    if (typeof role !== 'string') throw bad(`messages[${mi}].role must be a string`);
    const c = msg.content;
    let parts: unknown[];
    if (c === undefined || c === null) parts = [];
    else if (typeof c === 'string') parts = [c];
    else if (Array.isArray(c)) parts = c;
    else throw bad(`messages[${mi}].content must be a string, an array of parts, or null`);
    const texts: string[] = [];
    parts.forEach((p, i) => {
      const t = partText(p, i, mi);
      if (t !== null) texts.push(t);
    });
    let content: unknown;
    if (format === 'openai') {
      content = texts.map((text) => ({ type: 'text', text }));
      if (role === 'tool') content = texts.join('\n');
    } else {
      content = texts.filter((t) => t.length > 0).join('\n');
    }
    const tm: TemplateMessage = { role, content };
    if (role === 'assistant') {
      const tc = msg.tool_calls;
      if (tc !== undefined && tc !== null) {
        if (!Array.isArray(tc)) throw bad(`messages[${mi}].tool_calls must be an array`);
        tm.tool_calls = tc.map((call, ci) => decodeToolCall(call, mi, ci));
      }
      const reasoning = msg.reasoning ?? msg.reasoning_content;
      if (typeof reasoning === 'string') {
        tm.reasoning = reasoning;
        tm.reasoning_content = reasoning;
      }
    } else if (role === 'tool' && typeof msg.tool_call_id === 'string') {
      tm.tool_call_id = msg.tool_call_id;
    }
    if (typeof msg.name === 'string') tm.name = msg.name;
    out.push(tm);
  });
  return out;
}

/** vLLM decodes a tool call's `function.arguments` JSON string into an object for the template. */
function decodeToolCall(call: unknown, mi: number, ci: number): unknown {
  if (call === null || typeof call !== 'object') throw bad(`messages[${mi}].tool_calls[${ci}] must be an object`);
  const c = call as Record<string, unknown>;
  const fn = c.function as Record<string, unknown> | undefined;
  if (!fn || typeof fn !== 'object' || typeof fn.arguments !== 'string') return c;
  let args: unknown;
  try {
    args = JSON.parse(fn.arguments);
  } catch {
    throw bad(`messages[${mi}].tool_calls[${ci}].function.arguments is not valid JSON`);
  }
  return { ...c, function: { ...fn, arguments: args } };
}

/** Python's str.strip() whitespace (close enough: Unicode White_Space). */
const pyStrip = (s: string): string => s.trim();
const pyLstrip = (s: string): string => s.trimStart();

/**
 * Hugging Face's `continue_final_message` cut: keep the rendered text up to the end of the final
 * message's content (its last text part), dropping what the template appends after it.
 */
export function cutAfterFinalMessage(rendered: string, conversation: readonly TemplateMessage[]): string {
  const last = conversation[conversation.length - 1];
  let finalMessage: unknown = last?.content;
  if (Array.isArray(finalMessage)) {
    const textPart = [...finalMessage].reverse().find((p) => p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string');
    if (!textPart) throw bad('continue_final_message is set but the final message has no text to continue');
    finalMessage = (textPart as { text: string }).text;
  }
  if (typeof finalMessage !== 'string') throw bad('continue_final_message is set but the final message has no text to continue');
  const stripped = pyStrip(finalMessage);
  const loc = rendered.lastIndexOf(stripped);
  if (loc < 0) throw bad('continue_final_message is set but the final message does not appear in the rendered chat');
  const lstripLen = pyLstrip(finalMessage).length;
  if (rendered.slice(loc, loc + lstripLen) === finalMessage) return rendered.slice(0, loc + lstripLen);
  return rendered.slice(0, loc + stripped.length);
}

/** Picks the chat template out of tokenizer_config's `chat_template` (a string or named list). */
export function pickChatTemplate(cfgValue: unknown, hasTools: boolean): string | undefined {
  if (typeof cfgValue === 'string') return cfgValue;
  const named = new Map<string, string>();
  if (Array.isArray(cfgValue)) {
    for (const t of cfgValue) {
      if (t && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' && typeof (t as { template?: unknown }).template === 'string') {
        named.set((t as { name: string }).name, (t as { template: string }).template);
      }
    }
  } else if (cfgValue && typeof cfgValue === 'object') {
    for (const [k, v] of Object.entries(cfgValue)) if (typeof v === 'string') named.set(k, v);
  }
  if (hasTools && named.has('tool_use')) return named.get('tool_use');
  return named.get('default');
}

/**
 * A compiled chat template with the tokenizer's special tokens; renders requests the way vLLM
 * does. Templates given per request are compiled on demand (a few kept).
 */
export class ChatRenderer {
  readonly #template: string | undefined;
  readonly #named: unknown;
  readonly #specialTokens: Record<string, unknown>;
  readonly #compiled = new Map<string, { tpl: Template; format: ContentFormat }>();

  /**
   * @param chatTemplate the tokenizer's `chat_template` (string, or a list/map of named templates)
   * @param specialTokens `bos_token`, `eos_token`, ... as strings
   */
  constructor(chatTemplate: unknown, specialTokens: Record<string, unknown>) {
    this.#named = chatTemplate;
    this.#template = typeof chatTemplate === 'string' ? chatTemplate : undefined;
    this.#specialTokens = specialTokens;
  }

  #compile(src: string): { tpl: Template; format: ContentFormat } {
    let c = this.#compiled.get(src);
    if (!c) {
      try {
        c = { tpl: new Template(src), format: detectContentFormat(src) };
      } catch (err) {
        throw bad(`the chat template does not parse: ${(err as Error).message}`, 'chat_template');
      }
      if (this.#compiled.size >= 8) this.#compiled.delete(this.#compiled.keys().next().value as string);
      this.#compiled.set(src, c);
    }
    return c;
  }

  /** Renders `messages` (raw request messages) to the prompt text. Throws KvrError on bad input. */
  render(messages: unknown, opts: ChatRenderOptions = {}): string {
    const src = opts.chatTemplate ?? this.#template ?? pickChatTemplate(this.#named, (opts.tools?.length ?? 0) > 0);
    if (src === undefined) {
      throw new KvrError('KVR_ERR_BAD_REQUEST', 'the tokenizer has no chat template; send a completions request or a chat_template', { param: 'messages' });
    }
    const { tpl, format } = this.#compile(src);
    const conversation = normalizeMessages(messages, format);
    const addGenerationPrompt = opts.addGenerationPrompt ?? true;
    const continueFinal = opts.continueFinalMessage ?? false;
    if (addGenerationPrompt && continueFinal) {
      throw bad("Cannot set both 'continue_final_message' and 'add_generation_prompt' to true", 'continue_final_message');
    }
    let rendered: string;
    try {
      rendered = tpl.render({
        ...this.#specialTokens,
        ...(opts.chatTemplateKwargs ?? {}),
        messages: conversation,
        tools: opts.tools ?? null,
        documents: opts.documents ?? null,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (err) {
      throw bad(`the chat template failed on these messages: ${(err as Error).message}`);
    }
    return continueFinal ? cutAfterFinalMessage(rendered, conversation) : rendered;
  }
}
