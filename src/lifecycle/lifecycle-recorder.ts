/**
 * What the request lifecycle records, in one place: decision metrics when a request is decided,
 * and at its end (exactly once) the counters, histograms, the one log line and the decision
 * record. Kept apart from the state machine in request-lifecycle.ts.
 */
import type { Logger } from 'pino';
import type { Decision, LifecycleSummary } from './types.js';
import type { LifecycleShared } from './request-lifecycle.js';

const round1 = (ms: number): number => Math.round(ms * 10) / 10;

/** Per-decision metrics: scheduling time, cache status x reason, the candidates' raw scores. */
export function recordDecision(s: LifecycleShared, d: Decision): void {
  const { metrics } = s.o;
  const { fast } = metrics;
  const { result, prediction } = d;
  fast.histogram(metrics.schedulingDuration).observe(result.durationMs / 1000);
  fast.counter(metrics.decisionsByCacheStatus, prediction.cacheStatus, result.reason).inc();
  for (const c of result.candidates) {
    const chosen = c.endpointId === result.endpoint.id ? 0 : 1;
    for (const name in c.scores) {
      const v = c.scores[name];
      if (!Number.isFinite(v)) continue;
      let pair = s.scoreChildren.get(name);
      if (pair === undefined) {
        const type = s.scorerTypes.get(name) ?? 'unknown';
        pair = [fast.histogram(metrics.scorerScore, name, type, 'chosen'), fast.histogram(metrics.scorerScore, name, type, 'other')];
        s.scoreChildren.set(name, pair);
      }
      pair[chosen].observe(v);
    }
  }
}

/** Everything recorded when a request ends; called once per lifecycle. */
export function recordEnd(s: LifecycleShared, sum: LifecycleSummary, d: Decision | undefined, arrivedAt: number, lc: { readonly log: Logger; logLevelEnabled(level: string): boolean }): void {
  const { metrics } = s.o;
  const { fast } = metrics;
  const ep = sum.endpoint;
  const cacheStatus = d?.prediction.cacheStatus ?? 'unknown';
  const answered = sum.outcome === 'ok' || sum.outcome === 'upstream-status';
  if (sum.outcome === 'aborted') metrics.clientAborts.inc({ stage: sum.stage });
  if (sum.outcome === 'rejected' && sum.error !== undefined) metrics.badRequests.inc({ code: sum.error.code });
  if (d !== undefined && sum.model !== undefined) {
    fast.counter(metrics.requests, ep?.id ?? '', sum.model, String(sum.status), d.result.reason).inc();
  }
  const usage = sum.usage;
  if (ep !== undefined && answered) {
    if (sum.ttftMs !== undefined) fast.histogram(metrics.ttft, ep.id, cacheStatus).observe(sum.ttftMs / 1000);
    fast.histogram(metrics.e2e, ep.id, cacheStatus).observe(sum.durationMs / 1000);
    if (usage?.promptTokens !== undefined) fast.counter(metrics.promptTokens, ep.id).inc(usage.promptTokens);
    if (usage?.cachedTokens !== undefined) fast.counter(metrics.cachedTokens, ep.id).inc(usage.cachedTokens);
  }
  const prediction = d?.prediction;
  if (sum.outcome === 'ok' && ep !== undefined && prediction?.predictedCachedTokens !== undefined) {
    fast.counter(metrics.predictedCachedTokens, ep.id).inc(prediction.predictedCachedTokens);
    const engineCached = usage?.cachedTokens;
    const engineTotal = usage?.promptTokens;
    if (engineCached !== undefined && engineTotal !== undefined && engineTotal > 0) {
      const predictedFraction = prediction.predictedCachedTokens / Math.max(1, prediction.promptTokens);
      fast.histogram(metrics.predictionError).observe(Math.max(-1, Math.min(1, engineCached / engineTotal - predictedFraction)));
    }
  }
  if (sum.outcome === 'rejected' || (sum.outcome === 'upstream-failed' && d === undefined)) {
    const log = lc.log;
    if (sum.error?.code === 'KVR_ERR_INTERNAL') log.error({ err: sum.error.cause ?? sum.error }, 'internal error');
    log.info({ status: sum.status, code: sum.error?.code, msg: sum.error?.message, stage: sum.stage, durationMs: round1(sum.durationMs) }, 'request failed');
  } else if (lc.logLevelEnabled('info')) {
    // (the line's object, and the request's logger, are built only when it is written: `info` is off by default)
    lc.log.info(
      {
        model: sum.model,
        endpoint: ep?.id,
        status: sum.status,
        outcome: sum.outcome,
        ...(sum.outcome === 'aborted' ? { abortStage: sum.stage } : {}),
        ...(sum.error !== undefined ? { code: sum.error.code } : {}),
        reason: d?.result.reason,
        cache: prediction?.cacheStatus,
        predictedCachedTokens: prediction?.predictedCachedTokens,
        cachedTokens: usage?.cachedTokens,
        promptTokens: usage?.promptTokens,
        retries: sum.retries,
        schedulingMs: d === undefined ? undefined : round1(d.result.durationMs),
        overheadMs: sum.overheadMs === undefined ? undefined : round1(sum.overheadMs),
        ttftMs: sum.ttftMs === undefined ? undefined : round1(sum.ttftMs),
        durationMs: round1(sum.durationMs),
      },
      'request',
    );
  }
  if (d !== undefined && sum.model !== undefined) {
    s.o.onDecision?.({
      requestId: sum.requestId,
      model: sum.model,
      at: arrivedAt,
      result: d.result,
      servedBy: ep?.id ?? d.result.endpoint.id,
      status: sum.status,
      cachedTokens: usage?.cachedTokens,
      promptTokens: usage?.promptTokens,
      cacheStatus: prediction?.cacheStatus,
      predictedCachedTokens: prediction?.predictedCachedTokens,
      routerPromptTokens: prediction?.promptTokens,
      ttftMs: sum.ttftMs,
      durationMs: sum.durationMs,
      overheadMs: sum.overheadMs,
    });
  }
  s.o.onEnd?.(sum);
}
