/**
 * The simulator's P/D connector over real HTTP between replicas: real block ids in
 * kv_transfer_params, pins held until pulled, KV events from both replicas, pin expiry visible
 * in the metrics, a full local hit pulls nothing but frees the prefill pins, invalid params fall
 * back to local prefill; kv_transfer_params is null on ordinary requests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFleet, type KvCacheEvent } from '../../src/sim/index.js';
import { waitFor, longPrompt } from '../helpers/pd-fleet.js';

const post = async (url: string, body: unknown): Promise<{ status: number; json: Record<string, any> }> => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, any> };
};

test('prefill pins real blocks until the decode replica pulls them; both replicas publish KV events', async () => {
  const events = new Map<string, KvCacheEvent[]>();
  const fleet = await startFleet({
    replicas: 2, basePort: 0, timeScale: 0.02, pd: (i) => ({ role: i === 0 ? 'prefill' : 'decode' }),
    onKvEvent: (id, ev) => void (events.get(id) ?? events.set(id, []).get(id)!).push(ev),
  });
  try {
    const [P, D] = fleet.replicas;
    const prompt = longPrompt(21, 400);
    const pre = await post(`${P.url}/v1/completions`, { prompt, max_tokens: 1, stream: false, kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null } });
    assert.equal(pre.status, 200);
    const kv = pre.json.kv_transfer_params;
    assert.deepEqual(Object.keys(kv).sort(), ['do_remote_decode', 'do_remote_prefill', 'remote_block_ids', 'remote_engine_id', 'remote_host', 'remote_port', 'remote_request_id', 'tp_size']);
    assert.equal(kv.do_remote_prefill, true);
    assert.equal(kv.tp_size, 1);
    assert.equal(kv.remote_port, P.port);
    const blocks = kv.remote_block_ids as number[];
    assert.equal(blocks.length, Math.ceil((pre.json.usage.prompt_tokens + 1) / 16));
    for (const b of blocks) assert.equal(P.engine.blockManager.refCount(b), 1, `block ${b} is pinned`);
    assert.equal(P.pd!.stats().pinnedBlocks, blocks.length);
    const stored = (id: string) => (events.get(id) ?? []).filter((e) => e.type === 'BlockStored').reduce((s, e) => s + (e.type === 'BlockStored' ? e.blockHashes.length : 0), 0);
    assert.ok(stored('sim-0') >= blocks.length - 1);
    assert.equal(stored('sim-1'), 0);
    const dec = await post(`${D.url}/v1/completions`, { prompt, max_tokens: 4, kv_transfer_params: kv });
    assert.equal(dec.status, 200);
    assert.equal(dec.json.kv_transfer_params, null);
    assert.equal(P.pd!.stats().pinnedBlocks, 0);
    for (const b of blocks) assert.equal(P.engine.blockManager.refCount(b), 0);
    assert.ok(stored('sim-1') >= blocks.length - 1, 'the decode replica announces the KV it received');
    // The same request again on the decode replica: a full local hit, nothing to pull, P still told to free.
    const pre2 = await post(`${P.url}/v1/completions`, { prompt, max_tokens: 1, kv_transfer_params: { do_remote_decode: true } });
    assert.ok(P.pd!.stats().pinnedBlocks > 0);
    await post(`${D.url}/v1/completions`, { prompt, max_tokens: 2, kv_transfer_params: pre2.json.kv_transfer_params });
    assert.equal(D.pd!.stats().pulls.local_hit, 1);
    await waitFor(() => P.pd!.stats().pinnedBlocks === 0, 'P freed after a local hit');
    // Invalid params: prefill locally, counted.
    const bad = await post(`${D.url}/v1/completions`, { prompt: longPrompt(22, 100), max_tokens: 2, kv_transfer_params: { do_remote_prefill: true } });
    assert.equal(bad.status, 200);
    assert.equal(D.pd!.stats().pulls.invalid_params, 1);
  } finally {
    await fleet.close();
  }
});

test('pins no decoder pulls expire, visible as expired pins and a pinned-blocks gauge back at 0', async () => {
  const fleet = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.02, pd: { role: 'prefill', pinTimeoutMs: 150 } });
  try {
    const [P] = fleet.replicas;
    await post(`${P.url}/v1/completions`, { prompt: longPrompt(23, 200), max_tokens: 1, kv_transfer_params: { do_remote_decode: true } });
    const gauge = async () => {
      const t = await (await fetch(`${P.url}/metrics`)).text();
      return Number(/^kvroute_sim:pd_pinned_blocks\{[^}]*\} (\d+)/m.exec(t)![1]);
    };
    assert.ok((await gauge()) > 0);
    await waitFor(() => P.pd!.stats().pinsExpired === 1, 'pin expiry');
    assert.equal(await gauge(), 0);
    const t = await (await fetch(`${P.url}/metrics`)).text();
    assert.match(t, /^kvroute_sim:pd_pins_expired_total\{[^}]*\} 1$/m);
    // A pull after expiry is refused (the decoder falls back).
    const r = await fetch(`${P.url}/sim/pd/pull`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ remote_request_id: 'cmpl-sim-0-00000000' }) });
    assert.equal(r.status, 404);
  } finally {
    await fleet.close();
  }
});

test('kv_transfer_params: present on a length-capped do_remote_decode request, null on ordinary requests', async () => {
  const fleet = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.02, pd: { role: 'prefill' } });
  try {
    const [P] = fleet.replicas;
    const r = await post(`${P.url}/v1/completions`, { prompt: longPrompt(24, 100), max_tokens: 5, kv_transfer_params: { do_remote_decode: true } });
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.notEqual(r.json.kv_transfer_params, null);
    const noParams = await post(`${P.url}/v1/completions`, { prompt: longPrompt(25, 100), max_tokens: 5 });
    assert.equal(noParams.json.kv_transfer_params, null, 'a replica with a connector answers kv_transfer_params: null to ordinary requests');
  } finally {
    await fleet.close();
  }
});
