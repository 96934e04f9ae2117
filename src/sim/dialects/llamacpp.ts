/**
 * llama.cpp (`llama-server`) dialect: `llamacpp:` metrics with the `Process-Start-Time-Unix`
 * header (changes on restart), `/metrics` waiting for the current engine step like llama.cpp's
 * task queue, `/health` -> `{"status":"ok"}`, `/props` (`total_slots`), `/tokenize`
 * `{content}` -> `{tokens}` (a vLLM-style `{prompt}` body gets 200 `{"tokens": []}` as on the real
 * server), `/detokenize`, `/slots` and `POST /slots/{id}?action=erase`, no `/reset_prefix_cache`
 * (404), `owned_by: "llamacpp"`, responses with `timings`, and the slot cache
 * (llamacpp-slots.ts). Builds: `new` (cached_tokens in usage, cache_n in timings, no
 * kv_cache_usage_ratio) or `old` (neither; kv_cache_usage_ratio present).
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from '../http-io.js';
import type { ChatMessage } from '../tokenizer.js';
import { chatOptionsFromBody } from '../../tokenize/vllm-chat.js';
import { SlotCache } from './llamacpp-slots.js';
import type { DialectContext, SimDialect, SimDialectOptions } from './types.js';

function notFound(res: ServerResponse): void {
  sendJson(res, 404, { error: { code: 404, message: 'File Not Found', type: 'not_found_error' } });
}

/** The llama.cpp dialect of a replica. */
export function createLlamacppDialect(ctx: DialectContext, opts: SimDialectOptions): SimDialect {
  const parallel = opts.parallel ?? 4;
  const build = opts.llamacppBuild ?? 'new';
  const nCtx = 4096;
  let slots: SlotCache | undefined;
  const slotCache = (): SlotCache => (slots ??= new SlotCache(ctx.engine, parallel));
  let startToken = 0;
  let restarts = 0;
  const newStart = (): void => {
    startToken = Math.floor(ctx.now() * 1000) + ++restarts;
  };
  newStart();

  const metricsText = (): string => {
    const s = slotCache().stats();
    const e = ctx.engine.stats();
    const rows: Array<[string, string, 'counter' | 'gauge', number]> = [
      ['prompt_tokens_total', 'Number of prompt tokens processed.', 'counter', s.promptEvaluated],
      ['prompt_seconds_total', 'Prompt process time', 'counter', 0],
      ['tokens_predicted_total', 'Number of generation tokens processed.', 'counter', s.predicted],
      ['tokens_predicted_seconds_total', 'Predict process time', 'counter', 0],
      ['n_decode_total', 'Total number of llama_decode() calls', 'counter', e.steps],
      ['n_busy_slots_per_decode', 'Average number of busy slots per llama_decode() call', 'counter', s.busySlots],
      ['prompt_tokens_seconds', 'Average prompt throughput in tokens/s.', 'gauge', 0],
      ['predicted_tokens_seconds', 'Average generation throughput in tokens/s.', 'gauge', 0],
    ];
    if (build === 'old') {
      rows.push(['kv_cache_usage_ratio', 'KV-cache usage. 1 means 100 percent usage.', 'gauge', Math.min(1, s.cachedTokens / nCtx)]);
      rows.push(['kv_cache_tokens', 'KV-cache tokens.', 'gauge', s.cachedTokens]);
    }
    rows.push(['requests_processing', 'Number of requests processing.', 'gauge', s.busySlots]);
    rows.push(['requests_deferred', 'Number of requests deferred.', 'gauge', s.deferred]);
    return rows.map(([n, h, t, v]) => `# HELP llamacpp:${n} ${h}\n# TYPE llamacpp:${n} ${t}\nllamacpp:${n} ${v}\n`).join('');
  };

  return {
    name: 'llamacpp',
    modelsOwner: 'llamacpp',
    engineOverrides: { enablePrefixCaching: false, maxNumSeqs: parallel },
    metricsBlockDuringStep: true,
    async route(path, query, method, _req, res, body) {
      if (path === '/metrics') {
        const t = metricsText();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'process-start-time-unix': String(startToken), 'content-length': Buffer.byteLength(t) });
        res.end(t);
        return true;
      }
      if (path === '/health') {
        sendJson(res, 200, { status: 'ok' });
        return true;
      }
      if (path === '/props' && method === 'GET') {
        sendJson(res, 200, {
          default_generation_settings: { n_ctx: nCtx, params: { n_predict: -1 } },
          total_slots: parallel,
          model_path: `models/${ctx.modelName}.gguf`,
          modalities: { vision: false, audio: false },
          chat_template: '',
          bos_token: '<|begin_of_text|>',
          eos_token: '<|eot_id|>',
          build_info: build === 'new' ? 'b6123-sim' : 'b4500-sim',
        });
        return true;
      }
      if (path === '/tokenize' && method === 'POST') {
        const b = await body();
        const content = b.content;
        const tokens = typeof content === 'string' ? ctx.tokenizer.encode(content, { addSpecialTokens: b.add_special === true }) : [];
        sendJson(res, 200, { tokens });
        return true;
      }
      if (path === '/apply-template' && method === 'POST') {
        const b = await body();
        if (!Array.isArray(b.messages)) {
          sendJson(res, 400, { error: { code: 400, message: "'messages' is required", type: 'invalid_request_error' } });
          return true;
        }
        sendJson(res, 200, { prompt: ctx.tokenizer.renderChat(b.messages as ChatMessage[], chatOptionsFromBody({ ...b, add_generation_prompt: true })) });
        return true;
      }
      if (path === '/detokenize' && method === 'POST') {
        const b = await body();
        const t = Array.isArray(b.tokens) ? (b.tokens as unknown[]).filter((x): x is number => Number.isInteger(x)) : [];
        sendJson(res, 200, { content: ctx.tokenizer.decode(t) });
        return true;
      }
      if (path === '/slots' && method === 'GET') {
        sendJson(res, 200, Array.from({ length: slotCache().size }, (_, id) => ({ id, n_ctx: nCtx, is_processing: false, n_tokens: slotCache().slotTokens(id)?.length ?? 0 })));
        return true;
      }
      const m = /^\/slots\/(\d+)$/.exec(path);
      if (m && method === 'POST') {
        if (query.get('action') !== 'erase') {
          sendJson(res, 400, { error: { code: 400, message: 'Invalid action', type: 'invalid_request_error' } });
          return true;
        }
        const n = slotCache().erase(Number(m[1]));
        if (n === undefined) sendJson(res, 400, { error: { code: 400, message: 'Invalid slot ID', type: 'invalid_request_error' } });
        else sendJson(res, 200, { id_slot: Number(m[1]), n_erased: n });
        return true;
      }
      if (path === '/reset_prefix_cache') {
        notFound(res);
        return true;
      }
      return false;
    },
    submit: (req, cb) => slotCache().submit(req, cb),
    usage: (r) => ({
      completion_tokens: r.completionTokens,
      prompt_tokens: r.promptTokens,
      total_tokens: r.promptTokens + r.completionTokens,
      ...(build === 'new' ? { prompt_tokens_details: { cached_tokens: r.cachedTokens } } : {}),
    }),
    finalExtras(r, ms) {
      const promptN = r.promptTokens - r.cachedTokens;
      const t: Record<string, number> = {
        prompt_n: promptN,
        prompt_ms: ms.promptMs,
        prompt_per_token_ms: promptN > 0 ? ms.promptMs / promptN : 0,
        prompt_per_second: ms.promptMs > 0 ? (1000 * promptN) / ms.promptMs : 0,
        predicted_n: r.completionTokens,
        predicted_ms: ms.predictedMs,
        predicted_per_token_ms: r.completionTokens > 0 ? ms.predictedMs / r.completionTokens : 0,
        predicted_per_second: ms.predictedMs > 0 ? (1000 * r.completionTokens) / ms.predictedMs : 0,
      };
      return { timings: build === 'new' ? { cache_n: r.cachedTokens, ...t } : t };
    },
    restart() {
      slotCache().reset();
      newStart();
    },
  };
}
