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
  const { result, prediction } = d;
  metrics.schedulingDuration.observe(result.durationMs / 1000);
  metrics.decisionsByCacheStatus.inc({ cache_status: prediction.cacheStatus, reason: result.reason });
  for (const c of result.candidates) {
    const candidate = c.endpointId === result.endpoint.id ? 'chosen' : 'other';
    for (const name in c.scores) {
      const v = c.scores[name];
      if (Number.isFinite(v)) metrics.scorerScore.observe({ scorer: name, type: s.scorerTypes.get(name) ?? 'unknown', candidate }, v);
    }
  }
}

/** Everything recorded when a request ends; called once per lifecycle. */
export function recordEnd(s: LifecycleShared, sum: LifecycleSummary, d: Decision | undefined, arrivedAt: number, log: Logger): void {
  const { metrics } = s.o;
  const ep = sum.endpoint;
  const cacheStatus = d?.prediction.cacheStatus ?? 'unknown';
  const answered = sum.outcome === 'ok' || sum.outcome === 'upstream-status';
  if (sum.outcome === 'aborted') metrics.clientAborts.inc({ stage: sum.stage });
  if (sum.outcome === 'rejected' && sum.error !== undefined) metrics.badRequests.inc({ code: sum.error.code });
  if (d !== undefined && sum.model !== undefined) {
    metrics.requests.inc({ endpoint: ep?.id ?? '', model: sum.model, status: String(sum.status), reason: d.result.reason });
  }
  const usage = sum.usage;
  if (ep !== undefined && answered) {
    if (sum.ttftMs !== undefined) metrics.ttft.observe({ endpoint: ep.id, cache_status: cacheStatus }, sum.ttftMs / 1000);
    metrics.e2e.observe({ endpoint: ep.id, cache_status: cacheStatus }, sum.durationMs / 1000);
    if (usage?.promptTokens !== undefined) metrics.promptTokens.inc({ endpoint: ep.id }, usage.promptTokens);
    if (usage?.cachedTokens !== undefined) metrics.cachedTokens.inc({ endpoint: ep.id }, usage.cachedTokens);
  }
  const prediction = d?.prediction;
  if (sum.outcome === 'ok' && ep !== undefined && prediction?.predictedCachedTokens !== undefined) {
    metrics.predictedCachedTokens.inc({ endpoint: ep.id }, prediction.predictedCachedTokens);
    const engineCached = usage?.cachedTokens;
    const engineTotal = usage?.promptTokens;
    if (engineCached !== undefined && engineTotal !== undefined && engineTotal > 0) {
      const predictedFraction = prediction.predictedCachedTokens / Math.max(1, prediction.promptTokens);
      metrics.predictionError.observe(Math.max(-1, Math.min(1, engineCached / engineTotal - predictedFraction)));
    }
  }
  if (sum.outcome === 'rejected' || (sum.outcome === 'upstream-failed' && d === undefined)) {
    if (sum.error?.code === 'KVR_ERR_INTERNAL') log.error({ err: sum.error.cause ?? sum.error }, 'internal error');
    log.info({ status: sum.status, code: sum.error?.code, msg: sum.error?.message, stage: sum.stage, durationMs: round1(sum.durationMs) }, 'request failed');
  } else {
    log.info(
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
