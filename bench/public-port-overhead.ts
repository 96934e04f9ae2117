/**
 * What the public-port hardening costs per request: the same gateway handler (scheduler, proxy)
 * in front of the same in-process upstream, served (a) by a plain `http.createServer` as before
 * and (b) by `createPublicServer` + `guardPublicHandler` (timeouts, connection accounting,
 * response-header interception; optionally API keys and signed tokens). Interleaved rounds;
 * CPU time of this process per request (user + system, less sensitive to a loaded machine than
 * latency) and wall time per request.
 *
 *   npm run build && node dist/bench/public-port-overhead.js [--requests 2000] [--rounds 5]
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import { EndpointPool } from '../src/datalayer/endpoint-pool.js';
import { RouterMetrics } from '../src/metrics/router-metrics.js';
import { buildScheduler } from '../src/app/build-scheduler.js';
import { createGatewayHandler } from '../src/server/openai/gateway.js';
import { createPublicServer, resolvePublicPortOptions } from '../src/server/http/public-server.js';
import { guardPublicHandler } from '../src/server/http/public-guard.js';
import { ApiKeyStore } from '../src/server/http/api-keys.js';
import { EndpointPrivacy } from '../src/server/http/endpoint-privacy.js';

const arg = (n: string, d: number) => {
  const i = process.argv.indexOf(`--${n}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const REQUESTS = arg('requests', 2000);
const ROUNDS = arg('rounds', 5);
const MODEL = 'm';
const KEY = 'sk-bench-0123456789abcdef';

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

async function main(): Promise<void> {
  const upstream = createServer((req, res) => {
    if (req.url === '/v1/models') return res.end(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model' }] }));
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}');
    });
  });
  const upPort = await listen(upstream);
  const pool = new EndpointPool([{ url: `127.0.0.1:${upPort}` }]);
  const ep = pool.all()[0];
  (ep as { models: readonly string[] }).models = [MODEL];
  (ep as { healthy: boolean }).healthy = true;
  const metrics = new RouterMetrics();
  const dispatcher = new Agent({ connections: 64 });
  const handler = createGatewayHandler({
    pool, scheduler: buildScheduler(), clock: systemClock, metrics, logger: silentLogger, dispatcher,
    maxBodyBytes: 1 << 20, trustForwardedFor: false, upstreamTimeoutMs: 60_000,
  });
  const keys = new ApiKeyStore();
  keys.add('bench', KEY);
  const variants: Array<{ name: string; server: Server; headers: Record<string, string> }> = [
    { name: 'plain http.createServer (before)', server: createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, handler as RequestListener), headers: {} },
    { name: 'public server + guard (defaults)', server: createPublicServer(guardPublicHandler(handler, { metrics, logger: silentLogger, maxBodyBytes: 1 << 20 }), resolvePublicPortOptions(), { metrics, logger: silentLogger, maxBodyBytes: 1 << 20 }), headers: {} },
    {
      name: 'public server + guard + API key + hidden endpoints',
      server: createPublicServer(
        guardPublicHandler(handler, { metrics, logger: silentLogger, maxBodyBytes: 1 << 20, apiKeys: keys, privacy: new EndpointPrivacy({ hideEndpoints: true }), endpointIds: () => [ep.id] }),
        resolvePublicPortOptions(),
        { metrics, logger: silentLogger, maxBodyBytes: 1 << 20 },
      ),
      headers: { authorization: `Bearer ${KEY}` },
    },
  ];
  const urls = await Promise.all(variants.map(async (v) => `http://127.0.0.1:${await listen(v.server)}/v1/chat/completions`));
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello there' }], max_tokens: 1 });
  const client = new Agent({ connections: 8 });
  const cpu: number[][] = variants.map(() => []);
  const wall: number[][] = variants.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let v = 0; v < variants.length; v++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < REQUESTS; i += 8) {
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            const r = await request(urls[v], { method: 'POST', body, headers: { 'content-type': 'application/json', ...variants[v].headers }, dispatcher: client });
            await r.body.text();
            if (r.statusCode !== 200) throw new Error(`${variants[v].name}: status ${r.statusCode}`);
          }),
        );
      }
      const c = process.cpuUsage(c0);
      cpu[v].push((c.user + c.system) / REQUESTS);
      wall[v].push(((performance.now() - t0) * 1000) / REQUESTS);
    }
  }
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  process.stdout.write(`${REQUESTS} requests x ${ROUNDS} interleaved rounds, 8 concurrent; medians per request (CPU of this process: client + server + upstream)\n`);
  for (let v = 0; v < variants.length; v++) {
    process.stdout.write(`${variants[v].name.padEnd(52)} CPU ${median(cpu[v]).toFixed(0).padStart(5)} us  (x${(median(cpu[v]) / median(cpu[0])).toFixed(3)})   wall ${median(wall[v]).toFixed(0).padStart(5)} us\n`);
  }
  for (const v of variants) v.server.close();
  upstream.close();
  await client.close();
  await dispatcher.close();
}

await main();
