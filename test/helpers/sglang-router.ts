/**
 * The real SGLang router (PyPI `sglang-router`) for tests: the bench's own launcher
 * (src/bench/live-peers.ts) behind a check that fails loudly, never skips, when it is missing.
 */
import { requireSglangRouter, startSglangRouter, type RunningPeer, type SglangRouterOptions } from '../../src/bench/live-peers.js';

/** The installed sglang-router version; throws with the install command when it is missing. */
export function requireSglangRouterForTest(): string {
  try {
    return requireSglangRouter();
  } catch (e) {
    throw new Error(`this test needs the real SGLang router and it is not installed: ${(e as Error).message}`);
  }
}

/** Starts sglang-router in front of `workerUrls` (waits until every worker is healthy). */
export function startSglangRouterForTest(workerUrls: readonly string[], o: SglangRouterOptions = {}): Promise<RunningPeer> {
  requireSglangRouterForTest();
  return startSglangRouter(workerUrls, o);
}
