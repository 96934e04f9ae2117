/**
 * One workload request in the three forms the benchmark needs: the HTTP body (live engine), the
 * router's {@link InferenceRequest} built exactly as the gateway builds it (virtual engine), and
 * the prompt's token ids as the simulated replica computes them (virtual engine, oracle).
 */
import type { InferenceRequest } from '../core/request.js';
import { SourcedRequest } from '../lifecycle/signal-sourced.js';
import { renderChatForRouting } from '../server/openai/parse-request.js';
import { BuiltinTokenizer, type SimTokenizer } from '../sim/tokenizer.js';
import type { BenchPrompt, BenchRequest } from './types.js';

/**
 * The OpenAI request body. Streaming requests get `stream` from the client; a non-streaming one
 * (`req.stream === false`) says `stream: false` here, for a client that honours it.
 */
export function requestBody(model: string, req: BenchRequest, p: BenchPrompt): Record<string, unknown> {
  const common = { model, max_tokens: req.maxTokens, temperature: 0, seed: 42, ignore_eos: true, ...(req.stream === false ? { stream: false } : {}) };
  return p.api === 'chat' ? { ...common, messages: p.messages } : { ...common, prompt: p.text };
}

/**
 * Token ids of the prompt as a simulated replica computes them: the generator's ids when it
 * knows them, else the tokenizer over the text (chat: rendered with the replica's chat template).
 */
export function promptTokens(p: BenchPrompt, tokenizer: SimTokenizer): number[] {
  if (p.tokens !== undefined) return p.tokens;
  return p.api === 'chat' ? tokenizer.encode(tokenizer.renderChat(p.messages)) : tokenizer.encode(p.text);
}

/** The built-in tokenizer the simulated fleet uses by default. */
export function builtinTokenizer(): SimTokenizer {
  return new BuiltinTokenizer();
}

/**
 * The router's view of the request, as `buildInferenceRequest` makes it from the HTTP body:
 * chat prompts rendered with `renderChatForRouting`, completion prompts as their text, the client
 * address from X-Forwarded-For (the live runner's gateway trusts it).
 */
export function toInferenceRequest(model: string, req: BenchRequest, p: BenchPrompt, arrivedAt: number): InferenceRequest {
  const body = requestBody(model, req, p);
  const promptText =
    p.api === 'chat'
      ? renderChatForRouting(p.messages.map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((x) => x.text ?? '').join('') })))
      : p.text;
  const headers: Record<string, string | undefined> = { 'content-type': 'application/json', 'x-forwarded-for': req.clientIp };
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  return new SourcedRequest(`bench-${req.index}`, p.api, model, body, promptText, req.maxTokens, req.stream !== false, req.clientIp, headers, arrivedAt);
}

