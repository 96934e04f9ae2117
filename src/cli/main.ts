#!/usr/bin/env node
/**
 * The `kvroute` command line. Parses flags and calls library functions; no logic lives here.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { KvrError } from '../core/errors.js';
import { createLogger, type LogLevel } from '../core/logger.js';
import { runServe, runServeExtProc } from '../app/serve.js';
import { PRESETS, type SchedulerPreset } from '../app/build-scheduler.js';
import { runDemo } from '../demo/run-demo.js';
import { demoJson, formatDemoReport } from '../demo/demo-report.js';
import { runBenchCommand } from '../bench/bench-command.js';
import { fleetEndpointList, resolveKvBlocks as simKvBlocks, startFleet, type ProfileId } from '../sim/index.js';
import { doctorJson, formatDoctorReport, runDoctor } from '../doctor/index.js';
import type { SimPdOptions } from '../sim/pd/create-pd-connector.js';
import { runSidecar } from '../sidecar/run-sidecar.js';
import { kvrouteVersion } from '../app/version.js';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};
/** `kvroute serve` flags of the HTTP gateway's public port (refused with --ext-proc, which has no HTTP port). */
const PUBLIC_PORT_FLAGS = ['adminHost', 'headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'maxConnections', 'maxConnectionsPerClient', 'maxHeaderBytes', 'apiKey', 'apiKeysFile', 'stripHeaders', 'signSessionTokens', 'sessionSecret', 'hideEndpoints'];
const PROFILES = ['llama-3.2-1b', 'llama-3.2-3b', 'llama-3.1-8b'];
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Runs until SIGINT/SIGTERM, then closes. */
function untilSignal(close: () => Promise<void>): void {
  const stop = () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The sim's P/D flags as connector options (rejects P/D flags without --role). */
function simPdOptions(o: Record<string, unknown>, warn: (m: string) => void): SimPdOptions | undefined {
  const pdFlags = ['kvLink', 'kvBytesPerToken', 'kvLinkGbps', 'kvPinTimeoutMs'].filter((k) => o[k] !== undefined);
  if (o.role === undefined) {
    if (pdFlags.length > 0) throw new KvrError('KVR_ERR_USAGE', `--kv-* P/D flags need --role prefill|decode|both`);
    return undefined;
  }
  return {
    role: o.role as SimPdOptions['role'],
    ...(o.kvLink !== undefined ? { link: o.kvLink as 'rdma' | 'nvlink' } : {}),
    ...(o.kvBytesPerToken !== undefined ? { kvBytesPerToken: o.kvBytesPerToken as number } : {}),
    ...(o.kvLinkGbps !== undefined ? { bandwidthBytesPerSec: (o.kvLinkGbps as number) * 1e9 } : {}),
    ...(o.kvPinTimeoutMs !== undefined ? { pinTimeoutMs: o.kvPinTimeoutMs as number } : {}),
    warn,
  };
}

const program = new Command()
  .name('kvroute')
  .description('KV-cache-aware router for LLM serving fleets')
  .version(kvrouteVersion(), '-V, --version', 'print the kvroute version')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the OpenAI-compatible gateway in front of model-server endpoints')
  .option('--endpoints <list>', 'comma-separated host:port list; env KVROUTE_ENDPOINTS. Per-endpoint options after ";": ;id=name ;role=decode ;engine=sglang ;events=tcp://host:5557 (its KV-event PUB socket, precise routing) ;replay=tcp://host:5558 (its replay socket, to catch up after a gap). Quote the list in a shell: \'http://10.0.0.1:8000;events=tcp://10.0.0.1:5557;replay=tcp://10.0.0.1:5558\'')
  .option('--config <file>', 'EndpointPickerConfig YAML file')
  .addOption(new Option('--preset <name>', 'built-in scheduling preset').choices([...PRESETS]))
  .option('--host <addr>', 'listen address', '127.0.0.1')
  .option('--port <n>', 'gateway port', int('--port'), 8000)
  .option('--admin-port <n>', 'admin port (/metrics /healthz /readyz)', int('--admin-port'), 9090)
  .addOption(new Option('--engine <kind>', 'engine of every endpoint (override; default: detected per endpoint from its /metrics, /v1/models, /props or /server_info)').choices(['vllm', 'sglang', 'llamacpp', 'openai']))
  .option('--max-body-bytes <n>', 'largest request body accepted', int('--max-body-bytes'), 16 * 1024 * 1024)
  .option('--trust-forwarded-for', 'use X-Forwarded-For as the client address', false)
  .option('--scrape-interval-ms <n>', 'metrics scrape interval', int('--scrape-interval-ms'), 50)
  .option('--tokenizer <source>', 'precise routing tokenizer: a folder with tokenizer.json, builtin (kvroute sim), or http://endpoint (its /tokenize); default: the endpoints\' own tokenizers, round robin, each in its engine\'s format (pass a folder in production)')
  .option('--tokenizer-max-queued <n>', 'local tokenizer: long prompts that may wait for the tokenizer worker (default 32); beyond it a request routes approximately (kvroute_tokenizer_rejected_total{reason="queue_full"})', int('--tokenizer-max-queued'))
  .option('--block-size <n>', 'engines\' KV block size in tokens (vLLM --block-size)', int('--block-size'), 16)
  .addOption(new Option('--kv-events <mode>', 'KV events: connect a SUB to each endpoint\'s events= address, bind one SUB pods connect to, or off').choices(['connect', 'bind', 'off']).default('connect'))
  .option('--kv-events-bind <addr>', 'bind mode address; loopback by default (KV events are not authenticated): pass e.g. tcp://0.0.0.0:5557 to accept pods from the network', 'tcp://127.0.0.1:5557')
  .option('--kv-events-allow-from <list>', 'bind mode: only these publisher addresses / CIDRs may connect, e.g. 10.0.0.0/8,127.0.0.1 (ZeroMQ ZAP; others refused, counted and logged)')
  .option('--panic-threshold-percent <n>', 'when fewer than this percentage of the endpoints are healthy, those whose probes time out (still accepting connections) are routed to again, like Envoy\'s healthy panic threshold (0 = off)', int('--panic-threshold-percent'), 50)
  .option('--idle-gc-after <seconds>', 'after a busy period, one full garbage collection once the router has been idle this long, so memory goes back to its idle size (0 = off)', int('--idle-gc-after'), 10)
  .option('--kv-events-resync-ms <n>', 'check each endpoint\'s KV-event stream against its replay socket this often (finds missed batches and silent restarts; 0 = off)', int('--kv-events-resync-ms'), 30_000)
  .option('--redis <addr>', 'shared Redis block index (host:port, redis://..., or redis-cluster://h1:p1,h2:p2 for Redis Cluster / Valkey cluster); env KVCACHE_INDEXER_REDIS_ADDR; default in memory')
  .option('--sync-redis <addr>', 'active-active replicas: share picks and in-flight load with the other kvroute replicas through this Redis (host:port, redis://..., or redis-cluster://h1:p1,h2:p2); docs/active-active.md')
  .option('--router-id <id>', 'this replica\'s id in --sync-redis (default hostname:pid; must differ between replicas)')
  .option('--sync-stream <key>', 'Redis stream key the replicas of one fleet share (--sync-redis)', 'kvroute:sync')
  .addOption(new Option('--pd-mode <mode>', 'P/D: orchestrate (gateway runs both legs), header (set x-prefiller-host-port for decode-pod sidecars), off; default orchestrate when the config disaggregates').choices(['orchestrate', 'header', 'off']))
  .addOption(new Option('--log-level <level>', 'log level; info logs one JSON line per request').choices(LEVELS).default(process.env.KVROUTE_LOG_LEVEL ?? 'warn'))
  .option('--upstream-timeout-ms <n>', 'whole upstream exchange per request (0 = none)', int('--upstream-timeout-ms'), 600_000)
  .option('--ttfb-timeout-ms <n>', 'dispatch -> first token per attempt; a stalled replica is retried elsewhere and counts towards ejection (0 = none)', int('--ttfb-timeout-ms'), 300_000)
  .option('--max-retries <n>', 'retries on other replicas when nothing reached the client yet (0 = none)', int('--max-retries'), 2)
  .option('--retry-budget-percent <n>', 'retries may not exceed this percent of the requests of the last 10 s', int('--retry-budget-percent'), 20)
  .option('--retry-min-per-sec <n>', 'retries per second always allowed, whatever the volume', int('--retry-min-per-sec'), 10)
  .option('--outlier-consecutive-failures <n>', 'consecutive 5xx / gateway failures / timeouts that eject a replica (0 = never eject)', int('--outlier-consecutive-failures'), 5)
  .option('--outlier-base-ejection-ms <n>', 'first ejection time; the n-th ejection lasts n times this', int('--outlier-base-ejection-ms'), 30_000)
  .option('--outlier-max-ejection-ms <n>', 'longest ejection', int('--outlier-max-ejection-ms'), 300_000)
  .option('--outlier-max-ejection-percent <n>', 'most replicas ejected at once, percent (at least one)', int('--outlier-max-ejection-percent'), 50)
  .addOption(new Option('--non-streaming-upstream <mode>', 'non-streaming requests: stream them upstream and re-assemble the body (prefill end and usage known, retry until the end) or pass them through (less CPU)').choices(['stream', 'passthrough']).default('stream'))
  .option('--discovery <source>', 'where endpoints come from: static (--endpoints), file:<path> (llm-d file-discovery YAML/JSON, reloaded), dns:<name>:<port> (A records; dns:<name> = SRV), k8s (pods of --pool-name or --endpoint-selector)', 'static')
  .option('--pool-name <name>', 'k8s: InferencePool whose pods are the endpoints')
  .option('--pool-namespace <ns>', 'k8s: namespace of the pool / pods (default $POD_NAMESPACE, else default)')
  .option('--endpoint-selector <k=v,...>', 'k8s without an InferencePool: pod label selector')
  .option('--endpoint-target-ports <list>', 'k8s with --endpoint-selector: 1-8 ports, each its own endpoint <pod>-rank-<i>')
  .option('--dns-interval-ms <n>', 'dns: re-resolve interval', int('--dns-interval-ms'))
  .option('--kv-events-pod-port <n>', 'dynamic discovery + precise routing: pods publish KV events on tcp://<ip>:<n + rank> (default 5557)', int('--kv-events-pod-port'))
  .option('--ext-proc', 'run as Envoy\'s ext_proc endpoint picker (llm-d EPP protocol) instead of the HTTP gateway; docs/ext-proc.md', false)
  .option('--ext-proc-port <n>', 'ext_proc gRPC port (--ext-proc)', int('--ext-proc-port'), 9002)
  .option('--grpc-health-port <n>', 'gRPC health port: liveness, readiness, "" and the ext_proc service (--ext-proc)', int('--grpc-health-port'), 9003)
  .option('--drain-timeout-ms <n>', 'after SIGTERM: readiness NOT_SERVING, keep serving until drained or this long (--ext-proc)', int('--drain-timeout-ms'), 30_000)
  .option('--max-destinations <n>', 'endpoints in x-gateway-destination-endpoint, primary + fallbacks; 1 for an ORIGINAL_DST cluster (--ext-proc)', int('--max-destinations'), 3)
  .option('--shed-queue-depth <n>', 'answer 429 when every endpoint has this many requests waiting (--ext-proc; default off)', int('--shed-queue-depth'))
  .option('--shed-kv-usage <f>', 'answer 429 when every endpoint\'s KV usage is at least this, 0..1 (--ext-proc; default off)', num('--shed-kv-usage'))
  // Public port hardening (docs/configuration.md, "Securing the gateway").
  .option('--admin-host <addr>', 'admin listen address (stays on loopback when --host exposes the gateway)', '127.0.0.1')
  .option('--headers-timeout-ms <n>', 'a request\'s headers must arrive within this (also closes silent connections)', int('--headers-timeout-ms'), 15_000)
  .option('--request-timeout-ms <n>', 'a whole request (headers + body) must arrive within this; answers 408', int('--request-timeout-ms'), 120_000)
  .option('--keep-alive-timeout-ms <n>', 'idle keep-alive connections are closed after this', int('--keep-alive-timeout-ms'), 65_000)
  .option('--max-connections <n>', 'most open client connections (default: half the open-file limit); more get 503', int('--max-connections'))
  .option('--max-connections-per-client <n>', 'most open connections per client address (0 = no cap)', int('--max-connections-per-client'), 0)
  .option('--max-header-bytes <n>', 'largest request head; more gets 431', int('--max-header-bytes'), 16 * 1024)
  .option('--api-key <key>', 'require this API key (Bearer or x-api-key); "tenant:key" names its tenant; repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--api-keys-file <file>', 'file of "tenant:key" lines (env KVROUTE_API_KEYS_FILE)')
  .option('--strip-headers <list>', 'client headers not forwarded upstream, e.g. authorization,cookie,x-api-key, or none (default: authorization,x-api-key when API keys are on, else none)')
  .option('--sign-session-tokens', 'sign x-session-token (HMAC); unsigned or forged tokens are ignored', false)
  .option('--session-secret <s>', 'HMAC secret for session tokens and opaque ids, >= 16 chars (env KVROUTE_SESSION_SECRET; default random per process)')
  .option('--hide-endpoints', 'opaque endpoint ids in x-kvroute-endpoint, signed tokens, no explain header', false)
  .action(async (o, cmd: Command) => {
    const logger = createLogger(o.logLevel as LogLevel);
    const given = (names: string[]) => names.filter((n) => cmd.getOptionValueSource(n) === 'cli');
    if (o.syncRedis === undefined && given(['routerId', 'syncStream']).length > 0) throw new KvrError('KVR_ERR_USAGE', '--router-id and --sync-stream only apply with --sync-redis <addr>');
    const sync = o.syncRedis !== undefined ? { url: o.syncRedis as string, stream: o.syncStream as string, ...(o.routerId !== undefined ? { routerId: o.routerId as string } : {}) } : undefined;
    const discovery = Object.fromEntries(Object.entries({ discovery: o.discovery, poolName: o.poolName, poolNamespace: o.poolNamespace, endpointSelector: o.endpointSelector, endpointTargetPorts: o.endpointTargetPorts, dnsIntervalMs: o.dnsIntervalMs, kvEventsPodPort: o.kvEventsPodPort }).filter(([, v]) => v !== undefined));
    if (o.extProc) {
      const wrong = given(['port', 'trustForwardedFor', 'upstreamTimeoutMs', 'ttfbTimeoutMs', 'maxRetries', 'retryBudgetPercent', 'retryMinPerSec', 'nonStreamingUpstream', ...PUBLIC_PORT_FLAGS]);
      if (o.pdMode !== undefined && o.pdMode !== 'header') throw new KvrError('KVR_ERR_USAGE', `--ext-proc runs P/D in header mode only (x-prefiller-host-port for decode-pod sidecars; Envoy sends the request): drop --pd-mode ${o.pdMode}`);
      if (wrong.length > 0) throw new KvrError('KVR_ERR_USAGE', `--ext-proc serves gRPC and Envoy does the retrying and timeouts: drop ${wrong.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} (ports: --ext-proc-port, --grpc-health-port, --admin-port)`);
      const outlier = { consecutiveFailures: o.outlierConsecutiveFailures, baseEjectionMs: o.outlierBaseEjectionMs, maxEjectionMs: o.outlierMaxEjectionMs, maxEjectionPercent: o.outlierMaxEjectionPercent };
      const epp = await runServeExtProc({ ...o, discovery, sync, healthPort: o.grpcHealthPort, outlier, preset: o.preset as SchedulerPreset | undefined, env: process.env, logger });
      process.stderr.write(`kvroute endpoint picker: ext_proc on ${epp.extProcAddress}, gRPC health on port ${epp.healthPort}, admin on ${epp.adminUrl}\n`);
      untilSignal(() => epp.drain());
      return;
    }
    const eppOnly = given(['extProcPort', 'grpcHealthPort', 'drainTimeoutMs', 'maxDestinations', 'shedQueueDepth', 'shedKvUsage']);
    if (eppOnly.length > 0) throw new KvrError('KVR_ERR_USAGE', `${eppOnly.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} only apply with --ext-proc`);
    const resilience = {
      upstreamTimeoutMs: o.upstreamTimeoutMs,
      ttfbTimeoutMs: o.ttfbTimeoutMs,
      maxRetries: o.maxRetries,
      nonStreamingUpstream: o.nonStreamingUpstream as 'stream' | 'passthrough',
      retryBudget: { budgetPercent: o.retryBudgetPercent, minRetriesPerSec: o.retryMinPerSec },
      outlier: { consecutiveFailures: o.outlierConsecutiveFailures, baseEjectionMs: o.outlierBaseEjectionMs, maxEjectionMs: o.outlierMaxEjectionMs, maxEjectionPercent: o.outlierMaxEjectionPercent },
    };
    const publicPort = {
      headersTimeoutMs: o.headersTimeoutMs, requestTimeoutMs: o.requestTimeoutMs, keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      maxConnections: o.maxConnections, maxConnectionsPerClient: o.maxConnectionsPerClient, maxHeaderBytes: o.maxHeaderBytes,
      apiKey: o.apiKey, apiKeysFile: o.apiKeysFile, stripHeaders: o.stripHeaders,
      sessionSecret: o.sessionSecret, signSessionTokens: o.signSessionTokens, hideEndpoints: o.hideEndpoints,
    };
    const router = await runServe({ ...o, discovery, sync, preset: o.preset as SchedulerPreset | undefined, env: process.env, logger, resilience, publicPort });
    process.stderr.write(`kvroute gateway on ${router.url}, admin on ${router.adminUrl}\n`);
    untilSignal(() => router.close());
  });

program
  .command('sim')
  .description('serve simulated replicas (vLLM, or SGLang / llama.cpp with --engine) on consecutive loopback ports')
  .option('--replicas <n>', 'number of replicas', int('--replicas'), 3)
  .option('--port <n>', 'port of the first replica', int('--port'), 8100)
  .option('--host <addr>', 'listen address', '127.0.0.1')
  .option('--model <name>', 'served model name', 'meta-llama/Llama-3.1-8B-Instruct')
  .addOption(new Option('--profile <id>', 'GPU step-time profile').choices(PROFILES).default('llama-3.1-8b'))
  .option('--time-scale <x>', 'multiply simulated step times (0.25 = 4x faster than the GPU)', num('--time-scale'), 1)
  .option('--block-size <n>', 'KV block size in tokens', int('--block-size'), 16)
  .option('--num-gpu-blocks <n>', 'KV capacity per replica in blocks (default: from the profile)', int('--num-gpu-blocks'))
  .option('--kv-blocks <n>', 'same as --num-gpu-blocks (vLLM --num-gpu-blocks-override)', int('--kv-blocks'))
  .option('--gpu-memory-utilization <f>', 'derive KV capacity from an H200 at this memory utilisation (default 0.9: 54,320 blocks for the 8B)', num('--gpu-memory-utilization'))
  .option('--enable-prompt-tokens-details', 'usage carries prompt_tokens_details.cached_tokens (vLLM flag; off by default like vLLM)', false)
  .option('--max-num-seqs <n>', 'batch size limit (default 1024, vLLM on an H200)', int('--max-num-seqs'))
  .option('--max-num-batched-tokens <n>', 'token budget per step', int('--max-num-batched-tokens'))
  .option('--no-chunked-prefill', 'prefill each prompt whole in one step')
  .option('--no-enable-prefix-caching', 'turn automatic prefix caching off (vLLM\'s --no-enable-prefix-caching): every prompt is recomputed')
  .option('--tokenizer <dir>', 'folder with a Hugging Face tokenizer.json (default: built-in tokenizer)')
  .option('--seed <n>', 'random seed', int('--seed'), 0)
  .option('--kv-events', 'publish KV-cache events over ZeroMQ like vLLM --kv-events-config', false)
  .option('--kv-events-port <n>', 'replica i binds events on port n+2i and replay on n+2i+1 (0 = ephemeral)', int('--kv-events-port'), 5557)
  .addOption(new Option('--kv-events-encoding <enc>', 'EventBatch encoding: array (vLLM <= mid-2026) or map (newest vLLM)').choices(['array', 'map']).default('array'))
  .option('--kv-events-connect <addr>', 'connect every PUB to the router bound SUB (e.g. tcp://127.0.0.1:5557) instead of binding')
  .addOption(new Option('--engine <kind>', 'HTTP surface the replicas speak: vLLM, SGLang or llama.cpp (metric names, /props or /server_info, /tokenize, usage/timings, llama.cpp slots)').choices(['vllm', 'sglang', 'llamacpp']).default('vllm'))
  .option('--parallel <n>', 'llama.cpp dialect: server slots per replica (-np); each keeps only its last prompt', int('--parallel'), 4)
  .addOption(new Option('--llamacpp-build <b>', 'llama.cpp dialect: newer build (cached_tokens, timings.cache_n) or older (neither; kv_cache_usage_ratio)').choices(['new', 'old']).default('new'))
  .option('--slow-metrics', '/metrics waits for the current engine step, like llama.cpp (default for --engine llamacpp)')
  .option('--no-slow-metrics', '/metrics answers at once even with --engine llamacpp')
  .option('--kv-events-clear-on-restart', 'send AllBlocksCleared when a replica restarts (old behaviour; vLLM sends none, it just restarts the sequence at 0)', false)
  .addOption(new Option('--role <role>', 'P/D KV connector role of every replica (like vLLM --kv-transfer-config NixlConnector); default: no connector').choices(['prefill', 'decode', 'both']))
  .addOption(new Option('--kv-link <link>', 'KV transfer link model: rdma (50 GB/s) or nvlink (450 GB/s); needs --role').choices(['rdma', 'nvlink']))
  .option('--kv-bytes-per-token <n>', 'KV-cache bytes per token (default 131072: Llama-3.1-8B bf16); needs --role', int('--kv-bytes-per-token'))
  .option('--kv-link-gbps <x>', 'link bandwidth in GB/s (overrides --kv-link); needs --role', num('--kv-link-gbps'))
  .option('--kv-pin-timeout-ms <n>', 'prefill: free pinned KV blocks no decoder pulled after this long (default 480000, vLLM VLLM_NIXL_ABORT_REQUEST_TIMEOUT); needs --role', int('--kv-pin-timeout-ms'))
  .action(async (o) => {
    const pdLogger = createLogger('warn');
    const pd = simPdOptions(o, (m) => pdLogger.warn(m));
    const fleet = await startFleet({
      dialect: { engine: o.engine as 'vllm' | 'sglang' | 'llamacpp', parallel: o.parallel, llamacppBuild: o.llamacppBuild as 'new' | 'old' },
      ...(o.slowMetrics !== undefined ? { slowMetrics: o.slowMetrics as boolean } : {}),
      pd,
      replicas: o.replicas,
      basePort: o.port,
      host: o.host,
      model: o.model,
      profile: o.profile as ProfileId,
      timeScale: o.timeScale,
      blockSize: o.blockSize,
      numGpuBlocks: simKvBlocks(o.numGpuBlocks, o.kvBlocks, o.gpuMemoryUtilization),
      gpuMemoryUtilization: o.gpuMemoryUtilization,
      enablePromptTokensDetails: o.enablePromptTokensDetails,
      maxNumSeqs: o.maxNumSeqs,
      maxNumBatchedTokens: o.maxNumBatchedTokens,
      enableChunkedPrefill: o.chunkedPrefill,
      enablePrefixCaching: o.enablePrefixCaching,
      tokenizerDir: o.tokenizer,
      seed: o.seed,
      kvEvents:
        o.kvEvents || o.kvEventsConnect
          ? { basePort: o.kvEventsPort, encoding: o.kvEventsEncoding as 'array' | 'map', connect: o.kvEventsConnect, clearOnRestart: o.kvEventsClearOnRestart === true }
          : undefined,
    });
    for (const r of fleet.replicas) process.stderr.write(`simulated ${r.dialect} replica ${r.id} on ${r.url}\n`);
    for (const k of fleet.kvEvents) process.stderr.write(`  ${k.replicaId} KV events on ${k.endpoint} (replay ${k.replayEndpoint ?? 'off'}, topic ${k.topic})\n`);
    process.stdout.write(fleetEndpointList(fleet) + '\n');
    untilSignal(() => fleet.close());
  });

program
  .command('sidecar')
  .description("llm-d's P/D routing sidecar in front of a decode pod's model server (honours x-prefiller-host-port)")
  .option('--host <addr>', 'listen address', '0.0.0.0')
  .option('--port <n>', 'listen port', int('--port'), 8000)
  .option('--model-server-host <addr>', 'the decode model server host', '127.0.0.1')
  .option('--model-server-port <n>', 'the decode model server port (llm-d: 8200)', int('--model-server-port'), 8200)
  .option('--prefill-max-retries <n>', 'retries of the prefill leg on 502/503/504', int('--prefill-max-retries'), 3)
  .option('--prefill-retry-backoff-ms <n>', 'first retry backoff, doubled per retry', int('--prefill-retry-backoff-ms'), 100)
  .option('--enable-ssrf-protection', 'refuse prefill targets not in --prefill-allow (403)', false)
  .option('--prefill-allow <list>', 'known prefill endpoints, host:port,...')
  .option('--enable-prefiller-sampling', 'pick a random entry of a CSV x-prefiller-host-port', false)
  .addOption(new Option('--log-level <level>', 'log level').choices(LEVELS).default(process.env.KVROUTE_LOG_LEVEL ?? 'warn'))
  .action(async (o) => {
    const logger = createLogger(o.logLevel as LogLevel);
    const s = await runSidecar({ ...o, logger });
    process.stderr.write(`kvroute sidecar on ${s.url} -> model server ${o.modelServerHost}:${o.modelServerPort}\n`);
    untilSignal(() => s.close());
  });

program
  .command('demo')
  .description('run the embedded demo: a simulated 3-replica fleet behind kvroute, vs round robin')
  .option('--json', 'print the machine-readable summary (docs/demo.md) instead of tables', false)
  .addOption(new Option('--profile <id>', 'GPU step-time profile').choices(PROFILES).default('llama-3.1-8b'))
  .option('--time-scale <x>', 'simulated time scale', num('--time-scale'), 1)
  .option('--seed <n>', 'workload seed', int('--seed'), 7)
  .action(async (o) => {
    const summary = await runDemo({ profile: o.profile, timeScale: o.timeScale, seed: o.seed, onProgress: (l) => process.stderr.write(`[demo] ${l}\n`) });
    process.stdout.write((o.json ? demoJson(summary) : formatDemoReport(summary)) + '\n');
  });

program
  .command('doctor')
  .description('check a fleet (and the router) for what breaks cache-aware routing: prefix caching off, no KV events, pod-id mismatch, block size, hot-spotting, bypassed router')
  .option('--endpoints <list>', 'comma-separated model-server host:port list (default: the router\'s endpoints)')
  .option('--router-admin <url>', 'the router\'s admin URL, e.g. http://127.0.0.1:9090')
  .option('--block-size <n>', 'the router\'s KV block size in tokens, when --router-admin is not given', int('--block-size'))
  .option('--probe', 'send the same prompt twice to each endpoint and through the router to see the second one hit', false)
  .option('--model <name>', 'model for probe requests (default: the first the endpoint lists)')
  .option('--window-ms <n>', 'sample, wait this long, sample again: compare counters over the window (0 = since start)', int('--window-ms'), 0)
  .option('--timeout-ms <n>', 'per-request timeout', int('--timeout-ms'), 5000)
  .option('--prefill-endpoints <list>', 'P/D: the prefill endpoints host:port,... (their KV connector and port are checked)')
  .option('--pd', 'P/D is expected (also when PD_ENABLED=true in the environment)', false)
  .option('--json', 'print the report as JSON', false)
  .action(async (o) => {
    const report = await runDoctor({
      pdExpected: o.pd || /^(true|1)$/i.test(process.env.PD_ENABLED ?? ''),
      prefillEndpoints: o.prefillEndpoints ? String(o.prefillEndpoints).split(',').map((x: string) => x.trim()).filter(Boolean) : undefined,
      endpoints: o.endpoints ? String(o.endpoints).split(',').map((x: string) => x.trim()).filter(Boolean) : undefined,
      routerAdmin: o.routerAdmin,
      blockSize: o.blockSize,
      probe: o.probe,
      model: o.model,
      windowMs: o.windowMs,
      timeoutMs: o.timeoutMs,
    });
    process.stdout.write((o.json ? doctorJson(report) : formatDoctorReport(report)) + '\n');
    process.exitCode = report.ok ? 0 : 1;
  });

program
  .command('bench')
  .description('compare routing strategies on one workload, each on a fresh fleet (virtual: simulated time; live: real HTTP through the gateway)')
  .addOption(new Option('--workload <name>', 'workload').choices(['seeds-cache-hit', 'seeds-demo', 'shared-prefix', 'multi-turn-chat', 'trace', 'tool-agent', 'rag', 'azure']).default('shared-prefix'))
  .option('--workload-preset <name>', 'shared-prefix configuration: sglang-default, llm-d-precise, llm-d-shared-prefix-synthetic')
  .addOption(new Option('--preset <name>', 'deprecated: use --workload-preset (serve --preset names a scheduling profile)').hideHelp())
  .option('--strategies <list>', 'comma-separated: random,round-robin,least-loaded,least-request,client-ip,llm-d-approx,llm-d-precise,sglang-idealised,sglang-faithful,seeds,kvroute (default: all); live engine also: sglang-router-live, envoy-least-request-live (real routers the bench starts), external:<label>=<url> (a running router, with --endpoints)')
  .option('--config <file>', 'EndpointPickerConfig YAML to run as one more strategy (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .addOption(new Option('--engine <kind>', 'virtual (simulated time, deterministic) or live (HTTP through the gateway)').choices(['virtual', 'live']).default('virtual'))
  .option('--endpoints <list>', 'live: OpenAI-compatible endpoints (host:port[;engine=vllm|sglang|llamacpp],...; engine detected when not given) instead of a simulated fleet')
  .option('--gateway-url <url>', 'live with --endpoints: send the workload through this running gateway (kvroute, Envoy + EPP, any router) instead of starting one per strategy; hit rates from the endpoints\' counters')
  .option('--gateway-process', 'live: run kvroute\'s gateway as its own `kvroute serve` process per strategy (as the live peers run), not inside the bench process with the simulated fleet')
  .option('--replicas <n>', 'simulated replicas', int('--replicas'), 8)
  .option('--requests <n>', 'cap on requests', int('--requests'))
  .option('--rate <r>', 'arrival rate in req/s, or a ladder like 3,10,60')
  .option('--seed <n>', 'seed of the workload, tie-breaks and engines', int('--seed'), 1)
  .option('--json', 'print the JSON report (docs/bench.md) instead of tables', false)
  .option('--html <file>', 'also write a self-contained HTML report')
  .option('--details', 'per-replica tables', false)
  .option('--gpu-blocks <n>', 'KV capacity per replica in blocks of 16 (default: from the profile)', int('--gpu-blocks'))
  .option('--block-size <n>', 'KV block size in tokens', int('--block-size'))
  .option('--max-num-seqs <n>', 'batch size limit per replica', int('--max-num-seqs'))
  .option('--max-num-batched-tokens <n>', 'token budget per step', int('--max-num-batched-tokens'))
  .addOption(new Option('--profile <id>', 'GPU step-time profile').choices(PROFILES).default('llama-3.1-8b'))
  .option('--time-scale <x>', 'live simulated fleet: step and arrival time multiplier', num('--time-scale'))
  .option('--model <name>', 'model name in requests')
  .option('--groups <n>', 'shared-prefix groups', int('--groups'))
  .option('--prompts-per-group <n>', 'shared-prefix prompts per group', int('--prompts-per-group'))
  .option('--system-tokens <n>', 'shared-prefix / chat system prompt tokens', int('--system-tokens'))
  .option('--question-tokens <n>', 'question / user message tokens', int('--question-tokens'))
  .option('--output-tokens <n>', 'output tokens per request', int('--output-tokens'))
  .option('--users <n>', 'multi-turn-chat users', int('--users'))
  .option('--turns <n>', 'multi-turn-chat turns per user', int('--turns'))
  .option('--think-time <s>', 'multi-turn-chat mean think time (s)', num('--think-time'))
  .option('--users-per-ip <n>', 'multi-turn-chat users sharing one client IP', int('--users-per-ip'))
  .option('--trace <file>', 'trace file (.jsonl[.gz]; default: the bundled Mooncake trace)')
  .option('--trace-format <fmt>', 'mooncake or bailian (default: detected)')
  .option('--rate-scale <x>', 'trace: arrival rate multiplier', num('--rate-scale'))
  .option('--seeds <list>', 'paired comparison over seeds (1-10 or 1,2,5): mean difference with a 95 % interval per figure, the only way bench names a winner')
  .option('--baseline <name>', 'baseline strategy of --seeds (default sglang when run)')
  .option('--closed-loop <n>', 'also run each strategy closed-loop with n clients (no think time): saturation throughput', int('--closed-loop'))
  .option('--slo-ttft-ms <ms>', 'goodput target: time to first token (default 1000)', num('--slo-ttft-ms'))
  .option('--slo-tpot-ms <ms>', 'goodput target: time per output token (default 50)', num('--slo-tpot-ms'))
  .option('--event-delay-ms <ms>', 'virtual: KV events reach the router this late (simulated ms)', num('--event-delay-ms'))
  .option('--event-loss <fraction>', 'virtual: share of KV event batches lost', num('--event-loss'))
  .option('--capacity <list>', "KV capacity sweep: multipliers of the profile's capacity, e.g. 0.5x,1x,2x")
  .action(async (o) => {
    if (o.preset !== undefined) {
      process.stderr.write('kvroute bench: --preset is deprecated and will be removed; use --workload-preset (serve --preset names a scheduling profile)\n');
      if (o.workloadPreset !== undefined && o.workloadPreset !== o.preset) throw new KvrError('KVR_ERR_USAGE', 'give --workload-preset only (--preset is its deprecated spelling)');
    }
    await runBenchCommand({ ...o, preset: o.workloadPreset ?? o.preset }, process.stdout, process.stderr);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof KvrError) {
    process.stderr.write(`kvroute: ${err.message} [${err.code}]\n`);
    process.exit(2);
  }
  process.stderr.write(`kvroute: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
