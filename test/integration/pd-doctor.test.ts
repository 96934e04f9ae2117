/**
 * `kvroute doctor` P/D checks against real simulated replicas: a prefill pod with the KV
 * connector, one without (no kv_transfer_params come back), a wrong prefill port (an HTTP server
 * that is not the OpenAI API), and PD_ENABLED with no prefill pods.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFleet } from '../../src/sim/index.js';
import { runDoctor } from '../../src/doctor/index.js';

test('doctor: connector present / missing, wrong prefill port, PD_ENABLED without prefill pods', async () => {
  const fleet = await startFleet({ replicas: 3, basePort: 0, timeScale: 0.02, pd: (i) => (i === 1 ? undefined : { role: i === 0 ? 'prefill' : 'decode' }) });
  const wrong = createServer((_req, res) => {
    res.writeHead(404);
    res.end('not here');
  });
  await new Promise<void>((r) => wrong.listen(0, '127.0.0.1', r));
  try {
    const [P, noConnector, D] = fleet.replicas;
    const wrongAddr = `127.0.0.1:${(wrong.address() as AddressInfo).port}`;
    const report = await runDoctor({ endpoints: [D.url], prefillEndpoints: [`${P.host}:${P.port}`, `${noConnector.host}:${noConnector.port}`, wrongAddr], pdExpected: true });
    const pd = report.findings.filter((f) => f.check.startsWith('pd-'));
    const at = (check: string, ep: string) => pd.find((f) => f.check === check && f.endpoint === ep);
    assert.equal(pd.find((f) => f.check === 'pd-roles')?.level, 'ok');
    assert.equal(at('pd-connector', `${P.host}:${P.port}`)?.level, 'ok');
    assert.equal(at('pd-connector', `${noConnector.host}:${noConnector.port}`)?.level, 'fail');
    assert.match(at('pd-connector', `${noConnector.host}:${noConnector.port}`)!.message, /without kv_transfer_params/);
    assert.equal(at('pd-prefill-port', wrongAddr)?.level, 'fail');
    assert.match(at('pd-prefill-port', wrongAddr)!.fix, /vLLM's own port/);
    assert.equal(P.pd!.stats().pinnedBlocks, 0, 'the probe\'s pinned blocks were freed');
    assert.equal(report.ok, false);

    const none = await runDoctor({ endpoints: [D.url], pdExpected: true });
    const roles = none.findings.find((f) => f.check === 'pd-roles');
    assert.equal(roles?.level, 'fail');
    assert.match(roles!.message, /PD_ENABLED is set but no prefill endpoint/);
    const off = await runDoctor({ endpoints: [D.url] });
    assert.equal(off.findings.filter((f) => f.check.startsWith('pd-')).length, 0, 'no P/D findings when P/D is not in use');
  } finally {
    await new Promise<void>((r) => wrong.close(() => r()));
    await fleet.close();
  }
});
