/**
 * DNS discovery with an injected resolver (A records, SRV records, NXDOMAIN, resolver failure)
 * driving the real gateway over simulated replicas.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { startFleet } from '../../src/sim/index.js';
import { startRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { DnsDiscovery, type DnsResolver } from '../../src/discovery/dns-discovery.js';
import { createDiscovery } from '../../src/discovery/create-discovery.js';
import { SIM_MODEL } from '../helpers/sim-router.js';

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

/** A resolver answering from tables the test edits; `fail` makes it throw SERVFAIL. */
class TableResolver implements DnsResolver {
  a = new Map<string, string[]>();
  srv = new Map<string, Array<{ name: string; port: number; priority: number; weight: number }>>();
  fail = false;
  queries = 0;
  async resolve4(name: string): Promise<string[]> {
    this.queries++;
    if (this.fail) throw Object.assign(new Error('queryA ESERVFAIL'), { code: 'ESERVFAIL' });
    const v = this.a.get(name);
    if (v === undefined) throw Object.assign(new Error(`queryA ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return v;
  }
  async resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>> {
    if (this.fail) throw Object.assign(new Error('querySrv ESERVFAIL'), { code: 'ESERVFAIL' });
    const v = this.srv.get(name);
    if (v === undefined) throw Object.assign(new Error(`querySrv ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return v;
  }
}

test('DNS A records: the pool follows the headless Service; a failing resolver keeps the set; NXDOMAIN empties it', async (t) => {
  // All replicas listen on one port on different loopback IPs, as pods behind a headless Service.
  const first = await startFleet({ replicas: 1, basePort: 0, host: '127.0.0.21', model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096 });
  const port = first.replicas[0].port;
  const second = await startFleet({ replicas: 1, basePort: port, host: '127.0.0.22', model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096 });
  const r = new TableResolver();
  r.a.set('vllm.llm.svc.cluster.local', ['127.0.0.21']);
  const router = await startRouter({
    endpoints: [],
    discovery: new DnsDiscovery({ name: 'vllm.llm.svc.cluster.local', port, intervalMs: 50, resolver: r }),
    scheduler: buildScheduler({ preset: 'default' }),
    port: 0,
    adminPort: 0,
    processMetrics: false,
  });
  t.after(async () => {
    await router.close();
    await Promise.all([first.close(), second.close()]);
  });
  const ids = () => router.pool.all().map((e) => e.id).sort().join();
  assert.equal(ids(), `127.0.0.21:${port}`);
  r.a.set('vllm.llm.svc.cluster.local', ['127.0.0.22', '127.0.0.21']);
  assert.ok((await waitFor('second address joined', () => ids() === `127.0.0.21:${port},127.0.0.22:${port}` && router.pool.all().every((e) => e.healthy))) < 2000);
  r.fail = true;
  const q = r.queries;
  await waitFor('a few failing rounds', () => r.queries >= q + 3);
  assert.equal(ids(), `127.0.0.21:${port},127.0.0.22:${port}`, 'resolver failures keep the last set');
  r.fail = false;
  r.a.set('vllm.llm.svc.cluster.local', ['127.0.0.22']);
  await waitFor('first address left', () => ids() === `127.0.0.22:${port}`);
  const res = await fetch(`${router.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) });
  assert.equal(res.status, 200);
  await res.text();
  assert.equal(router.decisions.toArray().at(-1)!.servedBy, `127.0.0.22:${port}`);
  r.a.delete('vllm.llm.svc.cluster.local');
  await waitFor('NXDOMAIN empties the pool', () => ids() === '');
  const none = await fetch(`${router.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) });
  const body = (await none.json()) as { error?: { message?: string } };
  assert.ok(none.status === 404 || none.status === 503, `no endpoints: a clear error, not a hang (got ${none.status})`);
  assert.ok((body.error?.message ?? '').length > 0);
});

test('DNS SRV records give the ports; createDiscovery parses dns:<name>[:<port>] and rejects what does not apply', async () => {
  const r = new TableResolver();
  r.srv.set('_http._tcp.vllm.llm.svc.cluster.local', [{ name: 'vllm-0.vllm.llm.svc.cluster.local', port: 8000, priority: 0, weight: 1 }, { name: 'vllm-1.vllm.llm.svc.cluster.local', port: 8001, priority: 0, weight: 1 }]);
  r.a.set('vllm-0.vllm.llm.svc.cluster.local', ['10.1.0.5']);
  r.a.set('vllm-1.vllm.llm.svc.cluster.local', ['10.1.0.6']);
  const d = createDiscovery({ discovery: 'dns:_http._tcp.vllm.llm.svc.cluster.local', resolver: r, kvEvents: { port: 5557 } }, []);
  let got: unknown;
  await d.start((specs) => void (got = specs));
  await d.stop();
  assert.deepEqual(got, [
    { id: '10.1.0.5:8000', url: 'http://10.1.0.5:8000', kvEvents: { endpoint: 'tcp://10.1.0.5:5557' } },
    { id: '10.1.0.6:8001', url: 'http://10.1.0.6:8001', kvEvents: { endpoint: 'tcp://10.1.0.6:5557' } },
  ]);
  assert.throws(() => createDiscovery({ discovery: 'dns:bad name:80' }, []), /dns:<headless service name>:<port>/);
  assert.throws(() => createDiscovery({ discovery: 'dns:x:80', endpointSelector: 'app=v' }, []), /applies to --discovery k8s only/);
  assert.throws(() => createDiscovery({ discovery: 'static', dnsIntervalMs: 100 }, []), /--dns-interval-ms applies/);
  assert.throws(() => createDiscovery({ discovery: 'k8s' }, []), /needs --pool-name/);
  assert.throws(() => createDiscovery({ discovery: 'k8s', endpointSelector: 'app=v', endpointTargetPorts: '1,2,3,4,5,6,7,8,9' }, []), /1 to 8 target ports/);
  assert.throws(() => createDiscovery({ discovery: 'file:/x' }, [{ url: '1.2.3.4:80' }]), /cannot be combined/);
  assert.throws(() => createDiscovery({ discovery: 'consul' }, []), /not known/);
});
