/**
 * API keys, header stripping and endpoint privacy on the public port, over real HTTP: 401 in
 * OpenAI's shape without or with a wrong key, keys never in the logs, the tenant counted in
 * metrics; client credentials not forwarded upstream when stripping is on; signed session
 * tokens honoured and forged ones ignored; opaque endpoint ids. Each failed on the code before
 * (no authentication, every client header forwarded, plain base64 tokens honoured from anyone).
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { ApiKeyStore } from '../../src/server/http/api-keys.js';
import { publicPortRouterOptions } from '../../src/app/serve.js';

const MODEL = 'm';
const KEY_A = 'sk-team-a-0123456789abcdef';
const KEY_B = 'sk-team-b-fedcba9876543210';

/** A vLLM-speaking upstream that records the headers of every inference request. */
function recordingUpstream(seen: IncomingHttpHeaders[]): Server {
  return createServer((req, res) => {
    if (req.url === '/metrics') return res.end('vllm:num_requests_running 0\nvllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0\n');
    if (req.url === '/v1/models') return res.end(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model' }] }));
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } }));
    });
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 });
const seen: IncomingHttpHeaders[] = [];
const logLines: string[] = [];
const upstreams: Server[] = [];
let addrs: string[] = [];

before(async () => {
  for (let i = 0; i < 3; i++) upstreams.push(recordingUpstream(seen));
  addrs = await Promise.all(upstreams.map(listen));
});
after(() => {
  for (const u of upstreams) u.close();
});

async function router(extra: Parameters<typeof startRouter>[0] extends infer O ? Partial<O> : never): Promise<RunningRouter> {
  const logger = pino({ level: 'debug' }, new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }));
  const r = await startRouter({ endpoints: addrs.map((a) => ({ url: a })), scheduler: buildScheduler(), port: 0, adminPort: 0, processMetrics: false, scrapeIntervalMs: 50, logger, ...extra });
  for (let i = 0; i < 100 && r.pool.healthyCount() < addrs.length; i++) await new Promise((res) => setTimeout(res, 20));
  return r;
}

async function post(r: RunningRouter, headers: Record<string, string>) {
  const res = await request(`${r.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as Record<string, unknown> };
}

test('API keys: 401 in OpenAI shape without or with a wrong key; Bearer and x-api-key accepted; tenant counted; keys never logged', async () => {
  const apiKeys = new ApiKeyStore();
  apiKeys.add('team-a', KEY_A);
  apiKeys.add('team-b', KEY_B);
  const r = await router({ apiKeys });
  try {
    const none = await post(r, {});
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="kvroute"');
    const err = (none.json as { error: Record<string, unknown> }).error;
    assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.code, 'KVR_ERR_UNAUTHORIZED');
    const wrong = await post(r, { authorization: 'Bearer sk-wrong-key-000000000' });
    assert.equal(wrong.status, 401);
    assert.match(String((wrong.json as { error: { message: string } }).error.message), /incorrect API key/);
    const almost = await post(r, { authorization: `Bearer ${KEY_A.slice(0, -1)}X` });
    assert.equal(almost.status, 401);
    assert.equal((await post(r, { authorization: `Bearer ${KEY_A}` })).status, 200);
    assert.equal((await post(r, { 'x-api-key': KEY_B })).status, 200);
    assert.equal((await post(r, { 'x-api-key': KEY_B })).status, 200);
    const models = await request(`${r.url}/v1/models`);
    assert.equal(models.statusCode, 401, '/v1/models needs a key too');
    await models.body.text();
    const health = await request(`${r.url}/health`);
    assert.equal(health.statusCode, 200, '/health needs no key');
    await health.body.text();
    const metrics = await (await request(`${r.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /kvroute_tenant_requests_total\{tenant="team-a",status="200"\} 1/);
    assert.match(metrics, /kvroute_tenant_requests_total\{tenant="team-b",status="200"\} 2/);
    assert.match(metrics, /kvroute_client_errors_total\{kind="unauthorized"\} 4/);
    const logs = logLines.join('');
    assert.match(logs, /"status":401/);
    for (const k of [KEY_A, KEY_B, 'sk-wrong-key-000000000', KEY_A.slice(0, -1)]) assert.ok(!logs.includes(k), 'a key appears in the logs');
    for (const h of seen) {
      assert.equal(h.authorization, undefined, 'with API keys on, the client key is not forwarded upstream');
      assert.equal(h['x-api-key'], undefined);
    }
  } finally {
    await r.close();
  }
});

