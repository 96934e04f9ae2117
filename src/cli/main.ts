#!/usr/bin/env node
/**
 * The `kvroute` command line. Parses flags and calls library functions; no logic lives here.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { KvrError } from '../core/errors.js';
import { createLogger, type LogLevel } from '../core/logger.js';
import { runServe } from '../app/serve.js';
import { PRESETS, type SchedulerPreset } from '../app/build-scheduler.js';
import { runDemo } from '../demo/run-demo.js';
import { demoJson, formatDemoReport } from '../demo/demo-report.js';
import { startFleet, type ProfileId } from '../sim/index.js';

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

const program = new Command()
  .name('kvroute')
  .description('KV-cache-aware router for LLM serving fleets')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the OpenAI-compatible gateway in front of model-server endpoints')
  .option('--endpoints <list>', 'comma-separated host:port list (options: ;role=decode ;engine=sglang ;id=name); env KVROUTE_ENDPOINTS')
  .option('--config <file>', 'EndpointPickerConfig YAML file')
  .addOption(new Option('--preset <name>', 'built-in scheduling preset').choices([...PRESETS]))
  .option('--host <addr>', 'listen address', '127.0.0.1')
  .option('--port <n>', 'gateway port', int('--port'), 8000)
  .option('--admin-port <n>', 'admin port (/metrics /healthz /readyz)', int('--admin-port'), 9090)
  .addOption(new Option('--engine <kind>', 'default engine flavour of the endpoints').choices(['vllm', 'sglang', 'llamacpp']).default('vllm'))
  .option('--max-body-bytes <n>', 'largest request body accepted', int('--max-body-bytes'), 16 * 1024 * 1024)
  .option('--trust-forwarded-for', 'use X-Forwarded-For as the client address', false)
  .option('--scrape-interval-ms <n>', 'metrics scrape interval', int('--scrape-interval-ms'), 50)
  .addOption(new Option('--log-level <level>').choices(LEVELS).default(process.env.KVROUTE_LOG_LEVEL ?? 'info'))
  .action(async (o) => {
    const logger = createLogger(o.logLevel as LogLevel);
    const router = await runServe({ ...o, preset: o.preset as SchedulerPreset | undefined, env: process.env, logger });
    process.stderr.write(`kvroute gateway on ${router.url}, admin on ${router.adminUrl}\n`);
    untilSignal(() => router.close());
  });

program
  .command('sim')
  .description('serve simulated vLLM replicas on consecutive loopback ports')
  .option('--replicas <n>', 'number of replicas', int('--replicas'), 3)
  .option('--port <n>', 'port of the first replica', int('--port'), 8100)
  .option('--host <addr>', 'listen address', '127.0.0.1')
  .option('--model <name>', 'served model name', 'meta-llama/Llama-3.1-8B-Instruct')
  .addOption(new Option('--profile <id>', 'GPU step-time profile').choices(PROFILES).default('llama-3.1-8b'))
  .option('--time-scale <x>', 'multiply simulated step times (0.25 = 4x faster than the GPU)', num('--time-scale'), 1)
  .option('--block-size <n>', 'KV block size in tokens', int('--block-size'), 16)
  .option('--num-gpu-blocks <n>', 'KV capacity per replica in blocks (default: from the profile)', int('--num-gpu-blocks'))
  .option('--max-num-seqs <n>', 'batch size limit', int('--max-num-seqs'))
  .option('--max-num-batched-tokens <n>', 'token budget per step', int('--max-num-batched-tokens'))
  .option('--no-chunked-prefill', 'prefill each prompt whole in one step')
  .option('--tokenizer <dir>', 'folder with a Hugging Face tokenizer.json (default: built-in tokenizer)')
  .option('--seed <n>', 'random seed', int('--seed'), 0)
  .action(async (o) => {
    const fleet = await startFleet({
      replicas: o.replicas,
      basePort: o.port,
      host: o.host,
      model: o.model,
      profile: o.profile as ProfileId,
      timeScale: o.timeScale,
      blockSize: o.blockSize,
      numGpuBlocks: o.numGpuBlocks,
      maxNumSeqs: o.maxNumSeqs,
      maxNumBatchedTokens: o.maxNumBatchedTokens,
      enableChunkedPrefill: o.chunkedPrefill,
      tokenizerDir: o.tokenizer,
      seed: o.seed,
    });
    for (const r of fleet.replicas) process.stderr.write(`simulated vLLM replica ${r.id} on ${r.url}\n`);
    process.stdout.write(fleet.replicas.map((r) => r.url.replace('http://', '')).join(',') + '\n');
    untilSignal(() => fleet.close());
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof KvrError) {
    process.stderr.write(`kvroute: ${err.message} [${err.code}]\n`);
    process.exit(2);
  }
  process.stderr.write(`kvroute: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
