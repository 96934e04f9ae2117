import test from 'node:test';
import assert from 'node:assert/strict';
import { parsePromText } from './prom-text.js';
import { toEndpointMetrics } from './metric-maps.js';

const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 870.0
vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",num_gpu_blocks="26300"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 12.0
`;

test('parses vLLM exposition text into samples with labels', () => {
  const { samples, malformed } = parsePromText(VLLM);
  assert.equal(malformed, 0);
  const running = samples.find((s) => s.name === 'vllm:num_requests_running');
  assert.deepEqual(running, { name: 'vllm:num_requests_running', labels: { engine: '0', model_name: 'm' }, value: 3 });
  const inf = samples.find((s) => s.name.endsWith('_bucket'));
  assert.equal(inf?.labels.le, '+Inf');
});

test('skips malformed lines and keeps the rest', () => {
  const { samples, malformed } = parsePromText('9bad 1\nok_metric 2\nbroken{a="x" 3\nnovalue\nesc{a="q\\"x"} 4\n');
  assert.equal(malformed, 3);
  assert.deepEqual(samples.map((s) => [s.name, s.value]), [['ok_metric', 2], ['esc', 4]]);
  assert.equal(samples[1].labels.a, 'q"x');
});

test('keep filter drops other names', () => {
  const { samples } = parsePromText(VLLM, new Set(['vllm:num_requests_waiting']));
  assert.equal(samples.length, 1);
});

test('vLLM map builds a snapshot including cache config', () => {
  const snap = toEndpointMetrics('vllm', parsePromText(VLLM).samples, 42);
  assert.deepEqual(snap, { waiting: 2, running: 3, kvUsage: 0.25, prefixQueries: 1000, prefixHits: 870, blockSize: 16, numGpuBlocks: 26300, updatedAt: 42 });
});

test('vLLM map falls back to older names and sums data-parallel ranks', () => {
  const text = 'vllm:num_requests_waiting{engine="0"} 1\nvllm:num_requests_waiting{engine="1"} 4\nvllm:gpu_cache_usage_perc{engine="0"} 0.2\nvllm:gpu_cache_usage_perc{engine="1"} 0.4\nvllm:gpu_prefix_cache_hits_total 5\n';
  const snap = toEndpointMetrics('vllm', parsePromText(text).samples, 1)!;
  assert.equal(snap.waiting, 5);
  assert.ok(Math.abs(snap.kvUsage - 0.3) < 1e-9);
  assert.equal(snap.prefixHits, 5);
});

test('SGLang and llama.cpp maps', () => {
  const sg = toEndpointMetrics('sglang', parsePromText('sglang:num_queue_reqs 7\nsglang:num_running_reqs 2\nsglang:token_usage 0.5\n').samples, 1)!;
  assert.deepEqual([sg.waiting, sg.running, sg.kvUsage], [7, 2, 0.5]);
  const ll = toEndpointMetrics('llamacpp', parsePromText('llamacpp:requests_deferred 1\nllamacpp:requests_processing 3\nllamacpp:kv_cache_usage_ratio 0.9\n').samples, 1)!;
  // llama.cpp's kv_cache_usage_ratio is its slots' cached prompts, not pressure: reported unknown.
  assert.deepEqual([ll.waiting, ll.running, ll.kvUsage, ll.kvUsageUnknown], [1, 3, 0, true]);
});

test('returns undefined when the engine metrics are absent (wrong engine)', () => {
  assert.equal(toEndpointMetrics('sglang', parsePromText(VLLM).samples, 1), undefined);
});