test('keys file: tenant:key lines with comments; bad lines are refused with the line number, never the key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-keys-'));
  const file = join(dir, 'keys');
  writeFileSync(file, `# tenants\nteam-a:${KEY_A}\n\nteam-b: ${KEY_B}\n`);
  const store = ApiKeyStore.from(['sk-default-key-123'], file)!;
  assert.deepEqual(store.tenants(), ['default', 'team-a', 'team-b']);
  assert.equal(store.verify(KEY_B), 'team-b');
  assert.equal(store.verify('sk-default-key-123'), 'default');
  assert.equal(store.verify('nope-nope-nope'), undefined);
  writeFileSync(file, `team-a:${KEY_A}\nteam c:short\n`);
  assert.throws(() => ApiKeyStore.from([], file), (e: Error) => e.message.includes(':2') && !e.message.includes('short'));
  writeFileSync(file, 'team-a:tiny\n');
  assert.throws(() => ApiKeyStore.from([], file), (e: Error) => /at least 8 characters/.test(e.message) && !e.message.includes('tiny'));
  assert.equal(ApiKeyStore.from([], undefined), undefined, 'no keys: authentication off');
});

test('configured header stripping: Authorization, Cookie and x-api-key never reach the upstream', async () => {
  const r = await router(publicPortRouterOptions({ stripHeaders: 'authorization,cookie,x-api-key' }));
  try {
    seen.length = 0;
    const res = await post(r, { authorization: 'Bearer client-secret', cookie: 'session=abc', 'x-api-key': 'k', 'x-custom': 'kept' });
    assert.equal(res.status, 200);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].authorization, undefined);
    assert.equal(seen[0].cookie, undefined);
    assert.equal(seen[0]['x-api-key'], undefined);
    assert.equal(seen[0]['x-custom'], 'kept', 'other headers are forwarded');
  } finally {
    await r.close();
  }
  const plain = await router({});
  try {
    seen.length = 0;
    await post(plain, { authorization: 'Bearer upstream-key' });
    assert.equal(seen[0].authorization, 'Bearer upstream-key', 'default without API keys: Authorization is forwarded (vLLM --api-key)');
  } finally {
    await plain.close();
  }
});

/** Score of the session-affinity scorer per endpoint in the last decision. */
function affinityScores(r: RunningRouter): Record<string, number> {
  const d = r.decisions.toArray().at(-1)!;
  const out: Record<string, number> = {};
  for (const c of d.result.candidates) {
    for (const [name, v] of Object.entries(c.scores)) if (name.includes('session')) out[c.endpointId] = v;
  }
  return out;
}

test('signed session tokens: an echoed token pins, a forged or plain llm-d token is ignored', async () => {
  const r = await router(publicPortRouterOptions({ signSessionTokens: true }));
  try {
    const first = await post(r, {});
    const token = String(first.headers['x-session-token']);
    const servedBy = String(first.headers['x-kvroute-endpoint']);
    assert.match(token, /^ep-[0-9a-f]{12}\.[A-Za-z0-9_-]{22}$/);
    for (let i = 0; i < 5; i++) {
      const again = await post(r, { 'x-session-token': token });
      assert.equal(again.headers['x-kvroute-endpoint'], servedBy, 'a signed token keeps the session on its endpoint');
      assert.equal(affinityScores(r)[servedBy], 1);
    }
    const other = addrs.find((a) => a !== servedBy)!;
    const plain = Buffer.from(other).toString('base64');
    await post(r, { 'x-session-token': plain });
    assert.ok(Object.values(affinityScores(r)).every((v) => v === 0), 'an unsigned llm-d token is ignored');
    const [opaque, mac] = token.split('.');
    await post(r, { 'x-session-token': `${opaque}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}` });
    assert.ok(Object.values(affinityScores(r)).every((v) => v === 0), 'a token with a wrong MAC is ignored');
    await post(r, { 'x-session-token': 'garbage' });
    assert.ok(Object.values(affinityScores(r)).every((v) => v === 0));
  } finally {
    await r.close();
  }
  const llmd = await router({});
  try {
    const target = addrs[2];
    await post(llmd, { 'x-session-token': Buffer.from(target).toString('base64') });
    assert.equal(affinityScores(llmd)[target], 1, 'signing off: llm-d plain tokens still work');
  } finally {
    await llmd.close();
  }
});

test('hidden endpoints: opaque ids in x-kvroute-endpoint, tokens still pin, no explain header', async () => {
  const secret = 'a-shared-secret-of-32-characters';
  const r = await router(publicPortRouterOptions({ hideEndpoints: true, sessionSecret: secret }));
  const r2 = await router(publicPortRouterOptions({ hideEndpoints: true, sessionSecret: secret }));
  try {
    const first = await post(r, { 'x-kvroute-explain': '1' });
    const shown = String(first.headers['x-kvroute-endpoint']);
    assert.match(shown, /^ep-[0-9a-f]{12}$/);
    assert.equal(first.headers['x-kvroute-explain'], undefined, 'no explanation (it lists endpoint ids)');
    for (const h of Object.values(first.headers)) for (const a of addrs) assert.ok(!String(h).includes(a), `an upstream address leaks in a header: ${String(h)}`);
    const token = String(first.headers['x-session-token']);
    const again = await post(r2, { 'x-session-token': token });
    assert.equal(again.headers['x-kvroute-endpoint'], shown, 'with a shared secret, another router replica honours the token');
  } finally {
    await r.close();
    await r2.close();
  }
});
