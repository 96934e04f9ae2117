/**
 * P/D end to end over real HTTP: OpenAI client -> kvroute gateway (llm-d's sample P/D config,
 * unchanged) -> `kvroute sidecar` on the decode pod -> simulated prefill replica + simulated
 * decode replica; and the llm-d header path straight to the sidecar.
 *
 * What the engine reports proves which leg did what: the decode replica's own cached_tokens
 * would be ~the whole prompt (it received the KV by transfer); the client must see the prefill
 * replica's cached_tokens instead (the usage rewrite), and the prefill replica's pinned-blocks
 * gauge must come back to 0 (pulled), never by expiry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { longPrompt, PD_MODEL, startPdFleet, waitFor } from '../helpers/pd-fleet.js';

async function counter(url: string, name: string, label = ''): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(label));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('client -> gateway -> decode sidecar -> prefill + decode: non-streaming and streaming usage show the prefill cached tokens', async () => {
  const pd = await startPdFleet({ gateway: 'header' });
  try {
    const [P] = pd.prefill;
    const [D] = pd.decode;
    const client = new OpenAI({ baseURL: `${pd.router!.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const prompt = longPrompt(1);
    const r1 = await client.completions.create({ model: PD_MODEL, prompt, max_tokens: 8 });
    assert.equal(r1.choices[0].finish_reason, 'length');
    const prompt1 = r1.usage!.prompt_tokens;
    assert.ok(prompt1 > 500);
    // The prefill replica computed the prompt cold: 0 cached. The decode replica received the KV
    // (its engine counts it as a cache hit) but the client sees the prefill's 0.
    assert.equal(r1.usage!.prompt_tokens_details?.cached_tokens, 0);
    assert.equal(P.pd!.stats().pinsTotal, 1);
    assert.equal(D.pd!.stats().pulls.ok, 1);
    assert.ok(D.pd!.stats().transferredTokens >= prompt1 - 16);
    assert.ok(D.engine.stats().prefixCacheHits >= prompt1 - 16, 'the decode engine found the transferred KV');
    await waitFor(() => P.pd!.stats().pinnedBlocks === 0, 'prefill pins released');
    assert.equal(P.pd!.stats().pinsExpired, 0);

    // Streaming, same prefix + a long new tail: the prefill replica has the prefix cached now.
    const stream = await client.completions.create({ model: PD_MODEL, prompt: prompt + ' ' + longPrompt(2, 300), max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    let text = '';
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      text += c.choices[0]?.text ?? '';
    }
    assert.ok(text.length > 0);
    const pCached = P.engine.stats().prefixCacheHits;
    assert.ok(pCached >= 500, `prefill replica reused the prefix (${pCached})`);
    assert.equal(usage?.prompt_tokens_details?.cached_tokens, pCached, 'client sees the prefill replica\'s cached tokens');
    assert.equal(D.pd!.stats().pulls.ok, 2);
    await waitFor(() => P.pd!.stats().pinnedBlocks === 0, 'prefill pins released');
    const metrics = `${pd.router!.adminUrl}/metrics`;
    assert.equal(await counter(metrics, 'kvroute_pd_decisions_total', 'decision="disaggregated"'), 2);
  } finally {
    await pd.close();
  }
});

test('llm-d header path straight to the sidecar; SSRF protection refuses unknown prefill targets', async () => {
  const pd = await startPdFleet({});
  try {
    const [P] = pd.prefill;
    const [S] = pd.sidecars;
    const body = JSON.stringify({ model: PD_MODEL, messages: [{ role: 'user', content: longPrompt(3) }], max_tokens: 5 });
    const ok = await fetch(`${S.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-prefiller-host-port': `${P.host}:${P.port}` }, body });
    assert.equal(ok.status, 200);
    const j = (await ok.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } }; choices: { message: { content: string } }[] };
    assert.equal(j.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(P.pd!.stats().pinsTotal, 1);
    assert.equal(pd.decode[0].pd!.stats().pulls.ok, 1);
    const bad = await fetch(`${S.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-prefiller-host-port': '169.254.169.254:80' }, body });
    assert.equal(bad.status, 403);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /not a known prefill endpoint/);
    // No header: the decode pod serves the request alone.
    const local = await fetch(`${S.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(local.status, 200);
    assert.equal(P.pd!.stats().pinsTotal, 1);
    assert.equal(await counter(`${S.url}/sidecar/metrics`, 'kvroute_pd_ssrf_rejections_total'), 1);
  } finally {
    await pd.close();
  }
});

test('a client that leaves between the legs: the sidecar frees the prefill replica\'s pinned blocks', async () => {
  const pd = await startPdFleet({});
  try {
    const [P] = pd.prefill;
    const [D] = pd.decode;
    const [S] = pd.sidecars;
    await D.setFaults({ addedLatencyMs: 60_000 }); // the decode leg hangs before the decode engine sees it
    const ac = new AbortController();
    const pending = fetch(`${S.url}/v1/completions`, {
      method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json', 'x-prefiller-host-port': `${P.host}:${P.port}` },
      body: JSON.stringify({ model: PD_MODEL, prompt: longPrompt(4), max_tokens: 4 }),
    }).catch((e: unknown) => e);
    await waitFor(() => P.pd!.stats().pinnedBlocks > 0, 'prefill leg done, blocks pinned');
    ac.abort();
    await pending;
    await waitFor(() => P.pd!.stats().pinnedBlocks === 0, 'pinned blocks freed after the client left');
    assert.equal(P.pd!.stats().pinsExpired, 0, 'freed on request, not by the timeout');
    assert.equal(D.pd!.stats().pulls.ok, 0, 'the decode replica never pulled');
    await waitFor(() => P.engine.blockManager.numFreeBlocks === P.engine.blockManager.numBlocks, 'every prefill block back in the free queue');
    assert.equal(await counter(`${S.url}/sidecar/metrics`, 'kvroute_pd_prefill_releases_total', 'result="ok"'), 1);
  } finally {
    await pd.close();
  }
});

test('a dead prefill pod: the sidecar prefills on the decode pod, counted as a fallback', async () => {
  const pd = await startPdFleet({});
  try {
    const [P] = pd.prefill;
    const [S] = pd.sidecars;
    await P.setDown(true);
    const res = await fetch(`${S.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-prefiller-host-port': `${P.host}:${P.port}` },
      body: JSON.stringify({ model: PD_MODEL, prompt: longPrompt(5), max_tokens: 4 }),
    });
    assert.equal(res.status, 200);
    const j = (await res.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } | null } };
    // vLLM sets prompt_tokens_details only when cached_tokens > 0: a cold prefill leaves it null.
    assert.equal(j.usage.prompt_tokens_details?.cached_tokens ?? 0, 0, 'decode prefilled locally (cold)');
    assert.equal(pd.decode[0].pd!.stats().pulls.ok, 0);
    assert.equal(await counter(`${S.url}/sidecar/metrics`, 'kvroute_pd_prefill_fallbacks_total', 'reason="unreachable"'), 1);
  } finally {
    await pd.close();
  }
});
