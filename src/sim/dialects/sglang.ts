/**
 * SGLang dialect: `sglang:` metrics as SGLang's collectors name them (prometheus_client text),
 * `/get_server_info` and `/server_info` (flattened server args + `max_total_num_tokens`),
 * `POST /flush_cache`, `owned_by: "sglang"`, usage with `prompt_tokens_details.cached_tokens`
 * (`--enable-cache-report`). No `/tokenize` and no `/reset_prefix_cache` (404 like SGLang
 * builds without them). Restart: counters start again from 0 (SGLang exports no start time).
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from '../http-io.js';
import type { DialectContext, SimDialect } from './types.js';

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Prometheus text of one SGLang replica. */
export function sglangMetricsText(ctx: DialectContext): string {
  const s = ctx.engine.stats();
  const lbl = `{model_name="${ctx.modelName.replace(/"/g, '\\"')}"}`;
  const f = (v: number) => (Number.isInteger(v) ? `${v}.0` : String(v));
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, v: number): void => {
    lines.push(`# HELP sglang:${name} ${help}`, `# TYPE sglang:${name} ${type}`, `sglang:${name}${lbl} ${f(v)}`);
  };
  metric('num_running_reqs', 'gauge', 'The number of running requests.', s.running);
  metric('num_used_tokens', 'gauge', 'The number of used tokens.', Math.round(s.kvUsage * s.numGpuBlocks * s.blockSize));
  metric('token_usage', 'gauge', 'The token usage.', s.kvUsage);
  metric('gen_throughput', 'gauge', 'The generation throughput (token/s).', 0);
  metric('num_queue_reqs', 'gauge', 'The number of requests in the waiting queue.', s.waiting);
  metric('cache_hit_rate', 'gauge', 'The prefix cache hit rate.', s.prefixCacheQueries > 0 ? s.prefixCacheHits / s.prefixCacheQueries : 0);
  metric('prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', s.promptTokens);
  metric('generation_tokens_total', 'counter', 'Number of generation tokens processed.', s.generationTokens);
  metric('cached_tokens_total', 'counter', 'Number of cached prompt tokens.', s.prefixCacheHits);
  metric('num_requests_total', 'counter', 'Number of requests processed.', s.requestSuccess);
  return lines.join('\n') + '\n';
}

/** The SGLang dialect of a replica. */
export function createSglangDialect(ctx: DialectContext): SimDialect {
  const info = () => ({
    model_path: ctx.modelName,
    tokenizer_path: ctx.modelName,
    served_model_name: ctx.modelName,
    page_size: 1,
    disable_radix_cache: !ctx.engine.prefixCaching,
    enable_cache_report: true,
    enable_metrics: true,
    max_running_requests: 4096,
    max_total_num_tokens: ctx.numBlocks * ctx.blockSize,
    version: '0.4.6.post5 (kvroute sim)',
  });
  return {
    name: 'sglang',
    modelsOwner: 'sglang',
    engineOverrides: {},
    metricsBlockDuringStep: false,
    async route(path, _query, method, _req, res) {
      switch (path) {
        case '/metrics':
          text(res, 200, sglangMetricsText(ctx), 'text/plain; version=0.0.4; charset=utf-8');
          return true;
        case '/get_server_info':
        case '/server_info':
          sendJson(res, 200, info());
          return true;
        case '/flush_cache': {
          if (method !== 'POST' && method !== 'GET') return false;
          const ok = ctx.engine.resetPrefixCache();
          if (ok) text(res, 200, 'Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n');
          else text(res, 400, 'Cache not flushed. Please check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n');
          return true;
        }
        case '/tokenize':
        case '/detokenize':
        case '/reset_prefix_cache':
          sendJson(res, 404, { detail: 'Not Found' });
          return true;
        default:
          return false;
      }
    },
    usage: (r) => ({
      prompt_tokens: r.promptTokens,
      total_tokens: r.promptTokens + r.completionTokens,
      completion_tokens: r.completionTokens,
      prompt_tokens_details: { cached_tokens: r.cachedTokens },
    }),
    restart() {
      /* engine counters are reset by the replica */
    },
  };
}
