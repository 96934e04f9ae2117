/**
 * The scraper's HTTP probe: one GET whose page is read up to a byte cap (a huge or endless page
 * fails the probe, never the router), bounded by a timeout on headers, body and the whole call;
 * and which errors mean that nothing listens at an address.
 */
import { request, type Dispatcher } from 'undici';

/** A probe's answer: status, the page as text, the response headers. */
export interface CappedPage {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** GETs `url`, reading at most `maxBytes` of its body (else throws, naming the cap to raise). */
export async function cappedGet(url: string, o: { timeoutMs: number; maxBytes: number; dispatcher?: Dispatcher }): Promise<CappedPage> {
  const res = await request(url, {
    method: 'GET',
    dispatcher: o.dispatcher,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    signal: AbortSignal.timeout(o.timeoutMs),
  });
  const cap = o.maxBytes;
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    res.body.destroy();
    throw new Error(`${url} is ${declared} bytes, over the ${cap}-byte cap (raise maxPageBytes)`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > cap) {
      res.body.destroy();
      throw new Error(`${url} is over the ${cap}-byte cap (raise maxPageBytes)`);
    }
    chunks.push(c);
  }
  return { status: res.statusCode, text: Buffer.concat(chunks, size).toString('utf8'), headers: res.headers as CappedPage['headers'] };
}

/** True for errors meaning nothing is listening / reachable at the address. */
export function isConnectError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND';
}
